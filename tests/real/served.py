"""Services of a Deployment serving for real, as their rendered Jobs and config say: what the session
fixtures (conftest.py) run, and what tests with a deployment of their own (upgrades) run again."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from stackops.credentials import Credentials
from stackops.plan import plan
from stackops.services import identity
from stackops.services import rabbitmq as rabbitmq_service
from tests.conftest import cloud
from tests.real.deployment import KEYSTONE_CONF, Deployment, site_packages, wsgi_module
from tests.support.rabbitmq import RabbitMQ
from tests.support.rendered import cloud_credentials, secret_data


@contextmanager
def rabbitmq() -> Iterator[RabbitMQ]:
    """A RabbitMQ server of its own, booted from the config stackops renders for a cloud's own server."""
    # plaintext: the deployment uses it as an external broker, whose TLS would be the user's
    own = cloud({"internalTLS": {"enabled": False}})
    credentials = Credentials(cloud_credentials(own))
    files = secret_data(plan(own, credentials), "demo-rabbitmq-config")
    admin = (rabbitmq_service.ADMIN_USER, credentials[rabbitmq_service.ADMIN_PASSWORD_KEY])
    with RabbitMQ(files["rabbitmq.conf"], files["enabled_plugins"], files["erlang.cookie"], admin) as server:
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
