"""Horizon for real, from the horizon 25.x package (2026.1): the rendered local_settings.py is what
Django loads, passes Django's system checks, and a dashboard served with it logs a user in through
the real keystone, its session in horizon's own database on the real MariaDB (created by the rendered
database and db-sync Jobs), none in the cloud's memcached.

The rendered file takes the place of openstack_dashboard/local/local_settings.py through a `local`
package first on the path, so the cached virtualenv is never written to. The dashboard runs in a
sandbox whose /etc/hosts resolves the cloud's memcached names to a real memcached of the test's: had
the settings named memcached for anything, horizon would have written there.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from stackops.credentials import Credentials
from stackops.devcluster import processes
from stackops.devcluster.cluster import free_ports
from stackops.plan import plan
from stackops.services import horizon as horizon_service
from stackops.services import memcached
from stackops.services.identity import ADMIN_PASSWORD_KEY
from tests.conftest import cloud
from tests.real.conftest import service_venv
from tests.real.deployment import Deployment, site_packages, wsgi_module
from tests.support.commands import run
from tests.support.mariadb import MariaDB
from tests.support.rendered import cloud_credentials, secret_data
from tests.support.sandbox import Sandbox

SHOW_SETTINGS = """
import json, django
django.setup()
from django.conf import settings
from django.core.cache import caches
names = ["SECRET_KEY", "OPENSTACK_KEYSTONE_URL", "OPENSTACK_SSL_CACERT", "SESSION_ENGINE", "DATABASES",
         "SESSION_TIMEOUT", "DEBUG"]
print(json.dumps({**{n: getattr(settings, n) for n in names}, "cache": type(caches["default"]).__name__}))
"""


@pytest.fixture(scope="module")
def horizon_bin() -> Path:
    return service_venv("horizon", "gunicorn")


def settings_path(root: Path, local_settings: str) -> dict[str, str]:
    """The environment that makes Django load `local_settings` as horizon's local settings."""
    local = root / "local"
    local.mkdir(parents=True, exist_ok=True)
    (local / "__init__.py").write_text("")
    (local / "local_settings.py").write_text(local_settings)
    return {"PYTHONPATH": str(root), "DJANGO_SETTINGS_MODULE": "openstack_dashboard.settings"}


def django(bin_dir: Path, env: dict[str, str], *argv: str) -> str:
    result = run([str(bin_dir / "python"), *argv], env, bin_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_rendered_settings_are_what_django_loads(horizon_bin: Path, tmp_path: Path) -> None:
    spec = cloud({"services": {"horizon": {"settings": {"SESSION_TIMEOUT": 600}}}})
    credentials = Credentials(cloud_credentials(spec))
    env = settings_path(tmp_path, secret_data(plan(spec, credentials), "demo-horizon-config")["local_settings.py"])
    loaded: dict[str, Any] = json.loads(django(horizon_bin, env, "-c", SHOW_SETTINGS).strip().splitlines()[-1])
    assert loaded["SECRET_KEY"] == credentials[horizon_service.SECRET_KEY_KEY]
    # keystone's internal endpoint serves TLS, verified with the cloud's CA beside the settings
    assert loaded["OPENSTACK_KEYSTONE_URL"] == "https://demo-keystone-api.openstack.svc:5000/v3"
    assert loaded["OPENSTACK_SSL_CACERT"] == "/etc/openstack-dashboard/ca.crt"
    assert loaded["SESSION_ENGINE"] == "django.contrib.sessions.backends.db"
    database = loaded["DATABASES"]["default"]
    assert (database["ENGINE"], database["HOST"], database["NAME"]) == (
        "django.db.backends.mysql", "demo-mariadb.openstack.svc", "horizon",
    )  # fmt: skip
    assert database["PASSWORD"] == credentials[horizon_service.DATABASE_PASSWORD_KEY]
    assert loaded["cache"] == "LocMemCache"
    assert (loaded["SESSION_TIMEOUT"], loaded["DEBUG"]) == (600, False)
    checked = run([str(horizon_bin / "django-admin"), "check"], env, horizon_bin)
    assert checked.returncode == 0 and "System check identified no issues" in checked.stdout, checked.stderr[-3000:]


def free_memcached_address(port: int = memcached.PORT) -> str:
    """A loopback address of the host where memcached's port is free (another session may run one)."""
    for n in range(200, 255):
        with socket.socket() as probe:
            try:
                probe.bind((f"127.0.{n}.1", port))
            except OSError:
                continue
            return f"127.0.{n}.1"
    raise RuntimeError("no loopback address with memcached's port free")


def memcached_stats(address: str) -> dict[str, str]:
    """memcached's own counters (`stats`), over its text protocol."""
    with socket.create_connection((address, memcached.PORT), timeout=10) as conn:
        conn.sendall(b"stats\r\n")
        answer = b""
        while not answer.endswith(b"END\r\n"):
            chunk = conn.recv(65536)
            assert chunk, answer
            answer += chunk
    return {f[1]: f[2] for f in (line.split() for line in answer.decode().splitlines()) if f[0] == "STAT"}


@pytest.fixture(scope="module")
def cloud_memcached(deployed: Deployment) -> Iterator[tuple[str, dict[str, str]]]:
    """A real memcached where the cloud's memcached names resolve (the names, for a Sandbox's
    /etc/hosts): its address, and those names."""
    address = free_memcached_address()
    log = deployed.root / "memcached.log"
    server = processes.spawn(
        "memcached", ["memcached", "-u", "root", "-l", address, "-p", str(memcached.PORT), "-U", "0"], log,
        die_with_parent=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                memcached_stats(address)
                break
            except OSError:
                assert time.monotonic() < deadline, processes.tail(log, 20)
                time.sleep(0.2)
        hosts = {}
        for server_address in memcached.servers(deployed.context()):
            name = server_address.rsplit(":", 1)[0]
            hosts[name] = hosts[f"{name}.cluster.local"] = address
        yield address, hosts
    finally:
        processes.stop(server, str(deployed.root), timeout=15)


@pytest.fixture(scope="module")
def dashboards(
    deployed: Deployment, keystone: str, horizon_bin: Path, cloud_memcached: tuple[str, dict[str, str]]
) -> Iterator[tuple[str, str]]:
    """Two replicas of the dashboard of a cloud whose keystone is the real one, deployed as the plan
    says: horizon's database Job, its db-sync Job (Django's session table), then each replica started
    as its container starts: static files collected and compressed (its settings ask for offline
    compression), then served, with the deployment's settings (STATIC_ROOT its only one)."""
    assert keystone == deployed.urls["keystone"]  # the cloud's keystone endpoints name it
    root = deployed.root / "horizon"
    files = secret_data(deployed.plan, "demo-horizon-config")
    env = settings_path(root, files["local_settings.py"])
    created = deployed.stackops_job("horizon", "database")
    assert created.returncode == 0 and "database horizon created" in created.stdout, created.stderr[-3000:]
    sync = deployed.kolla("Job", "horizon", "db-sync")
    migrated = run(sync.argv, {**sync.env, **env}, horizon_bin)
    assert migrated.returncode == 0 and "Applying sessions.0001_initial... OK" in migrated.stdout, migrated.stderr
    for command in (["collectstatic", "--noinput"], ["compress", "--force"]):
        result = run([str(horizon_bin / "django-admin"), *command], env, horizon_bin)
        assert result.returncode == 0, result.stderr[-3000:]
    module = wsgi_module(files["horizon-dashboard-uwsgi.ini"], site_packages(horizon_bin))
    (root / "sandbox").mkdir()
    box = Sandbox(root / "sandbox", cloud_memcached[1], private_network=False)
    try:
        wrapper, box_env = box.command([], {})
        [second] = free_ports(1)
        with (
            deployed.serve("horizon", horizon_bin, module, {**box_env, **env}, "/auth/login/", wrapper=wrapper) as one,
            deployed.serve(
                "horizon", horizon_bin, module, {**box_env, **env}, "/auth/login/", wrapper=wrapper, port=second
            ) as two,
        ):
            yield one, two
    finally:
        box.close()


def test_dashboard_logs_in_through_keystone_and_keeps_the_session_in_its_database(
    dashboards: tuple[str, str], deployed: Deployment, mariadb: MariaDB, cloud_memcached: tuple[str, dict[str, str]]
) -> None:
    dashboard, other_replica = dashboards
    with requests.Session() as session:
        login = session.get(f"{dashboard}/auth/login/", timeout=60)
        assert login.status_code == 200 and 'name="username"' in login.text
        region = re.search(r'name="region" value="([^"]*)"', login.text)
        assert region is not None
        answer = session.post(
            f"{dashboard}/auth/login/",
            data={
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
                "region": region.group(1),
                "username": "admin",
                "password": deployed.credentials[ADMIN_PASSWORD_KEY],
            },
            headers={"Referer": f"{dashboard}/auth/login/"},
            timeout=60,
        )
        # logged in: sent on to the project dashboard (which may refuse a cloud with no compute service yet)
        assert answer.history and answer.history[0].status_code == 302, answer.text[-2000:]
        assert answer.url == f"{dashboard}/project/" and "sessionid" in session.cookies
        # the dashboard's own API lists keystone's projects with the logged-in user's token
        projects = session.get(
            f"{dashboard}/api/keystone/projects/", headers={"X-Requested-With": "XMLHttpRequest"}, timeout=60
        )
        assert projects.status_code == 200, projects.text[-2000:]
        assert "admin" in {p["name"] for p in projects.json()["items"]}
        identity = session.get(f"{dashboard}/identity/", timeout=60)
        assert identity.status_code == 200
        session_id = session.cookies["sessionid"]
    # the session is a row of horizon's own table in MariaDB ...
    rows = mariadb.query("SELECT session_key FROM django_session WHERE expire_date > NOW()", database="horizon")
    assert (session_id,) in rows
    # ... and nothing of it, nor anything else, was ever written to the cloud's memcached
    stats = memcached_stats(cloud_memcached[0])
    assert (stats["total_items"], stats["curr_items"], stats["cmd_set"]) == ("0", "0", "0"), stats
    # the cookie alone logs in at the other replica, which never saw the session: it reads the row
    with requests.Session() as other:
        other.cookies.set("sessionid", session_id)
        again = other.get(f"{other_replica}/identity/", timeout=60)
        assert again.status_code == 200 and not again.history, [r.url for r in again.history]
        assert "/auth/logout/" in again.text
    # the page links the stylesheet that compression made when the dashboard started (uWSGI serves
    # /static in the container; gunicorn here does not)
    css = re.search(r'href="/static/(dashboard/css/[^"]+\.css)"', identity.text)
    assert css is not None and (deployed.root / "horizon" / "static" / css.group(1)).is_file()
