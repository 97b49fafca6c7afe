"""The local cluster behaves like a real one: API, scheduling onto labelled kwok nodes, Jobs,
RBAC for the operator's identity, the audit log of its writes, apiserver restarts, clean stop."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client, config

from stackops.devcluster import OPERATOR_USER, Binaries, DevClusterError, LocalCluster
from stackops.devcluster.binaries import kube_version
from stackops.devcluster.processes import alive, processes_mentioning

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
    """Poll until `probe` returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def namespace(local_cluster: LocalCluster) -> Iterator[str]:
    """A fresh namespace, usable for pods (its default ServiceAccount exists)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(local_cluster.api)
    core.create_namespace({"metadata": {"name": name}})

    def has_default_sa() -> bool:
        return any(sa.metadata.name == "default" for sa in core.list_namespaced_service_account(name).items)

    wait_for(f"the default ServiceAccount in {name}", has_default_sa, timeout=30)
    yield name
    core.delete_namespace(name)


def _labels(node: Any) -> dict[str, str]:
    return dict(node.metadata.labels or {})


def test_api_reports_the_pinned_version(local_cluster: LocalCluster) -> None:
    version = client.VersionApi(local_cluster.api).get_code()
    assert version.git_version == kube_version() == "v1.34.10"


def test_default_nodes_are_ready_and_labelled(local_cluster: LocalCluster) -> None:
    found = {n.metadata.name: n for n in client.CoreV1Api(local_cluster.api).list_node().items}
    expected = {
        "control-plane-0": "stackops.dev/control-plane",
        "compute-0": "stackops.dev/compute",
        "compute-1": "stackops.dev/compute",
    }
    for name, label in expected.items():
        node = found[name]
        assert _labels(node)[label] == "true"
        assert not node.spec.taints, "untainted, so pods without tolerations schedule"
        ready = [c.status for c in node.status.conditions if c.type == "Ready"]
        assert ready == ["True"], name
    assert "stackops.dev/compute" not in _labels(found["control-plane-0"])


def test_deployment_with_node_selector_runs_on_compute_nodes(local_cluster: LocalCluster, namespace: str) -> None:
    apps = client.AppsV1Api(local_cluster.api)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "nodeSelector": {"stackops.dev/compute": "true"},
                        "containers": [{"name": "web", "image": "example.invalid/web:1"}],
                    },
                },
            },
        },
    )
    wait_for(
        "2/2 ready replicas",
        lambda: apps.read_namespaced_deployment("web", namespace).status.ready_replicas == 2,
    )
    core = client.CoreV1Api(local_cluster.api)
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 2
    for pod in pods:
        assert pod.status.phase == "Running"
        node = core.read_node(pod.spec.node_name)
        assert _labels(node).get("stackops.dev/compute") == "true", pod.spec.node_name


def test_job_completes(local_cluster: LocalCluster, namespace: str) -> None:
    batch = client.BatchV1Api(local_cluster.api)
    batch.create_namespaced_job(
        namespace,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once"},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "once", "image": "example.invalid/job:1"}],
                    }
                },
            },
        },
    )

    def complete() -> bool:
        status = batch.read_namespaced_job("once", namespace).status
        return any(c.type == "Complete" and c.status == "True" for c in status.conditions or [])

    wait_for("the Job to complete (kwok's pod-complete stage)", complete)
    assert batch.read_namespaced_job("once", namespace).status.succeeded == 1


def test_added_node_becomes_ready_and_can_be_relabelled_and_removed(local_cluster: LocalCluster) -> None:
    core = client.CoreV1Api(local_cluster.api)
    local_cluster.add_node("extra-0", {"stackops.dev/test": "yes"}, cpu="4", memory="8Gi")
    node = core.read_node("extra-0")
    assert _labels(node)["stackops.dev/test"] == "yes"
    assert node.status.allocatable["cpu"] == "4"

    local_cluster.label_node("extra-0", {"stackops.dev/test": None, "stackops.dev/other": "1"})
    labels = _labels(core.read_node("extra-0"))
    assert "stackops.dev/test" not in labels and labels["stackops.dev/other"] == "1"

    local_cluster.remove_node("extra-0")
    assert "extra-0" not in {n.metadata.name for n in core.list_node().items}


def test_audit_log_records_the_operators_writes(local_cluster: LocalCluster, namespace: str) -> None:
    rbac = client.RbacAuthorizationV1Api(local_cluster.api)
    role = f"test-configmap-writer-{namespace}"
    rbac.create_cluster_role(
        {
            "metadata": {"name": role},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get"]}],
        }
    )
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": OPERATOR_USER}],
        }
    )
    mark = local_cluster.audit_line_count()
    operator = config.new_client_from_config(config_file=str(local_cluster.kubeconfig_for(OPERATOR_USER)))
    try:
        core = client.CoreV1Api(operator)
        # RBAC takes effect within moments of the binding: retry only on 403.
        deadline = time.monotonic() + 10
        while True:
            try:
                core.create_namespaced_config_map(namespace, {"metadata": {"name": "from-operator"}})
                break
            except client.ApiException as error:
                if error.status != 403 or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        # No rule allows Secrets: a denied write is still a write request in the log.
        with pytest.raises(client.ApiException) as denied:
            core.create_namespaced_secret(namespace, {"metadata": {"name": "nope"}})
        assert denied.value.status == 403
    finally:
        operator.close()

    def writes() -> list[dict[str, Any]]:
        found = local_cluster.write_requests(since_line=mark)
        return found if any(e["objectRef"]["resource"] == "secrets" for e in found) else []

    found = wait_for("the operator's writes in the audit log", writes, timeout=10)
    created = [
        e for e in found if e["objectRef"]["resource"] == "configmaps" and e["objectRef"].get("name") == "from-operator"
    ]
    assert [(e["verb"], e["responseStatus"]["code"]) for e in created] == [("create", 201)]
    assert created[0]["user"]["username"] == OPERATOR_USER
    assert created[0]["objectRef"]["namespace"] == namespace
    secret = [e for e in found if e["objectRef"]["resource"] == "secrets"]
    assert [(e["verb"], e["responseStatus"]["code"]) for e in secret] == [("create", 403)]
    # Only the audited user is logged: the admin's namespace/RBAC writes above are not.
    assert {e["user"]["username"] for e in local_cluster.audit_events(user=None)} == {OPERATOR_USER}


def test_restart_apiserver(local_cluster: LocalCluster, namespace: str) -> None:
    apps = client.AppsV1Api(local_cluster.api)
    before = local_cluster.ports["apiserver"]
    # Twice: the second restart is the one where client-go's watch backoff used to stall the
    # control plane's own controllers (see restart_apiserver), so bound each wait tightly.
    for attempt in (1, 2):
        local_cluster.restart_apiserver()
        assert local_cluster.ports["apiserver"] == before
        assert client.VersionApi(local_cluster.api).get_code().git_version == kube_version()
        name = f"after-{attempt}"
        apps.create_namespaced_deployment(
            namespace,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "c", "image": "example.invalid/c:1"}]},
                    },
                },
            },
        )

        def ready(name: str = name) -> bool:
            return bool(apps.read_namespaced_deployment(name, namespace).status.ready_replicas == 1)

        wait_for(f"1/1 ready after restart {attempt}", ready, timeout=15)
    assert apps.read_namespaced_deployment("after-1", namespace).status.ready_replicas == 1
    local_cluster.wait_nodes_ready(["control-plane-0", "compute-0", "compute-1"], timeout=5)


def test_stop_leaves_no_process_and_no_files(cluster_binaries: Binaries) -> None:
    with LocalCluster(binaries=cluster_binaries).start(control_plane_nodes=0, compute_nodes=1) as cluster:
        workdir = cluster.workdir
        pids = [p.pid for p in cluster.state.processes]
        assert len(pids) == 5 and all(alive(pid) for pid in pids)
        assert sorted(processes_mentioning(str(workdir))) == sorted(pids)
    assert not any(alive(pid) for pid in pids)
    assert processes_mentioning(str(workdir)) == []
    assert not workdir.exists()


def test_a_crashing_component_fails_start_with_its_log(cluster_binaries: Binaries, tmp_path: Path) -> None:
    fake = tmp_path / "kube-apiserver"
    fake.write_text("#!/bin/sh\necho 'E0000 boom: cannot start' >&2\nexit 3\n")
    fake.chmod(0o755)
    cluster = LocalCluster(tmp_path / "cluster", binaries=dataclasses.replace(cluster_binaries, kube_apiserver=fake))
    with pytest.raises(DevClusterError, match=r"(?s)kube-apiserver exited \(status 3\).*boom: cannot start"):
        cluster.start()
    assert processes_mentioning(str(tmp_path / "cluster")) == []
    assert not (tmp_path / "cluster").exists()
