"""A credential rotation for real, with a client calling the APIs all along and not one call failing.

Keystone and placement (from PyPI) run two replicas each behind a balancer on their rendered port
(tests/support/balancer.py: a Service's endpoints), on a MariaDB and a RabbitMQ of this module's own.
A client thread issues a token at keystone as the cloud's admin, lists projects with it and lists
placement's resource providers with it (placement validates the token as its keystone service user)
in a loop; a second one is the operator's own client (OpenStackAccess), listing projects. Both take
the admin password as the operator does: the rotation changes it too, when the bootstrap Job runs. The
rotation's phases are then taken one after the other as the operator takes them
(stackops.credentials: begin, advance, promote): in each, the cloud is rendered with the phase's
credentials and what changed is done as the operator's converge does it: every Job of keystone,
placement and barbican's RabbitMQ user whose rendered spec changed runs (stackops Jobs with
`stackops job`, keystone's credential migration with keystone-manage), and every API whose pod
template changed rolls, one replica after the other. At the end: no call failed, calls went through
in every phase, the old database passwords, admin password, keystone account and RabbitMQ user no
longer work and the new ones do, and a credential stored before the rotation still reads back,
encrypted with the new key.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any

import pymysql
import pytest
import requests

from stackops.credentials import (
    NEXT_PREFIX,
    Credentials,
    RotationPhase,
    RotationState,
    advance_rotation,
    begin_rotation,
    promote_rotation,
)
from stackops.devcluster.cluster import free_ports
from stackops.health.monitor import OpenStackAccess
from stackops.plan import Plan, migrated_keys, rotated_credentials
from stackops.services import identity, keystone
from tests.real import served
from tests.real.deployment import KEYSTONE_CONF, Deployment, site_packages, wsgi_module
from tests.support.balancer import Balancer
from tests.support.commands import run
from tests.support.mariadb import MariaDB
from tests.support.rabbitmq import RabbitMQ

COMPONENT = "app.kubernetes.io/component"
# the Jobs this test runs: keystone's and placement's, and barbican's RabbitMQ user, whose account
# keystone's notifications go out with (no barbican process runs)
JOBS = {"keystone": None, "placement": None, "nova": None, "barbican": ("messaging",)}
APIS = ("keystone", "placement")


@pytest.fixture(scope="module")
def database() -> Iterator[MariaDB]:
    """Servers of their own: the rotation changes passwords that the session's deployment uses."""
    with MariaDB() as server:
        yield server


@pytest.fixture(scope="module")
def broker() -> Iterator[RabbitMQ]:
    with served.rabbitmq() as server:
        yield server


class Replicas:
    """An API's two replicas behind a balancer on its rendered port, each a process of the
    deployment's rendered config as it was when the replica started."""

    def __init__(self, service: str, start: Callable[[int], AbstractContextManager[str]], balancer: Balancer) -> None:
        self.service, self.start, self.balancer = service, start, balancer
        self.running: dict[int, ExitStack] = {}
        for port in free_ports(2):
            self._up(port)

    def _up(self, port: int) -> None:
        stack = ExitStack()
        stack.enter_context(self.start(port))  # returns once it answers: ready
        self.running[port] = stack
        self.balancer.add(port)

    def roll(self) -> None:
        """One replica after the other: out of the balancer, its calls done, stopped, started with
        the config rendered now, back in once it answers (maxUnavailable 0, maxSurge 0 here)."""
        for port in list(self.running):
            self.balancer.drain(port)
            self.running.pop(port).close()
            self._up(port)

    def close(self) -> None:
        for stack in self.running.values():
            stack.close()


def token_request(password: str) -> dict[str, Any]:
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": identity.ADMIN_USER, "domain": {"id": "default"}, "password": password}},
            },
            "scope": {"project": {"name": identity.ADMIN_PROJECT, "domain": {"id": "default"}}},
        }
    }


class Client(threading.Thread):
    """Calls keystone and placement through their balancers until stopped, as the cloud's admin
    with the password the operator's clients take (identity.admin_passwords_in_use: from the
    credentials Secret and the keystone bootstrap Jobs that succeeded, `bootstrapped`); counts the
    calls that went through by phase, and keeps every failure.

    Like keystoneauth, which every OpenStack client authenticates with, it authenticates again when a
    call meets a revoked token (keystone revokes the admin's tokens when its password changes), and
    like the operator's client it tries the other password when keystone refuses the first (counted:
    `refused`, authentication attempts, not calls)."""

    def __init__(self, deployment: Deployment, bootstrapped: list[dict[str, Any]]) -> None:
        super().__init__(daemon=True)
        self.deployment, self.bootstrapped = deployment, bootstrapped
        self.keystone, self.placement = deployment.urls["keystone"], deployment.urls["placement"]
        self.phase = "before"
        self.calls: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.reauthenticated: Counter[str] = Counter()
        self.failures: list[str] = []
        self.done = threading.Event()

    def passwords(self) -> tuple[str, ...]:
        return identity.admin_passwords_in_use(self.deployment.credentials, list(self.bootstrapped))

    def call(self, method: str, url: str, expected: int, **kwargs: Any) -> requests.Response:
        response = requests.request(method, url, timeout=60, **kwargs)
        if response.status_code != expected:
            raise AssertionError(f"{method} {url}: {response.status_code} {response.text[:300]}")
        return response

    def token(self, phase: str) -> dict[str, str]:
        passwords = self.passwords()
        for password in passwords:
            issued = requests.post(f"{self.keystone}/v3/auth/tokens", json=token_request(password), timeout=60)
            if issued.status_code == 201:
                return {"X-Auth-Token": issued.headers["X-Subject-Token"]}
            if issued.status_code != 401 or password == passwords[-1]:
                raise AssertionError(f"token: {issued.status_code} {issued.text[:300]}")
            self.refused[phase] += 1
        raise AssertionError("no password")

    def authenticated(self, phase: str, method: str, url: str, expected: int, headers: dict[str, str]) -> None:
        response = requests.request(method, url, timeout=60, headers=headers)
        if response.status_code == 401:  # a token revoked since: authenticate again, once
            self.reauthenticated[phase] += 1
            headers.update(self.token(phase))
            response = requests.request(method, url, timeout=60, headers=headers)
        if response.status_code != expected:
            raise AssertionError(f"{method} {url}: {response.status_code} {response.text[:300]}")

    def run(self) -> None:
        while not self.done.is_set():
            phase = self.phase
            try:
                headers = self.token(phase)
                self.authenticated(phase, "GET", f"{self.keystone}/v3/projects", 200, headers)
                self.authenticated(phase, "GET", f"{self.placement}/resource_providers", 200, headers)
            except (requests.RequestException, AssertionError, KeyError) as error:
                self.failures.append(f"{phase}: {error}")
            else:
                self.calls[phase] += 1


class OperatorClient(Client):
    """The operator's own client, as a health check makes it (health/cloud.py): the passwords read,
    a connection made, then calls (openstacksdk lists projects), again every second (the operator's
    every 30 s: here often enough to meet every phase, not so often that keystone's one worker per
    replica, hashing passwords, keeps the other client waiting)."""

    def run(self) -> None:
        while not self.done.wait(1.0):
            phase = self.phase
            try:
                passwords = self.passwords()
                access = OpenStackAccess(
                    f"{self.keystone}/v3", identity.ADMIN_USER, passwords[0], identity.ADMIN_PROJECT, "RegionOne",
                    # the other client's timeout: a slow answer on a loaded machine is not what is tested
                    interface="public", timeout=60, fallback_passwords=passwords[1:],
                )  # fmt: skip
                assert identity.ADMIN_PROJECT in {p.name for p in access.connect().identity.projects()}
            except Exception as error:  # every failure, of whatever kind, is the test's finding
                self.failures.append(f"{phase}: {type(error).__name__}: {error}")
            else:
                self.calls[phase] += 1


def converge(
    deployment: Deployment,
    before: Plan,
    apis: dict[str, Replicas],
    bins: dict[str, Path],
    bootstrapped: list[dict[str, Any]],
) -> list[str]:
    """What the operator's converge does with deployment.plan after `before`, for this test's
    services, in plan order: a Job whose rendered spec changed (its name is its spec's hash) runs,
    an API whose pod template changed rolls. keystone's bootstrap Jobs, once done, are added to
    `bootstrapped` as succeeded (what the Job controller reports). Returns what was done."""
    jobs_before = {o["metadata"]["name"] for o in before.objects() if o["kind"] == "Job"}
    templates_before = {
        o["metadata"]["name"]: o["spec"]["template"] for o in before.objects() if o["kind"] == "Deployment"
    }
    done = []
    for step in deployment.plan.steps:
        if step.service not in JOBS:
            continue
        for obj in step.objects:
            component = obj["metadata"]["labels"][COMPONENT]
            if obj["kind"] == "Job" and obj["metadata"]["name"] not in jobs_before:
                if JOBS[step.service] is not None and component not in (JOBS[step.service] or ()):
                    continue
                container = obj["spec"]["template"]["spec"]["containers"][0]
                if container["command"][0] == "stackops":
                    result = deployment.stackops_job(step.service, component)
                else:
                    result = deployment.kolla_job(step.service, component, bins[step.service])
                assert result.returncode == 0, f"{step.service} {component}: {result.stderr[-3000:]}"
                if (step.service, component) == ("keystone", identity.BOOTSTRAP):
                    bootstrapped.append({**obj, "status": {"succeeded": 1}})
                done.append(f"{step.service} {component}")
            elif obj["kind"] == "Deployment" and step.service in apis and component == "api":
                rolls = obj["spec"]["template"] != templates_before.get(obj["metadata"]["name"])
                if rolls:
                    apis[step.service].roll()
                    done.append(f"{step.service} rolled")
    return done


def keystone_replica(deployment: Deployment, bin_dir: Path) -> Callable[[int], AbstractContextManager[str]]:
    def start(port: int) -> AbstractContextManager[str]:
        api = deployment.kolla("Deployment", "keystone", "api")
        module = wsgi_module(api.files["/etc/keystone/keystone-api-uwsgi.ini"].read_text(), site_packages(bin_dir))
        env = {"OS_KEYSTONE_CONFIG_FILES": f"{api.files[KEYSTONE_CONF]};{deployment.overlay}"}
        return deployment.serve("keystone", bin_dir, module, env, "/v3", port=port)

    return start


def placement_replica(deployment: Deployment, bin_dir: Path) -> Callable[[int], AbstractContextManager[str]]:
    def start(port: int) -> AbstractContextManager[str]:
        api = deployment.kolla("Deployment", "placement", "api")
        conf = api.files["/etc/placement/placement.conf"]
        module = wsgi_module(api.files["/etc/placement/placement-api-uwsgi.ini"].read_text(), site_packages(bin_dir))
        return deployment.serve(
            "placement", bin_dir, module, {"OS_PLACEMENT_CONFIG_DIR": str(conf.parent)}, "/", port=port
        )

    return start


def database_login(db: MariaDB, user: str, password: str) -> int | None:
    """None when `user` logs in with `password`, else MariaDB's error code."""
    try:
        pymysql.connect(host=db.host, port=db.port, user=user, password=password, connect_timeout=10).close()
    except pymysql.err.OperationalError as error:
        return int(error.args[0])
    return None


def keystone_login(deployment: Deployment, user: str, password: str) -> int:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}}}}  # fmt: skip
    return requests.post(f"{deployment.urls['keystone']}/v3/auth/tokens", json=body, timeout=60).status_code


AMQP_LOGIN = "import sys, kombu; c = kombu.Connection(sys.argv[1], connect_timeout=10); c.connect(); c.release()"


def amqp_login(bin_dir: Path, broker: RabbitMQ, user: str, password: str, vhost: str) -> bool:
    """Whether `user` opens an AMQP connection to `vhost` (kombu, from keystone's oslo.messaging)."""
    url = f"amqp://{user}:{password}@{broker.host}:{broker.port}/{vhost}"
    return run([str(bin_dir / "python"), "-c", AMQP_LOGIN, url], {}).returncode == 0


def test_rotation_keeps_every_call_working_and_retires_the_old_credentials(
    database: MariaDB, broker: RabbitMQ, keystone_bin: Path, placement_bin: Path, nova_bin: Path, tmp_path: Path
) -> None:
    deployment = Deployment(database, broker, tmp_path)
    # Connections a second old at most, so that every phase opens new ones with the password the
    # config has, as a pool growing, a recycled connection or a restarted server would any time.
    for service in ("keystone", "placement"):
        getattr(deployment.cloud.spec.services, service).config["database"] = {"connection_recycle_time": 1}
    deployment.use_credentials(deployment.credentials)
    bins = {"keystone": keystone_bin, "placement": placement_bin, "nova": nova_bin, "barbican": keystone_bin}
    assert list(deployment.run_jobs("keystone", keystone_bin, skip=[identity.DEREGISTRATION])) == [
        "database",
        "db-sync",
        "bootstrap",
    ]
    old = deployment.credentials
    with ExitStack() as stack:
        apis: dict[str, Replicas] = {}
        for service, start in (("keystone", keystone_replica), ("placement", placement_replica)):
            if service == "placement":
                assert list(deployment.run_jobs("placement", placement_bin)) == ["database", "registration", "db-sync"]
            balancer = stack.enter_context(Balancer(deployment.ports[service]))
            apis[service] = Replicas(service, start(deployment, bins[service]), balancer)
            stack.callback(apis[service].close)
        assert deployment.stackops_job("barbican", "messaging").returncode == 0
        # nova's Jobs only: its cells' mappings hold its database and RabbitMQ credentials
        assert list(deployment.run_jobs("nova", nova_bin)) == served.NOVA_JOBS
        admin = deployment.connect()
        blob = '{"access": "a", "secret": "s"}'
        stored = admin.identity.create_credential(
            type="ec2", blob=blob, user_id=admin.current_user_id, project_id=admin.current_project_id
        )

        bootstrapped: list[dict[str, Any]] = []
        client, operator = Client(deployment, bootstrapped), OperatorClient(deployment, bootstrapped)
        for thread in (client, operator):
            thread.start()
            stack.callback(thread.done.set)
        state = RotationState()
        values, state = begin_rotation(
            old.values(), state, 1, rotated_credentials(deployment.cloud.spec), migrated_keys(deployment.cloud.spec)
        )
        done: dict[str, list[str]] = {}
        while True:
            before = deployment.plan
            client.phase = operator.phase = state.phase.value if state.phase else "Done"
            deployment.use_credentials(Credentials(values, rotation=state))
            done[client.phase] = converge(deployment, before, apis, bins, bootstrapped)
            # calls through in this phase before the next one begins
            seen = client.calls[client.phase]
            while client.calls[client.phase] < seen + 3 and not client.failures and client.is_alive():
                client.done.wait(0.2)
            if state.phase is None:
                break
            if state.phase is RotationPhase.REVOKING:
                values, state = promote_rotation(values, state, migrated_keys(deployment.cloud.spec))
            else:
                state = advance_rotation(state)
        for thread in (client, operator):
            thread.done.set()
            thread.join()

        print(f"calls through, by phase: {dict(client.calls)}")
        print(f"admin password refused at authentication (then the other taken): {dict(client.refused)}")
        print(f"authenticated again after a revoked token: {dict(client.reauthenticated)}")
        print(f"the operator's client, calls through by phase: {dict(operator.calls)}")
        assert client.failures == [] and operator.failures == []
        assert sum(operator.calls.values()) >= 3
        assert {"Granting", "Rolling", "Revoking", "Done"} <= set(client.calls)
        # what each phase did, as the operator would: grant the new credentials, roll to them
        # (the Kolla Jobs carry the config's hash, so they run again with it), revoke the old
        # ones and migrate the credential keys, then promote (Jobs that name the promoted keys)
        jobs = ["keystone database", "placement database", "placement registration", "barbican messaging"]
        jobs += ["nova database", "nova messaging", "nova registration"]
        assert sorted(done["Granting"]) == sorted([*jobs, "nova cell-urls"])
        assert sorted(done["Rolling"]) == sorted(
            [
                "keystone db-sync",
                "keystone bootstrap",  # the admin's new password
                "keystone rolled",
                "placement db-sync",
                "placement rolled",
                "nova api-db-sync",
                "nova cell-setup",
                "nova db-sync",
                # as the admin with its new password, after the bootstrap Job: nothing else to do
                "placement registration",
                "nova registration",
            ]
        )
        assert sorted(done["Revoking"]) == sorted([*jobs, "keystone credential-migrate"])
        # no roll: the pods run with the promoted values; the Jobs name the promoted keys
        assert sorted(done["Done"]) == sorted([*jobs, "keystone bootstrap"])

        new = deployment.credentials
        for service in ("keystone", "placement"):
            key = f"{service}-database-password"
            assert old[key] != new[key]
            assert database_login(database, service, old[key]) == 1045
            assert database_login(database, service, new[key]) is None
        key = identity.ADMIN_PASSWORD_KEY  # one account, its password changed
        assert keystone_login(deployment, identity.ADMIN_USER, old[key]) == 401
        assert keystone_login(deployment, identity.ADMIN_USER, new[key]) == 201
        # the operator's client given the refused one first goes on with the other
        access = OpenStackAccess(
            f"{deployment.urls['keystone']}/v3", identity.ADMIN_USER, old[key], identity.ADMIN_PROJECT, "RegionOne",
            interface="public", fallback_passwords=(new[key],),
        )  # fmt: skip
        assert identity.ADMIN_PROJECT in {p.name for p in access.connect().identity.projects()}
        key = "placement-keystone-password"
        assert keystone_login(deployment, "placement", old[key]) == 401  # the old account is gone
        assert keystone_login(deployment, "placement-b", new[key]) == 201
        key = "barbican-messaging-password"
        assert not amqp_login(keystone_bin, broker, "barbican", old[key], "barbican")
        assert amqp_login(keystone_bin, broker, "barbican-b", new[key], "barbican")
        assert not any(k.startswith(NEXT_PREFIX) for k in new.values())
        # nova's cells: their mappings are templates now, which nova fills from its config, so its
        # db sync reaches cell0 and cell1 with the new password (the old one is refused)
        synced = deployment.kolla_job("nova", "db-sync", nova_bin)
        assert synced.returncode == 0, synced.stderr[-3000:]
        with (
            pymysql.connect(
                host=database.host, port=database.port, user=database.root_user, password=database.root_password
            ) as connection,
            connection.cursor() as cursor,
        ):
            cursor.execute("SELECT database_connection, transport_url FROM nova_api.cell_mappings")
            mappings = cursor.fetchall()
        assert len(mappings) == 2 and all("{password}" in row[0] for row in mappings)
        # the credential keys: the old primary is gone, and what was stored under it reads back
        keys = new.with_prefix(keystone.CREDENTIAL_KEY_PREFIX)
        assert sorted(keys) == ["0", "2"] and keys["2"] == old[f"{keystone.CREDENTIAL_KEY_PREFIX}0"]
        assert deployment.connect().identity.get_credential(stored.id).blob == blob
