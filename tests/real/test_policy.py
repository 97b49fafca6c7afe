"""Policy overrides and keystone's security compliance, live on keystone 29 from PyPI.

The deployment's keystone (tests/real/deployment.py) is rendered with a policy override that keeps
a custom `auditor` role from listing projects, and with lockout and a password rule; every service's
committed rule list is compared with the package the default release installs.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from stackops.api.releases import DEFAULT_RELEASE
from stackops.services import all_services, policy
from stackops.services.identity import ADMIN_PASSWORD_KEY
from tests.real.conftest import service_venv
from tests.real.deployment import SECURITY_COMPLIANCE, Deployment
from tests.support.commands import run

ENFORCING = sorted(s.name for s in all_services() if policy.policy_config_file(s))
PASSWORD = "Auditor-Pass-2026"
LIST_RULES = """
import json
from importlib.metadata import entry_points
(point,) = [p for p in entry_points(group="oslo.policy.policies") if p.name == __import__("sys").argv[1]]
print(json.dumps(sorted({rule.name for rule in point.load()()})))
"""


@pytest.mark.parametrize("name", ENFORCING)
def test_the_committed_rules_are_the_installed_packages(name: str) -> None:
    bin_dir = service_venv(name, "gunicorn")
    namespace = "keystone" if name == "keystone" else name
    listed = run([str(bin_dir / "python"), "-c", LIST_RULES, namespace], {})
    assert listed.returncode == 0, listed.stderr[-2000:]
    committed = policy.release_policies(DEFAULT_RELEASE)[name]
    print(f"{name}: {committed.package}: {len(committed.rules)} rules")
    assert set(json.loads(listed.stdout)) == committed.rules


def login(keystone: str, user: str, password: str, scope: dict[str, Any] | None = None) -> requests.Response:
    body: dict[str, Any] = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}},
            }
        }
    }
    if scope:
        body["auth"]["scope"] = scope
    return requests.post(f"{keystone}/v3/auth/tokens", json=body, timeout=30)


def local_user(deployed: Deployment, name: str, roles: tuple[str, ...] = ()) -> None:
    identity = deployed.connect().identity
    user = identity.find_user(name, domain_id="default", ignore_missing=True)
    if user is None:
        user = identity.create_user(name=name, password=PASSWORD, domain_id="default")
    domain = identity.get_domain("default")
    for role_name in roles:
        role = identity.find_role(role_name, ignore_missing=True) or identity.create_role(name=role_name)
        identity.assign_domain_role_to_user(domain, user, role)


def list_projects(keystone: str, user: str, password: str, scope: dict[str, Any]) -> int:
    token = login(keystone, user, password, scope)
    assert token.status_code == 201, token.text
    headers = {"X-Auth-Token": token.headers["X-Subject-Token"]}
    return requests.get(f"{keystone}/v3/projects", headers=headers, timeout=30).status_code


def test_a_policy_override_keeps_a_custom_role_from_listing_projects(keystone: str, deployed: Deployment) -> None:
    local_user(deployed, "policy-reader", ("reader",))
    local_user(deployed, "policy-auditor", ("reader", "auditor"))
    on_domain = {"domain": {"id": "default"}}
    admin_scope = {"project": {"name": "admin", "domain": {"id": "default"}}}
    admin_password = deployed.credentials[ADMIN_PASSWORD_KEY]
    assert list_projects(keystone, "admin", admin_password, admin_scope) == 200
    # a reader of the domain lists its projects (keystone's default rule, kept by the override) …
    assert list_projects(keystone, "policy-reader", PASSWORD, on_domain) == 200
    # … and the same reader with the auditor role may not: the override is live
    assert list_projects(keystone, "policy-auditor", PASSWORD, on_domain) == 403


def test_failed_logins_lock_a_user_until_the_configured_time_has_passed(keystone: str, deployed: Deployment) -> None:
    local_user(deployed, "lockout-probe")
    attempts = SECURITY_COMPLIANCE["lockoutFailureAttempts"]
    assert isinstance(attempts, int)
    for _ in range(attempts):
        assert login(keystone, "lockout-probe", "Wrong-Pass-2026").status_code == 401
    locked = login(keystone, "lockout-probe", PASSWORD)
    assert locked.status_code == 401, "the right password must be refused while the user is locked"
    time.sleep(float(SECURITY_COMPLIANCE["lockoutDurationSeconds"]) + 1.5)
    assert login(keystone, "lockout-probe", PASSWORD).status_code == 201


def test_a_password_the_rule_refuses_is_refused_with_its_description(keystone: str, deployed: Deployment) -> None:
    admin_token = deployed.connect().auth_token
    answer = requests.post(
        f"{keystone}/v3/users",
        json={"user": {"name": "weak-password", "password": "short", "domain_id": "default"}},
        headers={"X-Auth-Token": admin_token},
        timeout=30,
    )
    assert answer.status_code == 400
    assert str(SECURITY_COMPLIANCE["passwordRegexDescription"]) in answer.text


def test_the_clouds_own_users_cannot_be_locked_out(placement: str, keystone: str, deployed: Deployment) -> None:
    # placement's registration Job has run: it exempted its user and the admin it ran as
    identity = deployed.connect().identity
    for name in ("admin", "placement"):
        options = identity.find_user(name, domain_id="default").options
        assert options.get("ignore_lockout_failure_attempts") is True, (name, options)
        assert options.get("ignore_password_expiry") is True, (name, options)
    attempts = SECURITY_COMPLIANCE["lockoutFailureAttempts"]
    assert isinstance(attempts, int)
    for _ in range(attempts + 1):
        assert login(keystone, "admin", "Wrong-Pass-2026").status_code == 401
    assert login(keystone, "admin", deployed.credentials[ADMIN_PASSWORD_KEY]).status_code == 201
