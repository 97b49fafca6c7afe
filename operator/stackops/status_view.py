"""How a cloud's status looks to a person: one table per cloud, coloured by phase.

Shared by `stackops status` and `stackops demo`, so both show the same thing.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from stackops.kube.readiness import condition

PHASE_COLOURS = {
    "Ready": "green",
    "Deploying": "yellow",
    "Upgrading": "yellow",
    "Pending": "dim",
    "Paused": "blue",
    "Degraded": "red",
    "Failed": "red",
}


def _coloured(phase: str) -> str:
    return f"[{PHASE_COLOURS.get(phase, 'white')}]{phase}[/]"


def cloud_table(cloud: dict[str, Any], elapsed: float | None = None) -> Table:
    meta = cloud["metadata"]
    status = cloud.get("status") or {}
    phase = str(status.get("phase", "Pending"))
    stale = status.get("observedGeneration") != meta.get("generation")
    title = f"{meta['namespace']}/{meta['name']}: {_coloured(phase)}"
    title += f" release {status.get('release') or '-'} (asked {cloud.get('spec', {}).get('release', '-')})"
    if elapsed is not None:
        title += f" {elapsed:.0f}s"
    if stale:
        title += " [dim](spec changed; not yet looked at)[/]"
    lines = [
        condition(status, "Ready").get("message", ""),
        database_line(status.get("database") or {}),
        database_line(status.get("ovn") or {}, "ovn"),
    ]
    caption = "\n".join(line for line in lines if line)
    table = Table(title=title, caption=caption or None, title_justify="left", caption_justify="left")
    for column in ("service", "phase", "ready", "health", "release", "message"):
        table.add_column(column)
    for service, entry in (status.get("services") or {}).items():
        table.add_row(
            service,
            _coloured(str(entry.get("phase", ""))),
            str(entry.get("ready", "")),
            str(entry.get("health", "")),
            str(entry.get("release", "") or ""),
            str(entry.get("message", "")),
        )
    return table


def database_line(database: dict[str, Any], what: str = "database") -> str:
    """The last backup and a restore under way, in words (empty without either): of the cloud's
    databases, or (`what`) of another status field's, such as OVN's."""
    said = []
    backup = database.get("backup") or {}
    if backup.get("last"):
        said.append(f"last backup {backup['last']} ({backup.get('lastSize', '?')} bytes)")
    if backup.get("lastUploaded"):
        said.append(f"uploaded to {backup['lastUploaded']}")
    if backup.get("failed"):
        said.append(f"[red]backup failed[/]: {backup['failed']}")
    restore = database.get("restore") or {}
    if restore:
        message = f" ({restore['message']})" if restore.get("message") else ""
        said.append(f"restore of {restore.get('backup')}: {restore.get('phase')}{message}")
    return f"{what}: " + "; ".join(said) if said else ""


def cloud_summary(cloud: dict[str, Any]) -> dict[str, Any]:
    """The machine-readable view (`-o json`): what the table shows, nothing more."""
    meta = cloud["metadata"]
    status = cloud.get("status") or {}
    return {
        "name": meta["name"],
        "namespace": meta["namespace"],
        "release": status.get("release"),
        "requestedRelease": cloud.get("spec", {}).get("release"),
        "phase": status.get("phase", "Pending"),
        "observedGeneration": status.get("observedGeneration"),
        "generation": meta.get("generation"),
        "conditions": status.get("conditions", []),
        "services": status.get("services", {}),
        "endpoints": status.get("endpoints", {}),
        "database": status.get("database", {}),
    }
