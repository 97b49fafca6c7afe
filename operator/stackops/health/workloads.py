"""The Kubernetes layer of health: pods that crash-loop or cannot start, and Jobs that failed.

A Deployment that waits for its pods says only "1/2 ready"; this says which pod, why, and how
often it restarted. Pods and Jobs are attributed to the service in their `app.kubernetes.io/name`
label, which every object stackops renders carries.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from stackops.kube.pods import stuck_containers
from stackops.kube.readiness import readiness

SERVICE_LABEL = "app.kubernetes.io/name"  # stackops.render.naming.selector_labels puts the service here


def _pod_problems(pod: dict[str, Any]) -> list[str]:
    problems = []
    for stuck in stuck_containers(pod):
        if stuck.reason == "CrashLoopBackOff":
            exit_code = f", last exit code {stuck.exit_code}" if stuck.exit_code is not None else ""
            problems.append(
                f"pod {stuck.pod} is crash-looping (container {stuck.container}, {stuck.restarts} restarts{exit_code})"
            )
        else:
            problems.append(f"pod {stuck.pod} cannot start container {stuck.container}: {stuck.reason}")
    return problems


def _job_problem(job: dict[str, Any]) -> str | None:
    """The same words the step engine uses for a failed Job."""
    found = readiness({**job, "kind": "Job"})
    return found.message if found.failed else None


def enough_hosts(daemonsets: Iterable[dict[str, Any]]) -> frozenset[str]:
    """The host agents (DaemonSet names) ready on at least their share of nodes (minReadyPercent):
    a broken host among them is counted in status.hosts, not held against the service's health."""
    enough = set()
    for daemonset in daemonsets:
        found = readiness({**daemonset, "kind": "DaemonSet"})
        if found.ready and found.replicas and found.replicas[0] < found.replicas[1]:
            enough.add(daemonset["metadata"]["name"])
    return frozenset(enough)


def latest_scheduled(jobs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """`jobs` with, of those a CronJob made (the database backups), only each CronJob's newest one:
    a backup that failed once and succeeded since is not held against the service."""
    kept: list[dict[str, Any]] = []
    newest: dict[str, dict[str, Any]] = {}
    for job in jobs:
        owner = next((o for o in job["metadata"].get("ownerReferences") or [] if o.get("kind") == "CronJob"), None)
        if owner is None:
            kept.append(job)
            continue
        seen = newest.get(owner["name"])
        if seen is None or _created(job) > _created(seen):
            newest[owner["name"]] = job
    return [*kept, *(newest[name] for name in sorted(newest))]


def _created(job: dict[str, Any]) -> tuple[str, str]:
    return (job["metadata"].get("creationTimestamp") or "", job["metadata"]["name"])


def _owned_by_any(pod: dict[str, Any], kind: str, names: frozenset[str]) -> bool:
    return any(o.get("kind") == kind and o.get("name") in names for o in pod["metadata"].get("ownerReferences") or [])


def workload_problems(
    pods: Iterable[dict[str, Any]], jobs: Iterable[dict[str, Any]], tolerated: frozenset[str] = frozenset()
) -> dict[str, list[str]]:
    """Per service, what is wrong with its pods and Jobs, sorted so the same cluster reads the same.
    Pods of the host agents in `tolerated` (enough_hosts) are not counted."""
    found: dict[str, list[str]] = {}
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp") or _owned_by_any(pod, "DaemonSet", tolerated):
            continue  # on its way out, or one host of many: not held against the service
        service = (pod["metadata"].get("labels") or {}).get(SERVICE_LABEL)
        problems = _pod_problems(pod)
        if service and problems:
            found.setdefault(service, []).extend(problems)
    for job in latest_scheduled(jobs):
        service = (job["metadata"].get("labels") or {}).get(SERVICE_LABEL)
        problem = _job_problem(job)
        if service and problem:
            found.setdefault(service, []).append(problem)
    return {service: sorted(problems) for service, problems in sorted(found.items())}
