"""Compute agents on the real control plane: nova-compute and libvirt land exactly on the nodes
labelled for compute, follow labels as nodes come and go, and compute groups get their own
DaemonSet and config. Disabling a service removes its workloads and keeps its credentials.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from stackops.devcluster.install import wait_for
from stackops.devcluster.nodes import COMPUTE_LABEL
from tests.support.cluster import NAMESPACE, Env, operated_cluster

CLOUD = "comp"
GPU_LABEL = "hardware.stackops.dev/gpu"
GROUPS = {"groups": [{"name": "gpu", "nodeSelector": {"matchLabels": {GPU_LABEL: "true"}},
                      "config": {"DEFAULT": {"cpu_allocation_ratio": 1.5}}}]}  # fmt: skip


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with operated_cluster(tmp_path_factory.mktemp("compute"), compute_nodes=2, volumes=20) as environment:
        body = environment.cloud_body(CLOUD)
        body["spec"].setdefault("services", {})["nova"] = {"compute": GROUPS}
        environment.create(body)
        environment.wait_ready(CLOUD, timeout=300)
        yield environment


def agent_nodes(env: Env, component: str) -> set[str]:
    pods = env.core.list_namespaced_pod(
        NAMESPACE, label_selector=f"stackops.dev/cloud={CLOUD},app.kubernetes.io/component={component}"
    ).items
    return {p.spec.node_name for p in pods if p.spec.node_name and p.metadata.deletion_timestamp is None}


def nodes_labelled(env: Env, selector: str) -> set[str]:
    return {n.metadata.name for n in env.core.list_node(label_selector=selector).items}


def wait_agents(env: Env, component: str, expected: set[str]) -> None:
    wait_for(lambda: agent_nodes(env, component) == expected, f"{component} agents on {sorted(expected)}", timeout=60)


def secret_text(env: Env, name: str, key: str) -> str:
    data: dict[str, str] = env.core.read_namespaced_secret(name, NAMESPACE).data
    return base64.b64decode(data[key]).decode()


def test_compute_agents_run_exactly_on_compute_nodes(env: Env) -> None:
    compute = nodes_labelled(env, f"{COMPUTE_LABEL}=true")
    assert len(compute) == 2
    wait_agents(env, "compute", compute)
    all_nodes = {n.metadata.name for n in env.core.list_node().items}
    assert agent_nodes(env, "compute") < all_nodes  # never on the control plane
    pod = env.core.list_namespaced_pod(
        NAMESPACE, label_selector=f"stackops.dev/cloud={CLOUD},app.kubernetes.io/component=compute"
    ).items[0]
    assert pod.spec.host_network and pod.spec.host_pid
    assert {c.name for c in pod.spec.containers} == {"nova-compute", "nova-libvirt"}
    assert all(c.security_context.privileged for c in pod.spec.containers)


def test_a_new_labelled_node_gets_agents_and_losing_the_label_removes_them(env: Env) -> None:
    before = agent_nodes(env, "compute")
    env.cluster.add_node("compute-new", labels={COMPUTE_LABEL: "true"})
    wait_agents(env, "compute", before | {"compute-new"})
    env.cluster.label_node("compute-new", {COMPUTE_LABEL: None})
    wait_agents(env, "compute", before)
    env.cluster.remove_node("compute-new")


def test_a_compute_group_gets_its_own_daemonset_and_config(env: Env) -> None:
    default_ds = env.apps.read_namespaced_daemon_set(f"{CLOUD}-nova-compute", NAMESPACE)
    gpu_ds = env.apps.read_namespaced_daemon_set(f"{CLOUD}-nova-compute-gpu", NAMESPACE)

    def config_secret(ds: Any) -> str:
        names: set[str] = {v.secret.secret_name for v in ds.spec.template.spec.volumes if v.secret}
        (name,) = {n for n in names if n.endswith("-config")}
        return name

    assert config_secret(gpu_ds) == f"{CLOUD}-nova-compute-gpu-config"
    assert "cpu_allocation_ratio = 1.5" in secret_text(env, config_secret(gpu_ds), "nova.conf")
    assert "cpu_allocation_ratio" not in secret_text(env, config_secret(default_ds), "nova.conf")

    compute = sorted(nodes_labelled(env, f"{COMPUTE_LABEL}=true"))
    gpu_node = compute[0]
    env.cluster.label_node(gpu_node, {GPU_LABEL: "true"})
    try:
        # the node moves from the default DaemonSet to its group's: never two agents on one host
        wait_agents(env, "compute-gpu", {gpu_node})
        wait_agents(env, "compute", set(compute) - {gpu_node})
    finally:
        env.cluster.label_node(gpu_node, {GPU_LABEL: None})
    wait_agents(env, "compute", set(compute))
    wait_agents(env, "compute-gpu", set())


def test_disabling_a_service_removes_its_workloads_and_keeps_its_credentials(env: Env) -> None:
    env.patch_spec(CLOUD, {"services": {"nova": {"enabled": False}}})
    env.wait_ready(CLOUD)

    def nova_objects() -> list[str]:
        selector = f"stackops.dev/cloud={CLOUD},app.kubernetes.io/name=nova"
        listings = (
            env.apps.list_namespaced_deployment,
            env.apps.list_namespaced_daemon_set,
            env.core.list_namespaced_service,
        )
        return [o.metadata.name for listing in listings for o in listing(NAMESPACE, label_selector=selector).items]

    wait_for(lambda: not nova_objects(), "nova's workloads and Services removed", timeout=60)
    status = env.get(CLOUD)["status"]
    assert "nova" not in status["services"] and "compute" not in status["endpoints"]
    credentials = env.core.read_namespaced_secret(f"{CLOUD}-credentials", NAMESPACE).data
    assert {"nova-database-password", "nova-keystone-password"} <= set(credentials)
    wait_agents(env, "compute", set())

    # enabling it again brings the same credentials back into use
    before = credentials["nova-database-password"]
    env.patch_spec(CLOUD, {"services": {"nova": {"enabled": True}}})
    env.wait_ready(CLOUD)
    assert env.core.read_namespaced_secret(f"{CLOUD}-credentials", NAMESPACE).data["nova-database-password"] == before
    wait_agents(env, "compute", nodes_labelled(env, f"{COMPUTE_LABEL}=true"))
