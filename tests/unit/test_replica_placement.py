"""Where the replicated backends' members run, and how many of them a node drain may take at once;
and the Galera start logic's rendered facts (its peers, its ports) agreeing with the objects around it."""

from __future__ import annotations

from typing import Any

import pytest

from stackops.api.validation import load_cloud_text
from stackops.plan import plan
from stackops.services.mariadb import FORCE_BOOTSTRAP_FILE, GALERA_PORTS, RECOVERY_DIR
from tests.conftest import ROOT, cloud

PRODUCTION = ROOT / "examples" / "production.yaml"

# spec path of the replicas -> (service label, component label, StatefulSet name) of each replicated backend
BACKENDS = {
    ("infrastructure", "database"): [("mariadb", "server", "demo-mariadb")],
    ("infrastructure", "messaging"): [("rabbitmq", "server", "demo-rabbitmq")],
    ("infrastructure", "memcached"): [("memcached", "server", "demo-memcached")],
    ("services", "neutron", "ovn"): [
        ("neutron", "nb-db", "demo-ovn-nb"),
        ("neutron", "sb-db", "demo-ovn-sb"),
    ],
}


def spec_at(path: tuple[str, ...], fields: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = fields
    for key in reversed(path):
        spec = {key: spec}
    return spec


def objects(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in plan(cloud(spec)).objects()}


def selector(service: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": service,
        "app.kubernetes.io/instance": "demo",
        "app.kubernetes.io/component": component,
    }


def hostname_term(service: str, component: str) -> dict[str, Any]:
    return {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": selector(service, component)}}


@pytest.mark.parametrize("path", BACKENDS, ids=lambda p: ".".join(p))
@pytest.mark.parametrize("replicas", [1, 3])
def test_replicas_prefer_other_nodes_and_a_cluster_loses_one_member_at_a_time(
    path: tuple[str, ...], replicas: int
) -> None:
    rendered = objects(spec_at(path, {"replicas": replicas}))
    for service, component, name in BACKENDS[path]:
        workload = rendered[("StatefulSet", name)]
        assert workload["spec"]["replicas"] == replicas
        assert workload["spec"]["selector"]["matchLabels"] == selector(service, component)
        preferred = [{"weight": 100, "podAffinityTerm": hostname_term(service, component)}]
        assert workload["spec"]["template"]["spec"]["affinity"] == {
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": preferred}
        }
        budget = rendered.get(("PodDisruptionBudget", name))
        if replicas == 1:
            # a single replica may always go: a budget would only be noise
            assert budget is None
        else:
            assert budget is not None
            assert budget["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": selector(service, component)}}
            assert budget["metadata"]["labels"] == workload["metadata"]["labels"]


@pytest.mark.parametrize("path", BACKENDS, ids=lambda p: ".".join(p))
def test_required_anti_affinity_never_puts_two_members_on_one_node(path: tuple[str, ...]) -> None:
    rendered = objects(spec_at(path, {"replicas": 3, "antiAffinity": "Required"}))
    for service, component, name in BACKENDS[path]:
        affinity = rendered[("StatefulSet", name)]["spec"]["template"]["spec"]["affinity"]
        required = [hostname_term(service, component)]
        assert affinity == {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}


def test_anti_affinity_takes_only_the_two_modes() -> None:
    with pytest.raises(ValueError, match="antiAffinity"):
        cloud({"infrastructure": {"database": {"antiAffinity": "Sometimes"}}})


def test_galera_start_logic_knows_every_peer_and_the_recovery_port_is_open_to_members_only() -> None:
    rendered = objects({"infrastructure": {"database": {"replicas": 3}}})
    files = rendered[("Secret", "demo-mariadb-config")]["stringData"]
    script, cnf = files["mariadb-start.sh"], files["my.cnf"]
    peers = [f"demo-mariadb-{i}.demo-mariadb-cluster.openstack.svc" for i in range(3)]
    # the members the start script asks are the ones Galera connects to
    assert f"PEERS=({' '.join(peers)})" in script
    assert f"wsrep_cluster_address = gcomm://{','.join(peers)}" in cnf
    assert f"RECOVERY_PORT={GALERA_PORTS['recovery']}" in script
    assert f'RECOVERY_DIR="${{DATADIR}}/{RECOVERY_DIR}"' in script
    assert f'FORCE_BOOTSTRAP="${{DATADIR}}/{FORCE_BOOTSTRAP_FILE}"' in script
    # the safety copy lives in the data directory: the server must not take it for a database
    assert f"ignore-db-dirs = {RECOVERY_DIR}" in cnf
    # no member founds a cluster on its own say: only the agreed one (or an administrator's file) does
    assert script.count("args+=(--wsrep-new-cluster)") == 1
    container = rendered[("StatefulSet", "demo-mariadb")]["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "recovery", "containerPort": GALERA_PORTS["recovery"]} in container["ports"]
    cluster_ports = {p["name"]: p["port"] for p in rendered[("Service", "demo-mariadb-cluster")]["spec"]["ports"]}
    assert cluster_ports["recovery"] == GALERA_PORTS["recovery"]
    policy = rendered[("NetworkPolicy", "demo-mariadb-server")]["spec"]
    recovery = [r for r in policy["ingress"] if {"protocol": "TCP", "port": GALERA_PORTS["recovery"]} in r["ports"]]
    assert [rule["from"] for rule in recovery] == [[{"podSelector": policy["podSelector"]}]]
    # recovering, waiting for peers or receiving a whole copy may take long before the server listens
    assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] == 3600


def test_a_single_server_has_no_galera_logic() -> None:
    rendered = objects({})
    files = rendered[("Secret", "demo-mariadb-config")]["stringData"]
    assert "PEERS" not in files["mariadb-start.sh"] and "wsrep" not in files["mariadb-start.sh"]
    assert "ignore-db-dirs" not in files["my.cnf"]
    ports = rendered[("StatefulSet", "demo-mariadb")]["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert [p["name"] for p in ports] == ["mysql"]


def test_the_production_example_requires_its_quorum_clusters_on_different_nodes() -> None:
    """test_render's byte-identity across processes renders the examples: production.yaml is the one
    with three members and Required anti-affinity (and two memcached with their budget)."""
    rendered = {(o["kind"], o["metadata"]["name"]): o for o in plan(load_cloud_text(PRODUCTION.read_text())).objects()}
    for name in ("prod-mariadb", "prod-rabbitmq", "prod-ovn-nb", "prod-ovn-sb"):
        affinity = rendered[("StatefulSet", name)]["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        assert list(affinity) == ["requiredDuringSchedulingIgnoredDuringExecution"]
        assert rendered[("PodDisruptionBudget", name)]["spec"]["maxUnavailable"] == 1
    assert ("PodDisruptionBudget", "prod-memcached") in rendered
