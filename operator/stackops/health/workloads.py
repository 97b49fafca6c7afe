"""The Kubernetes layer of health: pods that crash-loop or cannot start, and Jobs that failed.

A Deployment that waits for its pods says only "1/2 ready"; this says which pod, why, and how
often it restarted. Pods and Jobs are attributed to the service in their `app.kubernetes.io/name`
label, which every object stackops renders carries.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from stackops.reconcile.readiness import readiness

SERVICE_LABEL = "app.kubernetes.io/name"  # stackops.render.naming.selector_labels puts the service here

# Waiting reasons after which a container will not run without someone acting.
STUCK = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


def _pod_problems(pod: dict[str, Any]) -> list[str]:
    name = pod["metadata"]["name"]
    status = pod.get("status") or {}
    containers = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    problems = []
    for container in containers:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason not in STUCK:
            continue
        if reason == "CrashLoopBackOff":
            last = (container.get("lastState") or {}).get("terminated") or {}
            exit_code = f", last exit code {last['exitCode']}" if "exitCode" in last else ""
            problems.append(
                f"pod {name} is crash-looping (container {container['name']}, "
                f"{int(container.get('restartCount', 0))} restarts{exit_code})"
            )
        else:
            problems.append(f"pod {name} cannot start container {container['name']}: {reason}")
    return problems


def _job_problem(job: dict[str, Any]) -> str | None:
    """The same words the step engine uses for a failed Job."""
    found = readiness({**job, "kind": "Job"})
    return found.message if found.failed else None


def workload_problems(pods: Iterable[dict[str, Any]], jobs: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """Per service, what is wrong with its pods and Jobs, sorted so the same cluster reads the same."""
    found: dict[str, list[str]] = {}
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue  # on its way out: not what runs
        service = (pod["metadata"].get("labels") or {}).get(SERVICE_LABEL)
        problems = _pod_problems(pod)
        if service and problems:
            found.setdefault(service, []).extend(problems)
    for job in jobs:
        service = (job["metadata"].get("labels") or {}).get(SERVICE_LABEL)
        problem = _job_problem(job)
        if service and problem:
            found.setdefault(service, []).append(problem)
    return {service: sorted(problems) for service, problems in sorted(found.items())}
