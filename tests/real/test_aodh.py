"""Aodh for real, from aodh 22 (2026.1's) on MariaDB, RabbitMQ, keystone and the session's gnocchi.

Its Jobs run as the operator would run them (database, RabbitMQ user, catalog registration,
`aodh-dbsync`); then the API serves the WSGI module its rendered uWSGI config names, with the
evaluator, notifier and listener beside it, each from its rendered config at the container's paths
(/etc/aodh). A gnocchi threshold alarm on a metric with a measure above its threshold is created
through the catalog's `alarming` endpoint: it starts with insufficient data, and the rendered
evaluator, which asks gnocchi as aodh's own user, moves it to alarm.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from keystoneauth1.adapter import Adapter

from stackops.services.health_checks import AlarmsListed
from tests.real.conftest import service_venv
from tests.real.deployment import Deployment, site_packages, wsgi_module
from tests.real.metrics import GRANULARITY, metric_client, resource_with_measure
from tests.support.mariadb import MariaDB
from tests.support.sandbox import eventually

WORKERS = ("evaluator", "notifier", "listener")


@pytest.fixture(scope="module")
def aodh_bin() -> Path:
    return service_venv("aodh", "gunicorn")


@pytest.fixture(scope="module")
def aodh_jobs(deployed: Deployment, keystone: str, aodh_bin: Path) -> dict[str, str]:
    return deployed.run_jobs("aodh", aodh_bin)


@pytest.fixture(scope="module")
def aodh(deployed: Deployment, aodh_jobs: dict[str, str], aodh_bin: Path, gnocchi: str) -> Iterator[str]:
    api = deployed.kolla("Deployment", "aodh", "api")
    module = wsgi_module(api.files["/etc/aodh/aodh-api-uwsgi.ini"].read_text(), site_packages(aodh_bin))
    wrapper = deployed.container_paths(api, "aodh-api")
    with (
        deployed.running("Deployment", "aodh", "evaluator", aodh_bin),
        deployed.running("Deployment", "aodh", "notifier", aodh_bin),
        deployed.running("Deployment", "aodh", "listener", aodh_bin),
        deployed.serve("aodh", aodh_bin, module, api.env, "/healthcheck", wrapper=wrapper) as url,
    ):
        yield url


def alarming(deployed: Deployment) -> Adapter:
    return Adapter(deployed.connect().session, service_type="alarming", interface="public")


def test_aodh_jobs_create_its_database_queue_user_and_catalog_entry(
    aodh_jobs: dict[str, str], deployed: Deployment, mariadb: MariaDB
) -> None:
    assert list(aodh_jobs) == ["database", "messaging", "registration", "db-sync"]
    assert "create-messaging-user: user aodh created" in aodh_jobs["messaging"]
    assert "register-service: service aodh (alarming) created" in aodh_jobs["registration"]
    tables = {row[0] for row in mariadb.query("SHOW TABLES", database="aodh")}
    assert {"alarm", "alarm_history", "alembic_version"} <= tables


def test_a_gnocchi_threshold_alarm_is_evaluated_into_alarm(aodh: str, deployed: Deployment) -> None:
    resource_id, _, _ = resource_with_measure(metric_client(deployed), "load", 42.5)
    client = alarming(deployed)
    assert client.get_endpoint() == aodh
    rule = {
        "metric": "load",
        "resource_type": "generic",
        "resource_id": resource_id,
        "aggregation_method": "mean",
        "granularity": int(GRANULARITY),  # the archive policy's
        "evaluation_periods": 1,
        "threshold": 10,
        "comparison_operator": "gt",
    }
    created = client.post(
        "/v2/alarms",
        json={"name": "load-high", "type": "gnocchi_resources_threshold", "gnocchi_resources_threshold_rule": rule},
    )
    assert created.status_code == 201, created.text
    alarm = created.json()
    assert alarm["state"] == "insufficient data"
    assert alarm["gnocchi_resources_threshold_rule"]["granularity"] == GRANULARITY

    def state() -> Any:
        return client.get(f"/v2/alarms/{alarm['alarm_id']}").json()["state"]

    log = deployed.root / "aodh-evaluator.log"
    eventually(lambda: state() == "alarm", lambda: f"the alarm to fire: {state()} {log.read_text()[-3000:]}", 90)
    history = client.get(f"/v2/alarms/{alarm['alarm_id']}/history").json()
    changes = [h for h in history if h["type"] == "state transition"]
    assert changes and "alarm" in changes[0]["detail"], history
    client.delete(f"/v2/alarms/{alarm['alarm_id']}")


def test_the_health_check_lists_alarms(aodh: str, deployed: Deployment) -> None:
    result = AlarmsListed().run(deployed.connect())
    assert result.ok, result.message
