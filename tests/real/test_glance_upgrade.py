"""Glance's metadata definitions across an upgrade, for real: 2025.2 (glance 31 from PyPI) to 2026.1
(glance 32).

A cloud rendered at 2025.2 gets its glance database, db-sync and metadefs Jobs run with glance 31;
then the upgrade's expand, migrate and contract Jobs and the new release's metadefs Job (a Job of a
new name: its image is in its name's hash) run with glance 32. After each, the catalog in glance's
database holds exactly the namespaces and resource types that release's package ships.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackops.api.releases import RELEASES, RUNTIME_LIBRARIES
from stackops.plan import Plan
from tests.real.deployment import Deployment, upgrade_jobs
from tests.support.mariadb import MariaDB
from tests.support.rabbitmq import RabbitMQ
from tests.support.service_venv import ensure_venv

SOURCE, TARGET = "2025.2", "2026.1"


def glance_venv(release: str) -> Path:
    return ensure_venv("glance", [*RELEASES[release].requirements("glance"), *RUNTIME_LIBRARIES, "gunicorn"])


def shipped(bin_dir: Path) -> tuple[set[str], set[str]]:
    """Namespaces and resource types in the metadefs files of the package at `bin_dir`."""
    files = [json.loads(f.read_text()) for f in (bin_dir.parent / "etc" / "glance" / "metadefs").glob("*.json")]
    namespaces = {f["namespace"] for f in files}
    return namespaces, {rt["name"] for f in files for rt in f.get("resource_type_associations", [])}


@pytest.fixture(scope="module")
def database() -> Iterator[MariaDB]:
    """A server of its own: the session's MariaDB holds a glance database at 2026.1 already."""
    with MariaDB() as server:
        yield server


def test_the_metadefs_catalog_is_what_each_release_ships_after_install_and_after_the_upgrade(
    database: MariaDB, rabbitmq: RabbitMQ, tmp_path: Path
) -> None:
    old_bin, new_bin = glance_venv(SOURCE), glance_venv(TARGET)
    deployment = Deployment(database, rabbitmq, tmp_path)
    old, new, upgrade = deployment.at(SOURCE), deployment.at(TARGET), deployment.upgrade(SOURCE, TARGET)
    assert [s.name for s in upgrade.steps if s.service == "glance"] == [
        "db-expand",
        "db-migrate",
        "roll",
        "db-contract",
    ]

    def catalog() -> tuple[set[str], set[str]]:
        with contextlib.closing(database.connect(database="glance")) as conn, conn.cursor() as cur:
            cur.execute("SELECT namespace FROM metadef_namespaces")
            namespaces = [row[0] for row in cur.fetchall()]
            cur.execute("SELECT name FROM metadef_resource_types")
            types = [row[0] for row in cur.fetchall()]
        assert len(namespaces) == len(set(namespaces)) and len(types) == len(set(types)), "nothing loaded twice"
        return set(namespaces), set(types)

    def job(cloud_plan: Plan, component: str, bin_dir: Path) -> None:
        with deployment.using(cloud_plan):
            if component == "database":
                result = deployment.stackops_job("glance", component)
            else:
                result = deployment.kolla_job("glance", component, bin_dir)
        assert result.returncode == 0, f"{component}: {result.stderr[-3000:]}"

    for component in ("database", "db-sync", "metadefs"):
        job(old, component, old_bin)
    assert len(shipped(old_bin)[0]) > 20
    assert catalog() == shipped(old_bin)

    for component in ("upgrade-check", "db-expand", "db-migrate", "db-contract"):
        job(upgrade_jobs(upgrade, "glance"), component, new_bin)
    job(new, "metadefs", new_bin)
    print(f"metadefs: {SOURCE} ships {len(shipped(old_bin)[0])} namespaces, {TARGET} {len(shipped(new_bin)[0])}")
    assert catalog() == shipped(new_bin)
