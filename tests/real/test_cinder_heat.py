"""Cinder and heat for real, from cinder 28 and openstack-heat 26 (2026.1) on MariaDB, RabbitMQ and keystone.

Every Job of each service runs as the operator would run it (database, RabbitMQ user, catalog
registrations, heat's stack domain, db-sync); then each API serves the WSGI module its rendered uWSGI
config names, with its rendered config, and openstacksdk reaches it through the catalog: cinder
manages volume types, heat's engine creates a stack whose wait condition handle makes a user in
heat's own domain, with the domain admin the stack-domain Job created.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackops.plan import plan
from stackops.services import cinder as cinder_service
from stackops.services import heat as heat_service
from tests.conftest import cloud
from tests.real.conftest import service_venv
from tests.real.deployment import Deployment, site_packages, wsgi_module
from tests.support.config_validation import sections_as_groups, validate
from tests.support.mariadb import MariaDB
from tests.support.rendered import secret_data

STACK = """
heat_template_version: 2021-04-16
resources:
  secret:
    type: OS::Heat::RandomString
    properties: {length: 12}
  handle:
    type: OS::Heat::WaitConditionHandle
outputs:
  secret:
    value: {get_attr: [secret, value]}
"""


@pytest.fixture(scope="module")
def cinder_bin() -> Path:
    return service_venv("cinder", "gunicorn")


@pytest.fixture(scope="module")
def cinder_jobs(deployed: Deployment, keystone: str, cinder_bin: Path) -> dict[str, str]:
    return deployed.run_jobs("cinder", cinder_bin)


def config_home(deployed: Deployment, project: str, conf: Path, bin_dir: Path) -> str:
    """A HOME whose ~/.<project>/ holds the rendered config and the package's api-paste.ini: where
    oslo.config looks when, as under a WSGI server, no --config-file is given."""
    home = deployed.root / f"{project}-home"
    directory = home / f".{project}"
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(conf, directory / f"{project}.conf")
    shutil.copy(bin_dir.parent / "etc" / project / "api-paste.ini", directory)
    return str(home)


@pytest.fixture(scope="module")
def cinder(deployed: Deployment, cinder_jobs: dict[str, str], cinder_bin: Path) -> Iterator[str]:
    api = deployed.kolla("Deployment", "cinder", "api")
    home = config_home(deployed, "cinder", api.files[cinder_service.CONFIG.dest], cinder_bin)
    module = wsgi_module(api.files["/etc/cinder/cinder-api-uwsgi.ini"].read_text(), site_packages(cinder_bin))
    with deployed.serve("cinder", cinder_bin, module, {"HOME": home}, "/healthcheck") as url:
        yield url


@pytest.fixture(scope="module")
def heat(deployed: Deployment, heat_jobs: dict[str, str], heat_bin: Path) -> Iterator[str]:
    api = deployed.kolla("Deployment", "heat", "api")
    home = config_home(deployed, "heat", api.files[heat_service.CONFIG.dest], heat_bin)
    module = wsgi_module(api.files["/etc/heat/heat-api-uwsgi.ini"].read_text(), site_packages(heat_bin))
    with (
        deployed.running("Deployment", "heat", "engine", heat_bin),
        deployed.serve("heat", heat_bin, module, {"HOME": home}, "/healthcheck") as url,
    ):
        yield url


def tables(db: MariaDB, schema: str) -> set[str]:
    listed = db.query("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", schema)
    return {row[0] for row in listed}


def test_cinder_jobs_create_its_database_queue_user_and_catalog_entry(
    cinder_jobs: dict[str, str], deployed: Deployment, mariadb: MariaDB
) -> None:
    assert list(cinder_jobs) == ["database", "messaging", "registration", "db-sync"]
    assert "create-database: database cinder created" in cinder_jobs["database"]
    assert "create-messaging-user: user cinder created" in cinder_jobs["messaging"]
    assert "register-service: service cinder (block-storage) created" in cinder_jobs["registration"]
    assert {"volumes", "snapshots", "backups", "volume_types"} <= tables(mariadb, "cinder")

    conn = deployed.connect("cinder", cinder_service.SERVICE.keystone_password_key, "service")
    catalog = {entry["type"]: entry for entry in conn.service_catalog}
    versioned = f"{deployed.urls['cinder']}/v3"
    assert {e["interface"]: e["url"] for e in catalog["block-storage"]["endpoints"]} == {
        "public": versioned,
        "internal": versioned,
    }


def test_cinder_api_manages_volume_types_through_the_catalog(cinder: str, deployed: Deployment) -> None:
    conn = deployed.connect()
    assert conn.block_storage.get_endpoint() == f"{cinder}/v3"
    assert "__DEFAULT__" in [t.name for t in conn.block_storage.types()]  # made by db-sync
    created = conn.block_storage.create_type(name="ssd", extra_specs={"volume_backend_name": "lvm"})
    assert {t.name for t in conn.block_storage.types()} == {"__DEFAULT__", "ssd"}
    conn.block_storage.delete_type(created)


def test_heat_jobs_register_two_services_and_its_stack_domain(
    heat_jobs: dict[str, str], deployed: Deployment, mariadb: MariaDB
) -> None:
    assert list(heat_jobs) == [
        "database",
        "messaging",
        "registration",
        "registration-heat-cfn",
        "stack-domain",
        "db-sync",
    ]
    assert "register-service: service heat (orchestration) created" in heat_jobs["registration"]
    assert "register-service: service heat-cfn (cloudformation) created" in heat_jobs["registration-heat-cfn"]
    assert "user heat created" not in heat_jobs["registration-heat-cfn"]  # one user for both APIs
    assert "create-domain-admin: domain heat created" in heat_jobs["stack-domain"]
    assert {"stack", "resource", "event", "raw_template"} <= tables(mariadb, "heat")

    conn = deployed.connect()
    project = conn.current_project_id
    catalog = {entry["type"]: entry for entry in conn.service_catalog}
    assert {e["interface"]: e["url"] for e in catalog["orchestration"]["endpoints"]} == {
        "public": f"{deployed.urls['heat']}/v1/{project}",  # keystone fills in the token's project
        "internal": f"{deployed.urls['heat']}/v1/{project}",
    }
    assert {e["interface"] for e in catalog["cloudformation"]["endpoints"]} == {"public", "internal"}
    assert all(e["url"].endswith(":8000/v1") for e in catalog["cloudformation"]["endpoints"])

    identity = conn.identity
    domain = identity.find_domain("heat")
    admin = identity.find_user("heat_domain_admin", domain_id=domain.id)
    assert identity.validate_user_has_domain_role(domain, admin, identity.find_role("admin"))
    assert identity.find_role("heat_stack_owner") and identity.find_role("heat_stack_user")
    again = deployed.stackops_job("heat", "stack-domain")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "create-domain-admin: nothing to change"


def test_heat_engine_creates_a_stack_with_a_user_in_heat_domain(heat: str, deployed: Deployment) -> None:
    conn = deployed.connect()
    stack = conn.orchestration.create_stack(name="probe", template=STACK, timeout_mins=2)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        stack = conn.orchestration.get_stack(stack.id)
        if stack.status != "CREATE_IN_PROGRESS":
            break
        time.sleep(1)
    assert stack.status == "CREATE_COMPLETE", stack.status_reason
    outputs = {o["output_key"]: o["output_value"] for o in stack.outputs}
    assert len(outputs["secret"]) == 12
    # the wait condition handle's user lives in heat's domain, made there by heat_domain_admin
    domain = conn.identity.find_domain("heat")
    users = [u.name for u in conn.identity.users(domain_id=domain.id)]
    assert "heat_domain_admin" in users and len(users) == 2, users
    conn.orchestration.delete_stack(stack)
    conn.orchestration.wait_for_delete(stack, wait=90)
    assert [u.name for u in conn.identity.users(domain_id=domain.id)] == ["heat_domain_admin"]


def test_choices_the_examples_leave_out_pass_the_validator(cinder_bin: Path, tmp_path: Path) -> None:
    """LVM next to Ceph, backups to Ceph: files the examples do not render, checked the same way; and a
    backend's options are really checked (against cinder's [backend_defaults])."""
    spec = cloud(
        {
            "services": {
                "cinder": {
                    "backends": [
                        {"name": "lvm", "type": "lvm", "lvm": {}},
                        {"name": "rbd", "type": "rbd", "rbd": {"secretRef": {"name": "c"}, "user": "cinder"}},
                    ],
                    "backup": {"enabled": True, "type": "rbd", "rbd": {"secretRef": {"name": "b"}, "pool": "backups"}},
                }
            }
        }
    )
    files = secret_data(plan(spec), "demo-cinder-config")
    aliases = cinder_service.SERVICE.config_sections_like(spec.spec)
    namespaces = cinder_service.SERVICE.config_files["cinder.conf"]
    for name in ("cinder.conf", "cinder-volume.conf", "cinder-volume-lvm.conf", "cinder-backup.conf"):
        path = tmp_path / name
        path.write_text(sections_as_groups(files[name], aliases))
        code, stderr = validate(cinder_bin, namespaces, path)
        assert code == 0, f"{name}: {stderr[-2000:]}"
    bogus = tmp_path / "bogus.conf"
    bogus.write_text(sections_as_groups(files["cinder.conf"] + "\n[lvm]\nno_such_option = 1\n", aliases))
    code, stderr = validate(cinder_bin, namespaces, bogus)
    assert code == 1 and "backend_defaults/no_such_option is not part of the sample config" in stderr
