"""Real services for the tests in this folder: MariaDB from Debian, OpenStack services from PyPI,
and one rendered cloud deployed on them, service by service, in the plan's order."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackops.api.releases import DEFAULT_RELEASE, RELEASES, RUNTIME_LIBRARIES
from stackops.services.neutron import REMOTES_SCRIPT
from tests.real import served
from tests.real.deployment import Deployment, site_packages, wsgi_module
from tests.support.mariadb import MariaDB
from tests.support.ovn import free_network, host_names, start_databases, start_northd
from tests.support.rabbitmq import RabbitMQ
from tests.support.sandbox import Sandbox
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
def swift_bin() -> Path:
    return service_venv("swift", "keystonemiddleware", "boto3")


@pytest.fixture(scope="session")
def rings(deployed: Deployment, keystone: str, swift_bin: Path) -> str:
    """swift's rings, built once in the session (served.swift_rings: its ring builder's output)."""
    return served.swift_rings(deployed, swift_bin)


@pytest.fixture(scope="session")
def swift(deployed: Deployment, rings: str, swift_bin: Path) -> Iterator[str]:
    """swift serving, with its S3 API, for every test that needs an object store (its own, and the
    backups' uploads)."""
    with served.swift(deployed, swift_bin) as url:
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


@pytest.fixture(scope="session")
def neutron_bin() -> Path:
    return service_venv("neutron", "gunicorn")


@pytest.fixture(scope="session")
def ovn_network() -> str:
    """Where OVN's pods are, on the host's loopback (neutron's server, on the host's network, reaches
    them): a network of this session's, with none of the databases' ports taken when it starts them,
    clear of an OVN the host may run and of another session's (a fixed one was shared: the databases
    of one session then started without their addresses, and its clients used the other's)."""
    return free_network()


@pytest.fixture(scope="session")
def ovn_control_plane(
    deployed: Deployment, ovn_network: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    """The cloud's OVN databases (one member each) and northd; the sandbox resolves the cloud's names."""
    root = tmp_path_factory.mktemp("ovn")
    box = Sandbox(root, host_names(deployed.plan, ovn_network), private_network=False)
    try:
        start_databases(box, deployed.plan, root, ovn_network, deployed.secrets)
        start_northd(box, deployed.plan, root)
        yield box
    finally:
        box.close()


def uwsgi_env(uwsgi_ini: str) -> dict[str, str]:
    """The environment the rendered uWSGI config gives the API's workers (`env = NAME=VALUE`)."""
    pairs = (line.split("=", 1)[1].strip() for line in uwsgi_ini.splitlines() if line.startswith("env ="))
    return dict(pair.split("=", 1) for pair in pairs)


@pytest.fixture(scope="session")
def neutron(deployed: Deployment, keystone: str, neutron_bin: Path, ovn_control_plane: Sandbox) -> Iterator[str]:
    """neutron's Jobs, run once in the session (a first run: the database is created), and its API
    serving with OVN's databases and northd, for every test that needs a network service."""
    outputs = deployed.run_jobs("neutron", neutron_bin)
    assert list(outputs) == ["database", "messaging", "registration", "db-sync"]
    assert "create-database: database neutron created" in outputs["database"]
    api = deployed.kolla("Deployment", "neutron", "api")
    uwsgi = api.files["/etc/neutron/neutron-server-uwsgi.ini"].read_text()
    conf_dir = api.files["/etc/neutron/neutron.conf"].parent
    # Kolla's image ships neutron's paste pipeline in /etc/neutron; the package has it under etc/
    shutil.copy(neutron_bin.parent / "etc" / "neutron" / "api-paste.ini", conf_dir)
    # the rendered command is `/bin/bash ovn-remotes.sh uwsgi …`: the same wrapper, around gunicorn,
    # with /etc as the container has it (ml2_conf.ini names OVN's client certificate there)
    wrapper = api.argv[: api.argv.index(str(api.files[REMOTES_SCRIPT])) + 1]
    sandboxed, sandbox_env = ovn_control_plane.command(wrapper, {})
    sandboxed = [*deployed.container_paths(api, "neutron-api"), *sandboxed]
    env = {**sandbox_env, **api.env, "OS_NEUTRON_CONFIG_DIR": str(conf_dir), **uwsgi_env(uwsgi)}
    module = wsgi_module(uwsgi, site_packages(neutron_bin))
    with deployed.serve("neutron", neutron_bin, module, env, "/", wrapper=sandboxed) as url:
        yield url


@pytest.fixture(scope="session")
def gnocchi_bin() -> Path:
    return service_venv("gnocchi", "gunicorn")


@pytest.fixture(scope="session")
def gnocchi_jobs(deployed: Deployment, keystone: str, gnocchi_bin: Path) -> dict[str, str]:
    return deployed.run_jobs("gnocchi", gnocchi_bin)


@pytest.fixture(scope="module")
def gnocchi(deployed: Deployment, gnocchi_jobs: dict[str, str], gnocchi_bin: Path) -> Iterator[str]:
    """Gnocchi's API (the WSGI module its rendered uWSGI config names) with metricd beside it, as in
    the API's pod, each from its rendered config at the container's paths. For each module that uses
    it, not the session: metricd, looking for measures every second, keeps most of a core busy, which
    the session's other tests need (its storage and index stay between modules)."""
    api = deployed.kolla("Deployment", "gnocchi", "api")
    module = wsgi_module(api.files["/etc/gnocchi/gnocchi-api-uwsgi.ini"].read_text(), site_packages(gnocchi_bin))
    wrapper = deployed.container_paths(api, "gnocchi-api")
    metricd = deployed.kolla("Deployment", "gnocchi", "api", "gnocchi-metricd")
    metricd_paths = deployed.container_paths(metricd, "gnocchi-metricd")
    with (
        deployed.running("Deployment", "gnocchi", "api", gnocchi_bin, "gnocchi-metricd", metricd_paths),
        deployed.serve("gnocchi", gnocchi_bin, module, api.env, "/healthcheck", wrapper=wrapper) as url,
    ):
        yield url
