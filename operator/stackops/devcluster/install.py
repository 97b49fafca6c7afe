"""Preparing a cluster for stackops: the CRD, the operator's RBAC, a namespace, volumes.

Used by `stackops demo` and by the tests, so both install stackops the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from stackops.api.crd import crd
from stackops.api.validation import parse_cloud
from stackops.plan import plan
from stackops.reconcile.rbac import cluster_role

OPERATOR_USER = "stackops-operator"


def install_crds(api: client.ApiClient) -> None:
    """Install the OpenStackCloud CRD (as generated from the models) and wait until it is served."""
    body = crd()
    extensions = client.ApiextensionsV1Api(api)
    try:
        extensions.create_custom_resource_definition(body)
    except ApiException as error:
        if error.status != 409:
            raise
        current = extensions.read_custom_resource_definition(body["metadata"]["name"])
        body["metadata"]["resourceVersion"] = current.metadata.resource_version
        extensions.replace_custom_resource_definition(body["metadata"]["name"], body)
    wait_for(
        lambda: any(
            c.type == "Established" and c.status == "True"
            for c in (extensions.read_custom_resource_definition(body["metadata"]["name"]).status.conditions or [])
        ),
        "CRD established",
    )


def grant_operator_rbac(api: client.ApiClient, user: str = OPERATOR_USER) -> None:
    """Bind the operator's ClusterRole (stackops.reconcile.rbac, as the chart does) to its user."""
    rbac = client.RbacAuthorizationV1Api(api)
    role = cluster_role()
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": user},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": role["metadata"]["name"],
        },
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }
    for create, body in ((rbac.create_cluster_role, role), (rbac.create_cluster_role_binding, binding)):
        try:
            create(body)
        except ApiException as error:
            if error.status != 409:
                raise


def ensure_namespace(api: client.ApiClient, name: str) -> None:
    core = client.CoreV1Api(api)
    try:
        core.create_namespace({"metadata": {"name": name}})
    except ApiException as error:
        if error.status != 409:
            raise
    # pods need the namespace's default ServiceAccount, made by the controller manager
    wait_for(lambda: _exists(lambda: core.read_namespaced_service_account("default", name)), f"{name}/default SA")


def claimed_volumes(body: dict[str, Any]) -> int:
    """How many PersistentVolumes the cloud `body` claims: its PVCs and its StatefulSets' claims."""
    count = 0
    for obj in plan(parse_cloud(body)).objects():
        if obj["kind"] == "PersistentVolumeClaim":
            count += 1
        elif obj["kind"] == "StatefulSet":
            count += len(obj["spec"].get("volumeClaimTemplates") or []) * int(obj["spec"].get("replicas", 1))
    return count


def create_volumes(
    api: client.ApiClient, count: int, size: str = "100Gi", prefix: str = "pv", host_dir: Path | None = None
) -> None:
    """Pre-made PersistentVolumes for claims to bind to: the local cluster has no provisioner.

    On kwok nodes nothing mounts them. With `host_dir` (a real node's), each has its directory
    there, open to every uid as a local-path provisioner makes them: hostPath volumes ignore a
    pod's fsGroup, and the cloud's servers run as their own users."""
    core = client.CoreV1Api(api)
    for index in range(count):
        path = Path("/var/lib/stackops-dev") / f"{prefix}-{index}"
        if host_dir is not None:
            path = host_dir / f"{prefix}-{index}"
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o777)
        body = {
            "metadata": {"name": f"{prefix}-{index}"},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "hostPath": {"path": str(path)},
            },
        }
        try:
            core.create_persistent_volume(body)
        except ApiException as error:
            if error.status != 409:
                raise


def _exists(read: Callable[[], Any]) -> bool:
    try:
        read()
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0, interval: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
