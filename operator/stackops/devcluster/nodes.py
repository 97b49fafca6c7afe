"""Fake nodes that kwok keeps Ready, shaped so ordinary workloads schedule onto them."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from kubernetes import client

from stackops.devcluster.errors import DevClusterError

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
# Where kwok keeps each node's heartbeat Lease (the kubelet's place for it).
LEASE_NAMESPACE = "kube-node-lease"
CONTROL_PLANE_LABEL = "stackops.dev/control-plane"
COMPUTE_LABEL = "stackops.dev/compute"


def node_manifest(name: str, labels: Mapping[str, str] | None, cpu: str, memory: str, pods: str) -> dict[str, Any]:
    """A Node kwok manages (matched by annotation, see kwok's --manage-nodes-with-annotation-selector).

    Unlike kwok's examples it has no `kwok.x-k8s.io/node=fake:NoSchedule` taint: the operator's
    pods carry no toleration for it, and they must schedule as they would on a real node.
    The well-known labels are those a kubelet sets, because charts select on them.
    """
    capacity = {"cpu": cpu, "memory": memory, "pods": pods}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            # ttl 0: what a kubelet-registered node gets; nothing caches node objects here anyway.
            "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                **(labels or {}),
            },
        },
        # Accepted on create; kwok's node-initialize stage then fills conditions, addresses, nodeInfo.
        "status": {"capacity": capacity, "allocatable": capacity},
    }


# KCM's node-lifecycle controller taints a node it has seen NotReady (every new node is, until
# kwok initialises it) and lifts the taint a moment after the node turns Ready.
_LIFECYCLE_TAINTS = frozenset({"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"})


def is_ready(node: Any) -> bool:
    """Ready condition True (what `kubectl get nodes` shows as Ready)."""
    conditions = (node.status.conditions if node.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def is_usable(node: Any) -> bool:
    """Ready, and no longer carrying the not-ready/unreachable taints, so pods schedule onto it."""
    taints = (node.spec.taints if node.spec else None) or []
    return is_ready(node) and not any(t.key in _LIFECYCLE_TAINTS for t in taints)


def wait_ready(core: client.CoreV1Api, names: Iterable[str], timeout: float) -> None:
    """Wait until every named node exists, is Ready and schedulable (see is_usable)."""
    wanted = set(names)
    deadline = time.monotonic() + timeout
    while True:
        ready = {n.metadata.name for n in core.list_node(_request_timeout=10).items if is_usable(n)}
        if wanted <= ready:
            return
        if time.monotonic() >= deadline:
            raise DevClusterError(
                f"nodes not Ready and untainted after {timeout:.0f}s: {', '.join(sorted(wanted - ready))} "
                "(is kwok running? see kwok.log in the cluster workdir)"
            )
        time.sleep(0.1)


def wait_deleted(core: client.CoreV1Api, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(n.metadata.name == name for n in core.list_node(field_selector=f"metadata.name={name}").items):
        if time.monotonic() >= deadline:
            raise DevClusterError(f"node {name} still present {timeout:.0f}s after deleting it")
        time.sleep(0.1)
