"""A local control plane with the operator running on it as its own process and identity, and what
the tests ask of it (clouds, the operator's writes from the audit log, Jobs)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from stackops.api.models import GROUP, PLURAL, VERSION
from stackops.devcluster.binaries import ensure_binaries
from stackops.devcluster.cluster import LocalCluster, free_ports
from stackops.devcluster.install import (
    create_volumes,
    ensure_namespace,
    grant_operator_rbac,
    install_crds,
    wait_for,
)
from tests.support.operator import OperatorProcess

ROOT = Path(__file__).resolve().parent.parent.parent
NAMESPACE = "openstack"
OTHER_NAMESPACE = "unwatched"  # API-server-only checks happen where no operator acts
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


class Env:
    def __init__(self, cluster: LocalCluster, workdir: Path) -> None:
        self.cluster = cluster
        self.workdir = workdir
        self.api = cluster.api
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        # a port of its own: another control plane's operator may be running meanwhile
        self.operator = self.new_operator("stackops-operator", free_ports(1)[0])

    def new_operator(self, user: str, port: int) -> OperatorProcess:
        return OperatorProcess(
            self.cluster.kubeconfig_for(user),
            self.workdir / f"{user}.log",
            port,
            {"STACKOPS_IMAGE": "stackops:test"},
        )

    # clouds
    def cloud_body(self, name: str, spec: dict[str, Any] | None = None, namespace: str = NAMESPACE) -> dict[str, Any]:
        body: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "minimal.yaml").read_text())
        body["metadata"] = {"name": name, "namespace": namespace}
        body["spec"] |= spec or {}
        return body

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, body["metadata"]["namespace"], PLURAL, body, field_validation="Strict"
        )
        return result

    def get(self, name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        return result

    def patch_spec(self, name: str, spec: dict[str, Any], namespace: str = NAMESPACE) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, {"spec": spec}
        )
        return result

    def delete(self, name: str, namespace: str = NAMESPACE) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    def condition(self, name: str, kind: str = "Ready") -> dict[str, Any]:
        status = self.get(name).get("status") or {}
        return next((c for c in status.get("conditions", []) if c["type"] == kind), {})

    def ensure_ready(self, name: str) -> dict[str, Any]:
        """The cloud, created from the example if an earlier test did not, and Ready."""
        try:
            self.get(name)
        except ApiException as error:
            if error.status != 404:
                raise
            self.create(self.cloud_body(name))
        return self.wait_ready(name)

    def wait_ready(self, name: str, timeout: float = 180.0) -> dict[str, Any]:
        def ready() -> bool:
            obj = self.get(name)
            status = obj.get("status") or {}
            return status.get("observedGeneration") == obj["metadata"]["generation"] and any(
                c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
            )

        try:
            wait_for(ready, f"cloud {name} Ready", timeout=timeout, interval=0.5)
        except TimeoutError:
            status = self.get(name).get("status")
            pytest.fail(f"{name} not Ready: {status}\n--- operator log ---\n{self.operator.log()[-4000:]}")
        return self.get(name)

    # what the operator did
    def writes(self, since: int, user: str = "stackops-operator") -> list[dict[str, Any]]:
        return [
            e
            for e in self.cluster.audit_events(user=user, since_line=since)
            if e.get("verb") in WRITE_VERBS and e.get("objectRef", {}).get("resource") != "leases"
        ]

    def jobs(self, cloud: str) -> list[Any]:
        return list(self.batch.list_namespaced_job(NAMESPACE, label_selector=f"stackops.dev/cloud={cloud}").items)


@contextmanager
def operated_cluster(
    workdir: Path,
    *,
    compute_nodes: int,
    volumes: int,
    operator_args: Sequence[str] = (),
    namespaces: Sequence[str] = (NAMESPACE,),
    extra_users: Sequence[str] = (),
) -> Iterator[Env]:
    """A local control plane (one control-plane node, `compute_nodes` compute nodes) with the CRD,
    the operator's user and `extra_users` granted its RBAC and audited, `namespaces`, `volumes`
    PersistentVolumes, and the operator running in NAMESPACE with `operator_args`; all stopped after."""
    ensure_binaries()
    users = ("stackops-operator", *extra_users)
    cluster = LocalCluster(extra_users={user: () for user in extra_users}, audited_users=users)
    cluster.start(control_plane_nodes=1, compute_nodes=compute_nodes)
    try:
        install_crds(cluster.api)
        for user in users:
            grant_operator_rbac(cluster.api, user)
        for namespace in namespaces:
            ensure_namespace(cluster.api, namespace)
        create_volumes(cluster.api, volumes)
        environment = Env(cluster, workdir)
        environment.operator.start("-n", NAMESPACE, *operator_args)
        try:
            yield environment
        finally:
            environment.operator.stop()
    finally:
        cluster.stop()
