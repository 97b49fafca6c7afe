"""Keystone for real: the rendered Jobs' commands run against MariaDB and keystone 29 from PyPI
(see tests/real/deployment.py for how), then openstacksdk finds what bootstrap registered."""

from __future__ import annotations

from typing import Any

import openstack
import pytest
import requests

from stackops.credentials import rotate_fernet
from tests.real.deployment import Deployment
from tests.support.rendered import secret_data


def admin(deployed: Deployment) -> Any:
    return deployed.connect()


def test_admin_authenticates_and_finds_the_identity_endpoints(keystone: str, deployed: Deployment) -> None:
    conn = admin(deployed)
    services = [s for s in conn.identity.services() if s.type == "identity"]
    assert len(services) == 1
    endpoints = {e.interface: e.url for e in conn.identity.endpoints(service_id=services[0].id)}
    assert endpoints == {"admin": keystone, "internal": keystone, "public": keystone}
    # The catalog is not just stored: the SDK reaches keystone through it.
    assert "admin" in {u.name for u in conn.identity.users()}
    assert conn.identity.get_region("RegionOne").id == "RegionOne"


def test_a_wrong_password_is_refused(keystone: str) -> None:
    conn = openstack.connect(
        auth_url=f"{keystone}/v3",
        username="admin",
        password="not-the-password",
        project_name="admin",
        user_domain_name="Default",
        project_domain_name="Default",
    )
    with pytest.raises(openstack.exceptions.SDKException, match="401"):
        conn.authorize()


def test_database_job_is_idempotent_and_keeps_the_secret_as_truth(keystone: str, deployed: Deployment) -> None:
    again = deployed.stackops_job("keystone", "database")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "create-database: nothing to change"
    assert admin(deployed).identity.get_region("RegionOne")  # keystone still reaches its database


def test_database_job_with_a_wrong_admin_password_fails_clearly(keystone: str, deployed: Deployment) -> None:
    secrets = {**deployed.secrets, "db-admin": {**deployed.secrets["db-admin"], "password": "wrong"}}
    result = deployed.stackops_job("keystone", "database", secrets)
    assert result.returncode == 1
    assert "access denied" in result.stderr and "Traceback" not in result.stderr


def test_tokens_survive_a_fernet_rotation_until_their_key_is_pruned(keystone: str, deployed: Deployment) -> None:
    token = admin(deployed).auth_token
    keys = secret_data(deployed.plan, "demo-keystone-fernet-keys")

    def valid(subject: str) -> bool:
        checker = admin(deployed).auth_token  # issued with the current primary key
        headers = {"X-Auth-Token": checker, "X-Subject-Token": subject}
        return requests.get(f"{keystone}/v3/auth/tokens", headers=headers, timeout=10).status_code == 200

    try:
        assert valid(token)
        max_active = deployed.cloud.spec.services.keystone.fernet.max_active_keys
        rotated = rotate_fernet(keys, max_active)
        deployed.write_keys("fernet-keys", rotated)
        assert valid(token), "a token made with the previous primary key must stay valid after one rotation"
        deployed.write_keys("fernet-keys", rotate_fernet(rotated, max_active))
        assert not valid(token), "the key that made the token was pruned, so the token must be refused"
    finally:
        deployed.write_keys("fernet-keys", keys)  # later tests authenticate with the rendered keys
