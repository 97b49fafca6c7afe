"""The images, built with buildah from the debootstrap base, run what a rendered cloud asks of them:
the operator image runs `stackops` and the database Job; the keystone image runs keystone's Jobs and
API from a rendered config.json and keystone.conf, against MariaDB, and answers on /v3."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import openstack
import pytest
import requests
from openstack.identity.v3._proxy import Proxy as IdentityV3

from stackops import __version__
from stackops.devcluster import processes
from stackops.services.base import default_operator_image
from tests.images import pods
from tests.images.build import Buildah
from tests.images.conftest import KEYSTONE_PORT, KEYSTONE_URL, Cloud
from tests.support.mariadb import MariaDB
from tests.support.rendered import find


def test_operator_image_runs_stackops_as_a_non_root_user(buildah: Buildah) -> None:
    with pods.working_container(buildah, default_operator_image()) as name:
        version = buildah.run("run", "--isolation", "chroot", name, "--", "stackops", "--version")
        user = buildah.run("run", "--isolation", "chroot", name, "--", "id", "-u")
    assert version.stdout.strip() == f"stackops {__version__}"
    assert user.stdout.strip() == "65532"


@pytest.fixture(scope="module")
def keystone_database(buildah: Buildah, rendered: Cloud, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The keystone database Job, run in the image it names (the operator image)."""
    job = find(rendered.plan, "Job", "keystone", "database")
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == default_operator_image()
    result = pods.run(buildah, job, rendered.secrets, tmp_path_factory.mktemp("database-job"))
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_database_job_creates_the_database_and_account(
    keystone_database: str, rendered: Cloud, mariadb: MariaDB
) -> None:
    assert "create-database: database keystone created" in keystone_database
    password = rendered.credentials["keystone-database-password"]
    with contextlib.closing(mariadb.connect("keystone", password)) as db, db.cursor() as cursor:
        cursor.execute("SHOW DATABASES")
        assert ("keystone",) in cursor.fetchall()


def run_job(buildah: Buildah, rendered: Cloud, component: str, workdir: Path) -> str:
    job = find(rendered.plan, "Job", "keystone", component)
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["kolla_start"]
    result = pods.run(buildah, job, rendered.secrets, workdir)
    assert result.returncode == 0, f"{component}: {result.stderr[-3000:]}"
    return result.stderr


@pytest.fixture(scope="module")
def keystone_api(
    buildah: Buildah, rendered: Cloud, keystone_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """db-sync and bootstrap Jobs, then the API Deployment's container, all in the keystone image."""
    workdir = tmp_path_factory.mktemp("keystone")
    run_job(buildah, rendered, "db-sync", workdir / "db-sync")
    run_job(buildah, rendered, "bootstrap", workdir / "bootstrap")
    deployment = find(rendered.plan, "Deployment", "keystone", "api")
    options, command = pods.run_options(deployment, rendered.secrets, workdir / "api")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    with pods.working_container(buildah, image) as name:
        log_path = workdir / "api.log"
        # runc hands a container's stdio to the container's user; buildah's chroot isolation keeps
        # root's pipes, so here the command writes through a pipe of its own user, as in a pod.
        own_stdio = ["sh", "-c", '"$@" 2>&1 | cat', "sh"]
        argv = buildah.argv("run", "--isolation", "chroot", *options, name, "--", *own_stdio, *command)
        server = processes.spawn("keystone-api", argv, log_path, die_with_parent=True)
        try:
            wait_until_answering(f"{KEYSTONE_URL}/v3", server, log_path)
            yield KEYSTONE_URL
        finally:
            stop(server)


def wait_until_answering(url: str, server: processes.Process, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        # the first request loads keystone into a uWSGI worker: seconds
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=15).status_code == 200:
                return
        if not processes.alive(server.pid) or time.monotonic() > deadline:
            raise AssertionError(f"keystone did not answer at {url}:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.5)


def stop(server: processes.Process) -> None:
    """uWSGI's master and workers run in the container's process group: stop them all, and wait
    until the port is free again."""
    processes.stop(server, str(server.log), timeout=20)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", KEYSTONE_PORT)) != 0:
                return
        time.sleep(0.2)


def test_keystone_api_answers_v3(keystone_api: str) -> None:
    version = requests.get(f"{keystone_api}/v3", timeout=5).json()["version"]
    assert version["id"].startswith("v3.") and version["status"] == "stable"


def test_keystone_issues_tokens_and_lists_its_catalog(keystone_api: str, rendered: Cloud) -> None:
    """A token needs the fernet keys from their Secret volume and the bootstrap data in MariaDB."""
    conn = openstack.connect(
        auth_url=f"{keystone_api}/v3",
        username="admin",
        password=rendered.credentials["keystone-admin-password"],
        project_name="admin",
        user_domain_name="Default",
        project_domain_name="Default",
        region_name="RegionOne",
    )
    assert conn.authorize()
    assert isinstance(conn.identity, IdentityV3)  # the SDK picks the proxy by the API version: /v3 here
    identity = [s for s in conn.identity.services() if s.type == "identity"]
    assert len(identity) == 1
    endpoints = {e.interface: e.url for e in conn.identity.endpoints(service_id=identity[0].id)}
    assert endpoints == {"admin": keystone_api, "internal": keystone_api, "public": keystone_api}
