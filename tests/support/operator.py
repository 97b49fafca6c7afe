"""Running the real operator against a real API server, as a process tests can kill and restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from stackops.reconcile.rbac import cluster_role

ROOT = Path(__file__).resolve().parent.parent.parent
CRD_FILE = ROOT / "crds" / "stackops.dev_openstackclouds.yaml"
OPERATOR_USER = "stackops-operator"


def api_client(kubeconfig: Path) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(kubeconfig))


def install_crds(api: client.ApiClient) -> None:
    """Apply crds/ as committed and wait until the API server serves it."""
    body = yaml.safe_load(CRD_FILE.read_text())
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
            for c in (
                extensions.read_custom_resource_definition(body["metadata"]["name"]).status.conditions or []
            )
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
    wait_for(
        lambda: _exists(lambda: core.read_namespaced_service_account("default", name)), f"{name}/default SA"
    )


def create_volumes(api: client.ApiClient, count: int, size: str = "100Gi", prefix: str = "pv") -> None:
    """Pre-made PersistentVolumes for claims to bind to: the local cluster has no provisioner."""
    core = client.CoreV1Api(api)
    for index in range(count):
        body = {
            "metadata": {"name": f"{prefix}-{index}"},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "hostPath": {"path": f"/tmp/stackops-pv/{prefix}-{index}"},
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


class OperatorProcess:
    """`stackops operator` in its own process group, logging to a file."""

    def __init__(
        self, kubeconfig: Path, log_path: Path, health_port: int, extra_env: dict[str, str] | None = None
    ):
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.health_port = health_port
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *args: str) -> OperatorProcess:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), **self.extra_env}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stackops.cli", "operator", "--health-port", str(self.health_port), *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def kill(self) -> None:
        """SIGKILL: what a node failure or OOM does; no chance to clean up."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 20.0) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
