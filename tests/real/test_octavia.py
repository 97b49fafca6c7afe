"""Octavia for real, with its OVN provider: octavia 18 and ovn-octavia-provider 10 (2026.1) from PyPI,
on the MariaDB, RabbitMQ, keystone and neutron (with OVN's databases and northd) the other real tests
deploy.

Every Job runs as the operator would run it (database, RabbitMQ user, catalog registration,
`octavia-db-manage upgrade head`). Then the API pod's two containers: the driver agent and the API
(octavia's WSGI module under gunicorn), each started through the rendered ovn-remotes.sh, as their
rendered commands say, in the OVN sandbox, whose hosts file resolves the OVN databases' Service names
as cluster DNS would. Octavia reads its config at the container's path (/etc/octavia/octavia.conf),
so both see /etc overlaid with the rendered files (deployment.py); their sockets are in a directory
both see, as the pod's shared volume.

openstacksdk reaches octavia through the catalog with a keystone token: a load balancer on a
neutron subnet, its listener, pool and member become ACTIVE (the OVN driver in the API writes OVN's
northbound database, the driver agent writes the statuses it reports into octavia's database), and
the northbound database holds the load balancer's row, its VIP balanced to the member; deleted, the
row goes. The service's declared health check lists its provider.
"""

from __future__ import annotations

import configparser
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from stackops.services import octavia as octavia_service
from stackops.services import ovn
from stackops.services.health_checks import LoadBalancerProviders
from tests.real.conftest import service_venv
from tests.real.deployment import Deployment, in_container, site_packages, wsgi_module
from tests.support.mariadb import MariaDB
from tests.support.ovn import ctl
from tests.support.rendered import KollaRun, find
from tests.support.sandbox import Sandbox, eventually

CONF = octavia_service.CONFIG.dest
UWSGI = "/etc/octavia/octavia-api-uwsgi.ini"
AGENT = "octavia-driver-agent"  # the API pod's second container
SUBNET = "10.2.0.0/24"  # a tenant network's, inside OVN only
MEMBER = "10.2.0.10"


@pytest.fixture(scope="module")
def octavia_bin() -> Path:
    return service_venv("octavia", "gunicorn")


@pytest.fixture(scope="module")
def octavia_jobs(deployed: Deployment, keystone: str, octavia_bin: Path) -> dict[str, str]:
    return deployed.run_jobs("octavia", octavia_bin)


def in_api_pod(deployed: Deployment, box: Sandbox, run_: KollaRun, name: str) -> tuple[list[str], dict[str, str]]:
    """A wrapper that runs a command of the API's pod with /etc overlaid with `run_`'s files
    (container_paths), in the OVN sandbox (its hosts file, no name server) with the pod's sockets
    volume at SOCKETS_DIR, and the environment the sandbox's part needs."""
    sandboxed, env = box.command([], {octavia_service.SOCKETS_DIR: sockets(deployed)})
    return [*deployed.container_paths(run_, name), *sandboxed], env


def sockets(deployed: Deployment) -> Path:
    """The API pod's sockets volume, which its two containers share."""
    return deployed.root / "octavia-sockets"


@pytest.fixture(scope="module")
def octavia(
    deployed: Deployment, octavia_jobs: dict[str, str], octavia_bin: Path, neutron: str, ovn_control_plane: Sandbox
) -> Iterator[str]:
    api = deployed.kolla("Deployment", "octavia", "api")
    conf = configparser.RawConfigParser()
    conf.read(api.files[CONF])
    # where the rendered config has the agent listen is where the OVN driver looks (octavia-lib's
    # defaults, whatever [driver_agent] says): in the volume
    status = Path(conf["driver_agent"]["status_socket_path"])
    assert status.parent == Path(octavia_service.SOCKETS_DIR)
    agent = deployed.kolla("Deployment", "octavia", "api", AGENT)
    agent_wrapper, agent_env = in_api_pod(deployed, ovn_control_plane, agent, AGENT)
    # the rendered command is `/bin/bash ovn-remotes.sh uwsgi …`: the same wrapper, around gunicorn
    argv = in_container(api)
    remotes = argv[: argv.index(octavia_service.REMOTES_SCRIPT) + 1]
    api_wrapper, api_env = in_api_pod(deployed, ovn_control_plane, api, "octavia-api")
    module = wsgi_module(api.files[UWSGI].read_text(), site_packages(octavia_bin))
    agent_log = deployed.root / f"{AGENT}.log"
    with deployed.running(
        "Deployment", "octavia", "api", octavia_bin, container=AGENT, wrapper=agent_wrapper, wrapper_env=agent_env
    ):
        # the providers' status updates reach octavia's database through the agent's sockets
        socket = sockets(deployed) / status.name
        eventually(socket.is_socket, lambda: f"the driver agent's socket: {agent_log.read_text()}")
        with deployed.serve(
            "octavia", octavia_bin, module, {**api_env, **api.env}, "/healthcheck", wrapper=[*api_wrapper, *remotes]
        ) as url:
            yield url


def settled(conn: Any, lb: Any) -> Any:
    """The load balancer once its provider has carried out the last change (ACTIVE again)."""
    return conn.load_balancer.wait_for_load_balancer(lb.id, interval=1, wait=120)


def nbctl(box: Sandbox, deployed: Deployment, network: str, *args: str) -> str:
    """ovn-nbctl against the cloud's northbound database, by its members' addresses on `network`."""
    result = ctl(box, deployed.plan, network, ovn.NB, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_octavia_jobs_create_its_database_queue_user_and_catalog_entry(
    octavia_jobs: dict[str, str], deployed: Deployment, mariadb: MariaDB
) -> None:
    assert list(octavia_jobs) == ["database", "messaging", "registration", "db-sync"]
    assert "create-database: database octavia created" in octavia_jobs["database"]
    assert "create-messaging-user: user octavia created" in octavia_jobs["messaging"]
    assert "register-service: service octavia (load-balancer) created" in octavia_jobs["registration"]
    tables = {row[0] for row in mariadb.query("SHOW TABLES", database="octavia")}
    assert {"load_balancer", "listener", "pool", "member", "vip", "alembic_version"} <= tables
    conn = deployed.connect("octavia", octavia_service.SERVICE.keystone_password_key, "service")
    catalog = {entry["type"]: entry for entry in conn.service_catalog}
    assert {e["interface"]: e["url"] for e in catalog["load-balancer"]["endpoints"]} == {
        "public": deployed.urls["octavia"],
        "internal": deployed.urls["octavia"],
    }


def test_a_load_balancer_listener_and_pool_become_active_and_an_ovn_load_balancer(
    octavia: str, deployed: Deployment, ovn_control_plane: Sandbox, ovn_network: str
) -> None:
    conn = deployed.connect()  # the cloud's admin, finding octavia and neutron through the catalog
    network = conn.network.create_network(name="lb-net")
    try:
        subnet = conn.network.create_subnet(network_id=network.id, ip_version=4, cidr=SUBNET)
        lb = conn.load_balancer.create_load_balancer(name="lb0", vip_subnet_id=subnet.id)
        try:
            assert lb.provider == octavia_service.OVN_PROVIDER  # the default provider
            settled(conn, lb)
            listener = conn.load_balancer.create_listener(
                name="tcp80", protocol="TCP", protocol_port=80, load_balancer_id=lb.id
            )
            settled(conn, lb)
            pool = conn.load_balancer.create_pool(
                name="pool0", protocol="TCP", lb_algorithm="SOURCE_IP_PORT", listener_id=listener.id
            )
            settled(conn, lb)
            member = conn.load_balancer.create_member(pool, address=MEMBER, protocol_port=8080, subnet_id=subnet.id)
            lb = settled(conn, lb)
            assert conn.load_balancer.get_listener(listener).provisioning_status == "ACTIVE"
            assert conn.load_balancer.get_pool(pool).provisioning_status == "ACTIVE"
            assert conn.load_balancer.get_member(member, pool).provisioning_status == "ACTIVE"
            assert lb.vip_address in {ip["ip_address"] for ip in conn.network.get_port(lb.vip_port_id).fixed_ips}

            # the row OVN's datapaths balance by, named by the load balancer's ID: its VIP to the member
            row = ["--bare", "find", "Load_Balancer", f"name={lb.id}"]
            (uuid,) = nbctl(ovn_control_plane, deployed, ovn_network, "--columns=_uuid", *row).split()
            listed = nbctl(ovn_control_plane, deployed, ovn_network, "lb-list").splitlines()
            columns = next(line.split() for line in listed if line.startswith(uuid))
            # (lb-list cuts names to 16 characters)
            assert columns == [uuid, lb.id[:16], "tcp", f"{lb.vip_address}:80", f"{MEMBER}:8080"], listed
            external_ids = nbctl(ovn_control_plane, deployed, ovn_network, "--columns=external_ids", *row)
            assert f"listener_{listener.id}" in external_ids and f"pool_{pool.id}" in external_ids, external_ids
        finally:
            conn.load_balancer.delete_load_balancer(lb, cascade=True)
            conn.load_balancer.wait_for_delete(lb, interval=1, wait=120)
        assert uuid not in nbctl(ovn_control_plane, deployed, ovn_network, "lb-list")
        assert not nbctl(ovn_control_plane, deployed, ovn_network, *row).strip()
    finally:
        conn.network.delete_network(network)


def test_the_health_check_lists_the_ovn_provider(octavia: str, deployed: Deployment) -> None:
    api = find(deployed.plan, "Deployment", "octavia", "api")
    probe = api["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"]
    status = requests.get(f"{octavia}{probe}", timeout=10).status_code
    assert 200 <= status < 400, status  # what the kubelet counts as ready (octavia answers 204)
    conn = deployed.connect()
    result = LoadBalancerProviders(octavia_service.SERVICE.providers(deployed.context())).run(conn)
    assert result.ok, result.message
    # a provider the cloud should offer but octavia does not is reported
    amphora = LoadBalancerProviders((octavia_service.OVN_PROVIDER, octavia_service.AMPHORA_PROVIDER)).run(conn)
    assert not amphora.ok and amphora.message == "load balancer providers not offered: amphora", amphora.message
