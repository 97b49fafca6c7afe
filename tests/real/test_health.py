"""Health checks for real: keystone 29, openstack-placement 15 and glance 32 from PyPI, deployed
from the rendered cloud (tests/real/conftest.py), checked by the code the operator's health daemon
runs (target -> CloudMonitor round -> status, Events, metrics) with a short interval, reaching
keystone through the operator's endpoint override as an operator outside the cluster would.

Placement's server is stopped for real (its gunicorn gets SIGTERM) and started again with the
same command, environment and directory.
"""

from __future__ import annotations

import datetime
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from stackops.devcluster import processes
from stackops.devcluster.cluster import free_ports
from stackops.health.cloud import HealthSettings, keystone_urls, target
from stackops.health.monitor import DEGRADED, HEALTHY, CloudHealth, CloudMonitor, HealthEvent, Registry, run_round
from stackops.kube.engine import Outcome, StepState
from stackops.reconcile.metrics import Metrics
from stackops.services import identity
from tests.real.deployment import Deployment
from tests.support.argocd import argocd_health
from tests.support.status import status_of, with_verdict

INTERVAL = 1.0  # seconds: the operator's default is 30
TIMEOUT = 3.0
UID = "real-health-test"
DEPLOYED = ("keystone", "placement", "glance")


@dataclass
class Server:
    """A running gunicorn as /proc shows it: enough to stop it and start the same one again."""

    pid: int
    argv: list[str]
    env: dict[str, str]
    cwd: Path


def gunicorn_in(workdir: Path) -> Server:
    """The gunicorn master serving from `workdir` (its worker is a child running the same command)."""
    found: dict[int, Server] = {}
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) != workdir:
                continue
            argv = (entry / "cmdline").read_bytes().rstrip(b"\0").decode().split("\0")
            raw_env = (entry / "environ").read_bytes().rstrip(b"\0").decode().split("\0")
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if any("gunicorn" in part for part in argv):
            env = dict(item.split("=", 1) for item in raw_env if "=" in item)
            found[int(entry.name)] = Server(int(entry.name), argv, env, workdir)
    [master] = [server for pid, server in found.items() if parents[pid] not in found]
    return master


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code < 500
    except requests.ConnectionError:
        return False


def wait_until(what: str, condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def restarted_servers() -> Iterator[list[processes.Process]]:
    """Servers this module starts again; they serve the rest of the session, then stop."""
    started: list[processes.Process] = []
    yield started
    for process in started:
        processes.stop(process, str(process.log.parent), timeout=15)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class OperatorView:
    """The operator's health daemon for one cloud, without Kubernetes: the same functions, in order."""

    def __init__(self, deployed: Deployment, keystone_url: str) -> None:
        self.deployed = deployed
        self.settings = HealthSettings(
            interval=INTERVAL, timeout=TIMEOUT, keystone_urls=keystone_urls([f"{keystone_url}/v3"])
        )
        self.monitor = CloudMonitor(self.settings.interval, self.settings.timeout)
        self.registry = Registry()  # the verdicts status and metrics read, as the operator keeps them
        outcome = Outcome(steps=[StepState(f"{s}-api", s, "Ready") for s in DEPLOYED])
        self.status: dict[str, Any] = status_of(None, 1, "2026.1", now(), outcome=outcome)
        self.seen: dict[str, str] = {}
        self.events: list[HealthEvent] = []
        self.rounds = 0

    def round(self) -> CloudHealth:
        password = self.deployed.credentials[identity.ADMIN_PASSWORD_KEY]
        what = target(self.deployed.cloud, self.status, self.settings, (password,), None)
        health, events = run_round(self.monitor, what, UID, self.seen, self.registry)
        self.events += events
        self.seen = {name: h.state for name, h in health.services.items()}
        self.status = with_verdict(self.status, health, self.status, now())
        self.rounds += 1
        return health

    def rounds_until(self, what: str, condition: Callable[[CloudHealth], bool], most: int) -> int:
        """Rounds, one interval apart as the daemon runs them, until `condition`; at most `most`."""
        health = None
        for done in range(1, most + 1):
            health = self.round()
            if condition(health):
                return done
            time.sleep(self.monitor.next_delay())
        seen = {name: (h.state, h.message) for name, h in health.services.items()} if health else {}
        raise AssertionError(f"{what} not seen in {most} rounds: {seen}")

    def condition(self, kind: str) -> dict[str, Any]:
        return next(c for c in self.status["conditions"] if c["type"] == kind)

    def health_of(self) -> dict[str, str]:
        return {name: entry.get("health", "") for name, entry in self.status["services"].items()}


def scrape(port: int) -> dict[str, float]:
    """stackops_service_up of the test cloud, by service, read over HTTP."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        sample.labels["service"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "stackops_service_up" and sample.labels["cloud"] == "demo"
    }


def test_stopping_placement_degrades_only_placement_and_starting_it_recovers(
    keystone: str, placement: str, glance: str, deployed: Deployment, restarted_servers: list[processes.Process]
) -> None:
    [port] = free_ports(1)
    view = OperatorView(deployed, keystone)
    Metrics(view.registry).serve(port)  # what `stackops operator --metrics-port` serves
    try:
        # healthy: every deployed service answers, placement lists its resource providers
        view.rounds_until("a healthy cloud", lambda h: all(h.services[s].state == HEALTHY for s in DEPLOYED), 2)
        assert view.condition("Healthy")["status"] == "True" and view.status["phase"] == "Ready"
        assert view.condition("Ready")["status"] == "True"
        assert argocd_health({"metadata": {"generation": 1}, "status": view.status})[0] == "Healthy"
        assert scrape(port) == {s: 1.0 for s in DEPLOYED}

        # stop placement for real
        server = gunicorn_in(deployed.root / "placement-server")
        os.kill(server.pid, signal.SIGTERM)
        wait_until("placement to stop", lambda: not answers(placement))
        rounds = view.rounds_until("placement Degraded", lambda h: h.services["placement"].state == DEGRADED, 2)
        assert rounds <= 2  # within two check intervals
        # both of placement's checks say so: its endpoint, and listing resource providers through it
        message = (
            f"placement: internal endpoint {placement}: connection refused; "
            "listing resource providers: connection refused"
        )
        assert view.condition("Healthy")["message"] == message
        assert view.condition("Ready")["status"] == "False" and view.condition("Ready")["message"] == message
        assert view.status["phase"] == "Degraded"
        assert view.health_of() == {"keystone": HEALTHY, "placement": DEGRADED, "glance": HEALTHY}
        assert [(e.type, e.reason, e.message) for e in view.events] == [("Warning", "Degraded", message)]
        assert argocd_health({"metadata": {"generation": 1}, "status": view.status}) == ("Degraded", message)
        assert scrape(port) == {"keystone": 1.0, "placement": 0.0, "glance": 1.0}  # what the status shows

        # start it again: the same command, environment and directory
        log = server.cwd / "server.log"
        restarted_servers.append(
            processes.spawn("placement", server.argv, log, die_with_parent=True, env=server.env, cwd=server.cwd)
        )
        wait_until("placement to answer again", lambda: answers(placement))
        # a failing check backs off (up to four intervals); its recovery is still seen within a few rounds
        view.rounds_until("placement Recovered", lambda h: h.services["placement"].state == HEALTHY, 6)
        assert view.events[-1] == HealthEvent("Normal", "Recovered", "placement is healthy again")
        assert view.condition("Healthy")["status"] == "True" and view.status["phase"] == "Ready"
        assert view.condition("Ready")["status"] == "True"
        assert view.health_of() == {s: HEALTHY for s in DEPLOYED}
        assert scrape(port) == {s: 1.0 for s in DEPLOYED}
        latest = view.registry.latest(UID)
        assert latest is not None
        providers = [f for f in latest.findings if f.check == "resource-providers"]
        assert [f.state for f in providers] == ["ok"]
    finally:
        view.monitor.close()
