"""Manila for real, from manila 22 (2026.1) on MariaDB, RabbitMQ and keystone, its LVM backend on a
volume group of a loop device this test makes (Debian's lvm2).

Every Job runs as the operator would run it (database, RabbitMQ user, the share and sharev2
registrations, `manila-manage db sync`); then the API serves the WSGI module its rendered uWSGI
config names, the default share type Job makes its type through the catalog, and the scheduler, the
data service and the share service run from their rendered configs. Manila reads its files at the
container's paths (/etc/manila), so its processes see /etc overlaid with the rendered files, the
paste pipeline and rootwrap filters the image ships; the rootwrap config lists the virtualenv among
its exec_dirs, as the image's build makes it (privsep-helper is found there). The share service runs
as root here, as the storage pod's privileged container does through sudo: a `sudo` that runs its
command stands in for the image's.

The share service starts its LVM driver on the volume group (its privsep daemon lists the volume
groups through rootwrap), reports its pool to the scheduler, and a share of the default type is
placed on the storage node's LVM pool. Creating its logical volume needs the kernel's device-mapper;
a kernel without it (this machine's has neither device-mapper nor an NFS server) leaves the share in
`error` with lvcreate's own words, which the last test reports as an expected failure. Exports go
to loopback only (the pod's node address is 127.0.0.1 here).
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stackops.api.releases import DEFAULT_RELEASE, RELEASES, RUNTIME_LIBRARIES, SUPPORTED_RELEASES
from stackops.services import manila as manila_service
from stackops.services.health_checks import ShareServices
from tests.real.conftest import service_venv
from tests.real.deployment import (
    MANILA_VOLUME_GROUP,
    STORAGE_NODE,
    Deployment,
    site_packages,
    upgrade_jobs,
    wsgi_module,
)
from tests.support.mariadb import MariaDB
from tests.support.sandbox import eventually
from tests.support.service_venv import ensure_venv

ETC = "/etc/manila"
# the head revision of a manila package's migrations, from its alembic scripts
HEAD = """
import os, alembic.config, alembic.script, manila.db.migrations.alembic as m
config = alembic.config.Config(os.path.join(os.path.dirname(m.__file__), "alembic.ini"))
config.set_main_option("script_location", "manila.db.migrations.alembic:")
print(*alembic.script.ScriptDirectory.from_config(config).get_heads())
"""
MICROVERSION = "2.50"
POOL = f"{STORAGE_NODE}@{manila_service.BACKEND}#lvm-single-pool"


def kernel_has_device_mapper() -> bool:
    """Whether the running kernel has device-mapper (/dev/mapper/control is made by lvm2's tools
    whether or not it has: the kernel's list of block devices says)."""
    return "device-mapper" in Path("/proc/devices").read_text()


@pytest.fixture(scope="module")
def manila_bin() -> Path:
    return service_venv("manila", "gunicorn")


@pytest.fixture(scope="module")
def manila_jobs(deployed: Deployment, keystone: str, manila_bin: Path) -> dict[str, str]:
    return deployed.run_jobs("manila", manila_bin, until="default-share-type")


def image_files(deployed: Deployment, manila_bin: Path) -> dict[str, Path]:
    """What the image has in /etc/manila beside the rendered files: the package's paste pipeline and
    rootwrap filters, and rootwrap's config with the virtualenv among its exec_dirs."""
    etc = manila_bin.parent / "etc" / "manila"
    here = deployed.root / "manila-image"
    here.mkdir(exist_ok=True)
    rootwrap = here / "rootwrap.conf"
    text = (etc / "rootwrap.conf").read_text()
    rootwrap.write_text(re.sub(r"(?m)^exec_dirs=.*$", lambda m: f"{m[0]},{manila_bin}", text))
    return {
        f"{ETC}/api-paste.ini": etc / "api-paste.ini",
        f"{ETC}/rootwrap.conf": rootwrap,
        f"{ETC}/rootwrap.d/share.filters": etc / "rootwrap.d" / "share.filters",
    }


@pytest.fixture(scope="module")
def manila(deployed: Deployment, manila_jobs: dict[str, str], manila_bin: Path) -> Iterator[str]:
    api = deployed.kolla("Deployment", "manila", "api")
    module = wsgi_module(api.files[f"{ETC}/manila-api-uwsgi.ini"].read_text(), site_packages(manila_bin))
    wrapper = deployed.container_paths(api, "manila-api", image_files(deployed, manila_bin))
    with deployed.serve("manila", manila_bin, module, api.env, "/healthcheck", wrapper=wrapper) as url:
        yield url


@pytest.fixture(scope="module")
def volume_group(deployed: Deployment) -> Iterator[str]:
    """The storage node's volume group, on a loop device of a sparse file (1.2 GiB: one 1 GiB share)."""
    backing = deployed.root / "manila-pv.img"
    subprocess.run(["truncate", "-s", "1200M", str(backing)], check=True)
    device = subprocess.run(
        ["losetup", "--find", "--show", str(backing)], check=True, capture_output=True, text=True
    ).stdout.strip()
    quiet = {"LVM_SUPPRESS_FD_WARNINGS": "1", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    try:
        subprocess.run(["pvcreate", "-q", device], check=True, env=quiet)
        subprocess.run(["vgcreate", "-q", MANILA_VOLUME_GROUP, device], check=True, env=quiet)
        yield MANILA_VOLUME_GROUP
    finally:
        subprocess.run(["vgremove", "-q", "-f", MANILA_VOLUME_GROUP], check=False, env=quiet)
        subprocess.run(["pvremove", "-q", device], check=False, env=quiet)
        subprocess.run(["losetup", "-d", device], check=False)
        backing.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def services(deployed: Deployment, manila: str, manila_bin: Path, volume_group: str) -> Iterator[dict[str, Path]]:
    """The scheduler, the data service and the share service, each from its rendered config; their logs."""
    shim = deployed.root / "manila-sudo"
    shim.mkdir(exist_ok=True)
    (shim / "sudo").write_text('#!/bin/sh\nexec "$@"\n')  # root already, as the storage pod's container
    (shim / "sudo").chmod(0o755)
    extra = image_files(deployed, manila_bin)
    share = deployed.kolla("DaemonSet", "manila", "share")
    wrapper = deployed.container_paths(share, "manila-share", extra)
    env = {"PATH": f"{shim}:{manila_bin}:/usr/sbin:/usr/bin:/sbin:/bin"}
    with (
        deployed.running("Deployment", "manila", "scheduler", manila_bin),
        deployed.running("Deployment", "manila", "data", manila_bin),
        deployed.running("DaemonSet", "manila", "share", manila_bin, wrapper=wrapper, wrapper_env=env),
    ):
        yield {name: deployed.root / f"manila-{name}.log" for name in ("scheduler", "data", "share")}


def share_api(deployed: Deployment) -> Any:
    return deployed.connect().shared_file_system


def listed(deployed: Deployment, path: str, key: str) -> list[dict[str, Any]]:
    response = share_api(deployed).get(path, microversion=MICROVERSION)
    assert response.status_code == 200, response.text
    return list(response.json()[key])


def test_manila_jobs_create_its_database_queue_user_and_both_catalog_entries(
    manila_jobs: dict[str, str], deployed: Deployment, mariadb: MariaDB
) -> None:
    assert list(manila_jobs) == ["database", "messaging", "registration", "registration-manilav2", "db-sync"]
    assert "create-database: database manila created" in manila_jobs["database"]
    assert "register-service: service manila (share) created" in manila_jobs["registration"]
    assert "register-service: service manilav2 (sharev2) created" in manila_jobs["registration-manilav2"]
    assert "user manila created" not in manila_jobs["registration-manilav2"]  # one user for both
    tables = {row[0] for row in mariadb.query("SHOW TABLES", database="manila")}
    assert {"shares", "share_instances", "share_types", "services", "alembic_version"} <= tables

    conn = deployed.connect("manila", manila_service.SERVICE.keystone_password_key, "service")
    catalog = {entry["type"]: entry for entry in conn.service_catalog}
    for kind in ("share", "sharev2"):
        urls = {e["interface"]: e["url"] for e in catalog[kind]["endpoints"]}
        assert urls == {"public": f"{deployed.urls['manila']}/v2", "internal": f"{deployed.urls['manila']}/v2"}


def test_the_default_share_type_job_makes_the_type_through_the_catalog(manila: str, deployed: Deployment) -> None:
    first = deployed.stackops_job("manila", "default-share-type")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "create-share-type: share type default created"
    again = deployed.stackops_job("manila", "default-share-type")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "create-share-type: nothing to change"
    (default,) = [t for t in listed(deployed, "/types", "share_types") if t["name"] == "default"]
    assert default["extra_specs"]["driver_handles_share_servers"] == "False"
    assert default["extra_specs"]["snapshot_support"] == "True"
    # manila.conf names it: the type a share created without one gets
    response = share_api(deployed).get("/types/default", microversion=MICROVERSION)
    assert response.status_code == 200, response.text
    assert response.json()["share_type"]["name"] == "default"


def test_the_share_service_reports_the_volume_groups_pool_and_the_health_check_passes(
    services: dict[str, Path], deployed: Deployment
) -> None:
    def states() -> dict[str, str]:
        return {s["binary"]: s["state"] for s in listed(deployed, "/services", "services")}

    def up() -> bool:
        return states() == {"manila-scheduler": "up", "manila-data": "up", "manila-share": "up"}

    eventually(up, lambda: f"every service up: {states()} {services['share'].read_text()[-3000:]}", timeout=60)
    share_hosts = [s["host"] for s in listed(deployed, "/services", "services") if s["binary"] == "manila-share"]
    assert share_hosts == [f"{STORAGE_NODE}@lvm"]  # named after its node, as the DaemonSet's pod is

    def pooled() -> bool:
        return POOL in {p["name"] for p in listed(deployed, "/scheduler-stats/pools/detail", "pools")}

    eventually(pooled, lambda: f"the LVM pool: {services['share'].read_text()[-3000:]}", timeout=90)
    (pool,) = [p for p in listed(deployed, "/scheduler-stats/pools/detail", "pools") if p["name"] == POOL]
    capabilities = pool["capabilities"]
    # the volume group's size, as vgs reports it through the privsep daemon
    assert 1.0 <= float(capabilities["total_capacity_gb"]) <= 1.2, capabilities
    assert capabilities["driver_handles_share_servers"] is False
    assert capabilities["storage_protocol"] == "NFS_CIFS"
    result = ShareServices().run(deployed.connect())
    assert result.ok, result.message


@pytest.fixture(scope="module")
def share(services: dict[str, Path], deployed: Deployment) -> Iterator[dict[str, Any]]:
    """A 1 GiB NFS share of the default type, once it is no longer being created."""
    api = share_api(deployed)
    created = api.post(
        "/shares", json={"share": {"share_proto": "NFS", "size": 1, "name": "probe"}}, microversion=MICROVERSION
    )
    assert created.status_code == 200, created.text
    share_id = created.json()["share"]["id"]

    def settled() -> dict[str, Any]:
        response = api.get(f"/shares/{share_id}", microversion=MICROVERSION)
        return dict(response.json()["share"])

    deadline = time.monotonic() + 120
    while (found := settled())["status"] == "creating" and time.monotonic() < deadline:
        time.sleep(1)
    yield found
    api.post(f"/shares/{share_id}/action", json={"force_delete": None}, microversion=MICROVERSION)


def test_a_share_of_the_default_type_is_placed_on_the_storage_nodes_lvm_pool(share: dict[str, Any]) -> None:
    assert share["share_type_name"] == "default"
    assert share["host"] == POOL, share
    assert share["status"] != "creating", share


def test_the_share_becomes_available_on_the_lvm_backend(
    share: dict[str, Any], services: dict[str, Path], deployed: Deployment
) -> None:
    if share["status"] == "error" and not kernel_has_device_mapper():
        log = services["share"].read_text()
        command = next(line for line in log.splitlines() if "Command: lvcreate" in line).split("Command: ", 1)[1]
        stderr = next(line for line in log.splitlines() if "Stderr:" in line and "device-mapper" in line)
        pytest.xfail(f"this kernel has no device-mapper: {command}: {stderr.split('Stderr: ', 1)[1]}")
    assert share["status"] == "available", share
    locations = listed(deployed, f"/shares/{share['id']}/export_locations", "export_locations")
    assert [loc["path"].split(":", 1)[0] for loc in locations] == ["127.0.0.1"]


def test_the_upgrade_to_the_next_release_checks_and_syncs_the_database_with_the_next_manila(
    manila_jobs: dict[str, str], deployed: Deployment, mariadb: MariaDB
) -> None:
    """The upgrade to the next release: its pre-flight `manila-status upgrade check` and its db sync
    Job as rendered for the upgrade, run with that release's manila from PyPI on the database this
    release's made (while this release's services run, as in a rolling upgrade)."""
    target = SUPPORTED_RELEASES[SUPPORTED_RELEASES.index(DEFAULT_RELEASE) + 1]
    new_bin = ensure_venv("manila", [*RELEASES[target].requirements("manila"), *RUNTIME_LIBRARIES])
    upgrade = deployed.upgrade(DEFAULT_RELEASE, target)
    outputs = {}
    with deployed.using(upgrade_jobs(upgrade, "manila")):
        for component in ("upgrade-check", "db-sync"):
            result = deployed.kolla_job("manila", component, new_bin)
            assert result.returncode == 0, f"{component}: {result.stdout[-2000:]} {result.stderr[-2000:]}"
            outputs[component] = result.stdout
    assert "Upgrade Check Results" in outputs["upgrade-check"]
    (revision,) = mariadb.query("SELECT version_num FROM alembic_version", database="manila")
    heads = subprocess.run(
        [str(new_bin / "python"), "-c", HEAD], check=True, capture_output=True, text=True
    ).stdout.split()
    assert [revision[0]] == heads  # the next release's schema
