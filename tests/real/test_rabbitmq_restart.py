"""Every RabbitMQ member killed at once, for real: three servers of Debian's rabbitmq-server on
loopback, booted from the rabbitmq.conf stackops renders, clustered, with a service's user and vhost
made by its rendered messaging Job and an oslo.messaging RPC round trip over quorum queues with the
rendered nova.conf; then SIGKILL to all three together, all three started again on their own data
(what the StatefulSet does with podManagementPolicy Parallel and a volume per pod), and the cluster,
the user, the vhost, the quorum queues and the round trip are back.

What differs from a cloud: peer discovery. The rendered config asks Kubernetes for the members
(`k8s`); here they are listed (`classic_config`). Discovery only runs on a member's first boot: a
member restarting on its data rejoins the members recorded there, which is what this test restarts."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackops.credentials import Credentials
from stackops.devcluster.cluster import free_ports
from stackops.plan import plan
from stackops.services import rabbitmq as rabbitmq_service
from tests.conftest import cloud
from tests.real.deployment import Deployment
from tests.real.test_rabbitmq import RPC_ROUND_TRIP
from tests.support.mariadb import MariaDB
from tests.support.rabbitmq import RabbitMQ, port_mapper
from tests.support.rendered import cloud_credentials, secret_data

MEMBERS = 3


@pytest.fixture
def members() -> Iterator[list[RabbitMQ]]:
    # plaintext: the deployment uses it as an external broker (tests/real/test_rabbitmq_tls.py: TLS)
    own = cloud({"infrastructure": {"messaging": {"replicas": MEMBERS}}, "internalTLS": {"enabled": False}})
    credentials = Credentials(cloud_credentials(own))
    files = secret_data(plan(own, credentials), "demo-rabbitmq-config")
    admin = (rabbitmq_service.ADMIN_USER, credentials[rabbitmq_service.ADMIN_PASSWORD_KEY])
    (epmd_port,) = free_ports(1)
    epmd = port_mapper(epmd_port)
    servers = [RabbitMQ.rendered(files, admin, epmd_port=epmd_port) for _ in range(MEMBERS)]
    listed = [f"cluster_formation.classic_config.nodes.{i} = {s.node}" for i, s in enumerate(servers, 1)]
    for server in servers:
        with (server.root / "rabbitmq.conf").open("a") as conf:
            conf.write("cluster_formation.peer_discovery_backend = classic_config\n" + "\n".join(listed) + "\n")
    try:
        servers[0].start()  # the first forms the cluster, the others join it
        for server in servers[1:]:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()
        epmd.kill()
        epmd.wait()


def running_members(server: RabbitMQ) -> set[str]:
    return {node["name"] for node in server.api("nodes").json() if node.get("running")}


def round_trip(conf: Path, bin_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "python"), "-c", RPC_ROUND_TRIP, str(conf)], capture_output=True, text=True, timeout=180
    )


def test_the_cluster_comes_back_with_its_users_vhosts_and_quorum_queues_after_every_member_was_killed(
    members: list[RabbitMQ], mariadb: MariaDB, nova_bin: Path, tmp_path: Path
) -> None:
    first = members[0]
    names = {server.node for server in members}
    assert running_members(first) == names, first.api("nodes").text
    deployed = Deployment(mariadb, first, tmp_path)
    job = deployed.stackops_job("nova", "messaging")
    assert job.returncode == 0, job.stderr
    conf = deployed.kolla("Deployment", "nova", "conductor").files["/etc/nova/nova.conf"]
    before = round_trip(conf, nova_bin)
    assert before.returncode == 0 and before.stdout.strip() == "pong", before.stderr[-3000:]
    queue = first.api("queues/nova/stackops-test").json()
    assert queue["type"] == "quorum" and set(queue["members"]) == names  # replicated on every member

    killed = time.monotonic()
    for server in members:  # all at once: no member stops last, none gets to say goodbye
        server.kill(signal.SIGKILL)
    for server in members:
        server.launch()  # on their own data, together, as the StatefulSet's pods come back
    deadline = killed + 600
    while time.monotonic() < deadline:
        try:
            if all(server.api("overview").ok for server in members) and running_members(first) == names:
                break
        except Exception:  # still booting: waiting for the members recorded in its data
            pass
        time.sleep(1)
    reformed = time.monotonic() - killed
    assert running_members(first) == names, first.log[-3000:]

    after = round_trip(conf, nova_bin)
    answered = time.monotonic() - killed
    assert after.returncode == 0 and after.stdout.strip() == "pong", after.stderr[-3000:]
    print(f"\nall {MEMBERS} members killed: cluster back after {reformed:.1f} s, RPC answered after {answered:.1f} s")
    # what the cluster held is back: the service's user and vhost, its quorum queue on every member
    assert first.api("vhosts/nova").ok
    assert [p["vhost"] for p in first.api("users/nova/permissions").json()] == ["nova"]
    queue = first.api("queues/nova/stackops-test").json()
    assert queue["type"] == "quorum" and set(queue["members"]) == names
    again = deployed.stackops_job("nova", "messaging")
    assert again.returncode == 0 and "nothing to change" in again.stdout
