"""Keystone's rolling upgrade for real: 2025.2 (keystone 28 from PyPI) to 2026.1 (keystone 29).

A cloud rendered at 2025.2 is deployed on MariaDB with keystone 28, as in test_keystone.py. Then the
upgrade Jobs stackops renders for 2025.2 → 2026.1 run, their commands taken out of the upgrade
config Secret's config.json files, with keystone 29's package: the status check, db_sync --expand
and --migrate while keystone 28 serves, then keystone 29 serving the API as the roll renders it,
then db_sync --contract. Between every two steps the API answers /v3 and validates a token issued
by the old release; at the end the database has keystone 29's schema.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from stackops.api.releases import RELEASES, RUNTIME_LIBRARIES
from stackops.plan import Plan
from tests.real.deployment import KEYSTONE_CONF, Deployment, site_packages, upgrade_jobs, wsgi_module
from tests.support.commands import run
from tests.support.mariadb import MariaDB
from tests.support.rabbitmq import RabbitMQ
from tests.support.service_venv import ensure_venv

SOURCE, TARGET = "2025.2", "2026.1"


def keystone_venv(release: str) -> Path:
    packages = RELEASES[release]
    return ensure_venv(
        "keystone", [packages.packages["keystone"], *packages.constraints, *RUNTIME_LIBRARIES, "gunicorn"]
    )


def heads(bin_dir: Path) -> set[str]:
    """The alembic heads (expand and contract branch) keystone's package at `bin_dir` migrates to."""
    versions = site_packages(bin_dir) / "keystone" / "common" / "sql" / "migrations" / "versions"
    return {(versions / name).read_text().strip() for name in ("EXPAND_HEAD", "CONTRACT_HEAD")}


@pytest.fixture(scope="module")
def database() -> Iterator[MariaDB]:
    """A server of its own: the session's MariaDB holds a keystone database at 2026.1 already."""
    with MariaDB() as server:
        yield server


@contextlib.contextmanager
def keystone_api(deployment: Deployment, cloud_plan: Plan, bin_dir: Path) -> Iterator[str]:
    """Keystone's API as `cloud_plan` renders it, served by the package at `bin_dir`."""
    with deployment.using(cloud_plan):
        served = deployment.kolla("Deployment", "keystone", "api")
    wsgi = served.files["/etc/keystone/keystone-api-uwsgi.ini"].read_text()
    env = {"OS_KEYSTONE_CONFIG_FILES": f"{served.files[KEYSTONE_CONF]};{deployment.overlay}"}
    with deployment.serve("keystone", bin_dir, wsgi_module(wsgi, site_packages(bin_dir)), env, "/v3") as url:
        yield url


class Api:
    """Checks that keystone serves: /v3, a new token, and the token issued before the upgrade began."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.first_token = ""
        self.checks = 0

    def check(self, url: str, release: str) -> None:
        version = requests.get(f"{url}/v3", timeout=10)
        assert version.status_code == 200 and version.json()["version"]["id"] == "v3.14", version.text
        token = self.deployment.connect().auth_token
        self.first_token = self.first_token or token
        headers = {"X-Auth-Token": token, "X-Subject-Token": self.first_token}
        assert requests.get(f"{url}/v3/auth/tokens", headers=headers, timeout=10).status_code == 200, release
        self.checks += 1


@pytest.mark.xfail(
    strict=False,
    reason="keystone-status loads keystone's token and receipt providers before it parses its config "
    "files, so they look for keys at the default /etc/keystone/fernet-keys/, never at the test's overlay; "
    "the upgrade Jobs mount the key Secrets there (tests/unit/test_upgrade_plan.py), which a process run "
    "on this host cannot have without writing to /etc",
)
def test_expand_migrate_contract_move_a_real_database_with_the_api_up_between_steps(
    database: MariaDB, rabbitmq: RabbitMQ, tmp_path: Path
) -> None:
    old_bin, new_bin = keystone_venv(SOURCE), keystone_venv(TARGET)
    deployment = Deployment(database, rabbitmq, tmp_path)
    old, new, upgrade = deployment.at(SOURCE), deployment.at(TARGET), deployment.upgrade(SOURCE, TARGET)
    steps = [s.name for s in upgrade.steps if s.service == "keystone"]
    assert steps == ["db-expand", "db-migrate", "roll", "db-contract"]

    def schema() -> set[str]:
        with contextlib.closing(database.connect(database="keystone")) as conn, conn.cursor() as cur:
            cur.execute("SELECT version_num FROM alembic_version")
            return {row[0] for row in cur.fetchall()}

    def sync_check(bin_dir: Path) -> int:
        """`keystone-manage db_sync --check` of the package at `bin_dir`: 0 when nothing is left to do."""
        with deployment.using(new):
            conf = deployment.kolla("Job", "keystone", "db-sync").files[KEYSTONE_CONF]
        return run(["keystone-manage", "--config-file", str(conf), "db_sync", "--check"], {}, bin_dir).returncode

    with deployment.using(old):
        assert list(deployment.run_jobs("keystone", old_bin)) == ["database", "db-sync", "bootstrap"]
    assert schema() == heads(old_bin) != heads(new_bin)
    assert sync_check(new_bin) != 0  # keystone 29 sees the database behind

    api = Api(deployment)
    ran: list[str] = []
    with deployment.using(upgrade_jobs(upgrade, "keystone")):

        def job(component: str) -> None:
            result = deployment.kolla_job("keystone", component, new_bin)
            assert result.returncode == 0, f"{component}: {result.stderr[-3000:]}"
            ran.append(component)

        with keystone_api(deployment, old, old_bin) as url:
            api.check(url, SOURCE)
            job("upgrade-check")  # the pre-flight: keystone-status of the new release
            api.check(url, SOURCE)
            job("db-expand")
            assert heads(new_bin) - heads(old_bin) <= schema()  # keystone 29's expand head is there
            api.check(url, SOURCE)  # and keystone 28 still serves on it
            job("db-migrate")
            api.check(url, SOURCE)

    # the roll: keystone 29 serves with the config the new release renders
    with keystone_api(deployment, new, new_bin) as url:
        api.check(url, TARGET)
        with deployment.using(upgrade_jobs(upgrade, "keystone")):
            result = deployment.kolla_job("keystone", "db-contract", new_bin)
        assert result.returncode == 0, result.stderr[-3000:]
        ran.append("db-contract")
        api.check(url, TARGET)
        assert deployment.connect().identity.get_region("RegionOne").id == "RegionOne"

    assert ran == ["upgrade-check", "db-expand", "db-migrate", "db-contract"] and api.checks == 6
    assert schema() == heads(new_bin)
    assert sync_check(new_bin) == 0
