"""Barbican for real, from barbican 22 (2026.1) on MariaDB, RabbitMQ and keystone.

Every Job runs as the operator would run it (database, RabbitMQ user, catalog registration,
`barbican-manage db upgrade`); then the API serves the WSGI module its rendered uWSGI config names,
with the worker and the keystone listener beside it, each from its rendered config. Barbican reads
its files at the container's paths (/etc/barbican) whatever its command line says, so its processes
see /etc overlaid with the rendered files and the paste pipeline the image ships (deployment.py).

openstacksdk reaches it through the catalog with a keystone token: a secret stored comes back byte
for byte, and is found in barbican's database encrypted under a project key that the KEK of the
credentials Secret decrypts; an order is carried out by the worker; a project keystone deletes
loses its secrets through the listener, which hears of it from keystone's notifications.
"""

from __future__ import annotations

import base64
import configparser
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from stackops.services import barbican as barbican_service
from stackops.services.health_checks import SecretsListed
from tests.real.conftest import service_venv
from tests.real.deployment import Deployment, site_packages, wsgi_module
from tests.support.mariadb import MariaDB
from tests.support.rendered import secret_data
from tests.support.sandbox import eventually

CONF = barbican_service.CONFIG.dest
PASTE = "/etc/barbican/barbican-api-paste.ini"  # what the image ships (images/service/Containerfile)


@pytest.fixture(scope="module")
def barbican_bin() -> Path:
    return service_venv("barbican", "gunicorn")


@pytest.fixture(scope="module")
def barbican_jobs(deployed: Deployment, keystone: str, barbican_bin: Path) -> dict[str, str]:
    return deployed.run_jobs("barbican", barbican_bin)


@pytest.fixture(scope="module")
def barbican(deployed: Deployment, barbican_jobs: dict[str, str], barbican_bin: Path) -> Iterator[str]:
    api = deployed.kolla("Deployment", "barbican", "api")
    module = wsgi_module(api.files["/etc/barbican/barbican-api-uwsgi.ini"].read_text(), site_packages(barbican_bin))
    paste = barbican_bin.parent / "etc" / "barbican" / "barbican-api-paste.ini"
    wrapper = deployed.container_paths(api, "barbican-api", {PASTE: paste})
    with (
        deployed.running("Deployment", "barbican", "worker", barbican_bin),
        deployed.running("Deployment", "barbican", "keystone-listener", barbican_bin),
        deployed.serve("barbican", barbican_bin, module, api.env, "/healthcheck", wrapper=wrapper) as url,
    ):
        yield url


def store(conn: Any, payload: bytes, name: str) -> str:
    """A secret of `payload` stored through the catalog's key-manager endpoint: its id."""
    secret = conn.key_manager.create_secret(
        name=name,
        payload=base64.b64encode(payload).decode(),
        payload_content_type="application/octet-stream",
        payload_content_encoding="base64",
        secret_type="opaque",
    )
    return str(secret.secret_ref).rsplit("/", 1)[1]


def payload_of(conn: Any, secret_id: str) -> bytes:
    response = conn.key_manager.get(f"/secrets/{secret_id}/payload", headers={"Accept": "application/octet-stream"})
    assert response.status_code == 200, response.text
    return bytes(response.content)


def test_barbican_jobs_create_its_database_queue_user_and_catalog_entry(
    barbican_jobs: dict[str, str], deployed: Deployment, mariadb: MariaDB
) -> None:
    assert list(barbican_jobs) == ["database", "messaging", "registration", "db-sync"]
    assert "create-database: database barbican created" in barbican_jobs["database"]
    assert "create-messaging-user: user barbican created" in barbican_jobs["messaging"]
    assert "register-service: service barbican (key-manager) created" in barbican_jobs["registration"]
    tables = {row[0] for row in mariadb.query("SHOW TABLES", database="barbican")}
    assert {"secrets", "encrypted_data", "kek_data", "orders", "alembic_version"} <= tables

    conn = deployed.connect("barbican", barbican_service.SERVICE.keystone_password_key, "service")
    catalog = {entry["type"]: entry for entry in conn.service_catalog}
    assert {e["interface"]: e["url"] for e in catalog["key-manager"]["endpoints"]} == {
        "public": deployed.urls["barbican"],
        "internal": deployed.urls["barbican"],
    }


def test_the_rendered_kek_is_the_credentials_secrets(deployed: Deployment) -> None:
    conf = configparser.RawConfigParser(strict=False)
    conf.read_string(secret_data(deployed.plan, "demo-barbican-config")["barbican.conf"])
    kek = deployed.credentials[barbican_service.KEK_KEY]
    assert conf["simple_crypto_plugin"]["kek"] == kek
    assert len(base64.urlsafe_b64decode(kek)) == 32
    # keystone's own config holds no such key: only barbican's Secret does
    assert kek not in secret_data(deployed.plan, "demo-keystone-config")["keystone.conf"]


def test_a_secret_comes_back_byte_identical_encrypted_under_the_kek_of_the_credentials_secret(
    barbican: str, deployed: Deployment, mariadb: MariaDB
) -> None:
    conn = deployed.connect()
    assert conn.key_manager.get_endpoint() == f"{barbican}/v1/"  # found from the unversioned catalog URL
    payload = os.urandom(64) + b"\x00\xff stackops"
    secret_id = store(conn, payload, "probe")
    assert payload_of(conn, secret_id) == payload

    # the database holds the payload encrypted under the project's key, and that key encrypted under
    # the KEK stackops generated: the credentials Secret's key decrypts both, so it is the one used
    ((cypher_text, plugin_meta),) = mariadb.query(
        "SELECT e.cypher_text, k.plugin_meta FROM encrypted_data e JOIN kek_data k ON e.kek_id = k.id "
        "WHERE e.secret_id = %s",
        secret_id,
        database="barbican",
    )
    assert payload not in base64.b64decode(cypher_text)
    project_key = Fernet(deployed.credentials[barbican_service.KEK_KEY]).decrypt(plugin_meta)
    assert Fernet(project_key).decrypt(base64.b64decode(cypher_text)) == payload
    conn.key_manager.delete_secret(secret_id)


def test_the_worker_carries_out_an_order(barbican: str, deployed: Deployment) -> None:
    conn = deployed.connect()
    created = conn.key_manager.create_order(
        type="key", meta={"name": "generated", "algorithm": "aes", "bit_length": 256, "mode": "cbc"}
    )
    order_id = str(created.order_ref).rsplit("/", 1)[1]
    deadline = time.monotonic() + 60
    while (order := conn.key_manager.get_order(order_id)).status == "PENDING" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert order.status == "ACTIVE", (order.status, order.error_reason)
    secret_id = str(order.secret_ref).rsplit("/", 1)[1]
    assert len(payload_of(conn, secret_id)) == 32  # 256 bits, made by the worker
    conn.key_manager.delete_secret(secret_id)
    conn.key_manager.delete_order(order_id)


def test_a_deleted_projects_secrets_go_with_it(barbican: str, deployed: Deployment, mariadb: MariaDB) -> None:
    """keystone sends `identity.project.deleted` to barbican's topic; the listener deletes the
    project's secrets."""
    admin = deployed.connect()
    project = admin.identity.create_project(name="doomed", domain_id="default")
    user = admin.identity.find_user("admin")
    admin.identity.assign_project_role_to_user(project, user, admin.identity.find_role("admin"))
    member = deployed.connect(project="doomed")
    secret_id = store(member, b"kept only while the project lives", "doomed")
    assert payload_of(member, secret_id) == b"kept only while the project lives"
    admin.identity.delete_project(project)

    def deleted() -> bool:
        rows = mariadb.query("SELECT deleted FROM secrets WHERE id = %s", secret_id, database="barbican")
        return rows in ([(1,)], [])

    log = deployed.root / "barbican-keystone-listener.log"
    eventually(deleted, lambda: f"the listener to delete the secret: {log.read_text()[-3000:]}", timeout=60)


def test_the_health_check_lists_secrets(barbican: str, deployed: Deployment) -> None:
    result = SecretsListed().run(deployed.connect())
    assert result.ok, result.message
