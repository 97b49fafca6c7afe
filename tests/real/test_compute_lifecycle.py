"""The compute lifecycle against real nova, with nova's FAKE DRIVER: two nova-compute agents (hosts
stackops-fake-a and stackops-fake-b) on loopback against the real control plane of the other real
tests (nova 33 API, conductor and scheduler, placement, keystone, glance, and neutron with OVN,
which nova asks about port bindings before a live migration). The fake driver stands in for
libvirt because libvirt cannot live-migrate between two hosts on one machine; everything else is
nova's own: the API, the conductor's live-migration task, the scheduler, RPC between the agents,
placement's allocations, the migration records.

The code under test is the operator's own: stackops.openstack.compute.look_after_hosts, the function
its compute timer calls, with an openstacksdk connection as the cloud's admin and the Nodes the
operator would read (node names that differ from the nova hosts, mapped by their Hostname address).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from stackops.api.models import ComputeSpec, ComputeStatus
from stackops.devcluster import processes
from stackops.openstack.compute import HostsLook, look_after_hosts
from stackops.openstack.host_lifecycle import MAINTENANCE_ANNOTATION, POLICY_METADATA, maintenance_reason, node_view
from tests.real.deployment import LOCAL_FIELDS, Deployment
from tests.support.rendered import find, kolla_run

HOST_A, HOST_B, HOST_C = "stackops-fake-a", "stackops-fake-b", "stackops-fake-c"
COMPUTE_LABELS = {"stackops.dev/compute": "true"}
# live migration asks neutron whether it binds ports on two hosts at once
pytestmark = pytest.mark.usefixtures("neutron")


def node(name: str, host: str, *, maintenance: bool = False, ready: bool = True, since: str = "") -> dict[str, Any]:
    """A Node as the API server shows it: its nova host is its Hostname address, not its name."""
    condition = {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": since or None}
    return {
        "metadata": {
            "name": name,
            "labels": COMPUTE_LABELS,
            "annotations": {MAINTENANCE_ANNOTATION: "true"} if maintenance else {},
        },
        "spec": {"unschedulable": maintenance},
        "status": {"addresses": [{"type": "Hostname", "address": host}], "conditions": [condition]},
    }


class Computes:
    """nova-compute agents from the rendered DaemonSet's config, each with its own host name and
    state directory (a config file after the rendered one, as a group's overrides would be)."""

    def __init__(self, deployed: Deployment, bin_dir: Path, stack: ExitStack) -> None:
        self.deployed, self.bin_dir, self.stack = deployed, bin_dir, stack
        self.running: dict[str, processes.Process] = {}

    def start(self, host: str) -> None:
        deployed, root = self.deployed, self.deployed.root
        # its files under a root of its own: the API's /etc/nova/nova.conf (with the databases) stays,
        # for a gunicorn worker that restarts
        workload = find(deployed.plan, "DaemonSet", "nova", "compute")
        run_ = kolla_run(deployed.plan, workload, root / host, deployed.secrets, "nova-compute", LOCAL_FIELDS)
        overlay = root / f"{host}.conf"
        overlay.write_text(f"[DEFAULT]\nhost = {host}\nstate_path = {root / host / 'state'}\n")
        (root / host / "state").mkdir(exist_ok=True)
        env = {"PATH": f"{self.bin_dir}:{os.environ['PATH']}", "HOME": str(root), **run_.env}
        log = root / f"nova-compute-{host}.log"
        process = processes.spawn(host, [*run_.argv, "--config-file", str(overlay)], log, die_with_parent=True, env=env)
        self.running[host] = process
        self.stack.callback(self.stop, host)

    def stop(self, host: str) -> None:
        process = self.running.pop(host, None)
        if process is not None:
            processes.stop(process, str(self.deployed.root), timeout=15)

    def log(self, host: str) -> str:
        return processes.tail(self.deployed.root / f"nova-compute-{host}.log", 40)


def until(check: Callable[[], Any], what: Callable[[], str], timeout: float = 120, pause: float = 2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out: {what()}"
        time.sleep(pause)


@pytest.fixture(scope="module")
def computes(nova: str, deployed: Deployment, nova_bin: Path) -> Iterator[Computes]:
    conn = deployed.connect()
    with ExitStack() as stack:
        agents = Computes(deployed, nova_bin, stack)
        for host in (HOST_A, HOST_B):
            agents.start(host)

        def registered() -> bool:
            up = {s.host for s in conn.compute.services(binary="nova-compute") if s.state == "up"}
            providers = {p.name for p in conn.placement.resource_providers()}
            mapped = {h.name for h in conn.compute.hypervisors()}
            return {HOST_A, HOST_B} <= up & providers & mapped

        until(registered, lambda: agents.log(HOST_A) + agents.log(HOST_B))
        yield agents
        forget_hosts(conn, agents)


def forget_hosts(conn: Any, agents: Computes) -> None:
    """Leave the session's nova as the other tests found it (test_nova counts one compute host,
    its own). Servers go while their agents still run (nova refuses to delete a service that hosts
    some), then the agents stop and their services go, taking their compute nodes and placement
    resource providers with them."""
    hosts = {HOST_A, HOST_B, HOST_C}
    servers = [s for s in conn.compute.servers(all_projects=True) if s.compute_host in hosts]
    for server in servers:
        conn.compute.delete_server(server)
    for server in servers:
        conn.compute.wait_for_delete(server, wait=60)
    for host in list(agents.running):
        agents.stop(host)
    for record in conn.compute.services(binary="nova-compute"):
        if record.host in hosts:
            conn.compute.delete_service(record)
    leftovers = {p.name for p in conn.placement.resource_providers()} & hosts
    assert not leftovers, f"resource providers left behind: {leftovers}"


@pytest.fixture(scope="module")
def flavor_and_image(computes: Computes, deployed: Deployment) -> Iterator[tuple[Any, Any]]:
    conn = deployed.connect()
    flavor = conn.compute.create_flavor(name=f"lifecycle-{uuid.uuid4().hex[:6]}", ram=64, vcpus=1, disk=0)
    image = conn.image.create_image(
        name="lifecycle", data=b"\0" * 1024, disk_format="raw", container_format="bare", allow_duplicates=True
    )
    yield flavor, image
    conn.compute.delete_flavor(flavor)
    conn.image.delete_image(image)


def boot(conn: Any, flavor_and_image: tuple[Any, Any], name: str, host: str, **metadata: str) -> Any:
    flavor, image = flavor_and_image
    server = conn.compute.create_server(
        name=name,
        flavor_id=flavor.id,
        image_id=image.id,
        networks="none",
        availability_zone=f"nova:{host}",  # an admin's way of naming the host
        metadata=metadata,
    )
    return conn.compute.wait_for_server(server, status="ACTIVE", wait=120)


def look(conn: Any, nodes: list[dict[str, Any]], previous: ComputeStatus, spec: ComputeSpec) -> HostsLook:
    views = [node_view(n, COMPUTE_LABELS) for n in nodes]
    return look_after_hosts(conn, views, spec, previous, time.time())


def service(conn: Any, host: str) -> Any:
    return next((s for s in conn.compute.services(binary="nova-compute") if s.host == host), None)


def test_fake_driver_maintenance_drains_a_host_by_live_migration_then_removal_waits_for_it_to_be_empty(
    computes: Computes, flavor_and_image: tuple[Any, Any], deployed: Deployment
) -> None:
    conn = deployed.connect()
    moving = [boot(conn, flavor_and_image, f"moves-{i}", HOST_A) for i in range(2)]
    stays = boot(conn, flavor_and_image, "stops", HOST_A, **{POLICY_METADATA: "Stop"})
    assert {conn.compute.get_server(s.id).compute_host for s in [*moving, stays]} == {HOST_A}
    spec = ComputeSpec.model_validate({"maintenance": {"concurrency": 1, "timeout": 120}})
    in_maintenance = [node("node-a", HOST_A, maintenance=True), node("node-b", HOST_B)]

    status = ComputeStatus()
    first = look(conn, in_maintenance, status, spec)
    status = first.status
    assert status.hosts == {"node-a": HOST_A, "node-b": HOST_B}
    disabled = service(conn, HOST_A)
    assert (disabled.status, disabled.disabled_reason) == ("disabled", maintenance_reason("node-a"))
    record = status.maintenance["node-a"]
    assert record.phase == "Draining" and len(record.moving) == 1  # the concurrency cap
    assert [n.reason for n in first.notes] == ["NodeDraining"]
    started = time.monotonic()

    def drained() -> bool:
        nonlocal status
        status = look(conn, in_maintenance, status, spec).status
        return status.maintenance["node-a"].phase != "Draining"

    until(drained, lambda: f"{status.maintenance['node-a']}\n{computes.log(HOST_A)}\n{computes.log(HOST_B)}", 240)
    record = status.maintenance["node-a"]
    print(f"drained in {time.monotonic() - started:.0f}s: {record.message}")
    assert record.phase == "Drained", record
    assert record.instances == 1 and not record.failed  # the server whose policy is Stop stays, stopped
    for server in moving:
        found = conn.compute.get_server(server.id)
        assert (found.compute_host, found.status) == (HOST_B, "ACTIVE")
        [migration] = list(conn.compute.migrations(server_id=server.id))
        assert (migration.migration_type, migration.status) == ("live-migration", "completed")
        assert (migration.source_compute, migration.dest_compute) == (HOST_A, HOST_B)
    stopped = conn.compute.get_server(stays.id)
    assert (stopped.compute_host, stopped.status) == (HOST_A, "SHUTOFF")

    # the annotation removed: stackops enables what it disabled
    ended = look(conn, [node("node-a", HOST_A), node("node-b", HOST_B)], status, spec)
    status = ended.status
    assert service(conn, HOST_A).status == "enabled" and not status.maintenance
    assert [n.reason for n in ended.notes] == ["MaintenanceEnded"]

    # node-a deleted: its agent stops; nova-compute must be down and its host empty before it goes
    computes.stop(HOST_A)
    only_b = [node("node-b", HOST_B)]

    def refused() -> bool:
        nonlocal status
        status = look(conn, only_b, status, spec).status
        return status.removal.get("node-a", "").startswith("refused")

    until(refused, lambda: str(status.removal), timeout=150, pause=5)
    assert status.removal["node-a"] == f"refused: 1 servers remain on {HOST_A} ({stays.id}); move or delete them"
    assert service(conn, HOST_A) is not None

    conn.compute.delete_server(stays)
    conn.compute.wait_for_delete(stays, wait=60)
    removed = look(conn, only_b, status, spec)
    assert [n.reason for n in removed.notes] == ["ComputeHostRemoved"]
    assert removed.status.hosts == {"node-b": HOST_B} and not removed.status.removal
    assert service(conn, HOST_A) is None
    assert HOST_A not in {p.name for p in conn.placement.resource_providers()}
    for server in moving:
        conn.compute.delete_server(server)


def test_fake_driver_dead_host_is_forced_down_and_evacuated_and_stays_forced_down_until_nova_allows(
    computes: Computes, flavor_and_image: tuple[Any, Any], deployed: Deployment
) -> None:
    conn = deployed.connect()
    computes.start(HOST_C)
    until(lambda: HOST_C in {h.name for h in conn.compute.hypervisors()}, lambda: computes.log(HOST_C))
    victim = boot(conn, flavor_and_image, "evacuated", HOST_B)
    spec = ComputeSpec.model_validate({"evacuate": True, "deadHostGraceSeconds": 30})
    status = ComputeStatus(hosts={"node-b": HOST_B, "node-c": HOST_C})
    computes.stop(HOST_B)  # the host died
    dead = [node("node-b", HOST_B, ready=False, since="2026-01-01T00:00:00Z"), node("node-c", HOST_C)]

    first = look(conn, dead, status, spec)
    status = first.status
    assert service(conn, HOST_B).is_forced_down
    assert status.dead["node-b"].forced_down and list(status.dead["node-b"].evacuating) == [victim.id]
    assert first.notes[0].reason == "ComputeHostDead"

    def evacuated() -> bool:
        nonlocal status
        status = look(conn, dead, status, spec).status
        server = conn.compute.get_server(victim.id)
        # since compute API 2.95 an evacuated server is left stopped at its destination
        return server.compute_host == HOST_C and server.status in ("ACTIVE", "SHUTOFF") and not server.task_state

    until(evacuated, lambda: f"{status.dead}\n{computes.log(HOST_C)}", 180)
    [migration] = [m for m in conn.compute.migrations(server_id=victim.id) if m.migration_type == "evacuation"]
    assert migration.status in ("done", "completed"), migration

    # the node is back, its agent not yet: nova keeps the force-down until nova-compute has restarted
    # and completed the evacuations (it deletes its copies of the evacuated servers)
    alive = [node("node-b", HOST_B), node("node-c", HOST_C)]
    status = look(conn, alive, status, spec).status
    assert "force-down stays until nova accepts lifting it" in status.dead["node-b"].message
    # (nova-compute with the fake driver cannot start again on a host it ran on: it keeps no local
    # node identity, and nova refuses such a restart; the lift after it is in the unit tests)
    assert service(conn, HOST_B).is_forced_down
    conn.compute.delete_server(victim)
