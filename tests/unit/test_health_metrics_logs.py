"""Metrics from health verdicts, log formats and masking, and the operator's health settings."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stackops import logs
from stackops.cli import main
from stackops.health.monitor import DEGRADED, HEALTHY, CloudHealth, Finding, Registry, ServiceHealth
from stackops.reconcile.metrics import HealthCollector
from stackops.services.health_checks import COMPUTE_SERVICES, Sample


def scrape(registry: Registry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    prometheus = CollectorRegistry()
    prometheus.register(HealthCollector(registry))
    text = generate_latest(prometheus).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_health_metrics_carry_what_the_verdict_says() -> None:
    registry = Registry()
    findings = (
        Finding("placement", "endpoint", "endpoint:internal:http://pl:8778", "failed", "down", None, (), 1700000000.0),
        Finding("keystone", "endpoint", "endpoint:internal:http://ks:5000", "ok", "", 0.012, (), 1700000100.0),
        Finding(
            "nova",
            "compute-services",
            "compute-services",
            "ok",
            "",
            0.3,
            (Sample(COMPUTE_SERVICES, {"state": "up", "status": "enabled"}, 3),),
            1700000100.0,
        ),
    )
    services = {
        "keystone": ServiceHealth(HEALTHY),
        "placement": ServiceHealth(DEGRADED, "down"),
        "nova": ServiceHealth(HEALTHY),
    }
    registry.publish("uid-1", CloudHealth("openstack", "demo", services, findings))
    values = scrape(registry)
    cloud = (("cloud", "demo"), ("namespace", "openstack"))

    def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
        return name, tuple(sorted({**dict(cloud), **labels}.items()))

    assert values[key("stackops_service_up", service="placement")] == 0.0
    assert values[key("stackops_service_up", service="keystone")] == 1.0
    url = "http://ks:5000"
    assert (
        values[key("stackops_service_api_latency_seconds", service="keystone", interface="internal", url=url)] == 0.012
    )
    assert values[key("stackops_compute_services", service="nova", state="up", status="enabled")] == 3.0
    last = key("stackops_health_check_last_success_timestamp_seconds", service="placement", check=findings[0].key)
    assert values[last] == 1700000000.0
    registry.forget("uid-1")
    assert not any(name == "stackops_service_up" for name, _ in scrape(registry))


def test_a_checks_samples_are_served_with_the_help_its_metric_declares() -> None:
    registry = Registry()
    sample = Sample(COMPUTE_SERVICES, {"state": "up", "status": "enabled"}, 1)
    finding = Finding("nova", "compute-services", "compute-services", "ok", "", 0.1, (sample,), 1700000000.0)
    registry.publish("uid-1", CloudHealth("openstack", "demo", {"nova": ServiceHealth(HEALTHY)}, (finding,)))
    prometheus = CollectorRegistry()
    prometheus.register(HealthCollector(registry))
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(prometheus).decode())}
    assert families["stackops_compute_services"].documentation == COMPUTE_SERVICES.help


SNIPPET = """
import logging, sys
from stackops import logs
logs.configure(sys.argv[1])
logs.REDACTOR.remember(["Sup3rSecretValue42"])
log = logging.getLogger("stackops.test")
log.warning("connecting with %s", "Sup3rSecretValue42")
try:
    raise ValueError("bad password Sup3rSecretValue42")
except ValueError:
    log.exception("it failed")
"""


def run_logging(log_format: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", SNIPPET, log_format], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stderr


def test_json_logs_are_one_object_per_line_and_mask_secret_values() -> None:
    output = run_logging("json")
    records = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert [r["message"] for r in records] == ["connecting with ***", "it failed"]
    assert records[0]["severity"] == "warn"
    assert "bad password ***" in records[1]["exc_info"]
    assert "Sup3rSecretValue42" not in output


def test_text_logs_are_human_readable_and_masked() -> None:
    output = run_logging("text")
    assert "[WARNING ] connecting with ***" in output
    assert "ValueError: bad password ***" in output
    assert "Sup3rSecretValue42" not in output


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--health-interval", "0"], {}, "--health-interval (STACKOPS_HEALTH_INTERVAL): must be at least 1"),
        ([], {"STACKOPS_METRICS_PORT": "ninety"}, "--metrics-port (STACKOPS_METRICS_PORT): 'ninety' is not a number"),
        (
            [],
            {"STACKOPS_OPENSTACK_INTERFACE": "admin"},
            "--openstack-interface (STACKOPS_OPENSTACK_INTERFACE): 'admin'",
        ),
        (["--keystone-url", "keystone:5000"], {}, "--keystone-url: 'keystone:5000' is not an http(s) URL"),
        ([], {"STACKOPS_LOG_FORMAT": "xml"}, "--log-format (STACKOPS_LOG_FORMAT): 'xml' is not one of text, json"),
    ],
)
def test_bad_operator_settings_name_the_flag(
    argv: list[str],
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["operator", *argv]) == 2
    assert capsys.readouterr().err.startswith(message)


def test_operator_settings_from_flags_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from stackops.cli import operator_options, parser

    monkeypatch.setenv("STACKOPS_KEYSTONE_URL", "http://127.0.0.1:5000/v3")
    monkeypatch.setenv("STACKOPS_HEALTH_INTERVAL", "5")
    options = operator_options(parser().parse_args(["operator", "--health-interval", "7", "--no-openstack-checks"]))
    assert options.health.interval == 7.0  # the flag wins
    assert options.health.keystone_url("any", "cloud") == "http://127.0.0.1:5000/v3"
    assert not options.health.openstack and options.metrics_port == 9090


def test_watch_handlers_successes_are_not_a_line_per_workload_event() -> None:
    quiet = logs.QuietWatchHandlers(logs.WATCH_HANDLERS)

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("kopf.objects", logging.INFO, "", 0, message, None, None)

    assert not quiet.filter(record("Handler 'workload_changed' succeeded."))
    assert quiet.filter(record("Handler 'reconcile' succeeded."))
    assert quiet.filter(record("Handler 'workload_changed' failed temporarily: the API server went away"))
