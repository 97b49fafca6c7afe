"""The permissions the operator uses, and nothing more: one list for the Helm chart and the tests.

Verbs follow the code: children are listed and read, server-side applied (patch, create for new
objects) and deleted, and workloads are watched (a waiting cloud is woken when they become ready);
the cloud itself is watched by kopf, which also patches its
annotations and finalizer; the status subresource is patched; Events are posted; the Lease is the
leader election.
"""

from __future__ import annotations

from typing import Any

from stackops.api.models import GROUP, PLURAL
from stackops.kube.issuer import CERTIFICATE
from stackops.kube.kinds import LEASE, MANAGED_KINDS

CHILD_VERBS = ["get", "list", "create", "patch", "delete"]


def rules() -> list[dict[str, Any]]:
    by_group: dict[str, list[str]] = {}
    for kind in MANAGED_KINDS:
        by_group.setdefault(kind.group, []).append(kind.plural)
    children = [
        {"apiGroups": [group], "resources": sorted(plurals), "verbs": CHILD_VERBS}
        for group, plurals in sorted(by_group.items())
    ]
    return [
        {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["get", "list", "watch", "patch", "update"]},
        {"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"], "verbs": ["get", "patch", "update"]},
        # ownerReferences with blockOwnerDeletion need update on the owner's finalizers
        {"apiGroups": [GROUP], "resources": [f"{PLURAL}/finalizers"], "verbs": ["update"]},
        *children,
        # a waiting cloud is woken by its workloads becoming ready (handlers.workload_changed), and a
        # failed Job deleted by hand has the cloud looked at again (handlers.job_deleted)
        {"apiGroups": ["apps"], "resources": ["daemonsets", "deployments", "statefulsets"], "verbs": ["watch"]},
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["watch"]},
        # Events are posted; a Pending claim's are read, to say why a cloud waits (kube.diagnosis)
        {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch", "list"]},
        {"apiGroups": [LEASE.group], "resources": [LEASE.plural], "verbs": ["get", "create", "update"]},
        # kopf finds the resources it serves and the namespaces it watches
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["list", "watch"],
        },
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
        # the nodes' addresses admit host agents in a cloud's NetworkPolicies (engine.with_node_addresses)
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]},
        # health checks and waiting steps list a cloud's pods (crash loops, scheduling, failed Jobs)
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
        # a cloud that names a cert-manager issuer: its Certificates, one per server (kube.issuer); the
        # Secrets cert-manager writes are read like any Secret
        {"apiGroups": [CERTIFICATE.group], "resources": [CERTIFICATE.plural], "verbs": CHILD_VERBS},
        # RabbitMQ pods may read endpoints (peer discovery); a Role can only grant what its creator holds
        {"apiGroups": [""], "resources": ["endpoints"], "verbs": ["get"]},
    ]


def cluster_role(name: str = "stackops-operator") -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "stackops"}},
        "rules": rules(),
    }
