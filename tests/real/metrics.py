"""Gnocchi's API as the real tests use it: through the catalog's `metric` endpoint, with a keystone
token, as a client would (tests/real/test_gnocchi.py, test_aodh.py, test_ceilometer.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from keystoneauth1.adapter import Adapter

from tests.real.deployment import Deployment

ARCHIVE_POLICY = "low"  # one of gnocchi-upgrade's defaults: 5-minute aggregates
GRANULARITY = 300.0


def metric_client(deployed: Deployment) -> Adapter:
    """A client of the catalog's `metric` endpoint, with the admin's keystone token."""
    return Adapter(deployed.connect().session, service_type="metric", interface="public")


def resource_with_measure(client: Adapter, metric: str, value: float) -> tuple[str, str, str]:
    """A generic resource with one metric, and a measure of it posted now: the resource's id, the
    metric's id and the measure's timestamp."""
    resource_id = str(uuid.uuid4())
    created = client.post(
        "/v1/resource/generic",
        json={"id": resource_id, "metrics": {metric: {"archive_policy_name": ARCHIVE_POLICY, "unit": "%"}}},
    )
    assert created.status_code == 201, created.text
    metric_id = str(created.json()["metrics"][metric])
    stamp = datetime.now(UTC).replace(microsecond=0).isoformat()
    posted = client.post(f"/v1/metric/{metric_id}/measures", json=[{"timestamp": stamp, "value": value}])
    assert posted.status_code == 202, posted.text
    return resource_id, metric_id, stamp
