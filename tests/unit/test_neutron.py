"""Neutron and OVN as rendered: Raft or a single database, the compute/gateway chassis split, bridge
mappings and provider networks from the spec, where the user's overrides land, and determinism."""

from __future__ import annotations

from typing import Any

import pytest

from stackops.plan import Plan, plan
from stackops.services import neutron, nova
from stackops.services.base import RenderError
from tests.conftest import cloud


def objects(result: Plan, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in result.objects() if o["kind"] == kind}


def secret_file(result: Plan, secret: str, key: str) -> str:
    text: str = objects(result, "Secret")[secret]["stringData"][key]
    return text


def container(workload: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in workload["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def env(workload: dict[str, Any], container_name: str) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(workload, container_name)["env"]}


def node_terms(workload: dict[str, Any]) -> list[list[dict[str, Any]]]:
    affinity = workload["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    terms = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    return [t["matchExpressions"] for t in terms]


def test_one_database_replica_is_a_standalone_server() -> None:
    result = plan(cloud())
    for kind in ("nb", "sb"):
        server = objects(result, "StatefulSet")[f"demo-ovn-{kind}"]
        assert server["spec"]["replicas"] == 1
        assert server["spec"]["podManagementPolicy"] == "OrderedReady"
        assert f"demo-ovn-{kind}" not in objects(result, "PodDisruptionBudget")
        script = secret_file(result, "demo-neutron-ovn-databases-config", f"ovn-{kind}-db-start.sh")
        assert "ovsdb-tool create " in script and "create-cluster" not in script and "join-cluster" not in script
        assert "cluster/kick" not in script
    ml2 = secret_file(result, "demo-neutron-config", "ml2_conf.ini")
    assert "ovn_nb_connection = ssl:demo-ovn-nb-0.openstack.svc.cluster.local:6641\n" in ml2
    assert "ovn_sb_connection = ssl:demo-ovn-sb-0.openstack.svc.cluster.local:6642\n" in ml2
    assert objects(result, "Deployment")["demo-neutron-northd"]["spec"]["replicas"] == 1
    assert "demo-neutron-northd" not in objects(result, "PodDisruptionBudget")


def test_three_replicas_make_a_raft_cluster_by_dns_names() -> None:
    result = plan(cloud({"services": {"neutron": {"ovn": {"replicas": 3}}}}))
    services = objects(result, "Service")
    for kind, port, raft in (("nb", 6641, 6643), ("sb", 6642, 6644)):
        server = objects(result, "StatefulSet")[f"demo-ovn-{kind}"]
        assert server["spec"]["replicas"] == 3
        assert server["spec"]["podManagementPolicy"] == "Parallel"
        headless = services[server["spec"]["serviceName"]]
        assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True
        assert objects(result, "PodDisruptionBudget")[f"demo-ovn-{kind}"]["spec"]["maxUnavailable"] == 1
        script = secret_file(result, "demo-neutron-ovn-databases-config", f"ovn-{kind}-db-start.sh")
        assert "ovsdb-tool create-cluster" in script and "ovsdb-tool join-cluster" in script
        # a member that lost its volume joins again (the first only founds when no cluster answers)
        # and kicks its old server id (tests/real/test_ovn.py runs it)
        assert f"{kind}_db.ctl" in script and "cluster/kick OVN_" in script and "peers_cluster" in script
        domain = f"demo-ovn-{kind}-cluster.openstack.svc.cluster.local"
        peers = [f"ssl:demo-ovn-{kind}-{i}.{domain}:{raft}" for i in range(3)]
        assert f"for peer in {' '.join(peers)}; do" in script
        # each member has a Service of its own, selecting exactly its pod
        for i in range(3):
            member = services[f"demo-ovn-{kind}-{i}"]
            assert member["spec"]["selector"]["statefulset.kubernetes.io/pod-name"] == f"demo-ovn-{kind}-{i}"
            assert member["spec"]["ports"] == [{"name": "ovsdb", "port": port, "targetPort": "ovsdb"}]
        members = ",".join(f"ssl:demo-ovn-{kind}-{i}.openstack.svc.cluster.local:{port}" for i in range(3))
        assert f"ovn_{kind}_connection = {members}\n" in secret_file(result, "demo-neutron-config", "ml2_conf.ini")
        northd = secret_file(result, "demo-neutron-ovn-config", "neutron-northd.json")
        assert f"--ovn{kind}-db={members}" in northd
    assert objects(result, "Deployment")["demo-neutron-northd"]["spec"]["replicas"] == 3
    assert "demo-neutron-northd" in objects(result, "PodDisruptionBudget")


def test_two_database_replicas_cannot_keep_quorum() -> None:
    with pytest.raises(ValueError, match="OVN Raft cluster needs 1 or at least 3 replicas"):
        cloud({"services": {"neutron": {"ovn": {"replicas": 2}}}})


def test_gateway_nodes_get_their_own_chassis_and_compute_nodes_the_other() -> None:
    daemonsets = objects(plan(cloud()), "DaemonSet")
    compute, gateway = daemonsets["demo-neutron-ovn-controller"], daemonsets["demo-neutron-ovn-controller-gateway"]
    assert node_terms(compute) == [
        [
            {"key": "stackops.dev/compute", "operator": "In", "values": ["true"]},
            {"key": "stackops.dev/gateway", "operator": "NotIn", "values": ["true"]},
        ]
    ]
    assert node_terms(gateway) == [[{"key": "stackops.dev/gateway", "operator": "In", "values": ["true"]}]]
    assert env(compute, "ovn-controller")["OVN_CMS_OPTIONS"] == ""
    assert env(gateway, "ovn-controller")["OVN_CMS_OPTIONS"] == "enable-chassis-as-gw"
    for chassis in (compute, gateway):
        assert env(chassis, "ovn-controller")["OVN_ENCAP_IP"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
        pod = chassis["spec"]["template"]["spec"]
        assert pod["hostNetwork"] and pod["hostPID"]
        assert [c["name"] for c in pod["containers"]] == ["openvswitch-db", "openvswitch-vswitchd", "ovn-controller"]
        assert all(c["securityContext"]["privileged"] for c in pod["containers"])
        paths = {v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
        assert {"/run/openvswitch", "/var/lib/openvswitch", "/etc/openvswitch", "/lib/modules", "/run/ovn"} <= paths
        modules = next(m for m in container(chassis, "openvswitch-vswitchd")["volumeMounts"] if m["name"] == "modules")
        assert modules["readOnly"] is True
    # both read the same chassis config: the role is the one difference
    assert (
        compute["spec"]["template"]["metadata"]["annotations"] == gateway["spec"]["template"]["metadata"]["annotations"]
    )
    # the metadata agent serves instances, so it runs on compute nodes, gateways or not
    agent = daemonsets["demo-neutron-metadata-agent"]
    assert node_terms(agent) == [[{"key": "stackops.dev/compute", "operator": "In", "values": ["true"]}]]


def test_when_every_compute_node_is_a_gateway_one_chassis_daemonset_covers_them() -> None:
    nodes = {"compute": {"matchLabels": {"role": "hv"}}, "gateway": {"matchLabels": {"role": "hv"}}}
    daemonsets = objects(plan(cloud({"nodes": nodes})), "DaemonSet")
    assert "demo-neutron-ovn-controller" not in daemonsets
    assert node_terms(daemonsets["demo-neutron-ovn-controller-gateway"]) == [
        [{"key": "role", "operator": "In", "values": ["hv"]}]
    ]


def test_gateway_nodes_must_be_named() -> None:
    with pytest.raises(RenderError) as caught:
        plan(cloud({"nodes": {"gateway": {"matchLabels": {}}}}))
    assert caught.value.field == "spec.nodes.gateway.matchLabels"
    # without neutron (and so without nova) there is nothing to route
    services = {"neutron": {"enabled": False}, "nova": {"enabled": False}}
    plan(cloud({"nodes": {"gateway": {"matchLabels": {}}}, "services": services}))


def test_provider_networks_become_bridges_mappings_and_ml2_physnets() -> None:
    networks = [
        {"name": "physnet1", "bridge": "br-ex", "interface": "eth1"},
        {"name": "physnet2", "bridge": "br-vlan"},
    ]
    result = plan(cloud({"services": {"neutron": {"providerNetworks": networks}}}))
    script = secret_file(result, "demo-neutron-chassis-config", "ovn-controller-start.sh")
    assert 'external_ids:ovn-bridge-mappings="physnet1:br-ex,physnet2:br-vlan"' in script
    kernel = "datapath_type=system"
    assert f"add-br br-ex -- set Bridge br-ex {kernel}\nvsctl --may-exist add-port br-ex eth1\n" in script
    assert f"vsctl --may-exist add-br br-vlan -- set Bridge br-vlan {kernel}\n" in script
    assert "add-port br-vlan" not in script
    ml2 = secret_file(result, "demo-neutron-config", "ml2_conf.ini")
    assert "flat_networks = physnet1,physnet2\n" in ml2
    assert "network_vlan_ranges = physnet1,physnet2\n" in ml2
    assert "mechanism_drivers = ovn\n" in ml2 and "type_drivers = geneve,vlan,flat\n" in ml2
    # the default: one physnet on br-ex, its interface left to the host
    default = secret_file(plan(cloud()), "demo-neutron-chassis-config", "ovn-controller-start.sh")
    assert 'ovn-bridge-mappings="physnet1:br-ex"' in default and "add-port" not in default


def test_overrides_go_to_the_file_that_holds_their_section() -> None:
    external = "tcp:10.0.0.5:6641"
    config = {
        "DEFAULT": {"global_physnet_mtu": 9000},
        "ml2_type_vlan": {"network_vlan_ranges": ["physnet1:100:199"]},
        "ovn": {"ovn_nb_connection": external},
    }
    result = plan(cloud({"services": {"neutron": {"config": config}}}))
    conf = secret_file(result, "demo-neutron-config", "neutron.conf")
    ml2 = secret_file(result, "demo-neutron-config", "ml2_conf.ini")
    assert "global_physnet_mtu = 9000" in conf and "network_vlan_ranges" not in conf and "[ovn]" not in conf
    assert "network_vlan_ranges = physnet1:100:199\n" in ml2 and f"ovn_nb_connection = {external}\n" in ml2
    # the processes that resolve the databases' addresses, and the metadata agent, follow the override
    assert f'resolve "{external}"' in secret_file(result, "demo-neutron-config", "ovn-remotes.sh")
    agent = secret_file(result, "demo-neutron-metadata-agent-config", "neutron_ovn_metadata_agent.ini")
    assert f"ovn_nb_connection = {external}\n" in agent


def test_metadata_secret_is_the_one_nova_checks() -> None:
    assert neutron.METADATA_SECRET_KEY == nova.METADATA_SECRET_KEY
    assert neutron.METADATA_SECRET_KEY in {c.key for c in neutron.SERVICE.credentials(cloud().spec)}
    result = plan(cloud())
    agent = secret_file(result, "demo-neutron-metadata-agent-config", "neutron_ovn_metadata_agent.ini")
    assert "metadata_proxy_shared_secret = PLACEHOLDER-metadata-proxy-shared-secret\n" in agent
    assert (
        f"nova_metadata_host = demo-nova-metadata.openstack.svc\nnova_metadata_port = {nova.METADATA_PORT}\n" in agent
    )


def test_neutron_comes_up_after_keystone_and_rabbitmq_and_ovn_before_its_api() -> None:
    steps = [s.name for s in plan(cloud()).steps]
    order = [
        "keystone-api", "neutron-config", "neutron-ovn-nb-db", "neutron-ovn-sb-db", "neutron-northd",
        "neutron-database", "neutron-messaging", "neutron-registration", "neutron-db-sync", "neutron-api",
        "neutron-ovn-controller", "neutron-ovn-controller-gateway", "neutron-metadata-agent",
    ]  # fmt: skip
    assert [steps.index(s) for s in order] == sorted(steps.index(s) for s in order)
    assert steps.index("rabbitmq-server") < steps.index("neutron-messaging")


def test_a_change_to_the_api_config_does_not_roll_the_chassis() -> None:
    def annotations(result: Plan) -> dict[str, Any]:
        return {n: o["spec"]["template"]["metadata"]["annotations"] for n, o in objects(result, "DaemonSet").items()}

    before = plan(cloud())
    after = plan(cloud({"services": {"neutron": {"config": {"DEFAULT": {"debug": True}}}}}))
    assert annotations(before) == annotations(after)
    api = objects(before, "Deployment")["demo-neutron-api"], objects(after, "Deployment")["demo-neutron-api"]
    assert api[0]["spec"]["template"]["metadata"] != api[1]["spec"]["template"]["metadata"]


def test_rendering_neutron_twice_gives_the_same_objects() -> None:
    spec = {"services": {"neutron": {"ovn": {"replicas": 3}, "providerNetworks": [{"name": "p", "interface": "e"}]}}}
    first = [o for o in plan(cloud(spec)).objects() if o["metadata"]["labels"]["app.kubernetes.io/name"] == "neutron"]
    second = [o for o in plan(cloud(spec)).objects() if o["metadata"]["labels"]["app.kubernetes.io/name"] == "neutron"]
    assert first == second and len(first) > 20


def test_the_userspace_datapath_is_asked_for_every_chassis_bridge() -> None:
    result = plan(cloud({"services": {"neutron": {"ovn": {"datapathType": "netdev"}}}}))
    script = secret_file(result, "demo-neutron-chassis-config", "ovn-controller-start.sh")
    # br-int is ovn-controller's: made with the datapath type OVN is told, and changed when it differs
    assert "external_ids:ovn-bridge-datapath-type=netdev\n" in script
    assert "vsctl --if-exists set Bridge br-int datapath_type=netdev\n" in script
    assert "vsctl --may-exist add-br br-ex -- set Bridge br-ex datapath_type=netdev\n" in script
    assert "datapath_type=system" not in script and "datapath-type=system" not in script
    # its conntrack takes the guests' offloaded checksums as they are (tests/node shows metadata served)
    assert "vsctl set Open_vSwitch . other_config:userspace-tso-enable=true\n" in script
    system = secret_file(plan(cloud()), "demo-neutron-chassis-config", "ovn-controller-start.sh")
    assert "userspace-tso-enable=true" not in system


def test_ovn_is_given_fully_qualified_names_in_the_cluster_domain() -> None:
    result = plan(cloud({"endpoints": {"clusterDomain": "k8s.example"}}))
    ml2 = secret_file(result, "demo-neutron-config", "ml2_conf.ini")
    assert "ovn_sb_connection = ssl:demo-ovn-sb-0.openstack.svc.k8s.example:6642\n" in ml2
    chassis = secret_file(result, "demo-neutron-chassis-config", "ovn-controller-start.sh")
    assert 'external_ids:ovn-remote="ssl:demo-ovn-sb-0.openstack.svc.k8s.example:6642"' in chassis
