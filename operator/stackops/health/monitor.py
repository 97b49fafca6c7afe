"""Running a cloud's health checks: each bounded in time, backing off while it fails, summed up per service.

One `CloudMonitor` per cloud keeps the latest result of every check. A round runs the checks that
are due, all at once in the monitor's own threads (never the reconcile handlers'), and waits at
most `timeout` for them: a check that has not answered by then counts as failed ("did not answer
within 10s") and is not started again while it still hangs. A failing check is retried after a
growing pause, capped at a few intervals, so a broken API is not hammered and its recovery is still
seen soon. A failure marks only the service the check belongs to.

Nothing here knows Kubernetes or kopf: the operator's daemon and the tests drive the same rounds.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackops.services.health_checks import CheckResult, EndpointAnswers, HealthCheck, Sample

HEALTHY, DEGRADED, UNKNOWN = "Healthy", "Degraded", "Unknown"
OK, FAILED, NOT_CHECKED = "ok", "failed", "not-checked"
MAX_BACKOFF_INTERVALS = 4.0
# Threads for one cloud's checks, started only as needed: enough that every check of a round runs at
# once, so one hanging API never holds another service's check in a queue past its timeout.
WORKERS = 64
KEYSTONE = "keystone"
WORKLOADS = "workloads"


@dataclass(frozen=True)
class OpenStackAccess:
    """How the operator reaches a cloud's APIs: admin credentials at the keystone endpoint."""

    auth_url: str
    username: str
    password: str = field(repr=False)
    project: str
    region: str
    interface: str = "internal"
    timeout: float = 10.0
    # during a rotation of the admin password, the other one: tried when keystone refuses `password`
    # (the seconds between the bootstrap Job's change and its success being seen)
    fallback_passwords: tuple[str, ...] = field(default=(), repr=False)
    # the cloud's CA (PEM), which its internal endpoints' certificates are verified with; None: the
    # public CAs only (a cloud without internal TLS)
    ca_certificate: str | None = field(default=None, repr=False)

    def connect(self) -> Any:
        import openstack  # only the operator's health checks need it loaded

        verify: str | bool = trusted_bundle(self.ca_certificate) if self.ca_certificate else True
        settings: dict[str, Any] = {
            "region_name": self.region,
            "interface": self.interface,
            "api_timeout": self.timeout,
        }
        if self.fallback_passwords:  # a session of its own: no clouds.yaml or environment is read either
            from keystoneauth1 import session

            auth = fallback_password_auth(
                self.auth_url, self.username, self.password, self.project, self.fallback_passwords
            )
            return openstack.connection.Connection(session=session.Session(auth=auth, verify=verify), **settings)
        return openstack.connect(
            cacert=verify if isinstance(verify, str) else None,
            auth_url=self.auth_url,
            username=self.username,
            password=self.password,
            project_name=self.project,
            user_domain_name="Default",
            project_domain_name="Default",
            load_yaml_config=False,  # the operator's own environment must not change what it checks
            load_envvars=False,
            **settings,
        )


def trusted_bundle(ca_certificate: str) -> str:
    """A file of the public CAs (certifi's, which requests verifies with by default) and the cloud's
    CA: its internal endpoints are verified with the one, a public endpoint's certificate (an
    ingress's) with the others. Named by its content under the temporary directory (the operator's
    pod mounts one), so it is written once per CA and never changes under a reader."""
    import certifi

    bundle = Path(certifi.where()).read_text() + "\n" + ca_certificate
    path = Path(tempfile.gettempdir()) / "stackops-ca" / f"{hashlib.sha256(bundle.encode()).hexdigest()[:16]}.pem"
    if not path.exists():
        path.parent.mkdir(mode=0o700, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}")
        partial.write_text(bundle)
        partial.replace(path)  # whole or not at all, for a thread that reads it meanwhile
    return str(path)


def fallback_password_auth(
    auth_url: str, username: str, password: str, project: str, fallbacks: tuple[str, ...]
) -> Any:
    """keystoneauth's password plugin that, when keystone refuses the password, authenticates with
    each of `fallbacks` in turn. keystoneauth authenticates again when a call meets a revoked token
    (a password change revokes the user's tokens), so calls go on with whichever keystone takes."""
    from keystoneauth1 import exceptions
    from keystoneauth1.identity import v3

    class _FallbackPassword(v3.Password):
        def get_auth_ref(self, session: Any, **kwargs: Any) -> Any:
            for candidate in (password, *fallbacks):
                self.auth_methods[0].password = candidate  # type: ignore[attr-defined]
                try:
                    return super().get_auth_ref(session, **kwargs)
                except exceptions.Unauthorized:
                    if candidate == (password, *fallbacks)[-1]:
                        raise
            raise AssertionError("unreachable")

    return _FallbackPassword(
        auth_url=auth_url, username=username, password=password, project_name=project,
        user_domain_name="Default", project_domain_name="Default",
    )  # fmt: skip


@dataclass(frozen=True)
class Target:
    """What to check of one cloud, as of now."""

    namespace: str
    name: str
    services: tuple[str, ...]  # every enabled service
    deployed: frozenset[str] = frozenset()  # those deployed: only they get OpenStack checks
    checks: Mapping[str, list[HealthCheck]] = field(default_factory=dict)  # declared by service modules
    access: OpenStackAccess | None = None  # None: no OpenStack checks (see `unchecked`)
    unchecked: str = ""  # why there are no OpenStack checks, when so
    workloads: Mapping[str, list[str]] | None = None  # Kubernetes-layer problems; None: not looked at


@dataclass(frozen=True)
class Finding:
    """The latest result of one check of one service."""

    service: str
    check: str  # the check's kind (HealthCheck.name)
    key: str
    state: str  # ok | failed | not-checked
    message: str = ""
    latency: float | None = None  # seconds the check took
    samples: tuple[Sample, ...] = ()
    last_success: float | None = None  # wall-clock time of its last success


@dataclass(frozen=True)
class ServiceHealth:
    state: str  # Healthy | Degraded | Unknown
    message: str = ""


@dataclass(frozen=True)
class CloudHealth:
    namespace: str
    name: str
    services: dict[str, ServiceHealth]
    findings: tuple[Finding, ...] = ()
    openstack: str = ""  # why OpenStack checks did not run, when they did not

    def findings_of(self, service: str) -> list[Finding]:
        return [f for f in self.findings if f.service == service]


@dataclass(frozen=True)
class HealthEvent:
    type: str  # Normal | Warning
    reason: str  # Degraded | Recovered
    message: str


class TokenIssued(HealthCheck):
    """Keystone issues a token: authenticate anew, so the answer is today's and not a cached token's."""

    name = "token"

    def asks(self) -> str:
        return "token request"

    def run(self, conn: Any) -> CheckResult:
        conn.session.invalidate()
        conn.session.get_token()
        return CheckResult(True)


def describe_error(error: BaseException) -> str:
    """A short, stable reason: no request ids, object addresses or timings that change every time."""
    text = str(error)
    lowered = text.lower()
    status = getattr(error, "status_code", None) or getattr(error, "http_status", None)
    if status:
        return f"HTTP {status}"
    if "connection refused" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "name resolution" in lowered or "nodename nor servname" in lowered:
        return "host name not resolved"
    if isinstance(error, TimeoutError) or "timed out" in lowered:
        return "timed out"
    first = text.splitlines()[0][:120] if text else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


@dataclass
class _State:
    finding: Finding
    failures: int = 0
    due: float = 0.0
    running: Future[tuple[CheckResult, float]] | None = None


class CloudMonitor:
    """The health of one cloud, kept between rounds."""

    def __init__(
        self,
        interval: float,
        timeout: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.interval = interval
        self.timeout = timeout
        self._clock = clock
        self._round_start = clock()
        self._wall = wall
        self._states: dict[tuple[str, str], _State] = {}
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="health")
        self._conn: Any = None
        self._conn_for: OpenStackAccess | None = None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def round(self, target: Target) -> CloudHealth:
        """Run what is due and return the cloud's health from every check's latest result."""
        # every check of a round is next due one interval after the round began, however long it
        # took: the checks stay together, and a round is an interval
        self._round_start = self._clock()
        findings: list[Finding] = []
        if target.workloads is not None:
            for service in target.services:
                problems = target.workloads.get(service, [])
                state = FAILED if problems else OK
                findings.append(Finding(service, WORKLOADS, WORKLOADS, state, "; ".join(problems)))
        unchecked = target.unchecked
        if target.access is not None and KEYSTONE in target.deployed:
            conn = self._connection(target.access)
            [token] = self._run([(KEYSTONE, TokenIssued())], conn)
            findings.append(token)
            if token.state == OK:
                findings += self._run(self._openstack_checks(target, conn), conn)
            else:
                unchecked = f"keystone issued no token ({token.message})"
        elif target.access is not None:
            unchecked = "keystone is not deployed yet"
        self._forget_except({(f.service, f.key) for f in findings})
        summary = _summary(target, findings, unchecked)
        return CloudHealth(target.namespace, target.name, summary, tuple(findings), unchecked)

    def next_delay(self) -> float:
        """Seconds until a check is due again (at most one interval)."""
        now = self._clock()
        dues = [s.due - now for s in self._states.values()]
        return max(0.0, min([self.interval, *dues]))

    def _connection(self, access: OpenStackAccess) -> Any:
        if self._conn is None or self._conn_for != access:
            self._conn = access.connect()
            self._conn_for = access
        return self._conn

    def _openstack_checks(self, target: Target, conn: Any) -> list[tuple[str, HealthCheck]]:
        assert target.access is not None
        checks: list[tuple[str, HealthCheck]] = []
        for entry in conn.service_catalog or []:
            service = entry.get("name")
            if service not in target.deployed:
                continue
            for endpoint in entry.get("endpoints", []):
                region = endpoint.get("region_id") or endpoint.get("region")
                if endpoint.get("interface") == target.access.interface and region in (None, target.access.region):
                    checks.append((service, EndpointAnswers(endpoint["interface"], endpoint["url"])))
        for service in sorted(target.deployed):
            checks += [(service, check) for check in target.checks.get(service, [])]
        return checks

    def _run(self, checks: Iterable[tuple[str, HealthCheck]], conn: Any) -> list[Finding]:
        now = self._clock()
        started: dict[Future[tuple[CheckResult, float]], tuple[str, HealthCheck]] = {}
        pending: list[tuple[str, HealthCheck]] = list(checks)
        for service, check in pending:
            state = self._states.get((service, check.key))
            if state is not None and (state.due > now or (state.running is not None and not state.running.done())):
                continue  # not due yet, or still hanging from an earlier round: keep its last result
            started[self._pool.submit(self._timed, check, conn)] = (service, check)
        done, _ = concurrent.futures.wait(started, timeout=self.timeout)
        for future, (service, check) in started.items():
            if future in done:
                try:
                    result, latency = future.result()
                except Exception as error:  # an API that fails is a finding, not the operator's crash
                    result, latency = CheckResult(False, f"{check.asks()}: {describe_error(error)}"), None
                self._record(service, check, result, latency, None)
            else:
                message = f"{check.asks()}: did not answer within {self.timeout:g}s"
                self._record(service, check, CheckResult(False, message), None, future)
        return [self._states[(service, check.key)].finding for service, check in pending]

    def _timed(self, check: HealthCheck, conn: Any) -> tuple[CheckResult, float]:
        start = self._clock()
        result = check.run(conn)
        return result, self._clock() - start

    def _record(
        self,
        service: str,
        check: HealthCheck,
        result: CheckResult,
        latency: float | None,
        running: Future[tuple[CheckResult, float]] | None,
    ) -> None:
        key = (service, check.key)
        state = self._states.get(key)
        last_success = state.finding.last_success if state else None
        now = self._round_start
        if result.ok:
            failures, due, last_success = 0, now + self.interval, self._wall()
        else:
            failures = (state.failures if state else 0) + 1
            pause = self.interval * (1.5 ** (failures - 1))
            due = now + min(pause, self.interval * MAX_BACKOFF_INTERVALS)
        finding = Finding(
            service,
            check.name,
            check.key,
            OK if result.ok else FAILED,
            result.message,
            latency,
            result.samples,
            last_success,
        )
        self._states[key] = _State(finding, failures, due, running)

    def _forget_except(self, keys: set[tuple[str, str]]) -> None:
        """Drop checks that no longer apply (a disabled service, a removed endpoint)."""
        for key in [k for k in self._states if k not in keys]:
            del self._states[key]


def _summary(target: Target, findings: list[Finding], unchecked: str) -> dict[str, ServiceHealth]:
    services: dict[str, ServiceHealth] = {}
    for service in target.services:
        own = [f for f in findings if f.service == service]
        failed = [f.message for f in own if f.state == FAILED]
        if failed:
            services[service] = ServiceHealth(DEGRADED, "; ".join(failed))
        elif any(f.state == OK for f in own):
            services[service] = ServiceHealth(HEALTHY)
        else:
            services[service] = ServiceHealth(UNKNOWN, unchecked or "not checked yet")
    return services


def events(before: Mapping[str, str], after: CloudHealth) -> list[HealthEvent]:
    """Degraded and Recovered Events, naming the service; `before` maps services to their last state."""
    found: list[HealthEvent] = []
    for service, health in after.services.items():
        previous = before.get(service, "")
        if health.state == DEGRADED and previous != DEGRADED:
            found.append(HealthEvent("Warning", "Degraded", f"{service}: {health.message}"))
        elif health.state == HEALTHY and previous == DEGRADED:
            found.append(HealthEvent("Normal", "Recovered", f"{service} is healthy again"))
    return found


def run_round(
    monitor: CloudMonitor, target: Target, uid: str, seen: Mapping[str, str], registry: Registry
) -> tuple[CloudHealth, list[HealthEvent]]:
    """One round for one cloud, as the operator runs it: check, publish for status and metrics, and
    say which services became Degraded or Recovered since `seen` (service -> last state)."""
    health = monitor.round(target)
    registry.publish(uid, health)
    return health, events(seen, health)


class Registry:
    """The latest health of every cloud an operator checks, by uid: what status and metrics read.
    (One an operator, kept with the rest of what it keeps while it runs.)"""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clouds: dict[str, CloudHealth] = {}

    def publish(self, uid: str, health: CloudHealth) -> None:
        with self._lock:
            self._clouds[uid] = health

    def latest(self, uid: str) -> CloudHealth | None:
        with self._lock:
            return self._clouds.get(uid)

    def forget(self, uid: str) -> None:
        with self._lock:
            self._clouds.pop(uid, None)

    def all(self) -> list[CloudHealth]:
        with self._lock:
            return list(self._clouds.values())
