"""A cloud's status from what the last reconcile saw: conditions, phase, per-service summaries.

Conditions follow Kubernetes conventions and are recomputed on every reconcile. Ready mirrors the
worst of the others and says which step and why. lastTransitionTime moves only when a condition's
status does, so an unchanged cloud gets a byte-identical status and no write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stackops.health.monitor import DEGRADED, HEALTHY, CloudHealth
from stackops.kube.engine import Outcome
from stackops.reconcile.errors import Failure

Status = dict[str, Any]
HEALTH_REASON = "ServiceUnhealthy"  # Degraded because a health check failed, not a step
BLOCKED = "Blocked"  # Progressing, but a step waits on something that will not happen by itself
MAX_SERVICES_NAMED = 3  # in the Healthy condition's message; the status stays small


@dataclass(frozen=True)
class Transition:
    """An Event to post: something a person would want to know changed."""

    type: str  # Normal | Warning
    reason: str
    message: str


def _condition(kind: str, true: bool, reason: str, message: str, generation: int) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True" if true else "False",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


def _keep_transition_times(conditions: list[dict[str, Any]], previous: Status, now: str) -> None:
    before = {c["type"]: c for c in previous.get("conditions", []) or []}
    for condition in conditions:
        old = before.get(condition["type"])
        same = old is not None and old.get("status") == condition["status"]
        condition["lastTransitionTime"] = old.get("lastTransitionTime", now) if same and old else now


def _ready(sub: list[dict[str, Any]], generation: int) -> dict[str, Any]:
    """Ready is the worst sub-condition: Degraded, then Paused, then Progressing."""
    by_type = {c["type"]: c for c in sub}
    for kind in ("Degraded", "Paused", "Progressing"):
        condition = by_type[kind]
        if condition["status"] == "True":
            return _condition("Ready", False, condition["reason"], condition["message"], generation)
    return _condition("Ready", True, "AllServicesReady", "every service is deployed and ready", generation)


def _progress_reason(outcome: Outcome) -> str:
    current = outcome.current
    if current is not None and current.state == "Waiting":
        # Blocked: Kubernetes names what keeps it from getting there (in the message)
        return BLOCKED if current.cause else "WaitingForStep"
    return "Converged" if outcome.done else "Stopped"


def _services(outcome: Outcome, release: str) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = {}
    for step in outcome.steps:
        entry = services.setdefault(step.service, {"phase": "Ready", "message": ""})
        if entry["phase"] != "Ready":
            continue
        if step.state != "Ready":
            entry["phase"] = {"Waiting": "Deploying", "Failed": "Failed", "Pending": "Pending"}[step.state]
            entry["message"] = step.message
    for name, entry in services.items():
        ready, desired = outcome.replicas.get(name, (0, 0))
        entry["ready"] = f"{ready}/{desired}" if desired else ""
        if entry["phase"] == "Ready":
            entry["release"] = release
    return services


def build_status(
    previous: Status | None,
    generation: int,
    release: str,
    now: str,
    *,
    outcome: Outcome | None = None,
    failure: Failure | None = None,
    paused: bool = False,
    health: CloudHealth | None = None,
) -> Status:
    previous = previous or {}
    status: Status = {"observedGeneration": generation}
    if paused:
        sub = [
            _condition("Paused", True, "Paused", "spec.paused is set: stackops makes no changes", generation),
            _condition("Progressing", False, "Paused", "", generation),
            _condition("Degraded", False, "Paused", "", generation),
        ]
        status |= {"phase": "Paused", "services": previous.get("services", {})}
    elif failure is not None and not failure.permanent:
        # still retrying: the cloud is on its way, but the status says what keeps it from moving
        sub = [
            _condition("Paused", False, "NotPaused", "", generation),
            _condition("Progressing", True, failure.reason, f"retrying: {failure.message}", generation),
            _condition("Degraded", False, failure.reason, "", generation),
        ]
        phase = previous.get("phase", "Pending")
        status |= {
            "phase": "Deploying" if phase in ("Ready", "Failed", "Paused") else phase,
            "services": previous.get("services", {}),
        }
    elif failure is not None:
        sub = [
            _condition("Paused", False, "NotPaused", "", generation),
            _condition("Progressing", False, failure.reason, "", generation),
            _condition("Degraded", True, failure.reason, failure.message, generation),
        ]
        status |= {"phase": "Failed", "services": previous.get("services", {})}
    else:
        assert outcome is not None
        current = outcome.current
        failed = current is not None and current.state == "Failed"
        waiting = current is not None and current.state == "Waiting"
        sub = [
            _condition("Paused", False, "NotPaused", "", generation),
            _condition(
                "Progressing",
                waiting,
                _progress_reason(outcome),
                current.message if waiting and current else "",
                generation,
            ),
            _condition(
                "Degraded",
                failed,
                "StepFailed" if failed else "AsExpected",
                f"step {current.name}: {current.message}" if failed and current else "",
                generation,
            ),
        ]
        status |= {
            "phase": "Degraded" if failed else "Ready" if outcome.done else "Deploying",
            "services": _services(outcome, release),
        }
        if outcome.hosts:  # n/N per host agent: one broken hypervisor of many shows here, not in Ready
            status["hosts"] = {name: f"{ready}/{nodes}" for name, (ready, nodes) in sorted(outcome.hosts.items())}
        if outcome.done:
            status["endpoints"] = outcome.endpoints
    if "release" in previous:
        status["release"] = previous["release"]
    if status["phase"] == "Ready":
        status["release"] = release
    if "endpoints" not in status and "endpoints" in previous:
        status["endpoints"] = previous["endpoints"]
    if "hosts" not in status and "hosts" in previous and outcome is None:
        status["hosts"] = previous["hosts"]  # paused or failed: what was seen last
    for key in ("upgrade", "specHashes"):  # stackops.upgrade's record: only it changes them
        if key in previous:
            status[key] = previous[key]
    conditions = [_ready(sub, generation), *sub]
    _keep_transition_times(conditions, previous, now)
    status["conditions"] = conditions
    return with_health(status, health, previous, now)


def _healthy(health: CloudHealth, generation: int) -> dict[str, Any]:
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
    return condition | {"status": "Unknown"}


def with_health(status: Status, health: CloudHealth | None, previous: Status | None, now: str) -> Status:
    """`status` with the health checks' verdict: per-service health (the reason in the service's
    message), the Healthy condition, and Degraded/Ready/phase when a check failed. Without a verdict
    yet (the operator just started), the last one in `previous` stands."""
    previous = previous or {}
    generation = int(status.get("observedGeneration") or 0)
    services = {name: dict(entry) for name, entry in (status.get("services") or {}).items()}
    before = previous.get("services") or {}
    conditions = [dict(c) for c in status["conditions"] if c["type"] != "Healthy"]
    if health is None:
        for name, entry in services.items():
            old = before.get(name) or {}
            if old.get("health"):
                entry["health"] = old["health"]
                if old["health"] == DEGRADED:
                    entry["message"] = old.get("message", "")
        kept = [c for c in previous.get("conditions", []) or [] if c["type"] == "Healthy"]
        healthy = dict(kept[0]) if kept else _healthy(CloudHealth("", "", {}), generation)
    else:
        for name, entry in services.items():
            verdict = health.services.get(name)
            if verdict is None:
                continue
            if entry.get("health") == DEGRADED and verdict.state != DEGRADED:
                entry["message"] = ""  # it held the failed check's reason; a reconcile puts back any step's
            entry["health"] = verdict.state
            if verdict.state == DEGRADED:
                entry["message"] = verdict.message
        healthy = _healthy(health, generation)
    by_type = {c["type"]: c for c in conditions}
    degraded = by_type.get("Degraded")
    phase = status.get("phase")
    if (
        degraded is not None
        and phase in ("Ready", "Degraded", "Deploying")
        and (degraded["status"] != "True" or degraded["reason"] == HEALTH_REASON)
    ):
        unhealthy = healthy["status"] == "False" and healthy["reason"] == HEALTH_REASON
        reason, message = (HEALTH_REASON, healthy["message"]) if unhealthy else ("AsExpected", "")
        degraded |= _condition("Degraded", unhealthy, reason, message, generation)
        if unhealthy and phase == "Ready":
            phase = DEGRADED
        elif not unhealthy and phase == DEGRADED:
            phase = "Ready"
    sub = [c for c in conditions if c["type"] != "Ready"]
    result = [_ready(sub, generation), healthy, *sub]
    _keep_transition_times(result, previous, now)
    return {**status, "phase": phase, "services": services, "conditions": result}


def transitions(previous: Status | None, current: Status) -> list[Transition]:
    """Events for what changed between two statuses."""
    previous = previous or {}
    before = {c["type"]: c for c in previous.get("conditions", []) or []}
    after = {c["type"]: c for c in current["conditions"]}
    events: list[Transition] = []
    # A failed health check gets its own Events, naming the service (stackops.health.monitor.events).
    was_degraded = before.get("Degraded", {}).get("status") == "True"
    by_health = was_degraded and before["Degraded"].get("reason") == HEALTH_REASON
    now_degraded = after["Degraded"]["status"] == "True"
    if now_degraded and after["Degraded"]["reason"] != HEALTH_REASON and (not was_degraded or by_health):
        events.append(Transition("Warning", after["Degraded"]["reason"], after["Degraded"]["message"]))
    if was_degraded and not by_health and not now_degraded:
        events.append(Transition("Normal", "Recovered", "the cloud is no longer degraded"))
    blocked = after["Progressing"]
    if blocked["reason"] == BLOCKED and before.get("Progressing", {}).get("message") != blocked["message"]:
        events.append(Transition("Warning", BLOCKED, blocked["message"]))  # once per cause, not per pass
    if before.get("Paused", {}).get("status") != after["Paused"]["status"]:
        paused = after["Paused"]["status"] == "True"
        if paused or "Paused" in before:
            events.append(
                Transition(
                    "Normal",
                    "Paused" if paused else "Resumed",
                    after["Paused"]["message"] or "reconciling again",
                )
            )
    if previous.get("phase") != current["phase"] and current["phase"] in ("Ready", "Deploying"):
        message = after["Ready"]["message"]
        events.append(Transition("Normal", current["phase"], message))
    return events
