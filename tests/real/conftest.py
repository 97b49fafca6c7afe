"""Real services for the tests in this folder: MariaDB from Debian, OpenStack services from PyPI,
and one rendered cloud deployed on them, service by service, in the plan's order."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackops.api.releases import DEFAULT_RELEASE, RELEASES, RUNTIME_LIBRARIES
from tests.real import served
from tests.real.deployment import Deployment, site_packages, wsgi_module
from tests.support.mariadb import MariaDB
from tests.support.rabbitmq import RabbitMQ
from tests.support.service_venv import ensure_venv


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/real/" in str(item.fspath):
            item.add_marker(pytest.mark.real)


def service_venv(service: str, *extra: str) -> Path:
    """bin/ of a virtualenv holding the service's package at the default release's version."""
    release = RELEASES[DEFAULT_RELEASE]
    return ensure_venv(service, [*release.requirements(service), *RUNTIME_LIBRARIES, *extra])


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDB]:
    with MariaDB() as server:
        yield server


@pytest.fixture(scope="session")
def keystone_bin() -> Path:
    return service_venv("keystone", "gunicorn")


@pytest.fixture(scope="session")
def nova_bin() -> Path:
    return service_venv("nova", "gunicorn")


@pytest.fixture(scope="session")
def placement_bin() -> Path:
    return service_venv("placement", "gunicorn")


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitMQ]:
    with served.rabbitmq() as server:
        yield server


@pytest.fixture(scope="session")
def deployed(mariadb: MariaDB, rabbitmq: RabbitMQ, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return Deployment(mariadb, rabbitmq, tmp_path_factory.mktemp("cloud"))


@pytest.fixture(scope="session")
def keystone(deployed: Deployment, keystone_bin: Path) -> Iterator[str]:
    with served.keystone(deployed, keystone_bin) as url:
        yield url


@pytest.fixture(scope="session")
def placement(deployed: Deployment, keystone: str, placement_bin: Path) -> Iterator[str]:
    with served.placement(deployed, placement_bin) as url:
        yield url


@pytest.fixture(scope="session")
def glance_bin() -> Path:
    return service_venv("glance", "gunicorn")


@pytest.fixture(scope="session")
def glance(deployed: Deployment, keystone: str, glance_bin: Path) -> Iterator[str]:
    """Glance deployed as the plan says: database Job, registration Job, db-sync, then the API, with
    glance's own paste pipeline from its package (the Kolla image ships it in /etc/glance)."""
    assert list(deployed.run_jobs("glance", glance_bin)) == ["database", "registration", "db-sync", "metadefs"]
    api = deployed.kolla("Deployment", "glance", "api")
    conf = api.files["/etc/glance/glance-api.conf"]
    shutil.copy(glance_bin.parent / "etc" / "glance" / "glance-api-paste.ini", conf.parent)
    module = wsgi_module(api.files["/etc/glance/glance-api-uwsgi.ini"].read_text(), site_packages(glance_bin))
    env = {**api.env, "OS_GLANCE_CONFIG_DIR": str(conf.parent)}  # the worker URL its cache records use
    with deployed.serve("glance", glance_bin, module, env, "/") as url:
        yield url


@pytest.fixture(scope="session")
def nova(deployed: Deployment, placement: str, glance: str, nova_bin: Path) -> Iterator[str]:
    """Nova deployed as the plan says: its Jobs (databases, messaging user, registration, api db,
    cells, cell db), then conductor, scheduler and the API, each from its rendered config."""
    assert list(deployed.run_jobs("nova", nova_bin)) == served.NOVA_JOBS
    with served.nova_control_plane(deployed, nova_bin) as url:
        yield url


@pytest.fixture(scope="session")
def heat_bin() -> Path:
    return service_venv("heat", "gunicorn")


@pytest.fixture(scope="session")
def heat_jobs(deployed: Deployment, keystone: str, heat_bin: Path) -> dict[str, str]:
    """heat's Jobs, run once in the session's keystone: their output is what a first registration
    prints, whichever test asks first (test_cinder_heat asserts it, test_catalog_cleanup starts from
    the heat they registered)."""
    return deployed.run_jobs("heat", heat_bin)
