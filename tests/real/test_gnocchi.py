"""Gnocchi for real, from gnocchi 4.7 (2026.1's) on MariaDB and keystone.

Its Jobs run as the operator would run them (database, catalog registration, `gnocchi-upgrade`);
then the API serves the WSGI module its rendered uWSGI config names, with metricd beside it as in
the API's pod, each from its rendered config at the container's paths (/etc/gnocchi), the file
storage in a directory of the test's. A resource with a metric is created and a measure posted
through the catalog's `metric` endpoint with a keystone token; metricd aggregates it, and it is
read back as a measure of the metric's archive policy.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from stackops.services.health_checks import METRICS_BACKLOG, MetricsBacklog
from tests.real.deployment import Deployment
from tests.real.metrics import GRANULARITY, metric_client, resource_with_measure
from tests.support.mariadb import MariaDB
from tests.support.sandbox import eventually


def test_gnocchi_jobs_create_its_index_and_catalog_entry(
    gnocchi_jobs: dict[str, str], deployed: Deployment, mariadb: MariaDB
) -> None:
    assert list(gnocchi_jobs) == ["database", "registration", "db-sync"]
    assert "register-service: service gnocchi (metric) created" in gnocchi_jobs["registration"]
    tables = {row[0] for row in mariadb.query("SHOW TABLES", database="gnocchi")}
    assert {"archive_policy", "metric", "resource", "resource_type", "alembic_version"} <= tables
    policies = {row[0] for row in mariadb.query("SELECT name FROM archive_policy", database="gnocchi")}
    assert {"low", "medium", "high"} <= policies
    catalog = {entry["type"]: entry for entry in deployed.connect().service_catalog}
    assert {e["interface"]: e["url"] for e in catalog["metric"]["endpoints"]} == {
        "public": deployed.urls["gnocchi"],
        "internal": deployed.urls["gnocchi"],
    }


def test_a_measure_posted_through_the_catalog_is_aggregated_by_metricd(gnocchi: str, deployed: Deployment) -> None:
    client = metric_client(deployed)
    assert client.get_endpoint() == gnocchi
    resource_id, metric_id, stamp = resource_with_measure(client, "probe", 42.5)

    # no ?refresh: the API leaves the measure to metricd, which aggregates it within its delay
    def measures() -> list[list[Any]]:
        return list(client.get(f"/v1/metric/{metric_id}/measures").json())

    eventually(lambda: bool(measures()), lambda: f"metricd to aggregate: {tail(deployed)}", timeout=60)
    ((timestamp, granularity, value),) = [m for m in measures() if m[1] == GRANULARITY]
    assert (granularity, value) == (GRANULARITY, 42.5)
    assert datetime.fromisoformat(timestamp) <= datetime.fromisoformat(stamp)
    by_resource = client.get(f"/v1/resource/generic/{resource_id}/metric/probe/measures").json()
    assert [m[2] for m in by_resource if m[1] == GRANULARITY] == [42.5]


def test_the_health_check_reads_the_backlog(gnocchi: str, deployed: Deployment) -> None:
    deadline = time.monotonic() + 30
    while (result := MetricsBacklog().run(deployed.connect())).samples[0].value and time.monotonic() < deadline:
        time.sleep(1)  # measures of another test still waiting for metricd
    assert result.ok, result.message
    assert {s.metric for s in result.samples} == {METRICS_BACKLOG}
    assert {s.labels["kind"]: s.value for s in result.samples}["measures"] == 0


def tail(deployed: Deployment) -> str:
    return (deployed.root / "gnocchi-metricd.log").read_text()[-3000:]
