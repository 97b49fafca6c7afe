"""A cloud's status from what the last reconcile saw: conditions, phase, per-service summaries.

Conditions follow Kubernetes conventions and are recomputed on every reconcile. Ready mirrors the
worst of the others and says which step and why. lastTransitionTime moves only when a condition's
status does, so an unchanged cloud gets a byte-identical status and no write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stackops.reconcile.engine import Outcome
from stackops.reconcile.errors import Failure

Status = dict[str, Any]


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
                "WaitingForStep" if waiting else "Converged" if outcome.done else "Stopped",
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
        if outcome.done:
            status["endpoints"] = outcome.endpoints
    if "release" in previous:
        status["release"] = previous["release"]
    if status["phase"] == "Ready":
        status["release"] = release
    if "endpoints" not in status and "endpoints" in previous:
        status["endpoints"] = previous["endpoints"]
    conditions = [_ready(sub, generation), *sub]
    _keep_transition_times(conditions, previous, now)
    status["conditions"] = conditions
    return status


def transitions(previous: Status | None, current: Status) -> list[Transition]:
    """Events for what changed between two statuses."""
    previous = previous or {}
    before = {c["type"]: c for c in previous.get("conditions", []) or []}
    after = {c["type"]: c for c in current["conditions"]}
    events: list[Transition] = []
    if before.get("Degraded", {}).get("status") != "True" and after["Degraded"]["status"] == "True":
        events.append(Transition("Warning", after["Degraded"]["reason"], after["Degraded"]["message"]))
    if before.get("Degraded", {}).get("status") == "True" and after["Degraded"]["status"] != "True":
        events.append(Transition("Normal", "Recovered", "the cloud is no longer degraded"))
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
