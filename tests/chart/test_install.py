"""The chart installed by helm on a real control plane (kube-apiserver, controller manager, scheduler,
etcd; kwok plays the kubelets): the CRD is served, the operator's pod is scheduled and Ready, and the
operator, run with the ServiceAccount token and the arguments of the namespace-scoped install,
brings a cloud to Ready with nothing but the RBAC the chart granted."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from stackops.api.models import GROUP, PLURAL, VERSION
from stackops.devcluster.binaries import ensure_binaries
from stackops.devcluster.cluster import LocalCluster, free_ports
from stackops.devcluster.identities import Identity, kubeconfig_text, write_private
from stackops.devcluster.install import create_volumes, ensure_namespace, wait_for
from tests.chart.helm import CHART, ROOT, helm, only, template, values_args
from tests.support.operator import OperatorProcess

WATCHED = "tenant-a"
UNWATCHED = "tenant-b"


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    values: dict[str, Any]

    def install(self, cluster: LocalCluster) -> None:
        result = helm(
            "install", self.name, str(CHART), "--namespace", self.namespace, "--create-namespace",
            "--kubeconfig", str(cluster.kubeconfig), "--wait", "--timeout", "180s", *values_args(self.values),
            check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr

    @property
    def fullname(self) -> str:
        """What the chart names its objects: the release name, with the chart's unless it holds it."""
        return self.name if "stackops" in self.name else f"{self.name}-stackops"

    def objects(self) -> list[dict[str, Any]]:
        return template(self.values, namespace=self.namespace, release=self.name)


CLUSTER_WIDE = Release("stackops", "stackops-system", {"watchAllNamespaces": True})
SCOPED = Release("scoped", "scoped-system", {"watchNamespaces": [WATCHED]})
DEFAULT = Release("plain", "plain-system", {})  # what `helm install` without values gives


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    ensure_binaries()
    with LocalCluster() as started:
        for namespace in (WATCHED, UNWATCHED):
            ensure_namespace(started.api, namespace)
        CLUSTER_WIDE.install(started)
        SCOPED.install(started)
        DEFAULT.install(started)
        yield started


def operator_pod(cluster: LocalCluster, release: Release) -> Any:
    pods = client.CoreV1Api(cluster.api).list_namespaced_pod(
        release.namespace, label_selector=f"app.kubernetes.io/instance={release.name}"
    )
    [pod] = pods.items
    return pod


@pytest.mark.parametrize("release", [CLUSTER_WIDE, SCOPED], ids=["cluster-wide", "namespaced"])
def test_the_operator_pod_is_scheduled_and_ready(cluster: LocalCluster, release: Release) -> None:
    deployment = client.AppsV1Api(cluster.api).read_namespaced_deployment(release.fullname, release.namespace)
    assert deployment.status.available_replicas == 1
    pod = operator_pod(cluster, release)
    assert pod.spec.node_name  # placed by the real scheduler
    assert any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)
    assert pod.spec.containers[0].security_context.read_only_root_filesystem is True


def test_the_crd_is_installed_and_served(cluster: LocalCluster) -> None:
    crd = client.ApiextensionsV1Api(cluster.api).read_custom_resource_definition(f"{PLURAL}.{GROUP}")
    assert any(c.type == "Established" and c.status == "True" for c in crd.status.conditions)
    installed = yaml.safe_load((ROOT / "crds" / f"{GROUP}_{PLURAL}.yaml").read_text())
    assert crd.spec.versions[0].name == installed["spec"]["versions"][0]["name"] == VERSION


def can(cluster: LocalCluster, account: str, verb: str, resource: str, namespace: str | None, group: str = "") -> bool:
    review = client.AuthorizationV1Api(cluster.api).create_subject_access_review(
        {
            "spec": {
                "user": account,
                "resourceAttributes": {"verb": verb, "group": group, "resource": resource, "namespace": namespace},
            }
        }
    )
    return bool(review.status.allowed)


def test_namespace_scoped_install_grants_nothing_outside_the_watched_namespaces(cluster: LocalCluster) -> None:
    account = f"system:serviceaccount:{SCOPED.namespace}:{SCOPED.fullname}"
    assert can(cluster, account, "create", "secrets", WATCHED)
    assert can(cluster, account, "patch", "openstackclouds", WATCHED, GROUP)
    assert not can(cluster, account, "get", "secrets", UNWATCHED)
    assert not can(cluster, account, "list", "openstackclouds", None, GROUP)  # not cluster-wide
    assert can(cluster, account, "update", "leases", SCOPED.namespace, "coordination.k8s.io")
    assert not can(cluster, account, "update", "leases", UNWATCHED, "coordination.k8s.io")
    cluster_wide = f"system:serviceaccount:{CLUSTER_WIDE.namespace}:{CLUSTER_WIDE.fullname}"
    assert can(cluster, cluster_wide, "get", "secrets", UNWATCHED)


def test_a_default_install_may_do_nothing_outside_its_own_namespace(cluster: LocalCluster) -> None:
    account = f"system:serviceaccount:{DEFAULT.namespace}:{DEFAULT.fullname}"
    assert can(cluster, account, "create", "deployments", DEFAULT.namespace, "apps")
    assert can(cluster, account, "get", "secrets", DEFAULT.namespace)
    for namespace in ("kube-system", WATCHED, UNWATCHED):
        for verb, resource, group in (
            ("create", "deployments", "apps"),
            ("create", "daemonsets", "apps"),
            ("create", "jobs", "batch"),
            ("get", "secrets", ""),
            ("update", "leases", "coordination.k8s.io"),
        ):
            assert not can(cluster, account, verb, resource, namespace, group), (verb, resource, namespace)
    assert not can(cluster, account, "list", "secrets", None)  # nothing cluster-wide


def service_account_kubeconfig(cluster: LocalCluster, namespace: str, name: str, path: Path) -> Path:
    """A kubeconfig with a token of the ServiceAccount, as the pod would mount it."""
    token = client.CoreV1Api(cluster.api).create_namespaced_service_account_token(
        name, namespace, {"spec": {"expirationSeconds": 3600}}
    )
    identity = Identity(name, f"system:serviceaccount:{namespace}:{name}", (), token.status.token)
    write_private(path, kubeconfig_text(cluster.server, cluster.ca_file, identity))
    return path


def test_the_namespace_scoped_operator_brings_a_cloud_to_ready_with_the_charts_rbac(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    container = only(SCOPED.objects(), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    kubeconfig = service_account_kubeconfig(cluster, SCOPED.namespace, SCOPED.fullname, tmp_path / "sa.kubeconfig")
    health, metrics = free_ports(2)
    # the pod's arguments; ports free here, and the Lease where the pod would keep it
    args = [a for a in container["args"][1:] if not a.startswith(("--health-port", "--metrics-port"))]
    env = {e["name"]: e["value"] for e in container["env"]}
    operator = OperatorProcess(kubeconfig, tmp_path / "operator.log", health, env)
    operator.start(*args, f"--metrics-port={metrics}", f"--lease-namespace={SCOPED.namespace}")
    try:
        create_volumes(cluster.api, 40)
        body = yaml.safe_load((ROOT / "examples" / "minimal.yaml").read_text())
        body["metadata"] = {"name": "demo", "namespace": WATCHED}
        custom = client.CustomObjectsApi(cluster.api)
        custom.create_namespaced_custom_object(GROUP, VERSION, WATCHED, PLURAL, body)

        def ready() -> bool:
            status = custom.get_namespaced_custom_object(GROUP, VERSION, WATCHED, PLURAL, "demo").get("status", {})
            return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))

        try:
            wait_for(ready, "cloud demo Ready", timeout=240, interval=1)
        except Exception:
            pytest.fail(f"not Ready; operator log:\n{operator.log()[-5000:]}")
        assert "Forbidden" not in operator.log() and " 403" not in operator.log()
        jobs = client.BatchV1Api(cluster.api).list_namespaced_job(WATCHED).items
        assert {j.spec.template.spec.containers[0].image for j in jobs} >= {env["STACKOPS_IMAGE"]}
    finally:
        operator.stop()
