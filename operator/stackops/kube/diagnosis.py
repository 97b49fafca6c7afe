"""Why a step waits, when Kubernetes knows: the root cause behind "0/1 ready".

A workload that is not ready is usually just starting; sometimes it cannot get there without
someone acting: its pod has no node (an unbound PersistentVolumeClaim, a node selector no node
matches, too little CPU), its image cannot be pulled, it crash-loops, a Job's pod failed. Those are
named in the step's message, so they reach the cloud's conditions, `stackops status` and an Event.

Costs one list of a page of the workload's pods per waiting workload and pass (none for a converged
cloud), plus, for a pod stuck on a Pending claim, that claim and its Events.
"""

from __future__ import annotations

from stackops.kube.client import Kube, Obj
from stackops.kube.kinds import EVENT, POD, PVC
from stackops.kube.pods import claims, failed_container, stuck_containers, unschedulable
from stackops.logs import REDACTOR

WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job"})
PODS_LOOKED_AT = 100  # per waiting workload and pass


def _claim_pending(kube: Kube, namespace: str, claim: str) -> str:
    pvc = kube.get(PVC, namespace, claim)
    if pvc is None:
        return f"its PersistentVolumeClaim {claim} does not exist"
    phase = (pvc.get("status") or {}).get("phase")
    if phase != "Pending":
        return ""
    fields = f"involvedObject.kind=PersistentVolumeClaim,involvedObject.name={claim}"
    events = kube.list(EVENT, namespace, fields=fields)
    latest = max(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "", default=None)
    said = f": {latest['message']}" if latest and latest.get("message") else ""
    return f"its PersistentVolumeClaim {claim} is Pending{said}"


def pod_cause(kube: Kube, namespace: str, pod: Obj) -> str:
    """What keeps one pod from running, or '' when nothing does (it is starting)."""
    if pod["metadata"].get("deletionTimestamp"):
        return ""
    reason = unschedulable(pod)
    if reason:
        pending = [p for p in (_claim_pending(kube, namespace, c) for c in claims(pod)) if p]
        return f"pod {pod['metadata']['name']} cannot be scheduled: {reason}" + "".join(f"; {p}" for p in pending)
    stuck = stuck_containers(pod)
    if stuck:
        return stuck[0].describe()
    if (pod.get("status") or {}).get("phase") == "Failed":
        return failed_container(pod)
    return ""


def workload_cause(kube: Kube, namespace: str, workload: Obj) -> str:
    """Why `workload` is not ready, or '' when Kubernetes names no reason."""
    wanted = ((workload.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if workload.get("kind") not in WORKLOADS or not wanted:
        return ""
    # its own pods, a page of them: a host agent of a thousand nodes has a thousand, and the
    # first one stuck names the cause as well as any
    selector = ",".join(f"{k}={v}" for k, v in sorted(wanted.items()))
    pods = kube.list(POD, namespace, selector, limit=PODS_LOOKED_AT)
    for pod in sorted(pods, key=lambda p: str(p["metadata"]["name"])):
        found = pod_cause(kube, namespace, pod)
        if found:
            return REDACTOR.mask(found)  # a log line may quote a credential the operator knows
    return ""
