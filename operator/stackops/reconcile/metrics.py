"""The operator's Prometheus metrics, served at /metrics (`stackops operator --metrics-port`).

Reconciles are counted and timed as they happen. Health is read at scrape time from the latest
result of every check (the operator's stackops.health.monitor.Registry), the same results the
cloud's status is written from, so a scrape and `stackops status` never disagree for long.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from stackops.health.monitor import HEALTHY, OK, UNKNOWN, Registry
from stackops.services.health_checks import EndpointAnswers

CLOUD_LABELS = ("namespace", "cloud")


class Metrics:
    """One operator's series, in a Prometheus registry of their own: reconciles as they happen, health
    read at scrape time from `health`, and the process's own (CPU, memory, GC) as Prometheus'
    default registry has them."""

    def __init__(self, health: Registry) -> None:
        self.registry = CollectorRegistry()
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self.registry)
        self.registry.register(HealthCollector(health))
        self.leader = Gauge(
            "stackops_leader",
            "1 while this replica is the one that acts (holds the leader lease).",
            registry=self.registry,
        )
        self.reconciles = Counter("stackops_reconcile", "Reconciles of a cloud.", CLOUD_LABELS, registry=self.registry)
        self.reconcile_errors = Counter(
            "stackops_reconcile_errors",
            "Reconciles of a cloud that ended in an error, by reason.",
            (*CLOUD_LABELS, "reason"),
            registry=self.registry,
        )
        self.reconcile_seconds = Histogram(
            "stackops_reconcile_duration_seconds",
            "Time one reconcile of a cloud took.",
            CLOUD_LABELS,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self._error_reasons: set[tuple[str, str, str]] = set()
        self._served = False

    @contextmanager
    def reconciling(self, namespace: str, cloud: str) -> Iterator[None]:
        """Count and time one reconcile."""
        self.reconciles.labels(namespace, cloud).inc()
        with self.reconcile_seconds.labels(namespace, cloud).time():
            yield

    def reconcile_failed(self, namespace: str, cloud: str, reason: str) -> None:
        self.reconcile_errors.labels(namespace, cloud, reason).inc()
        self._error_reasons.add((namespace, cloud, reason))

    def forget(self, namespace: str, cloud: str) -> None:
        """A deleted cloud's series go with it."""
        for metric in (self.reconciles, self.reconcile_seconds):
            with suppress(KeyError):
                metric.remove(namespace, cloud)
        for labels in sorted(k for k in self._error_reasons if k[:2] == (namespace, cloud)):
            self.reconcile_errors.remove(*labels)
            self._error_reasons.discard(labels)

    def serve(self, port: int) -> None:
        """Serve /metrics on `port` (all addresses). Once."""
        if not self._served:
            start_http_server(port, registry=self.registry)
            self._served = True


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
