"""A cloud's status from what a pass saw: conditions, phase, per-service summaries, the upgrade.

The status is built once a pass, as the typed model the CRD is generated from
(stackops.api.models.OpenStackCloudStatus), and written as its JSON (`dump_status`). Conditions
follow Kubernetes conventions and are recomputed on every pass. Ready mirrors the worst of the
others and says which step and why. lastTransitionTime moves only when a condition's status does,
so an unchanged cloud gets a byte-identical status and no write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stackops.api.models import (
    BackupStatus,
    Condition,
    CredentialRotationStatus,
    DatabaseStatus,
    OpenStackCloud,
    OpenStackCloudStatus,
    RestoreStatus,
    ServiceStatus,
)
from stackops.credentials import RotationState
from stackops.health.monitor import DEGRADED, HEALTHY, CloudHealth
from stackops.kube.backups import Backups
from stackops.kube.engine import Outcome
from stackops.plan import BACKUP_SETS
from stackops.reconcile.errors import Failure
from stackops.reconcile.upgrade_status import UPGRADING, upgrade_services
from stackops.services.backups import BackupSet
from stackops.upgrade.run import UpgradeProgress

HEALTH_REASON = "ServiceUnhealthy"  # Degraded because a health check failed, not a step
BLOCKED = "Blocked"  # Progressing, but a step waits on something that will not happen by itself
STEP_FAILED = "StepFailed"
# Degraded by a step of a credential rotation: the phase stays, so the old credentials keep working
ROTATION_FAILED = "CredentialRotationFailed"
WAITING = "WaitingForStep"
MAX_SERVICES_NAMED = 3  # in the Healthy condition's message; the status stays small
# phases in which a health verdict decides Degraded (not Paused, Failed or Pending)
HEALTH_JUDGES = ("Ready", "Degraded", "Deploying", UPGRADING)


def load_status(raw: Mapping[str, Any] | None) -> OpenStackCloudStatus:
    """The status as the cluster holds it (written by this or an older stackops)."""
    return OpenStackCloudStatus.model_validate(dict(raw or {}))


def dump_status(status: OpenStackCloudStatus) -> dict[str, Any]:
    """The status as the CRD has it: aliased names, and nothing for what is not known (None)."""
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


def _condition(kind: str, true: bool, reason: str, message: str, generation: int) -> Condition:
    return Condition(
        type=kind, status="True" if true else "False", reason=reason, message=message, observed_generation=generation
    )


def _keep_transition_times(conditions: list[Condition], previous: OpenStackCloudStatus, now: str) -> None:
    before = {c.type: c for c in previous.conditions}
    for condition in conditions:
        old = before.get(condition.type)
        same = old is not None and old.status == condition.status
        condition.last_transition_time = (old.last_transition_time or now) if same and old else now


def _ready(sub: list[Condition], generation: int) -> Condition:
    """Ready is the worst sub-condition: Degraded, then Paused, then Progressing."""
    by_type = {c.type: c for c in sub}
    for kind in ("Degraded", "Paused", "Progressing"):
        condition = by_type[kind]
        if condition.status == "True":
            return _condition("Ready", False, condition.reason, condition.message, generation)
    return _condition("Ready", True, "AllServicesReady", "every service is deployed and ready", generation)


def _progress_reason(outcome: Outcome, upgrading: bool) -> str:
    current = outcome.current
    if current is not None and current.state == "Waiting":
        # Blocked: Kubernetes names what keeps it from getting there (in the message)
        return BLOCKED if current.cause else UPGRADING if upgrading else WAITING
    return "Converged" if outcome.done else "Stopped"


def _services(outcome: Outcome, release: str) -> dict[str, ServiceStatus]:
    services: dict[str, ServiceStatus] = {}
    for step in outcome.steps:
        entry = services.setdefault(step.service, ServiceStatus(phase="Ready", message=""))
        if entry.phase != "Ready":
            continue
        if step.state != "Ready":
            entry.phase = {"Waiting": "Deploying", "Failed": "Failed", "Pending": "Pending"}[step.state]
            entry.message = step.message
    for name, entry in services.items():
        ready, desired = outcome.replicas.get(name, (0, 0))
        entry.ready = f"{ready}/{desired}" if desired else ""
        if entry.phase == "Ready":
            entry.release = release
    return services


def _copied(services: Mapping[str, ServiceStatus]) -> dict[str, ServiceStatus]:
    return {name: entry.model_copy() for name, entry in services.items()}


@dataclass(frozen=True)
class PassView:
    """What one pass saw of a cloud, for its status: exactly one of an outcome (the steps it took),
    a failure, or paused."""

    generation: int
    release: str  # spec.release
    outcome: Outcome | None = None
    failure: Failure | None = None
    paused: bool = False
    # the upgrade's part in the pass: its record, reasons and each service's place
    upgrade: UpgradeProgress | None = None
    spec_hashes: dict[str, str] | None = None  # of the spec, recorded once the cloud converged
    # the backup a restore asked for names, by the status field of its set (BackupSet.status)
    restores: dict[str, str] = field(default_factory=dict)
    rotation: RotationState | None = None  # the credential rotation's, as the pass left it


def restores(cloud: OpenStackCloud) -> dict[str, str]:
    """The backups the spec's restores name, by the status field that shows them."""
    asked = {backups.status: backups.asked(cloud.spec) for backups in BACKUP_SETS}
    return {name: restore.backup for name, restore in asked.items() if restore is not None}


def build_status(
    previous: OpenStackCloudStatus, seen: PassView, now: str, health: CloudHealth | None = None
) -> OpenStackCloudStatus:
    """The status of a pass: what it saw, the health checks' verdict, and what stays from before."""
    generation = seen.generation
    status = OpenStackCloudStatus(observed_generation=generation)
    outcome, failure = seen.outcome, seen.failure
    record = seen.upgrade.record if seen.upgrade is not None else None
    upgrading = record is not None and outcome is not None and not outcome.done
    if seen.paused:
        sub = [
            _condition("Paused", True, "Paused", "spec.paused is set: stackops makes no changes", generation),
            _condition("Progressing", False, "Paused", "", generation),
            _condition("Degraded", False, "Paused", "", generation),
        ]
        status.phase, status.services = "Paused", _copied(previous.services)
    elif failure is not None and not failure.permanent:
        # still retrying: the cloud is on its way, but the status says what keeps it from moving
        sub = [
            _condition("Paused", False, "NotPaused", "", generation),
            _condition("Progressing", True, failure.reason, f"retrying: {failure.message}", generation),
            _condition("Degraded", False, failure.reason, "", generation),
        ]
        phase = previous.phase
        status.phase = "Deploying" if phase in ("Ready", "Failed", "Paused") else phase
        status.services = _copied(previous.services)
    elif failure is not None:
        sub = [
            _condition("Paused", False, "NotPaused", "", generation),
            _condition("Progressing", False, failure.reason, "", generation),
            _condition("Degraded", True, failure.reason, failure.message, generation),
        ]
        status.phase, status.services = "Failed", _copied(previous.services)
    else:
        assert outcome is not None
        current = outcome.current
        failed = current is not None and current.state == "Failed"
        waiting = current is not None and current.state == "Waiting"
        rotating = seen.rotation is not None and seen.rotation.phase is not None
        failed_reason = ROTATION_FAILED if rotating else STEP_FAILED
        if upgrading and seen.upgrade is not None:
            failed_reason = seen.upgrade.reason
        sub = [
            _condition("Paused", False, "NotPaused", "", generation),
            _condition(
                "Progressing",
                waiting,
                _progress_reason(outcome, upgrading),
                current.message if waiting and current else "",
                generation,
            ),
            _condition(
                "Degraded",
                failed,
                failed_reason if failed else "AsExpected",
                f"step {current.name}: {current.message}" if failed and current else "",
                generation,
            ),
        ]
        status.phase = "Degraded" if failed else "Ready" if outcome.done else UPGRADING if upgrading else "Deploying"
        status.services = _services(outcome, seen.release)
        if outcome.hosts:  # n/N per host agent: one broken hypervisor of many shows here, not in Ready
            status.hosts = {name: f"{ready}/{nodes}" for name, (ready, nodes) in sorted(outcome.hosts.items())}
        if outcome.done:
            status.endpoints = dict(outcome.endpoints)
    status.release = seen.release if status.phase == "Ready" else previous.release
    status.compute = previous.compute  # written by the compute hosts' looks, not by a pass
    status.endpoints = status.endpoints if status.endpoints is not None else previous.endpoints
    if status.hosts is None and outcome is None:
        status.hosts = previous.hosts  # paused or failed: what was seen last
    status.upgrade = previous.upgrade  # only the upgrade changes it (below)
    status.spec_hashes = previous.spec_hashes
    if outcome is not None:
        status.upgrade = record if upgrading else None
        if outcome.done:
            status.spec_hashes = seen.spec_hashes  # the spec this converged: what an upgrade compares with
    if record is not None and upgrading:
        status.release = record.from_  # the release deployed, until the cloud converged at the new one
    for backups in BACKUP_SETS:
        before = getattr(previous, backups.status)
        setattr(status, backups.status, backup_status(before, outcome, seen.restores.get(backups.status), backups))
    status.credential_rotation = rotation_status(previous.credential_rotation, seen.rotation)
    conditions = [_ready(sub, generation), *sub]
    _keep_transition_times(conditions, previous, now)
    status.conditions = conditions
    status = with_health(status, health, previous, now)
    if record is not None and upgrading and seen.upgrade is not None:
        status.services = upgrade_services(status.services, previous.services, seen.upgrade.services, record)
    return status


def rotation_status(
    previous: CredentialRotationStatus | None, rotation: RotationState | None
) -> CredentialRotationStatus | None:
    """The rotation as the pass left it; as before when the pass did not look (paused, failed, an
    upgrade); none until a rotation was asked for."""
    if rotation is None:
        return previous
    if rotation.generation == 0:
        return None
    return CredentialRotationStatus(
        generation=rotation.generation, phase=rotation.phase.value if rotation.phase else "Done"
    )


def _healthy(health: CloudHealth, generation: int) -> Condition:
    degraded = [(name, h.message) for name, h in health.services.items() if h.state == DEGRADED]
    if degraded:
        shown = "; ".join(f"{name}: {message}" for name, message in degraded[:MAX_SERVICES_NAMED])
        more = len(degraded) - MAX_SERVICES_NAMED
        message = f"{shown}; and {more} more services" if more > 0 else shown
        return _condition("Healthy", False, HEALTH_REASON, message, generation)
    if any(h.state == HEALTHY for h in health.services.values()):
        note = f"Kubernetes checks only: {health.openstack}" if health.openstack else "every check passed"
        return _condition("Healthy", True, "AllServicesHealthy", note, generation)
    condition = _condition("Healthy", False, "NotChecked", health.openstack or "not checked yet", generation)
    condition.status = "Unknown"
    return condition


def with_health(
    status: OpenStackCloudStatus, health: CloudHealth | None, previous: OpenStackCloudStatus, now: str
) -> OpenStackCloudStatus:
    """`status` with the health checks' verdict: per-service health (the reason in the service's
    message), the Healthy condition, and Degraded/Ready/phase when a check failed. Without a verdict
    yet (the operator just started), the last one in `previous` stands."""
    generation = status.observed_generation or 0
    services = _copied(status.services)
    before = previous.services
    conditions = [c.model_copy() for c in status.conditions if c.type != "Healthy"]
    if health is None:
        for name, entry in services.items():
            old = before.get(name)
            if old is not None and old.health:
                entry.health = old.health
                if old.health == DEGRADED:
                    entry.message = old.message
        kept = [c for c in previous.conditions if c.type == "Healthy"]
        healthy = kept[0].model_copy() if kept else _healthy(CloudHealth("", "", {}), generation)
    else:
        for name, entry in services.items():
            verdict = health.services.get(name)
            if verdict is None:
                continue
            if entry.health == DEGRADED and verdict.state != DEGRADED:
                entry.message = ""  # it held the failed check's reason; a pass puts back any step's
            entry.health = verdict.state
            if verdict.state == DEGRADED:
                entry.message = verdict.message
        healthy = _healthy(health, generation)
    phase = status.phase
    sub = [c for c in conditions if c.type != "Ready"]
    degraded = next((c for c in sub if c.type == "Degraded"), None)
    if (
        degraded is not None
        and phase in HEALTH_JUDGES
        and (degraded.status != "True" or degraded.reason == HEALTH_REASON)
    ):
        unhealthy = healthy.status == "False" and healthy.reason == HEALTH_REASON
        reason, message = (HEALTH_REASON, healthy.message) if unhealthy else ("AsExpected", "")
        judged = _condition("Degraded", unhealthy, reason, message, generation)
        sub = [judged if c is degraded else c for c in sub]
        if unhealthy and phase == "Ready":
            phase = "Degraded"
        elif not unhealthy and phase == "Degraded":
            phase = "Ready"
    result = [_ready(sub, generation), healthy, *sub]
    _keep_transition_times(result, previous, now)
    return status.model_copy(update={"phase": phase, "services": services, "conditions": result})


STOPPING_SERVICES = "StoppingServices"  # a restore's phase while its first step waits for the steps before it


def restore_phase(outcome: Outcome, kind_of: BackupSet) -> tuple[str, str] | None:
    """Where a restore is, from its steps (in order, each waits for all before it): its phase and
    message; None when the pass did not render them."""
    states = {s.name: s for s in outcome.steps}
    if kind_of.restore_steps[0][0] not in states:
        return None
    for index, (name, running) in enumerate(kind_of.restore_steps):
        step = states.get(name)
        if step is None or step.state == "Ready":
            continue
        if step.state == "Pending" and index == 0:  # the workloads are still stopping
            return STOPPING_SERVICES, f"waiting for {kind_of.stopping} to stop"
        if step.state == "Failed":
            return "Failed", step.message
        return running, step.message
    return "Restored", f"the services stay stopped until {kind_of.restore_field} is removed"


def backup_status(
    previous: DatabaseStatus | None, outcome: Outcome | None, restore: str | None, kind_of: BackupSet
) -> DatabaseStatus | None:
    """A set's backups as the pass read them (as before when it did not look), and the restore's
    phase from its steps: the first waits for every other step, so Pending means workloads are
    still stopping."""
    if outcome is None:  # paused, or a pass that failed: as last seen
        return previous
    before = previous or DatabaseStatus()
    found = (outcome.backups or {}).get(kind_of.status)
    backup = before.backup if found is None else _backup(before.backup, found)
    restored = before.restore
    if restore is None:
        restored = None
    else:
        phase = restore_phase(outcome, kind_of)
        if phase is not None:
            restored = RestoreStatus(backup=restore, phase=phase[0], message=phase[1])
    if backup is None and restored is None:
        return None
    return DatabaseStatus(backup=backup, restore=restored)


def _backup(before: BackupStatus | None, found: Backups) -> BackupStatus:
    last = found.last or {}
    return BackupStatus(
        last=_text(last.get("name")) or (before.last if before else None),
        last_time=_text(last.get("time")) or (before.last_time if before else None),
        last_size=_number(last.get("size")) or (before.last_size if before else None),
        last_sha256=_text(last.get("sha256")) or (before.last_sha256 if before else None),
        # where the object store has the last one: none when it was not uploaded
        last_uploaded=_text(last.get("uploaded")) if last else (before.last_uploaded if before else None),
        failed=found.failure or None,
    )


def _text(value: str | int | None) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: str | int | None) -> int | None:
    return value if isinstance(value, int) else None
