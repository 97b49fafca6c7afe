"""Horizon for real, from the horizon 25.x package (2026.1): the rendered local_settings.py is what
Django loads, passes Django's system checks, and a dashboard served with it logs a user in through
the real keystone.

The rendered file takes the place of openstack_dashboard/local/local_settings.py through a `local`
package first on the path, so the cached virtualenv is never written to.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from stackops.credentials import Credentials
from stackops.plan import plan
from stackops.services import horizon as horizon_service
from stackops.services.identity import ADMIN_PASSWORD_KEY
from tests.conftest import cloud
from tests.real.conftest import service_venv
from tests.real.deployment import Deployment, site_packages, wsgi_module
from tests.support.commands import run
from tests.support.rendered import cloud_credentials, secret_data

SHOW_SETTINGS = """
import json, django
django.setup()
from django.conf import settings
from django.core.cache import caches
names = ["SECRET_KEY", "OPENSTACK_KEYSTONE_URL", "SESSION_ENGINE", "CACHES", "SESSION_TIMEOUT", "DEBUG"]
print(json.dumps({**{n: getattr(settings, n) for n in names}, "cache": type(caches["default"]).__name__}))
"""


@pytest.fixture(scope="module")
def horizon_bin() -> Path:
    # Django's memcached backend needs pymemcache, which the Kolla image has (through tooz[memcached])
    return service_venv("horizon", "gunicorn", "pymemcache")


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
    assert loaded["OPENSTACK_KEYSTONE_URL"] == "http://demo-keystone-api.openstack.svc:5000/v3"
    assert loaded["SESSION_ENGINE"] == "django.contrib.sessions.backends.cache"
    assert loaded["CACHES"]["default"]["LOCATION"] == ["demo-memcached-0.demo-memcached.openstack.svc:11211"]
    assert loaded["cache"] == "PyMemcacheCache"
    assert (loaded["SESSION_TIMEOUT"], loaded["DEBUG"]) == (600, False)
    checked = run([str(horizon_bin / "django-admin"), "check"], env, horizon_bin)
    assert checked.returncode == 0 and "System check identified no issues" in checked.stdout, checked.stderr[-3000:]


@pytest.fixture(scope="module")
def dashboard(deployed: Deployment, keystone: str, horizon_bin: Path) -> Iterator[str]:
    """The dashboard of a cloud whose keystone is the real one, started as its container starts:
    static files collected and compressed (its settings ask for offline compression), then served.
    With no memcached here, sessions go to Django's in-process cache: a setting a user could write."""
    root = deployed.root / "horizon"
    settings = {
        "CACHES": {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        "STATIC_ROOT": str(root / "static"),
    }
    own = cloud(
        {
            "services": {
                "keystone": {"endpoints": {"public": keystone, "internal": keystone}},
                "horizon": {"settings": settings},
            }
        }
    )
    rendered = plan(own, Credentials(cloud_credentials(own, deployed.credentials.values())))
    files = secret_data(rendered, "demo-horizon-config")
    env = settings_path(root, files["local_settings.py"])
    for command in (["collectstatic", "--noinput"], ["compress", "--force"]):
        result = run([str(horizon_bin / "django-admin"), *command], env, horizon_bin)
        assert result.returncode == 0, result.stderr[-3000:]
    module = wsgi_module(files["horizon-dashboard-uwsgi.ini"], site_packages(horizon_bin))
    with deployed.serve("horizon", horizon_bin, module, env, "/auth/login/") as url:
        yield url


def test_dashboard_logs_in_through_keystone(dashboard: str, deployed: Deployment) -> None:
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
    # the page links the stylesheet that compression made when the dashboard started (uWSGI serves
    # /static in the container; gunicorn here does not)
    css = re.search(r'href="/static/(dashboard/css/[^"]+\.css)"', identity.text)
    assert css is not None and (deployed.root / "horizon" / "static" / css.group(1)).is_file()
