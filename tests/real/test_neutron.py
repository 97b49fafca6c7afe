"""Neutron for real: neutron 28 (2026.1) from PyPI on the MariaDB, RabbitMQ and keystone the other real
tests deploy, with OVN's databases and northd from their rendered scripts (Debian's OVN).

The rendered Jobs run in plan order: database and account, RabbitMQ user and vhost, keystone
registration, then `neutron-db-manage … upgrade heads` with the rendered neutron.conf and
ml2_conf.ini. The API serves neutron's WSGI module with the rendered config, started through the
rendered wrapper that resolves the OVN databases' Service names (here through the sandbox's hosts
file, as cluster DNS would); a network created through the catalog becomes a logical switch in OVN.
"""

from __future__ import annotations

import requests

from stackops.services import ovn
from stackops.services.neutron import SERVICE as NEUTRON
from tests.real.deployment import Deployment
from tests.support.ovn import ctl
from tests.support.rendered import find
from tests.support.sandbox import Sandbox, eventually


def test_network_service_is_registered_in_the_catalog_and_healthy(neutron: str, deployed: Deployment) -> None:
    api = find(deployed.plan, "Deployment", "neutron", "api")
    probe = api["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"]
    assert requests.get(f"{neutron}{probe}", timeout=10).status_code == 200
    conn = deployed.connect("neutron", NEUTRON.keystone_password_key, "service")
    catalog = {entry["type"]: entry for entry in conn.service_catalog}
    assert {e["interface"]: e["url"] for e in catalog["network"]["endpoints"]} == {
        "public": neutron,
        "internal": neutron,
    }
    again = deployed.stackops_job("neutron", "registration")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "register-service: nothing to change"


def test_a_network_becomes_an_ovn_logical_switch(
    neutron: str, deployed: Deployment, ovn_control_plane: Sandbox, ovn_network: str
) -> None:
    conn = deployed.connect()  # the cloud's admin, finding neutron through the catalog
    network = conn.network.create_network(name="net0")
    try:
        subnet = conn.network.create_subnet(network_id=network.id, ip_version=4, cidr="10.0.0.0/24")
        box, rendered = ovn_control_plane, deployed.plan
        switches = ctl(box, rendered, ovn_network, ovn.NB, "ls-list")
        assert f"(neutron-{network.id})" in switches.stdout, switches.stdout + switches.stderr
        dhcp = ctl(box, rendered, ovn_network, ovn.NB, "--bare", "--columns=cidr", "list", "DHCP_Options")
        assert subnet.cidr in dhcp.stdout.split()
        # northd, which found the databases by their Service names, made the switch a southbound datapath
        datapaths = ("--bare", "--columns=external_ids", "list", "Datapath_Binding")
        eventually(
            lambda: f"neutron-{network.id}" in ctl(box, rendered, ovn_network, ovn.SB, *datapaths).stdout,
            lambda: f"a datapath for the network: {ovn_control_plane.log('northd')}",
        )
    finally:
        conn.network.delete_network(network)
    switches = ctl(ovn_control_plane, deployed.plan, ovn_network, ovn.NB, "ls-list")
    assert f"neutron-{network.id}" not in switches.stdout
