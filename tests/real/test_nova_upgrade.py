"""Nova's rolling upgrade for real: 2025.2 (nova 32 from PyPI) to 2026.1 (nova 33).

Keystone and placement serve at 2026.1, as they do when nova's turn comes (they upgrade first).
Nova is deployed at 2025.2 with nova 32: its Jobs, then conductor, scheduler and API. Then the
upgrade Jobs stackops renders for 2025.2 → 2026.1 run with nova 33, their commands taken out of the
upgrade config Secret: the status check (the pre-flight), `api_db sync` and `db sync` while nova 32
serves (its API answers between the steps and keeps what it had); then the roll, nova 33's
conductor, scheduler and API from the new release's config with a compute agent of the new release
(the fake driver standing in for libvirt); then the online data migrations, which leave nothing to
do. Nova's schema has not changed since 2025.1 (its alembic heads are the same in nova 31, 32 and
33): what the test shows is that the rendered commands run on the old database and the old release
keeps working on what the new release migrated.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackops.api.releases import DEFAULT_RELEASE, RELEASES, RUNTIME_LIBRARIES
from tests.real import served
from tests.real.deployment import Deployment, upgrade_jobs
from tests.support.commands import run
from tests.support.mariadb import MariaDB
from tests.support.rabbitmq import RabbitMQ
from tests.support.service_venv import ensure_venv

SOURCE, TARGET = "2025.2", "2026.1"
DATABASES = ("nova_api", "nova_cell0", "nova")


def nova_venv(release: str) -> Path:
    return ensure_venv("nova", [*RELEASES[release].requirements("nova"), *RUNTIME_LIBRARIES, "gunicorn"])


def alembic_heads(bin_dir: Path) -> dict[str, set[str]]:
    """The heads nova's package at `bin_dir` migrates each database to (cell0 is a cell database)."""
    script = (
        "import os, nova\nfrom alembic.script import ScriptDirectory\n"
        "base = os.path.dirname(nova.__file__)\n"
        "for name in ('api', 'main'):\n"
        "    print(name, *ScriptDirectory(os.path.join(base, 'db', name, 'migrations')).get_heads())\n"
    )
    result = run([str(bin_dir / "python"), "-W", "ignore", "-c", script], {}, bin_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    heads = {line.split()[0]: set(line.split()[1:]) for line in result.stdout.splitlines()}
    return {"nova_api": heads["api"], "nova_cell0": heads["main"], "nova": heads["main"]}


@pytest.fixture(scope="module")
def database() -> Iterator[MariaDB]:
    """Servers of their own: the session's hold nova's databases and RabbitMQ user at 2026.1 already."""
    with MariaDB() as server:
        yield server


@pytest.fixture(scope="module")
def messaging() -> Iterator[RabbitMQ]:
    with served.rabbitmq() as server:
        yield server


def test_nova_upgrade_jobs_move_a_real_cloud_from_2025_2_to_2026_1_with_the_api_up_between_steps(
    database: MariaDB, messaging: RabbitMQ, keystone_bin: Path, placement_bin: Path, tmp_path: Path
) -> None:
    old_bin, new_bin = nova_venv(SOURCE), nova_venv(TARGET)
    deployment = Deployment(database, messaging, tmp_path)
    assert deployment.cloud.spec.release == TARGET == DEFAULT_RELEASE  # deployment.plan is the target's
    old, upgrade = deployment.at(SOURCE), deployment.upgrade(SOURCE, TARGET)
    steps = [s.name for s in upgrade.steps if s.service == "nova"]
    assert steps == ["api-db-sync", "db-sync", "roll", "agents", "db-online-migrations"]

    def schema() -> dict[str, set[str]]:
        found = {}
        for name in DATABASES:
            with contextlib.closing(database.connect(database=name)) as conn, conn.cursor() as cur:
                cur.execute("SELECT version_num FROM alembic_version")
                found[name] = {row[0] for row in cur.fetchall()}
        return found

    ran: list[str] = []

    def job(component: str) -> str:
        with deployment.using(upgrade_jobs(upgrade, "nova")):
            result = deployment.kolla_job("nova", component, new_bin)
        assert result.returncode == 0, f"{component}: {result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        ran.append(component)
        return result.stdout

    with served.keystone(deployment, keystone_bin), served.placement(deployment, placement_bin):
        with deployment.using(old):
            assert list(deployment.run_jobs("nova", old_bin)) == served.NOVA_JOBS
            admin = deployment.connect()  # after nova's registration: the catalog has compute
            assert schema() == alembic_heads(old_bin)
            with served.nova_control_plane(deployment, old_bin):
                admin.compute.create_flavor(name="before", ram=512, vcpus=1, disk=1)

                def old_api_serves(after: str) -> None:
                    flavor = admin.compute.create_flavor(name=f"after-{after}", ram=256, vcpus=1, disk=0)
                    assert {"before", flavor.name} <= {f.name for f in admin.compute.flavors()}, after
                    admin.compute.delete_flavor(flavor)

                check = job("upgrade-check")  # the pre-flight: nova-status of the new release
                assert "Upgrade Check Results" in check and "Failure" not in check, check
                old_api_serves("check")
                job("api-db-sync")
                old_api_serves("api-db-sync")
                job("db-sync")
                old_api_serves("db-sync")

        # the roll: nova 33 with the config the new release renders, a compute agent of the new release
        with (
            served.nova_control_plane(deployment, new_bin),
            deployment.running("DaemonSet", "nova", "compute", new_bin, container="nova-compute"),
        ):
            wanted = {"nova-conductor", "nova-scheduler", "nova-compute"}
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                up = {s.binary for s in admin.compute.services() if s.state == "up"}
                if wanted <= up:
                    break
                time.sleep(2)
            assert wanted <= up, up
            assert "before" in {f.name for f in admin.compute.flavors()}
            migrated = job("db-online-migrations")
            assert "Running batches of" in migrated or "online data migrations" in migrated.lower(), migrated
            # a second run finds nothing left: nova would refuse the next upgrade otherwise
            with deployment.using(upgrade_jobs(upgrade, "nova")):
                again = deployment.kolla_job("nova", "db-online-migrations", new_bin)
            assert again.returncode == 0, again.stderr[-3000:]

    assert ran == ["upgrade-check", "api-db-sync", "db-sync", "db-online-migrations"]
    assert schema() == alembic_heads(new_bin)
