"""Health checks without a cloud: the Kubernetes layer from pod and Job objects, OpenStack checks
against stand-in connections, and the monitor's timing (timeouts, backoff) on a fake clock."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

from stackops.health.cloud import HealthSettings, keystone_urls, target
from stackops.health.monitor import (
    DEGRADED,
    HEALTHY,
    UNKNOWN,
    CloudMonitor,
    OpenStackAccess,
    ServiceHealth,
    Target,
    describe_error,
    events,
)
from stackops.health.workloads import workload_problems
from stackops.services.health_checks import (
    COMPUTE_SERVICES,
    VOLUME_SERVICES,
    CheckResult,
    ComputeServices,
    EndpointAnswers,
    HealthCheck,
    NetworkAgents,
    ProvidersMatchHypervisors,
    Sample,
    VolumeServices,
)
from tests.conftest import cloud


def pod(name: str, service: str, *containers: dict[str, Any], deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/name": service}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"containerStatuses": list(containers)}}


def crash_looping(name: str = "api", restarts: int = 7) -> dict[str, Any]:
    return {
        "name": name,
        "restartCount": restarts,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1}},
    }


def test_crash_loops_unstartable_containers_and_failed_jobs_are_named_per_service() -> None:
    pods = [
        pod("demo-keystone-api-7f-abc", "keystone", crash_looping()),
        pod("demo-glance-api-5d-xyz", "glance", {"name": "api", "state": {"waiting": {"reason": "ImagePullBackOff"}}}),
        pod("demo-placement-api-1-ok", "placement", {"name": "api", "state": {"running": {}}}),
        pod("demo-keystone-api-old", "keystone", crash_looping(), deleting=True),
        pod("demo-memcached-1", "memcached", {"name": "m", "state": {"waiting": {"reason": "ContainerCreating"}}}),
    ]
    jobs = [
        {
            "metadata": {"name": "demo-placement-db-sync-1a2b3c4d", "labels": {"app.kubernetes.io/name": "placement"}},
            "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]},
        },
        {
            "metadata": {"name": "demo-keystone-bootstrap-5e6f", "labels": {"app.kubernetes.io/name": "keystone"}},
            "status": {"conditions": [{"type": "Complete", "status": "True"}]},
        },
    ]
    assert workload_problems(pods, jobs) == {
        "glance": ["pod demo-glance-api-5d-xyz cannot start container api: ImagePullBackOff"],
        "keystone": ["pod demo-keystone-api-7f-abc is crash-looping (container api, 7 restarts, last exit code 1)"],
        "placement": ["job demo-placement-db-sync-1a2b3c4d failed: BackoffLimitExceeded"],
    }


def services(*items: Any) -> Any:
    return SimpleNamespace(services=lambda: list(items))


def test_compute_and_volume_services_count_states_and_name_enabled_hosts_that_are_down() -> None:
    conn = SimpleNamespace(
        compute=services(
            SimpleNamespace(binary="nova-compute", host="c1", state="up", status="enabled"),
            SimpleNamespace(binary="nova-compute", host="c2", state="down", status="enabled"),
            SimpleNamespace(binary="nova-compute", host="c3", state="down", status="disabled"),
            SimpleNamespace(binary="nova-scheduler", host="cp", state="down", status="enabled"),
        ),
        block_storage=services(SimpleNamespace(binary="cinder-volume", host="v@lvm", state="up", status="enabled")),
    )
    compute = ComputeServices().run(conn)
    assert not compute.ok and compute.message == "compute service down on c2"  # c3 is disabled on purpose
    assert compute.samples == (
        Sample(COMPUTE_SERVICES, {"state": "down", "status": "disabled"}, 1),
        Sample(COMPUTE_SERVICES, {"state": "down", "status": "enabled"}, 1),
        Sample(COMPUTE_SERVICES, {"state": "up", "status": "enabled"}, 1),
    )
    assert VolumeServices().run(conn) == CheckResult(
        True, samples=(Sample(VOLUME_SERVICES, {"state": "up", "status": "enabled"}, 1),)
    )


def test_network_agents_and_providers_matching_hypervisors() -> None:
    agents = [
        SimpleNamespace(agent_type="OVN Controller agent", host=f"c{i}", is_alive=i != 2, is_admin_state_up=True)
        for i in range(9)
    ]
    conn = SimpleNamespace(
        network=SimpleNamespace(agents=lambda: agents),
        compute=SimpleNamespace(hypervisors=lambda: [SimpleNamespace(name="c1"), SimpleNamespace(name="c2")]),
        placement=SimpleNamespace(resource_providers=lambda: [SimpleNamespace(name="c1")]),
    )
    result = NetworkAgents().run(conn)
    assert result.message == "agents not alive: OVN Controller agent on c2"
    assert {s.labels["alive"]: s.value for s in result.samples} == {"false": 1, "true": 8}
    assert ProvidersMatchHypervisors().run(conn).message == "hypervisors without a placement resource provider: c2"


def test_endpoint_answers_unless_it_fails_on_the_server_side() -> None:
    def conn(status: int) -> Any:
        return SimpleNamespace(session=SimpleNamespace(get=lambda url, **_: SimpleNamespace(status_code=status)))

    check = EndpointAnswers("internal", "http://demo-placement-api.openstack.svc:8778")
    assert check.run(conn(401)).ok  # answering, just not to strangers
    assert (
        check.run(conn(503)).message
        == "internal endpoint http://demo-placement-api.openstack.svc:8778 answered HTTP 503"
    )


def test_error_descriptions_are_stable() -> None:
    refused = ConnectionError(
        "HTTPConnectionPool: <urllib3.connection.HTTPConnection object at 0x7f3e>: [Errno 111] Connection refused"
    )
    assert describe_error(refused) == "connection refused"
    assert describe_error(OSError("[Errno -2] Name or service not known")) == "host name not resolved"
    assert describe_error(SdkHttpError(503)) == "HTTP 503"  # the request id is left out


class SdkHttpError(Exception):
    """What openstacksdk raises for an HTTP error, as far as describe_error looks."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HttpException: {status}: Request-ID req-123")
        self.status_code = status


# -- the monitor ------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeConn:
    """A connection that issues tokens (or not) and has a catalog of two services."""

    def __init__(self) -> None:
        self.token_error: Exception | None = None
        self.service_catalog = [
            {"name": "keystone", "endpoints": [{"interface": "internal", "url": "http://ks:5000", "region_id": "R"}]},
            {
                "name": "placement",
                "endpoints": [
                    {"interface": "internal", "url": "http://pl:8778", "region_id": "R"},
                    {"interface": "public", "url": "https://placement.example.com", "region_id": "R"},
                ],
            },
        ]
        self.down: set[str] = set()
        self.session = SimpleNamespace(invalidate=lambda: None, get_token=self._token, get=self._get)

    def _token(self) -> str:
        if self.token_error:
            raise self.token_error
        return "token"

    def _get(self, url: str, **_: Any) -> Any:
        if url in self.down:
            raise ConnectionError("[Errno 111] Connection refused")
        return SimpleNamespace(status_code=300)


@dataclass(frozen=True)
class FakeAccess(OpenStackAccess):
    conn: Any = None

    def connect(self) -> Any:
        return self.conn


class Counting(HealthCheck):
    name = "counting"

    def __init__(self, ok: bool = True, block: threading.Event | None = None) -> None:
        self.ok = ok
        self.runs = 0
        self.block = block

    def run(self, conn: Any) -> CheckResult:
        self.runs += 1
        if self.block is not None:
            self.block.wait(10)
        return CheckResult(self.ok, "" if self.ok else "counting said no")


def make_target(
    conn: FakeConn, checks: dict[str, list[HealthCheck]] | None = None, workloads: dict[str, list[str]] | None = None
) -> Target:
    return Target(
        "openstack",
        "demo",
        ("mariadb", "keystone", "placement"),
        frozenset({"mariadb", "keystone", "placement"}),
        checks or {},
        FakeAccess("http://ks:5000/v3", "admin", "secret-password", "admin", "R", conn=conn),
        workloads=workloads if workloads is not None else {},
    )


def test_a_round_checks_each_layer_and_an_endpoint_down_degrades_only_its_service() -> None:
    conn = FakeConn()
    monitor = CloudMonitor(30, 0.5, clock=Clock())
    health = monitor.round(make_target(conn))
    assert {s: h.state for s, h in health.services.items()} == {
        "mariadb": HEALTHY,
        "keystone": HEALTHY,
        "placement": HEALTHY,
    }
    assert {f.key for f in health.findings_of("placement")} == {"workloads", "endpoint:internal:http://pl:8778"}

    conn.down.add("http://pl:8778")
    monitor = CloudMonitor(30, 0.5, clock=Clock())
    health = monitor.round(
        make_target(
            conn, workloads={"mariadb": ["pod demo-mariadb-0 is crash-looping (container mariadb, 3 restarts)"]}
        )
    )
    assert health.services["placement"].state == DEGRADED
    assert health.services["placement"].message == "internal endpoint http://pl:8778: connection refused"
    assert health.services["keystone"].state == HEALTHY
    assert health.services["mariadb"].message.startswith("pod demo-mariadb-0 is crash-looping")


def test_no_token_leaves_the_other_services_unchecked_not_degraded() -> None:
    conn = FakeConn()
    conn.token_error = ConnectionError("Connection refused")
    health = CloudMonitor(30, 0.5, clock=Clock()).round(replace(make_target(conn), workloads=None))
    assert health.services["keystone"] == ServiceHealth(DEGRADED, "token request: connection refused")
    assert health.services["placement"] == ServiceHealth(
        UNKNOWN, "keystone issued no token (token request: connection refused)"
    )
    # its pods are fine, and that is all that could be seen of it
    with_pods = CloudMonitor(30, 0.5, clock=Clock()).round(make_target(conn))
    assert with_pods.services["placement"].state == HEALTHY
    assert [f.check for f in with_pods.findings_of("placement")] == ["workloads"]


def test_a_hanging_check_times_out_is_not_restarted_while_it_hangs_and_others_go_on() -> None:
    conn = FakeConn()
    clock = Clock()
    release = threading.Event()
    hanging = Counting(block=release)
    monitor = CloudMonitor(30, 0.2, clock=clock)
    try:
        health = monitor.round(make_target(conn, {"placement": [hanging]}))
        assert health.services["placement"].message == "counting: did not answer within 0.2s"
        assert health.services["keystone"].state == HEALTHY
        clock.now += 1000  # long past due, but still hanging: not started twice
        monitor.round(make_target(conn, {"placement": [hanging]}))
        assert hanging.runs == 1
    finally:
        release.set()
        monitor.close()


class Keyed(Counting):
    def __init__(self, key: str, block: threading.Event | None = None) -> None:
        super().__init__(block=block)
        self._key = key

    @property
    def key(self) -> str:
        return self._key


def test_checks_of_a_round_run_at_once_so_hanging_ones_hold_no_other_back() -> None:
    conn = FakeConn()
    release = threading.Event()
    hanging = [Keyed(f"hang-{i}", block=release) for i in range(8)]
    quick = [Keyed(f"quick-{i}") for i in range(8)]
    monitor = CloudMonitor(30, 0.3, clock=Clock())
    try:
        # keystone's checks are started first (services in order), placement's after them
        health = monitor.round(make_target(conn, {"keystone": list(hanging), "placement": list(quick)}))
        assert health.services["keystone"].state == DEGRADED
        assert health.services["placement"].state == HEALTHY
    finally:
        release.set()
        monitor.close()


def test_a_failing_check_backs_off_and_recovery_is_seen() -> None:
    conn = FakeConn()
    clock = Clock()
    failing = Counting(ok=False)
    monitor = CloudMonitor(10, 1, clock=clock)
    checks: dict[str, list[HealthCheck]] = {"placement": [failing]}
    runs = []
    for _ in range(8):
        monitor.round(make_target(conn, checks))
        runs.append(failing.runs)
        clock.now += 10
    # every 10 s at first, then further apart (15, 22.5, 33.75, capped at 40)
    assert runs == [1, 2, 2, 3, 3, 3, 4, 4]
    assert monitor.next_delay() <= 10
    failing.ok = True
    clock.now += 40
    health = monitor.round(make_target(conn, checks))
    assert health.services["placement"].state == HEALTHY
    assert events({"placement": DEGRADED}, health)[0].message == "placement is healthy again"


def test_events_name_the_service_once_per_transition() -> None:
    conn = FakeConn()
    conn.down.add("http://pl:8778")
    health = CloudMonitor(30, 0.5, clock=Clock()).round(make_target(conn))
    [event] = events({"placement": HEALTHY, "keystone": HEALTHY}, health)
    assert (event.type, event.reason) == ("Warning", "Degraded")
    assert event.message == "placement: internal endpoint http://pl:8778: connection refused"
    assert events({"placement": DEGRADED}, health) == []  # still degraded: no new Event


# -- what to check of a cloud --------------------------------------------------------------------


def test_target_uses_the_internal_keystone_endpoint_unless_overridden() -> None:
    demo = cloud()
    status = {"services": {"keystone": {"phase": "Ready"}, "placement": {"phase": "Deploying"}}}
    found = target(demo, status, HealthSettings(), ("admin-password-123",), None)
    assert found.access is not None and found.access.auth_url == "https://demo-keystone-api.openstack.svc:5000/v3"
    assert found.deployed == {"keystone"} and "placement" not in found.checks  # not deployed yet
    assert "admin-password-123" not in repr(found.access)
    override = HealthSettings(
        keystone_urls=keystone_urls(["http://127.0.0.1:5000/v3", "openstack/demo=http://10.0.0.9:5000"])
    )
    overridden = target(demo, status, override, ("pw-123456789",), None).access
    assert overridden is not None and overridden.auth_url == "http://10.0.0.9:5000"
    off = target(demo, status, HealthSettings(openstack=False), ("pw-123456789",), None)
    assert off.access is None and off.unchecked == "OpenStack checks are switched off"


def test_placement_declares_its_resource_provider_check() -> None:
    status = {"services": {"placement": {"phase": "Ready"}}}
    found = target(cloud(), status, HealthSettings(), ("pw-123456789",), None)
    assert [c.name for c in found.checks["placement"]] == ["resource-providers"]


def test_bad_keystone_urls_name_the_setting() -> None:
    try:
        keystone_urls(["openstack/demo=ftp://x"])
    except ValueError as error:
        assert str(error).startswith("--keystone-url: 'openstack/demo=ftp://x' is not an http(s) URL")
    else:
        raise AssertionError("accepted an ftp URL")
