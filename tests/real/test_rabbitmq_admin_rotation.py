"""RabbitMQ's administrator's password rotated for real, with clients working all along.

Debian's rabbitmq-server boots once from the config stackops renders for a cloud's own broker
(internal TLS: the management API over https and AMQP over TLS, both verified against the cloud's
CA by the broker Service's name, which resolves to loopback in the clients' mount namespace). The
rotation's phases are then taken as the operator takes them (stackops.credentials: begin, advance,
promote); in each, the cloud is rendered with the phase's credentials and its Jobs run as rendered,
in the plan's order: RabbitMQ's administrator Job, then nova's messaging Job. Meanwhile:

- a management API client calls as the messaging Jobs do, with the administrator and password the
  rendered Jobs are given: those of the phase before and of the phase until the phase's Jobs have
  run (a Job of either may be running), then the phase's alone;
- nova's service user does oslo.messaging RPC round trips with the rendered nova.conf, rolled to the
  new config in Rolling as nova's pods roll (the new process up before the old one stops).

No call fails, the server never restarts, and at the end the old administrator and its password are
refused (401) and the new ones work.
"""

from __future__ import annotations

import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from stackops.certificates import CA_CERT_KEY
from stackops.credentials import (
    Credentials,
    RotationPhase,
    RotationState,
    advance_rotation,
    begin_rotation,
    promote_rotation,
)
from stackops.plan import Plan, migrated_keys, plan, rotated_credentials
from stackops.services import rabbitmq as rabbitmq_service
from stackops.services.base import CloudContext
from tests.conftest import cloud
from tests.real.test_rabbitmq_tls import STACKOPS, WITH_HOSTS, in_namespace
from tests.support.rabbitmq import RabbitMQ
from tests.support.rendered import cloud_credentials, find, job_env, secret_data, secret_files

OWN = cloud({})  # internal TLS is on by default
CREDENTIALS_SECRET = "demo-credentials"
ADMIN_KEY = rabbitmq_service.ADMIN_PASSWORD_KEY

# RPC round trips with nova's rendered nova.conf, until the file argv[3] exists; argv[2] names this
# process's RPC server. It writes argv[4] after its first round trip, and prints its counts.
RPC_LOOP = """
import os, sys, time
import oslo_messaging as messaging
from oslo_config import cfg

cfg.CONF(["--config-file", sys.argv[1]], project="nova")
transport = messaging.get_rpc_transport(cfg.CONF)
name, stop, ready = sys.argv[2], sys.argv[3], sys.argv[4]

class Echo:
    def echo(self, ctxt, value):
        return value

server = messaging.get_rpc_server(transport, messaging.Target(topic="rotation", server=name), [Echo()],
                                  executor="threading")
server.start()
client = messaging.get_rpc_client(transport, messaging.Target(topic="rotation", server=name), timeout=30)
calls, failures = 0, []
while not os.path.exists(stop):
    try:
        assert client.call({}, "echo", value=calls) == calls
        calls += 1
    except Exception as error:
        failures.append(repr(error)[:300])
    if calls == 1 and not os.path.exists(ready):
        open(ready, "w").close()
    time.sleep(0.2)
server.stop()
server.wait()
transport.cleanup()
print(f"calls {calls} failures {len(failures)}")
for failure in failures[:5]:
    print(failure)
"""


class NamedHost(HTTPAdapter):
    """https to loopback that verifies the certificate against the CA and by the broker Service's
    name, as the Jobs do (they reach the name itself)."""

    def __init__(self, name: str, ca_file: Path) -> None:
        self.name, self.ca_file = name, ca_file
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        super().init_poolmanager(*args, server_hostname=self.name, ssl_context=context, **kwargs)


def management(host: str, ca_file: Path) -> requests.Session:
    session = requests.Session()
    session.mount("https://", NamedHost(host, ca_file))
    return session


def job_admin(rendered: Plan, credentials: Credentials) -> tuple[str, str]:
    """The administrator and password the rendered messaging Jobs log in with (nova's)."""
    pod = find(rendered, "Job", "nova", rabbitmq_service.USER_JOB)["spec"]["template"]["spec"]
    env = {v["name"]: v.get("value") for v in pod["containers"][0]["env"]}
    password = secret_files(pod)["STACKOPS_MQ_ADMIN_PASSWORD"]
    assert password["name"] == CREDENTIALS_SECRET
    return str(env["STACKOPS_MQ_ADMIN_USER"]), credentials.values()[password["key"]]


class ManagementClient(threading.Thread):
    """Calls the management API as the messaging Jobs do, with every administrator in use, until stopped."""

    def __init__(self, server: RabbitMQ, host: str, ca_file: Path) -> None:
        super().__init__(daemon=True)
        self.session = management(host, ca_file)
        self.base = f"https://127.0.0.1:{server.management_port}/api"
        self.in_use: list[tuple[str, str]] = []
        self.phase = "before"
        self.calls: Counter[str] = Counter()
        self.failures: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            phase = self.phase
            for admin in list(self.in_use):
                for path in ("whoami", "vhosts/nova", "users"):  # listing users takes an administrator
                    try:
                        response = self.session.get(f"{self.base}/{path}", auth=admin, timeout=10)
                    except requests.RequestException as error:
                        self.failures.append(f"{phase} {admin[0]} {path}: {error}")
                        continue
                    if response.status_code != 200:
                        self.failures.append(f"{phase} {admin[0]} {path}: {response.status_code}")
                    else:
                        self.calls[phase] += 1
            time.sleep(0.1)


class RpcClient:
    """nova's RPC loop as one process of its rendered config."""

    def __init__(self, root: Path, host: str, nova_bin: Path, conf: Path, name: str) -> None:
        self.stop_file, self.ready_file = root / f"{name}.stop", root / f"{name}.ready"
        command = [str(nova_bin / "python"), "-c", RPC_LOOP, str(conf), name, str(self.stop_file), str(self.ready_file)]
        hosts = root / f"{name}.hosts"
        hosts.write_text(f"127.0.0.1 localhost {host}\n")
        self.process = subprocess.Popen(
            ["unshare", "--mount", "--", "bash", "-c", WITH_HOSTS, "bash", *command],
            env={"HOSTS": str(hosts), "PATH": "/usr/bin:/bin"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while not self.ready_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise AssertionError(f"nova's RPC loop did not start: {self.process.communicate()[1][-3000:]}")
            time.sleep(0.2)

    def stop(self) -> str:
        self.stop_file.touch()
        out, err = self.process.communicate(timeout=120)
        assert self.process.returncode == 0, err[-3000:]
        return out


def nova_conf(rendered: Plan, credentials: Credentials, server: RabbitMQ, root: Path, name: str) -> Path:
    """The rendered nova.conf, its broker on the test server's port and the CA where it is here."""
    text = secret_data(rendered, "demo-nova-config")["nova.conf"]
    port = f":{rabbitmq_service.AMQP_PORT}/"
    assert port in text
    (root / "ca.crt").write_text(credentials[CA_CERT_KEY])
    text = text.replace(port, f":{server.port}/").replace(
        "ssl_ca_file = /etc/nova/ca.crt", f"ssl_ca_file = {root / 'ca.crt'}"
    )
    assert f"ssl_ca_file = {root / 'ca.crt'}" in text, "nova.conf names its CA elsewhere"
    path = root / f"{name}.conf"
    path.write_text(text)
    return path


def run_job(rendered: Plan, credentials: Credentials, server: RabbitMQ, root: Path, service: str) -> str:
    """A messaging Job as rendered (its Secret files from the phase's credentials), against the test server."""
    pod = find(rendered, "Job", service, rabbitmq_service.USER_JOB)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    port = f"={rabbitmq_service.MANAGEMENT_PORT}"
    args = [a.replace(port, f"={server.management_port}") for a in container["args"]]
    env = job_env(pod, {CREDENTIALS_SECRET: credentials.values()}, root / f"{service}-job")
    host = rabbitmq_service.broker(CloudContext("demo", "openstack", OWN.spec, credentials)).host
    result = in_namespace(root, host, [STACKOPS, *container["command"][1:], *args], env)
    assert result.returncode == 0, f"{service}'s messaging Job: {result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RabbitMQ, dict[str, str], Path]]:
    values = cloud_credentials(OWN)
    files = secret_data(plan(OWN, Credentials(values)), "demo-rabbitmq-config")
    admin = (rabbitmq_service.ADMIN_USER, values[ADMIN_KEY])
    served_files = rabbitmq_service.SERVICE.tls_files(CloudContext("demo", "openstack", OWN.spec, Credentials(values)))
    with RabbitMQ.rendered(files, admin, tls_files=files | served_files) as server:
        yield server, values, tmp_path_factory.mktemp("rabbitmq-admin-rotation")


def test_rabbitmqs_administrator_rotates_with_no_failed_call(
    served: tuple[RabbitMQ, dict[str, str], Path], nova_bin: Path
) -> None:
    server, values, root = served
    pid = server.process.pid if server.process else None
    credentials = Credentials(values)
    rendered = plan(OWN, credentials)
    host = rabbitmq_service.broker(CloudContext("demo", "openstack", OWN.spec, credentials)).host
    assert not any(s.name == "rabbitmq-messaging" for s in rendered.steps)  # no rotation: no administrator Job
    run_job(rendered, credentials, server, root, "nova")
    (root / "ca.crt").write_text(credentials[CA_CERT_KEY])

    api = ManagementClient(server, host, root / "ca.crt")
    api.in_use = [job_admin(rendered, credentials)]
    api.start()
    rpc = RpcClient(root, host, nova_bin, nova_conf(rendered, credentials, server, root, "before"), "before")
    outputs: dict[str, list[str]] = {}
    rpc_outputs: list[str] = []
    old_admin = api.in_use[0]

    state = RotationState()
    values, state = begin_rotation(values, state, 1, rotated_credentials(OWN.spec), migrated_keys(OWN.spec))
    try:
        while True:
            phase = state.phase.value if state.phase else "after"
            credentials = Credentials(values, rotation=state)
            rendered = plan(OWN, credentials)
            before = api.in_use[-1]
            api.phase = phase
            api.in_use = [before, job_admin(rendered, credentials)]  # a Job of either may be running
            time.sleep(1)
            admin_steps = [s.name for s in rendered.steps if s.name == "rabbitmq-messaging"]
            assert bool(admin_steps) == (state.phase is not None), phase
            names = [s.name for s in rendered.steps]
            if admin_steps:
                assert names.index("rabbitmq-messaging") < names.index("nova-messaging")  # the plan's order
            jobs = ["rabbitmq", "nova"] if admin_steps else ["nova"]
            outputs[phase] = [run_job(rendered, credentials, server, root, service) for service in jobs]
            api.in_use = [api.in_use[-1]]
            time.sleep(1)
            if state.phase is RotationPhase.ROLLING:  # nova's pods roll to the new config: new up, then old down
                new = RpcClient(
                    root, host, nova_bin, nova_conf(rendered, credentials, server, root, "rolled"), "rolled"
                )
                rpc_outputs.append(rpc.stop())
                rpc = new
            if state.phase is None:
                break
            if state.phase is RotationPhase.REVOKING:
                values, state = promote_rotation(values, state, migrated_keys(OWN.spec), rotated_credentials(OWN.spec))
            else:
                state = advance_rotation(state)
        time.sleep(1)
    finally:
        api.done.set()
        api.join(30)
        rpc_outputs.append(rpc.stop())

    assert api.failures == [], api.failures[:10]
    assert all(api.calls[phase] > 0 for phase in ("before", "Granting", "Rolling", "Revoking", "after")), api.calls
    for out in rpc_outputs:
        assert out.startswith("calls ") and " failures 0" in out.splitlines()[0], out
        assert int(out.split()[1]) > 0, out
    assert "user stackops-b created" in outputs["Granting"][0]
    assert "user stackops removed" in outputs["Revoking"][0]
    assert server.process is not None and server.process.pid == pid and server.process.poll() is None

    # the old administrator and its password are refused; the new ones work, an administrator's
    new_admin = job_admin(rendered, credentials)
    assert new_admin[0] == "stackops-b" and old_admin[0] == "stackops" and new_admin[1] != old_admin[1]
    session = management(host, root / "ca.crt")
    url = f"https://127.0.0.1:{server.management_port}/api"
    assert session.get(f"{url}/whoami", auth=old_admin, timeout=10).status_code == 401
    assert session.get(f"{url}/whoami", auth=("stackops-b", old_admin[1]), timeout=10).status_code == 401
    assert session.get(f"{url}/whoami", auth=("stackops", new_admin[1]), timeout=10).status_code == 401
    whoami = session.get(f"{url}/whoami", auth=new_admin, timeout=10)
    assert whoami.status_code == 200 and whoami.json()["tags"] == ["administrator"], whoami.text
    assert session.get(f"{url}/users/stackops", auth=new_admin, timeout=10).status_code == 404
    users = {u["name"] for u in session.get(f"{url}/users", auth=new_admin, timeout=10).json()}
    assert {"stackops-b", "nova-b"} <= users and not {"stackops", "nova"} & users, users
    # a node booting on an empty database now makes the administrator the Jobs use
    conf = secret_data(rendered, "demo-rabbitmq-config")[rabbitmq_service.DEFAULT_USER_CONF]
    assert conf.startswith(f"default_user = stackops-b\ndefault_pass = {new_admin[1]}\n")
    print(
        f"management calls by phase: {dict(api.calls)}; RPC: {[o.splitlines()[0] for o in rpc_outputs]}",
        file=sys.stderr,
    )
