"""Services of a Deployment serving for real, as their rendered Jobs and config say: what the session
fixtures (conftest.py) run, and what tests with a deployment of their own (upgrades) run again."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import requests

from stackops.api.models import SwiftNode
from stackops.credentials import Credentials
from stackops.plan import plan
from stackops.services import identity
from stackops.services import rabbitmq as rabbitmq_service
from stackops.services import swift as swift_service
from tests.conftest import cloud
from tests.real.deployment import (
    KEYSTONE_CONF,
    SWIFT_DEVICES,
    SWIFT_STORAGE_IP,
    Deployment,
    site_packages,
    wsgi_module,
)
from tests.support.commands import run
from tests.support.rabbitmq import RabbitMQ
from tests.support.rendered import cloud_credentials, secret_data
from tests.support.sandbox import eventually


@contextmanager
def rabbitmq() -> Iterator[RabbitMQ]:
    """A RabbitMQ server of its own, booted from the config stackops renders for a cloud's own server."""
    # plaintext: the deployment uses it as an external broker, whose TLS would be the user's
    own = cloud({"internalTLS": {"enabled": False}})
    credentials = Credentials(cloud_credentials(own))
    files = secret_data(plan(own, credentials), "demo-rabbitmq-config")
    admin = (rabbitmq_service.ADMIN_USER, credentials[rabbitmq_service.ADMIN_PASSWORD_KEY])
    with RabbitMQ.rendered(files, admin) as server:
        yield server


@contextmanager
def keystone(deployment: Deployment, bin_dir: Path) -> Iterator[str]:
    """Database Job, db-sync, bootstrap, then the API (and, once it serves, the Job that removes what
    the cloud's disabled services registered, where it has any)."""
    outputs = deployment.run_jobs("keystone", bin_dir, skip=[identity.DEREGISTRATION])
    assert list(outputs) == ["database", "db-sync", "bootstrap"]
    assert "create-database: database keystone created" in outputs["database"]
    api = deployment.kolla("Deployment", "keystone", "api")
    module = wsgi_module(api.files["/etc/keystone/keystone-api-uwsgi.ini"].read_text(), site_packages(bin_dir))
    env = {"OS_KEYSTONE_CONFIG_FILES": f"{api.files[KEYSTONE_CONF]};{deployment.overlay}"}
    with deployment.serve("keystone", bin_dir, module, env, "/v3") as url:
        if any(step.name == f"keystone-{identity.DEREGISTRATION}" for step in deployment.plan.steps):
            result = deployment.stackops_job("keystone", identity.DEREGISTRATION)
            assert result.returncode == 0, result.stderr
        yield url


@contextmanager
def placement(deployment: Deployment, bin_dir: Path) -> Iterator[str]:
    """Database Job, registration Job, db-sync, then the API."""
    assert list(deployment.run_jobs("placement", bin_dir)) == ["database", "registration", "db-sync"]
    api = deployment.kolla("Deployment", "placement", "api")
    conf = api.files["/etc/placement/placement.conf"]
    module = wsgi_module(api.files["/etc/placement/placement-api-uwsgi.ini"].read_text(), site_packages(bin_dir))
    with deployment.serve("placement", bin_dir, module, {"OS_PLACEMENT_CONFIG_DIR": str(conf.parent)}, "/") as url:
        yield url


NOVA_JOBS = ["database", "messaging", "registration", "api-db-sync", "cell-setup", "db-sync"]


@contextmanager
def nova_control_plane(deployment: Deployment, bin_dir: Path, api_only: bool = False) -> Iterator[str]:
    """Conductor, scheduler and the API (or the API alone), each from its rendered config, with
    nova's paste pipeline from its package (the Kolla image ships it in /etc/nova)."""
    api = deployment.kolla("Deployment", "nova", "api")
    conf = api.files["/etc/nova/nova.conf"]
    shutil.copy(bin_dir.parent / "etc" / "nova" / "api-paste.ini", conf.parent)
    module = wsgi_module(api.files["/etc/nova/nova-api-uwsgi.ini"].read_text(), site_packages(bin_dir))
    with ExitStack() as stack:
        if not api_only:
            for component in ("conductor", "scheduler"):
                stack.enter_context(deployment.running("Deployment", "nova", component, bin_dir))
        yield stack.enter_context(
            deployment.serve("nova", bin_dir, module, {"OS_NOVA_CONFIG_DIR": str(conf.parent)}, "/")
        )


RINGS_DIR = "swift-rings"  # under the deployment's root: what the rings Secret holds


def storage_node(deployed: Deployment) -> SwiftNode:
    return deployed.cloud.spec.services.swift.nodes[0]


def swift_rings(deployed: Deployment, swift_bin: Path) -> str:
    """The swift Jobs up to the ring builder, then its swift-ring-builder container: the rings from
    the spec's three devices, in the directory the servers' swift_dir names. Returns its output."""
    outputs = deployed.run_jobs("swift", swift_bin, until="ring-builder")
    assert list(outputs) == ["registration"]
    assert "register-service: service swift (object-store) created" in outputs["registration"]
    builder = deployed.kolla("Job", "swift", "ring-builder", container="swift-ring-builder")
    argv = builder.argv
    # the Secret's last state (none yet) and the directory store-rings reads, here
    assert argv[-2:] == [swift_service.PREVIOUS_RINGS_DIR, swift_service.RINGS_DIR]
    previous = deployed.root / "swift-rings-previous"
    previous.mkdir(exist_ok=True)
    result = run([*argv[:-2], str(previous), str(deployed.root / RINGS_DIR)], builder.env, swift_bin)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for device in SWIFT_DEVICES:
        (deployed.root / "swift-devices" / device).mkdir(parents=True, exist_ok=True)
    return result.stdout


def hosts(deployed: Deployment) -> Path:
    """An /etc/hosts naming the storage pod on its loopback address, as cluster DNS names it."""
    name = swift_service.SERVICE.storage_host(deployed.context(), storage_node(deployed))
    path = deployed.root / "swift-hosts"
    path.write_text(f"127.0.0.1 localhost\n{SWIFT_STORAGE_IP} {name}\n")
    return path


@contextmanager
def swift(deployed: Deployment, swift_bin: Path) -> Iterator[str]:
    """The storage node's servers, then the proxy (with its s3api), each from its rendered command
    and files, on the rings swift_rings built."""
    # the rings where swift-start.sh links them from the Secret's volume: in /etc/swift
    built = deployed.root / RINGS_DIR
    etc_hosts = {
        "/etc/hosts": hosts(deployed),
        **{f"/etc/swift/{r}.ring.gz": built / f"{r}.ring.gz" for r in swift_service.RINGS},
    }
    with ExitStack() as stack:
        for ring in swift_service.RINGS:
            component = f"{ring}-server"
            server = deployed.kolla("StatefulSet", "swift", "storage", f"swift-{component}")
            wrapper = deployed.container_paths(server, f"swift-{component}", etc_hosts)
            stack.enter_context(
                deployed.running("StatefulSet", "swift", "storage", swift_bin, f"swift-{component}", wrapper)
            )
        proxy = deployed.kolla("Deployment", "swift", "api")
        wrapper = deployed.container_paths(proxy, "swift-proxy", etc_hosts)
        stack.enter_context(deployed.running("Deployment", "swift", "api", swift_bin, wrapper=wrapper))
        url = deployed.urls["swift"]
        log = deployed.root / "swift-api.log"

        def healthy() -> bool:
            try:
                return requests.get(f"{url}/healthcheck", timeout=5).status_code == 200
            except OSError:
                return False

        eventually(healthy, lambda: f"swift's proxy: {log.read_text()[-3000:]}")
        yield url
