"""The Events a status change posts: what a person would want to know changed, the cloud's and its
upgrade's. (Health checks post their own, naming the service: stackops.health.monitor.events.)"""

from __future__ import annotations

from dataclasses import dataclass

from stackops.api.models import Condition, DatabaseStatus, OpenStackCloudStatus
from stackops.reconcile.status import BLOCKED, HEALTH_REASON
from stackops.upgrade.plan import PREFLIGHT


@dataclass(frozen=True)
class Transition:
    """An Event to post."""

    type: str  # Normal | Warning
    reason: str
    message: str


def transitions(previous: OpenStackCloudStatus, current: OpenStackCloudStatus) -> list[Transition]:
    """Events for what changed between two statuses: the cloud's, then its upgrade's."""
    return [
        *cloud_transitions(previous, current),
        *upgrade_transitions(previous, current),
        *backup_transitions(previous.database, current.database),
        *backup_transitions(previous.ovn, current.ovn, "Ovn"),
    ]


def backup_transitions(
    before: DatabaseStatus | None, after: DatabaseStatus | None, prefix: str = ""
) -> list[Transition]:
    """Events for a restore's phases, and for a backup Job that failed (once per failure); `prefix`
    tells a set's reasons apart (OvnRestoreSyncing, OvnBackupFailed)."""
    events: list[Transition] = []
    restore_before = before.restore if before else None
    restore = after.restore if after else None
    if restore is not None and (
        restore_before is None or (restore_before.backup, restore_before.phase) != (restore.backup, restore.phase)
    ):
        kind = "Warning" if restore.phase == "Failed" else "Normal"
        message = f"backup {restore.backup}: {restore.message}" if restore.message else f"backup {restore.backup}"
        events.append(Transition(kind, f"{prefix}Restore{restore.phase}", message))
    failed_before = before.backup.failed if before and before.backup else None
    failed = after.backup.failed if after and after.backup else None
    if failed and failed != failed_before:
        events.append(Transition("Warning", f"{prefix}BackupFailed", failed))
    return events


def cloud_transitions(previous: OpenStackCloudStatus, current: OpenStackCloudStatus) -> list[Transition]:
    before: dict[str, Condition] = {c.type: c for c in previous.conditions}
    after: dict[str, Condition] = {c.type: c for c in current.conditions}
    events: list[Transition] = []
    # A failed health check gets its own Events, naming the service (stackops.health.monitor.events).
    was_degraded = "Degraded" in before and before["Degraded"].status == "True"
    by_health = was_degraded and before["Degraded"].reason == HEALTH_REASON
    degraded = after["Degraded"]
    now_degraded = degraded.status == "True"
    if now_degraded and degraded.reason != HEALTH_REASON and (not was_degraded or by_health):
        events.append(Transition("Warning", degraded.reason, degraded.message))
    if was_degraded and not by_health and not now_degraded:
        events.append(Transition("Normal", "Recovered", "the cloud is no longer degraded"))
    blocked = after["Progressing"]
    said_before = before["Progressing"].message if "Progressing" in before else None
    if blocked.reason == BLOCKED and said_before != blocked.message:
        events.append(Transition("Warning", BLOCKED, blocked.message))  # once per cause, not per pass
    paused_before = before["Paused"].status if "Paused" in before else None
    if paused_before != after["Paused"].status:
        paused = after["Paused"].status == "True"
        if paused or "Paused" in before:
            message = after["Paused"].message or "reconciling again"
            events.append(Transition("Normal", "Paused" if paused else "Resumed", message))
    if previous.phase != current.phase and current.phase in ("Ready", "Deploying"):
        events.append(Transition("Normal", current.phase, after["Ready"].message))
    return events


def upgrade_transitions(previous: OpenStackCloudStatus, current: OpenStackCloudStatus) -> list[Transition]:
    """Events for an upgrade: started, pre-flight passed, each step done, rollback window closed,
    finished or abandoned. (A failed step is a Degraded transition, posted with the others.)"""
    before, after = previous.upgrade, current.upgrade
    events: list[Transition] = []
    if after is not None and (before is None or before.to != after.to):
        events.append(
            Transition("Normal", "UpgradeStarted", f"upgrade from {after.from_} to {after.to}: pre-flight checks")
        )
    if after is not None and after.phase == "Upgrading" and (before is None or before.phase != "Upgrading"):
        events.append(Transition("Normal", "PreflightPassed", f"pre-flight passed: {after.steps} steps to run"))
    if after is not None:
        done_before = set(before.completed) if before is not None else set()
        steps = [s for s in after.completed if s != PREFLIGHT]
        for position, step in enumerate(steps, 1):
            if step not in done_before:
                service, _, name = step.partition("/")
                events.append(Transition("Normal", "UpgradeStep", f"{service} {name} done ({position}/{after.steps})"))
        if before is not None and before.rollback_to and not after.rollback_to:
            events.append(
                Transition(
                    "Normal",
                    "RollbackWindowClosed",
                    f"{after.service} contracts its database next: spec.release can no longer go back to "
                    f"{before.rollback_to}",
                )
            )
    if before is not None and after is None:
        if current.release == before.to:
            events.append(Transition("Normal", "Upgraded", f"upgraded from {before.from_} to {before.to}"))
        else:
            message = f"back on {before.from_}; the upgrade to {before.to} stopped"
            events.append(Transition("Normal", "UpgradeRolledBack", message))
    return events
