"""The operator's Prometheus metrics, served at /metrics (`stackops operator --metrics-port`).

Reconciles are counted and timed as they happen. Health is read at scrape time from the latest
result of every check (stackops.health.monitor.REGISTRY), the same results the cloud's status is
written from, so a scrape and `stackops status` never disagree for long.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any, TypeVar, cast

from prometheus_client import REGISTRY as PROMETHEUS
from prometheus_client import Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from stackops.health.monitor import HEALTHY, OK, UNKNOWN, Registry
from stackops.services.health_checks import EndpointAnswers

CLOUD_LABELS = ("namespace", "cloud")
F = TypeVar("F", bound=Callable[..., Any])

LEADER = Gauge("stackops_leader", "1 while this replica is the one that acts (holds the leader lease).")
RECONCILES = Counter("stackops_reconcile", "Reconciles of a cloud.", CLOUD_LABELS)
RECONCILE_ERRORS = Counter(
    "stackops_reconcile_errors", "Reconciles of a cloud that ended in an error, by reason.", (*CLOUD_LABELS, "reason")
)
RECONCILE_SECONDS = Histogram(
    "stackops_reconcile_duration_seconds",
    "Time one reconcile of a cloud took.",
    CLOUD_LABELS,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


@contextmanager
def reconciling(namespace: str, cloud: str) -> Iterator[None]:
    """Count and time one reconcile."""
    RECONCILES.labels(namespace, cloud).inc()
    with RECONCILE_SECONDS.labels(namespace, cloud).time():
        yield


def measured(reconcile: F) -> F:
    """Count and time every call of a function that reconciles the cloud `body` (its first argument)."""

    @functools.wraps(reconcile)
    def wrapper(body: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
        meta = body["metadata"]
        with reconciling(meta["namespace"], meta["name"]):
            return reconcile(body, *args, **kwargs)

    return cast(F, wrapper)


_error_reasons: set[tuple[str, str, str]] = set()


def reconcile_failed(namespace: str, cloud: str, reason: str) -> None:
    RECONCILE_ERRORS.labels(namespace, cloud, reason).inc()
    _error_reasons.add((namespace, cloud, reason))


def forget(namespace: str, cloud: str) -> None:
    """A deleted cloud's series go with it."""
    for metric in (RECONCILES, RECONCILE_SECONDS):
        with suppress(KeyError):
            metric.remove(namespace, cloud)
    for labels in sorted(k for k in _error_reasons if k[:2] == (namespace, cloud)):
        RECONCILE_ERRORS.remove(*labels)
        _error_reasons.discard(labels)


class HealthCollector(Collector):
    """Per-service health, API latency and check results of every cloud, at scrape time."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[GaugeMetricFamily]:
        service_labels = [*CLOUD_LABELS, "service"]
        up = GaugeMetricFamily(
            "stackops_service_up",
            "1 when every health check of the service passed, 0 when one failed.",
            labels=service_labels,
        )
        latency = GaugeMetricFamily(
            "stackops_service_api_latency_seconds",
            "Seconds a catalog endpoint of the service took to answer at its last check.",
            labels=[*service_labels, "interface", "url"],
        )
        last_success = GaugeMetricFamily(
            "stackops_health_check_last_success_timestamp_seconds",
            "When a health check last passed (Unix time).",
            labels=[*service_labels, "check"],
        )
        samples: dict[str, GaugeMetricFamily] = {}
        for health in sorted(self.registry.all(), key=lambda h: (h.namespace, h.name)):
            cloud = [health.namespace, health.name]
            for service, verdict in sorted(health.services.items()):
                if verdict.state != UNKNOWN:
                    up.add_metric([*cloud, service], 1.0 if verdict.state == HEALTHY else 0.0)
            for finding in health.findings:
                if finding.last_success is not None:
                    last_success.add_metric([*cloud, finding.service, finding.key], finding.last_success)
                if finding.check == EndpointAnswers.name and finding.state == OK and finding.latency is not None:
                    _, interface, url = finding.key.split(":", 2)
                    latency.add_metric([*cloud, finding.service, interface, url], finding.latency)
                for sample in finding.samples:
                    keys = sorted(sample.labels)
                    family = samples.get(sample.metric.name)
                    if family is None:
                        family = samples[sample.metric.name] = GaugeMetricFamily(
                            f"stackops_{sample.metric.name}", sample.metric.help, labels=[*service_labels, *keys]
                        )
                    family.add_metric([*cloud, finding.service, *(sample.labels[k] for k in keys)], sample.value)
        yield up
        yield latency
        yield last_success
        yield from samples.values()


_served: list[object] = []


def serve(port: int, registry: Registry) -> None:
    """Serve /metrics on `port` (all addresses), with health read from `registry`. Once per process."""
    if _served:
        return
    PROMETHEUS.register(HealthCollector(registry))
    _served.append(start_http_server(port))
