"""Keystone for real: the rendered Jobs' commands run against MariaDB and keystone from PyPI.

Nothing here is re-implemented by the test: the database Job's command runs the stackops code the
Job runs; db-sync and bootstrap are the commands in the rendered config.json files; keystone serves
with the rendered keystone.conf; openstacksdk finds what bootstrap registered. The one addition is
an overlay config naming where the key repositories are on this machine instead of /etc/keystone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openstack
import pytest
import requests

from stackops.api.validation import load_cloud_text
from stackops.credentials import Credentials, complete, rotate_fernet
from stackops.plan import Plan, plan, required_credentials
from stackops.services.keystone import ADMIN_PASSWORD_KEY
from stackops.services.keystone import SERVICE as KEYSTONE
from tests.conftest import EXAMPLES, cloud
from tests.real.conftest import free_port
from tests.support.mariadb import MariaDB
from tests.support.rendered import container_env, find, kolla_run, secret_data

STACKOPS = str(Path(sys.executable).with_name("stackops"))
CONFIG = "/etc/keystone/keystone.conf"


def run(
    argv: list[str], env: dict[str, str], bin_dir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    path = f"{bin_dir}:{os.environ['PATH']}" if bin_dir else os.environ["PATH"]
    result = subprocess.run(
        argv,
        env={"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), **env},
        capture_output=True,
        text=True,
    )
    return result


class Deployment:
    """One rendered keystone, deployed here step by step as the operator would."""

    def __init__(self, db: MariaDB, bin_dir: Path, root: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        spec = {
            "infrastructure": {
                "database": {
                    "external": {"host": db.host, "port": db.port, "secretRef": {"name": "db-admin"}}
                }
            },
            "services": {
                "keystone": {
                    "endpoints": {"public": self.url, "internal": self.url},
                    # No memcached here; also shows that a user override reaches keystone.conf.
                    "config": {"cache": {"enabled": False}},
                }
            },
        }
        self.cloud = cloud(spec)
        self.credentials = Credentials(complete(required_credentials(self.cloud.spec), {}))
        self.plan: Plan = plan(self.cloud, self.credentials)
        self.secrets = {
            "demo-credentials": self.credentials.values(),
            "db-admin": {"username": db.root_user, "password": db.root_password},
        }
        self.bin_dir = bin_dir
        self.root = root
        self.keys = {
            "fernet_tokens": root / "fernet-keys",
            "fernet_receipts": root / "fernet-keys",
            "credential": root / "credential-keys",
        }
        self.overlay = root / "local-paths.conf"
        self.overlay.write_text("".join(f"[{s}]\nkey_repository = {p}\n\n" for s, p in self.keys.items()))
        self.write_keys("fernet-keys", secret_data(self.plan, "demo-keystone-fernet-keys"))
        self.write_keys("credential-keys", secret_data(self.plan, "demo-keystone-credential-keys"))

    def write_keys(self, name: str, keys: dict[str, str]) -> None:
        """A key repository as the Secret volume shows it: one file per key, nothing else."""
        directory = self.root / name
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(mode=0o700)
        for index, key in keys.items():
            (directory / index).write_text(key)
            (directory / index).chmod(0o600)

    def job_command(self, component: str) -> tuple[list[str], dict[str, str]]:
        job = find(self.plan, "Job", "keystone", component)
        kolla = kolla_run(self.plan, job, self.root, self.secrets)
        conf = str(kolla.files[CONFIG])
        index = kolla.argv.index(conf)
        argv = [*kolla.argv[: index + 1], "--config-file", str(self.overlay), *kolla.argv[index + 1 :]]
        return argv, kolla.env

    def create_database(self) -> subprocess.CompletedProcess[str]:
        job = find(self.plan, "Job", "keystone", "database")
        container = job["spec"]["template"]["spec"]["containers"][0]
        assert container["command"][0] == "stackops"
        argv = [STACKOPS, *container["command"][1:], *container["args"]]
        return run(argv, container_env(container, self.secrets))

    def keystone_conf(self) -> Path:
        return self.root / CONFIG.lstrip("/")


@pytest.fixture(scope="module")
def deployed(
    mariadb: MariaDB, keystone_bin: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    deployment = Deployment(mariadb, keystone_bin, tmp_path_factory.mktemp("keystone"))

    created = deployment.create_database()
    assert created.returncode == 0, created.stderr
    assert "create-database: database keystone created" in created.stdout

    for component in ("db-sync", "bootstrap"):
        argv, env = deployment.job_command(component)
        assert argv[0] == "keystone-manage"
        result = run(argv, env, keystone_bin)
        assert result.returncode == 0, f"{component}: {result.stderr[-3000:]}"

    yield deployment


@pytest.fixture(scope="module")
def server(deployed: Deployment, keystone_bin: Path) -> Iterator[str]:
    """keystone's WSGI app (the module the rendered Apache config points at) under gunicorn."""
    api = find(deployed.plan, "Deployment", "keystone", "api")
    kolla = kolla_run(deployed.plan, api, deployed.root, deployed.secrets)
    wsgi_conf = kolla.files["/etc/apache2/conf-enabled/wsgi-keystone.conf"].read_text()
    script = next(line.split()[-1] for line in wsgi_conf.splitlines() if "WSGIScriptAlias" in line)
    assert script.endswith("site-packages/keystone/wsgi/api.py")
    site_packages = next((keystone_bin.parent / "lib").glob("python3*/site-packages"))
    assert (site_packages / "keystone" / "wsgi" / "api.py").is_file()

    workdir = deployed.root / "gunicorn"
    workdir.mkdir()
    # keystone parses sys.argv with oslo.config, so gunicorn takes its settings from this file only.
    (workdir / "gunicorn.conf.py").write_text(
        f'bind = "127.0.0.1:{deployed.port}"\nworkers = 1\n'
        'wsgi_app = "keystone.wsgi.api:application"\ncontrol_socket_disable = True\n'
    )
    env = {
        "PATH": f"{keystone_bin}:{os.environ['PATH']}",
        "OS_KEYSTONE_CONFIG_FILES": f"{kolla.files[CONFIG]};{deployed.overlay}",
    }
    log = (workdir / "server.log").open("w")
    process = subprocess.Popen(
        [str(keystone_bin / "gunicorn")], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{deployed.url}/v3", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"keystone did not answer: {(workdir / 'server.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield deployed.url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def admin(deployed: Deployment) -> Any:
    return openstack.connect(
        auth_url=f"{deployed.url}/v3",
        username="admin",
        password=deployed.credentials[ADMIN_PASSWORD_KEY],
        project_name="admin",
        user_domain_name="Default",
        project_domain_name="Default",
        region_name="RegionOne",
    )


def test_admin_authenticates_and_finds_the_identity_endpoints(server: str, deployed: Deployment) -> None:
    conn = admin(deployed)
    services = [s for s in conn.identity.services() if s.type == "identity"]
    assert len(services) == 1
    endpoints = {e.interface: e.url for e in conn.identity.endpoints(service_id=services[0].id)}
    assert endpoints == {"admin": server, "internal": server, "public": server}
    # The catalog is not just stored: the SDK reaches keystone through it.
    assert "admin" in {u.name for u in conn.identity.users()}
    assert conn.identity.get_region("RegionOne").id == "RegionOne"


def test_a_wrong_password_is_refused(server: str, deployed: Deployment) -> None:
    conn = openstack.connect(
        auth_url=f"{server}/v3",
        username="admin",
        password="not-the-password",
        project_name="admin",
        user_domain_name="Default",
        project_domain_name="Default",
    )
    with pytest.raises(openstack.exceptions.SDKException, match="401"):
        conn.authorize()


def test_database_job_is_idempotent_and_keeps_the_secret_as_truth(server: str, deployed: Deployment) -> None:
    again = deployed.create_database()
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "create-database: nothing to change"
    # keystone still reaches its database with the password from the credentials Secret
    assert admin(deployed).identity.get_region("RegionOne")


def test_database_job_with_a_wrong_admin_password_fails_clearly(deployed: Deployment) -> None:
    job = find(deployed.plan, "Job", "keystone", "database")
    container = job["spec"]["template"]["spec"]["containers"][0]
    secrets = {**deployed.secrets, "db-admin": {**deployed.secrets["db-admin"], "password": "wrong"}}
    result = run([STACKOPS, *container["command"][1:], *container["args"]], container_env(container, secrets))
    assert result.returncode == 1
    assert "access denied" in result.stderr and "Traceback" not in result.stderr


def test_tokens_survive_a_fernet_rotation_until_their_key_is_pruned(
    server: str, deployed: Deployment
) -> None:
    conn = admin(deployed)
    token = conn.auth_token
    keys = secret_data(deployed.plan, "demo-keystone-fernet-keys")

    def valid(subject: str) -> bool:
        checker = admin(deployed).auth_token  # issued with the current primary key
        response = requests.get(
            f"{server}/v3/auth/tokens",
            headers={"X-Auth-Token": checker, "X-Subject-Token": subject},
            timeout=10,
        )
        return response.status_code == 200

    assert valid(token)
    max_active = deployed.cloud.spec.services.keystone.fernet.max_active_keys
    keys = rotate_fernet(keys, max_active)
    deployed.write_keys("fernet-keys", keys)
    assert valid(token), "a token made with the previous primary key must stay valid after one rotation"
    keys = rotate_fernet(keys, max_active)
    deployed.write_keys("fernet-keys", keys)
    assert not valid(token), "the key that made the token was pruned, so the token must be refused"


def test_rendered_keystone_conf_passes_oslo_config_validator(
    deployed: Deployment, keystone_bin: Path, tmp_path: Path
) -> None:
    namespaces = KEYSTONE.config_namespaces
    print(f"oslo-config-validator namespaces: {', '.join(namespaces)}")
    assert {"keystone", "oslo.db", "oslo.cache"} <= set(namespaces)

    def validate(path: Path) -> subprocess.CompletedProcess[str]:
        argv = [str(keystone_bin / "oslo-config-validator"), "--input-file", str(path)]
        for namespace in namespaces:
            argv += ["--namespace", namespace]
        return run(argv, {})

    for path in EXAMPLES:
        example = load_cloud_text(path.read_text())
        rendered = plan(example)
        conf = tmp_path / f"{path.stem}-keystone.conf"
        conf.write_text(secret_data(rendered, f"{example.metadata.name}-keystone-config")["keystone.conf"])
        result = validate(conf)
        assert result.returncode == 0, f"{path.name}: {result.stderr[-2000:]}"
    result = validate(deployed.keystone_conf())
    assert result.returncode == 0, result.stderr[-2000:]

    # The validator really checks: an option keystone does not have is caught and named.
    bogus = tmp_path / "bogus.conf"
    bogus.write_text(deployed.keystone_conf().read_text() + "\n[token]\nno_such_option = 1\n")
    result = validate(bogus)
    assert result.returncode == 1 and "token/no_such_option is not part of the sample config" in result.stderr
