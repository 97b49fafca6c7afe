"""Whether an applied object is ready, from its live status: the step engine's only question."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stackops.render.naming import MIN_READY_PERCENT_ANNOTATION


@dataclass(frozen=True)
class Readiness:
    ready: bool
    message: str = ""  # what we wait for, or why it failed
    failed: bool = False
    replicas: tuple[int, int] | None = None  # (ready, desired) for workloads
    hosts: bool = False  # a host agent (DaemonSet): replicas count nodes


def condition(status: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The condition of type `kind` in an object's status (Kubernetes' or a cloud's); {} when absent."""
    return dict(next((c for c in status.get("conditions", []) or [] if c.get("type") == kind), {}))


def _observed(obj: dict[str, Any]) -> bool:
    generation = obj.get("metadata", {}).get("generation", 0)
    return int(obj.get("status", {}).get("observedGeneration", 0) or 0) >= int(generation or 0)


def readiness(obj: dict[str, Any]) -> Readiness:
    kind = obj["kind"]
    name = obj["metadata"]["name"]
    status = obj.get("status", {}) or {}
    spec = obj.get("spec", {}) or {}
    if kind == "Job":
        failed = condition(status, "Failed")
        if failed and failed.get("status") == "True":
            detail = failed.get("message") or failed.get("reason") or "failed"
            return Readiness(False, f"job {name} failed: {detail}", failed=True)
        complete = condition(status, "Complete")
        if complete and complete.get("status") == "True":
            return Readiness(True)
        return Readiness(False, f"waiting for job {name}")
    if kind in ("Deployment", "StatefulSet"):
        desired = int(spec.get("replicas", 1))
        ready = int(status.get("readyReplicas", 0) or 0)
        updated = int(status.get("updatedReplicas", 0) or 0)
        available = int(status.get("availableReplicas", ready) or 0)
        done = _observed(obj) and ready >= desired and updated >= desired and available >= desired
        if kind == "StatefulSet" and status.get("updateRevision"):
            done = done and status.get("currentRevision") == status.get("updateRevision")
        if kind == "Deployment":
            progressing = condition(status, "Progressing")
            if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
                return Readiness(False, f"deployment {name} is not progressing", failed=True, replicas=(ready, desired))
        label = kind.lower()
        return Readiness(
            done,
            "" if done else f"waiting for {label} {name} ({ready}/{desired} ready)",
            replicas=(ready, desired),
        )
    if kind == "DaemonSet":
        desired = int(status.get("desiredNumberScheduled", 0) or 0)
        ready = int(status.get("numberReady", 0) or 0)
        updated = int(status.get("updatedNumberScheduled", 0) or 0)
        needed = required_hosts(obj, desired)
        done = _observed(obj) and ready >= needed and updated >= needed
        short = "" if needed == desired else f", {needed} needed"
        return Readiness(
            done,
            "" if done else f"waiting for daemonset {name} ({ready}/{desired} ready{short})",
            replicas=(ready, desired),
            hosts=True,
        )
    return Readiness(True)


def required_hosts(daemonset: dict[str, Any], desired: int) -> int:
    """How many of its `desired` nodes must run a host agent for it to count as ready: its share
    (MIN_READY_PERCENT_ANNOTATION, all when absent) of them, rounded up."""
    annotations = daemonset.get("metadata", {}).get("annotations") or {}
    try:
        percent = min(100, max(1, int(annotations.get(MIN_READY_PERCENT_ANNOTATION, "100"))))
    except ValueError:
        percent = 100
    return -(-desired * percent // 100)
