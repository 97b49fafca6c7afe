"""Rendering choices of octavia: the OVN provider by default (the driver agent beside the API, both
on neutron's OVN databases, no amphora processes), the amphora provider when the spec names its
network, image, flavor and certificates; its release's packages, its health check."""

from __future__ import annotations

import configparser
from types import SimpleNamespace

import pytest

from stackops.api.releases import RELEASES
from stackops.api.validation import InvalidCloud
from stackops.credentials import Credentials
from stackops.plan import Plan, plan, problems, required_credentials
from stackops.services import octavia
from stackops.services.health_checks import LoadBalancerProviders
from tests.conftest import cloud
from tests.support.rendered import cloud_credentials, find, secret_data

ON = {"services": {"octavia": {"enabled": True, "replicas": 2}}}
AMPHORA = {
    "enabled": True,
    "managementNetwork": "net-id",
    "flavor": "flavor-id",
    "securityGroups": ["sg-id"],
    "healthManagerAddresses": ["172.16.0.2:5555"],
    "certificates": {"name": "amphora-certs"},
}
WITH_AMPHORA = {"services": {"octavia": {"enabled": True, "amphora": AMPHORA}}}


def conf(result: Plan, name: str = "octavia.conf") -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(secret_data(result, "demo-octavia-config")[name])
    return parser


def test_the_ovn_provider_runs_in_the_api_with_the_driver_agent_beside_it_and_no_amphora_processes() -> None:
    result = plan(cloud(ON))
    steps = [s.name for s in result.steps if s.service == "octavia"]
    assert steps == [
        "octavia-network-policy", "octavia-config", "octavia-database", "octavia-messaging",
        "octavia-registration", "octavia-db-sync", "octavia-api", "octavia-housekeeping",
    ]  # fmt: skip
    sections = conf(result)
    assert sections["api_settings"]["default_provider_driver"] == "ovn"
    assert sections["api_settings"]["enabled_provider_drivers"] == "ovn:OVN load balancers"
    assert sections["driver_agent"]["enabled_provider_agents"] == "ovn"
    # the databases neutron's ML2 driver uses
    ml2 = configparser.ConfigParser(interpolation=None)
    ml2.read_string(secret_data(result, "demo-neutron-config")["ml2_conf.ini"])
    for option in ("ovn_nb_connection", "ovn_sb_connection"):
        assert sections["ovn"][option] == ml2["ovn"][option]
    pod = find(result, "Deployment", "octavia", "api")["spec"]["template"]["spec"]
    api, agent = pod["containers"]
    assert agent["name"] == "octavia-driver-agent"
    assert agent["image"].endswith("/octavia-driver-agent:2026.1-ubuntu-noble")
    # the provider driver in the API and the agent meet on unix sockets in a volume both mount
    sockets = {m["mountPath"] for m in api["volumeMounts"]} & {m["mountPath"] for m in agent["volumeMounts"]}
    assert octavia.SOCKETS_DIR in sockets
    for option in ("status_socket_path", "stats_socket_path", "get_socket_path"):
        assert sections["driver_agent"][option].startswith(f"{octavia.SOCKETS_DIR}/")
    assert {"name": "sockets", "emptyDir": {}} in pod["volumes"]
    assert pod["securityContext"]["fsGroup"] == 42484  # Kolla's octavia user


def test_the_api_and_the_agent_start_through_neutrons_ovn_address_wrapper() -> None:
    result = plan(cloud(ON))
    files = secret_data(result, "demo-octavia-config")
    assert files["ovn-remotes.sh"] == secret_data(result, "demo-neutron-config")["ovn-remotes.sh"]
    for component in ("api", "driver-agent"):
        command = files[f"octavia-{component}.json"]
        assert f'"command": "/bin/bash {octavia.REMOTES_SCRIPT} ' in command, component


def test_the_amphora_provider_adds_its_worker_health_manager_and_sections() -> None:
    spec = cloud(WITH_AMPHORA)
    creds = Credentials(cloud_credentials(spec))
    result = plan(spec, creds)
    components = {s.name for s in result.steps if s.service == "octavia"}
    assert {"octavia-worker", "octavia-health-manager"} <= components
    sections = conf(result)
    assert sections["api_settings"]["enabled_provider_drivers"] == (
        "ovn:OVN load balancers,amphora:amphora VMs running haproxy"
    )
    assert sections["api_settings"]["default_provider_driver"] == "ovn"
    assert sections["controller_worker"]["amp_boot_network_list"] == "net-id"
    assert sections["controller_worker"]["amp_flavor_id"] == "flavor-id"
    assert sections["controller_worker"]["amp_image_tag"] == "amphora"
    assert sections["health_manager"]["controller_ip_port_list"] == "172.16.0.2:5555"
    assert sections["health_manager"]["heartbeat_key"] == creds[octavia.HEARTBEAT_KEY]
    passphrase = sections["certificates"]["server_certs_key_passphrase"]
    assert len(passphrase) == 32 and passphrase.isalnum()  # octavia's regex: 32 base64url characters
    worker = find(result, "Deployment", "octavia", "worker")["spec"]["template"]["spec"]
    assert {"name": "certificates", "secret": {"secretName": "amphora-certs", "defaultMode": 0o440}} in worker[
        "volumes"
    ]
    manager = find(result, "Deployment", "octavia", "health-manager")["spec"]["template"]["spec"]
    ports = manager["containers"][0]["ports"]
    assert ports == [{"name": "heartbeats", "containerPort": octavia.HEALTH_MANAGER_PORT, "protocol": "UDP"}]


def test_without_the_amphora_provider_no_amphora_credentials() -> None:
    keys = {c.key for c in required_credentials(cloud(ON).spec)}
    assert octavia.HEARTBEAT_KEY not in keys and octavia.CERTS_PASSPHRASE not in keys
    assert octavia.HEARTBEAT_KEY in {c.key for c in required_credentials(cloud(WITH_AMPHORA).spec)}


def test_the_amphora_provider_without_its_resources_is_refused_naming_them() -> None:
    with pytest.raises(InvalidCloud) as caught:
        cloud({"services": {"octavia": {"enabled": True, "amphora": {"enabled": True, "flavor": "f"}}}})
    assert str(caught.value) == (
        "spec.services.octavia.amphora: managementNetwork, healthManagerAddresses, certificates: "
        "required when the amphora provider is enabled"
    )
    with pytest.raises(InvalidCloud, match="addresses are ip:port"):
        cloud({"services": {"octavia": {"amphora": {**AMPHORA, "healthManagerAddresses": ["manager"]}}}})


def test_the_amphora_provider_needs_compute_and_images() -> None:
    spec = {"services": {"octavia": {"enabled": True, "amphora": AMPHORA}, "glance": {"enabled": False}}}
    found = [str(p) for p in problems(cloud(spec).spec)]
    assert any("spec.services.octavia.amphora.enabled" in p and "spec.services.glance.enabled" in p for p in found)
    assert not any("octavia" in str(p) for p in problems(cloud(WITH_AMPHORA).spec))


def test_octavia_needs_neutron() -> None:
    spec = {"services": {"octavia": {"enabled": True}, "neutron": {"enabled": False}, "nova": {"enabled": False}}}
    found = [str(p) for p in problems(cloud(spec).spec)]
    assert any(p.startswith("spec.services.octavia.enabled") and "neutron" in p for p in found), found


@pytest.mark.parametrize(("series", "octavia_major", "provider_major"), [("2025.1", 16, 8), ("2026.1", 18, 10)])
def test_a_release_installs_octavia_with_the_ovn_provider_of_its_series(
    series: str, octavia_major: int, provider_major: int
) -> None:
    requirements = RELEASES[series].own_requirements("octavia")
    assert requirements[:2] == [
        f"octavia>={octavia_major},<{octavia_major + 1}",
        f"ovn-octavia-provider>={provider_major},<{provider_major + 1}",
    ]


class Providers:
    """openstacksdk's load balancer proxy, as far as the health check uses it."""

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def providers(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(name=n, description=n) for n in self.names]


class Connection:
    def __init__(self, names: list[str]) -> None:
        self.load_balancer = Providers(names)


def test_the_health_check_wants_every_provider_the_cloud_offers() -> None:
    check = LoadBalancerProviders(("ovn", "amphora"))
    assert check.run(Connection(["amphora", "ovn", "octavia"])).ok
    missing = check.run(Connection(["octavia", "amphora"]))
    assert not missing.ok and missing.message == "load balancer providers not offered: ovn"
