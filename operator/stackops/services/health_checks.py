"""OpenStack-level health checks: what a service module declares in `Service.health_checks()`.

A check asks one question of a running cloud through an openstacksdk connection and answers with
a `CheckResult`: whether the answer is what a working cloud gives, a short reason a person can act
on when it is not, and counts for the metrics (compute services up and down, agents alive …).
Checks hold no state and do no timing: `stackops.health.monitor` runs them, bounded in time.

Messages are stable from one run to the next (no timings, request ids or object addresses), so an
unchanged problem keeps the same status and causes no write.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

MAX_NAMED = 5  # hosts named in a message; the rest are counted


@dataclass(frozen=True)
class Metric:
    """A gauge checks report samples of, served as stackops_<name> with `help` (stackops.reconcile.metrics)."""

    name: str
    help: str


COMPUTE_SERVICES = Metric(
    "compute_services", "nova-compute services by state (up, down) and status (enabled, disabled)."
)
VOLUME_SERVICES = Metric(
    "volume_services", "cinder-volume services by state (up, down) and status (enabled, disabled)."
)
NETWORK_AGENTS = Metric("network_agents", "Neutron/OVN agents by type and whether they are alive.")
RESOURCE_PROVIDERS = Metric("placement_resource_providers", "Resource providers placement lists.")
DNS_SERVICES = Metric("dns_services", "Designate services by name and the status their heartbeats report.")
SHARE_SERVICES = Metric("share_services", "manila-share services by state (up, down) and status (enabled, disabled).")
METRICS_BACKLOG = Metric(
    "gnocchi_backlog", "Gnocchi's measures waiting for metricd (measures), and the metrics they are of (metrics)."
)
ALARMS = Metric("alarms", "Aodh's alarms by state (ok, alarm, insufficient data), of the checking project.")


@dataclass(frozen=True)
class Sample:
    """One value for the metrics, e.g. Sample(COMPUTE_SERVICES, {"state": "up"}, 3)."""

    metric: Metric
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str = ""  # why not ok; empty when ok
    samples: tuple[Sample, ...] = field(default_factory=tuple)


class HealthCheck(ABC):
    """One question to ask a running service; `key` tells two checks of the same kind apart."""

    name: ClassVar[str]

    @property
    def key(self) -> str:
        return self.name

    def asks(self) -> str:
        """What the check asks, for messages such as 'listing compute services: timed out'."""
        return self.name

    @abstractmethod
    def run(self, conn: Any) -> CheckResult:
        """Ask through `conn` (an openstack.connection.Connection); raise when the API fails."""


def named(items: Iterable[str]) -> str:
    """'a, b, c' with at most MAX_NAMED names, then 'and N more'."""
    ordered = sorted(items)
    shown = ", ".join(ordered[:MAX_NAMED])
    rest = len(ordered) - MAX_NAMED
    return f"{shown} and {rest} more" if rest > 0 else shown


class EndpointAnswers(HealthCheck):
    """A catalog endpoint answers HTTP at all (any status below 500): the API process is serving."""

    name = "endpoint"

    def __init__(self, interface: str, url: str) -> None:
        self.interface = interface
        self.url = url

    @property
    def key(self) -> str:
        return f"{self.name}:{self.interface}:{self.url}"

    def asks(self) -> str:
        return f"{self.interface} endpoint {self.url}"

    def run(self, conn: Any) -> CheckResult:
        response = conn.session.get(self.url, authenticated=False, raise_exc=False, connect_retries=0)
        if response.status_code >= 500:
            return CheckResult(False, f"{self.interface} endpoint {self.url} answered HTTP {response.status_code}")
        return CheckResult(True)


class ResourceProviders(HealthCheck):
    """Placement lists its resource providers (the inventory nova schedules against)."""

    name = "resource-providers"

    def asks(self) -> str:
        return "listing resource providers"

    def run(self, conn: Any) -> CheckResult:
        providers = list(conn.placement.resource_providers())
        return CheckResult(True, samples=(Sample(RESOURCE_PROVIDERS, {}, len(providers)),))


class SecretsListed(HealthCheck):
    """Barbican lists secrets: its API reaches its database and validates tokens. One secret at most
    is asked for, and the generator is not followed past its first page."""

    name = "secrets"

    def asks(self) -> str:
        return "listing secrets"

    def run(self, conn: Any) -> CheckResult:
        next(iter(conn.key_manager.secrets(limit=1)), None)
        return CheckResult(True)


class ObjectStoreAccount(HealthCheck):
    """Swift's proxy answers a HEAD on the checking project's account: it validates the token with
    keystone, and reaches an account server through the account ring."""

    name = "object-store-account"

    def asks(self) -> str:
        return "reading the account's metadata"

    def run(self, conn: Any) -> CheckResult:
        conn.object_store.get_account_metadata()
        return CheckResult(True)


class MetricsBacklog(HealthCheck):
    """Gnocchi reports its status (`gnocchi status`): its API validates tokens and reaches its index
    and its storage; the backlog of measures metricd has not processed yet is reported, which grows
    while no metricd runs."""

    name = "metrics-backlog"

    def asks(self) -> str:
        return "reading gnocchi's status"

    def run(self, conn: Any) -> CheckResult:
        response = conn.session.get("/v1/status", endpoint_filter={"service_type": "metric"}, raise_exc=True)
        summary = response.json()["storage"]["summary"]
        samples = tuple(Sample(METRICS_BACKLOG, {"kind": kind}, summary[kind]) for kind in ("measures", "metrics"))
        return CheckResult(True, samples=samples)


class AlarmsListed(HealthCheck):
    """Aodh lists the checking project's alarms: its API validates tokens and reaches its database."""

    name = "alarms"

    def asks(self) -> str:
        return "listing alarms"

    def run(self, conn: Any) -> CheckResult:
        alarms = conn.session.get("/v2/alarms", endpoint_filter={"service_type": "alarming"}, raise_exc=True).json()
        counts = Counter(str(a["state"]) for a in alarms)
        samples = tuple(Sample(ALARMS, {"state": state}, n) for state, n in sorted(counts.items()))
        return CheckResult(True, samples=samples)


class DnsServices(HealthCheck):
    """Designate's processes (central, worker, producer, mdns, the API) report UP: their heartbeats
    reach central over RabbitMQ."""

    name = "dns-services"

    def asks(self) -> str:
        return "listing DNS services"

    def run(self, conn: Any) -> CheckResult:
        found = conn.dns.get("/service_statuses").json()["service_statuses"]
        counts = Counter((str(s["service_name"]), str(s["status"])) for s in found)
        samples = tuple(
            Sample(DNS_SERVICES, {"service": name, "status": status}, count)
            for (name, status), count in sorted(counts.items())
        )
        down = {f"{s['service_name']} on {s['hostname']}" for s in found if s["status"] != "UP"}
        if down:
            return CheckResult(False, f"DNS services not up: {named(down)}", samples)
        return CheckResult(True, samples=samples)


class LoadBalancerProviders(HealthCheck):
    """Octavia lists the provider drivers the cloud offers (`openstack loadbalancer provider list`):
    its API validates tokens and has loaded each driver."""

    name = "load-balancer-providers"

    def __init__(self, expected: tuple[str, ...]) -> None:
        self.expected = expected

    def asks(self) -> str:
        return "listing load balancer providers"

    def run(self, conn: Any) -> CheckResult:
        listed = {str(p.name) for p in conn.load_balancer.providers()}
        missing = set(self.expected) - listed
        if missing:
            return CheckResult(False, f"load balancer providers not offered: {named(missing)}")
        return CheckResult(True)


class ProvidersMatchHypervisors(HealthCheck):
    """Every hypervisor nova knows has its resource provider in placement, or nova cannot schedule there."""

    name = "providers-match-hypervisors"

    def asks(self) -> str:
        return "comparing hypervisors with resource providers"

    def run(self, conn: Any) -> CheckResult:
        hypervisors = {h.name for h in conn.compute.hypervisors()}
        providers = {p.name for p in conn.placement.resource_providers()}
        missing = hypervisors - providers
        if missing:
            return CheckResult(False, f"hypervisors without a placement resource provider: {named(missing)}")
        return CheckResult(True)


def _service_states(services: Iterable[Any], binary: str, metric: Metric, what: str) -> CheckResult:
    """Up/down and enabled/disabled of the `binary` services (nova-compute, cinder-volume) per host;
    an enabled service that is down is a problem, a disabled one is an operator's choice."""
    found = [s for s in services if s.binary == binary]
    counts = Counter((str(s.state), str(s.status)) for s in found)
    samples = tuple(
        Sample(metric, {"state": state, "status": status}, count) for (state, status), count in sorted(counts.items())
    )
    down = {str(s.host) for s in found if s.status == "enabled" and s.state != "up"}
    if down:
        return CheckResult(False, f"{what} down on {named(down)}", samples)
    return CheckResult(True, samples=samples)


class ComputeServices(HealthCheck):
    """nova-compute services up/down and enabled/disabled per host."""

    name = "compute-services"

    def asks(self) -> str:
        return "listing compute services"

    def run(self, conn: Any) -> CheckResult:
        return _service_states(conn.compute.services(), "nova-compute", COMPUTE_SERVICES, "compute service")


class VolumeServices(HealthCheck):
    """cinder-volume services up per host (and backend)."""

    name = "volume-services"

    def asks(self) -> str:
        return "listing volume services"

    def run(self, conn: Any) -> CheckResult:
        return _service_states(conn.block_storage.services(), "cinder-volume", VOLUME_SERVICES, "volume service")


@dataclass(frozen=True)
class ManilaService:
    """One service of manila's service list, as _service_states reads services."""

    binary: str
    host: str
    state: str
    status: str


class ShareServices(HealthCheck):
    """manila-share services up per host (and backend): their heartbeats reach manila's database.
    Manila's service list is an admin API of v2 (microversion 2.7 on), which openstacksdk does not wrap."""

    name = "share-services"

    def asks(self) -> str:
        return "listing share services"

    def run(self, conn: Any) -> CheckResult:
        listed = conn.shared_file_system.get("/services", microversion="2.7").json()["services"]
        found = [ManilaService(s["binary"], s["host"], s["state"], s["status"]) for s in listed]
        return _service_states(found, "manila-share", SHARE_SERVICES, "share service")


class NetworkAgents(HealthCheck):
    """Neutron/OVN agents alive; an agent an operator set admin-down is not counted against the cloud."""

    name = "network-agents"

    def asks(self) -> str:
        return "listing network agents"

    def run(self, conn: Any) -> CheckResult:
        agents = list(conn.network.agents())
        counts = Counter((str(a.agent_type), "true" if a.is_alive else "false") for a in agents)
        samples = tuple(
            Sample(NETWORK_AGENTS, {"type": kind, "alive": alive}, count)
            for (kind, alive), count in sorted(counts.items())
        )
        dead = {f"{a.agent_type} on {a.host}" for a in agents if a.is_admin_state_up and not a.is_alive}
        if dead:
            return CheckResult(False, f"agents not alive: {named(dead)}", samples)
        return CheckResult(True, samples=samples)
