"""RabbitMQ as stackops renders it, on Debian's rabbitmq-server: the rendered rabbitmq.conf and
plugins boot a server with the rendered administrator, a service's messaging Job creates its user
and vhost idempotently, and oslo.messaging with the service's rendered settings talks over it on
quorum queues (replicated: they survive the loss of a RabbitMQ pod)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from stackops.services.rabbitmq import CONF_D, DEFAULT_USER_CONF, PLUGINS
from tests.real.deployment import Deployment
from tests.support.rabbitmq import RabbitMQ

# An RPC round trip over the transport_url and [oslo_messaging_rabbit] of the rendered nova.conf.
RPC_ROUND_TRIP = """
import sys, threading
import oslo_messaging as messaging
from oslo_config import cfg

cfg.CONF(["--config-file", sys.argv[1]], project="nova")
transport = messaging.get_rpc_transport(cfg.CONF)
target = messaging.Target(topic="stackops-test", server="here")

class Echo:
    def echo(self, ctxt, value):
        return value

server = messaging.get_rpc_server(transport, target, [Echo()], executor="threading")
server.start()
client = messaging.get_rpc_client(transport, messaging.Target(topic="stackops-test"), timeout=30)
print(client.prepare(server="here").call({}, "echo", value="pong"))
server.stop()
server.wait()
transport.cleanup()
"""


def test_rendered_config_boots_rabbitmq_with_the_rendered_administrator(rabbitmq: RabbitMQ) -> None:
    overview = rabbitmq.api("overview")
    assert overview.ok, overview.text
    assert rabbitmq.api("whoami").json()["tags"] == ["administrator"]
    enabled = set(rabbitmq.cli("rabbitmq-plugins", "list", "--enabled", "--minimal").split())
    assert set(PLUGINS) <= enabled, enabled


def test_the_first_boot_administrator_is_where_debians_server_reads_it() -> None:
    """The rendered default-user.conf goes to CONF_D, which Debian's rabbitmq-server reads after
    rabbitmq.conf by default (its rabbit_env context); the test servers point there explicitly."""
    ebin = sorted(Path("/usr/lib/rabbitmq/lib").glob("rabbitmq_server-*/plugins/*/ebin"))
    context = 'io:format("~s", [maps:get(additional_config_files, rabbit_env:get_context())]), halt().'
    paths = [arg for path in ebin for arg in ("-pa", str(path))]
    result = subprocess.run(["erl", "-noshell", *paths, "-eval", context], capture_output=True, text=True, timeout=60)
    assert result.stdout == f"{CONF_D}/*.conf", result.stdout + result.stderr
    assert DEFAULT_USER_CONF.endswith(".conf")


def test_messaging_job_creates_user_and_vhost_once(deployed: Deployment, rabbitmq: RabbitMQ) -> None:
    first = deployed.stackops_job("nova", "messaging")
    assert first.returncode == 0, first.stderr
    again = deployed.stackops_job("nova", "messaging")
    assert again.returncode == 0 and "nothing to change" in again.stdout
    assert rabbitmq.api("vhosts/nova").ok
    permissions = rabbitmq.api("users/nova/permissions").json()
    assert [(p["vhost"], p["configure"], p["write"], p["read"]) for p in permissions] == [("nova", ".*", ".*", ".*")]
    # a wrong administrator password fails the Job with a message, not a traceback
    wrong = {**deployed.secrets, "mq-admin": {"username": rabbitmq.admin[0], "password": "wrong"}}
    refused = deployed.stackops_job("nova", "messaging", wrong)
    assert refused.returncode == 1 and "access denied" in refused.stderr and "Traceback" not in refused.stderr


def test_a_service_talks_over_quorum_queues_with_its_rendered_settings(
    deployed: Deployment, rabbitmq: RabbitMQ, nova_bin: Path
) -> None:
    assert deployed.stackops_job("nova", "messaging").returncode == 0
    conf = deployed.kolla("Deployment", "nova", "conductor").files["/etc/nova/nova.conf"]
    result = subprocess.run(
        [str(nova_bin / "python"), "-c", RPC_ROUND_TRIP, str(conf)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and result.stdout.strip() == "pong", result.stderr[-3000:]
    queues = rabbitmq.api("queues/nova").json()
    assert queues, "no queue was declared on the nova vhost"
    assert {q["name"]: q["type"] for q in queues if q["name"].startswith("stackops-test")} == {
        "stackops-test": "quorum",
        "stackops-test.here": "quorum",
    }
