"""Nova for real, from the nova 33 package (2026.1) on MariaDB and RabbitMQ: the rendered Jobs create
the api, cell0 and cell1 databases and map the cells; conductor, scheduler and API run from their
rendered config; a compute agent (nova's fake driver standing in for libvirt) registers itself, the
scheduler's periodic host discovery maps it into cell1 and placement gets its resource provider."""

from __future__ import annotations

import time
from pathlib import Path

from stackops.services import service
from stackops.services.nova import SERVICE as NOVA
from tests.real.deployment import Deployment
from tests.support.commands import run


def test_cells_are_mapped_once(nova: str, deployed: Deployment, nova_bin: Path) -> None:
    again = deployed.kolla_job("nova", "cell-setup", nova_bin)
    assert again.returncode == 0, again.stderr
    assert "cell1 exists" in again.stdout
    conf = deployed.kolla("Job", "nova", "db-sync").files["/etc/nova/nova.conf"]
    cells = run([str(nova_bin / "nova-manage"), "--config-file", str(conf), "cell_v2", "list_cells"], {}, nova_bin)
    names = {line.split("|")[1].strip() for line in cells.stdout.splitlines() if line.startswith("|")} - {"Name"}
    assert names == {"cell0", "cell1"}


def test_compute_services_and_a_new_hypervisor(nova: str, deployed: Deployment, nova_bin: Path) -> None:
    conn = deployed.connect("nova", NOVA.keystone_password_key, "service")
    catalog = {entry["type"]: entry for entry in conn.service_catalog}
    assert {e["interface"] for e in catalog["compute"]["endpoints"]} == {"public", "internal"}
    flavor = conn.compute.create_flavor(name="m1.tiny", ram=512, vcpus=1, disk=1)
    assert flavor.id in {f.id for f in conn.compute.flavors()}
    conn.compute.delete_flavor(flavor)

    with deployed.running("DaemonSet", "nova", "compute", nova_bin, container="nova-compute"):
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            services = {(s.binary, s.state) for s in conn.compute.services()}
            hypervisors = list(conn.compute.hypervisors())
            providers = list(conn.placement.resource_providers())
            if {("nova-conductor", "up"), ("nova-scheduler", "up"), ("nova-compute", "up")} <= services and (
                hypervisors and providers
            ):
                break
            time.sleep(2)
        assert {("nova-conductor", "up"), ("nova-scheduler", "up"), ("nova-compute", "up")} <= services
        # discovered into cell1 by the scheduler (no Job), and reported to placement
        assert len(hypervisors) == 1 and [p.name for p in providers] == [hypervisors[0].name]
        # the operator's health checks of nova see the same
        for check in service("nova").health_checks(deployed.context()):
            result = check.run(conn)
            assert result.ok, f"{check.name}: {result.message}"
