"""How an upgrade shows in the cloud's status and Events.

stackops.reconcile.status builds the status of a pass as for any reconcile; this adds what an
upgrade changes: the phase reads Upgrading, the reasons say upgrade, `status.upgrade` holds the
progress, each service shows the release it runs, and `status.release` moves to the new release
only once the cloud converged there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackops.reconcile.status import Status, Transition
from stackops.upgrade.plan import PREFLIGHT
from stackops.upgrade.record import UpgradeRecord, spec_hashes
from stackops.upgrade.run import ReleaseOutcome

UPGRADING = "Upgrading"


def release_status(status: Status, previous: Status, result: ReleaseOutcome, spec: Mapping[str, Any]) -> Status:
    """`status`, as built for the pass that gave `result`, with the release and upgrade shown."""
    status = dict(status)
    record = result.upgrade
    if result.outcome.done:
        # converged: at the spec's release, with the spec on record to compare the next upgrade with
        status.pop("upgrade", None)
        status["specHashes"] = spec_hashes(spec)
        if record is not None:
            status["release"] = record.target
        return status
    if record is None:
        status.pop("upgrade", None)
        return status
    status["upgrade"] = record.dump()
    status["release"] = record.source
    if status.get("phase") == "Deploying":
        status["phase"] = UPGRADING
    status["conditions"] = [_reasons(c, result.reason) for c in status.get("conditions", [])]
    status["services"] = _services(status, previous, result, record)
    return status


def _reasons(condition: Mapping[str, Any], failed: str) -> dict[str, Any]:
    reasons = {"StepFailed": failed, "WaitingForStep": UPGRADING}
    result = dict(condition)
    if condition["type"] in ("Ready", "Degraded", "Progressing"):
        result["reason"] = reasons.get(condition["reason"], condition["reason"])
    return result


def _services(status: Status, previous: Status, result: ReleaseOutcome, record: UpgradeRecord) -> dict[str, Any]:
    """Every service with the release it runs: the new one once its steps passed, the old one before."""
    before: Mapping[str, Any] = previous.get("services") or {}
    now: Mapping[str, Any] = status.get("services") or {}
    services: dict[str, Any] = {}
    for name in [*before, *(n for n in now if n not in before)]:
        if not name:
            continue  # the pre-flight and the final converge belong to no service
        entry = {**before.get(name, {}), **now.get(name, {})}
        entry["ready"] = now.get(name, {}).get("ready") or before.get(name, {}).get("ready", "")
        state = result.services.get(name)
        if state == "done":
            entry["release"] = record.target  # its phase as the pass saw it (the final converge runs it too)
        elif state == "current":
            failed = entry.get("phase") == "Failed"
            entry |= {"phase": "Failed" if failed else UPGRADING, "release": record.source}
        else:
            entry |= {"phase": before.get(name, {}).get("phase", "Ready"), "release": record.source}
            entry["message"] = before.get(name, {}).get("message", "")
        services[name] = entry
    return services


def upgrade_transitions(previous: Status | None, current: Status) -> list[Transition]:
    """Events for an upgrade: started, pre-flight passed, each step done, rollback window closed,
    finished or abandoned. (A failed step is a Degraded transition, posted with the others.)"""
    previous = previous or {}
    before = UpgradeRecord.load(previous.get("upgrade"))
    after = UpgradeRecord.load(current.get("upgrade"))
    events: list[Transition] = []
    if after is not None and (before is None or before.target != after.target):
        events.append(
            Transition("Normal", "UpgradeStarted", f"upgrade from {after.source} to {after.target}: pre-flight checks")
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
        if current.get("release") == before.target:
            events.append(Transition("Normal", "Upgraded", f"upgraded from {before.source} to {before.target}"))
        else:
            message = f"back on {before.source}; the upgrade to {before.target} stopped"
            events.append(Transition("Normal", "UpgradeRolledBack", message))
    return events
