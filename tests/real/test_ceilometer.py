"""Ceilometer for real, from ceilometer 26 (2026.1's) on RabbitMQ, keystone, the session's gnocchi
and glance.

Its Jobs run as the operator would run them (RabbitMQ user, its keystone user without a catalog
entry, `ceilometer-upgrade`, which creates its resource types in gnocchi); then its notification
agent runs from its rendered config at the container's paths (/etc/ceilometer). An image uploaded to
the session's glance, whose rendered config sends its notifications to ceilometer's topic over
ceilometer's RabbitMQ user and vhost, becomes an `image` resource in gnocchi with its size as a
measure of `image.size`: notification, sample, gnocchi publisher, metricd.
"""

from __future__ import annotations

import configparser
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stackops.services import ceilometer as ceilometer_service
from tests.real.conftest import service_venv
from tests.real.deployment import Deployment
from tests.real.metrics import metric_client
from tests.support.rendered import secret_data
from tests.support.sandbox import eventually


@pytest.fixture(scope="module")
def ceilometer_bin() -> Path:
    return service_venv("ceilometer")


@pytest.fixture(scope="module")
def ceilometer_jobs(deployed: Deployment, gnocchi: str, ceilometer_bin: Path) -> dict[str, str]:
    return deployed.run_jobs("ceilometer", ceilometer_bin)


@pytest.fixture(scope="module")
def notification_agent(deployed: Deployment, ceilometer_jobs: dict[str, str], ceilometer_bin: Path) -> Iterator[Path]:
    with deployed.running("Deployment", "ceilometer", "notification", ceilometer_bin):
        yield deployed.root / "ceilometer-notification.log"


def test_ceilometer_jobs_create_its_queue_user_keystone_user_and_gnocchi_resource_types(
    ceilometer_jobs: dict[str, str], deployed: Deployment
) -> None:
    assert list(ceilometer_jobs) == ["messaging", "registration", "gnocchi-resources"]
    assert "create-messaging-user: user ceilometer created" in ceilometer_jobs["messaging"]
    assert "user ceilometer created" in ceilometer_jobs["registration"]
    conn = deployed.connect()
    assert conn.identity.find_user("ceilometer") is not None
    assert not [s for s in conn.identity.services() if s.name == "ceilometer"]  # no API, no catalog entry
    types = {t["name"] for t in metric_client(deployed).get("/v1/resource_type").json()}
    assert {"image", "instance", "volume", "instance_network_interface"} <= types


def test_glance_sends_its_notifications_to_ceilometers_topic(deployed: Deployment) -> None:
    conf = configparser.RawConfigParser(strict=False)
    conf.read_string(secret_data(deployed.plan, "demo-glance-config")["glance-api.conf"])
    notifications = conf["oslo_messaging_notifications"]
    assert notifications["driver"] == "messagingv2"
    assert notifications["topics"] == ceilometer_service.TOPIC
    assert notifications["transport_url"] == ceilometer_service.SERVICE.transport_url(deployed.context())


def test_an_uploaded_images_size_reaches_gnocchi(notification_agent: Path, glance: str, deployed: Deployment) -> None:
    conn = deployed.connect()
    data = b"metered " * 1000
    image = conn.image.create_image(
        name="metered", data=data, disk_format="raw", container_format="bare", visibility="private"
    )
    client = metric_client(deployed)

    def measures() -> list[Any]:
        resource = client.get(f"/v1/resource/image/{image.id}", raise_exc=False)
        if resource.status_code != 200:
            return []
        metric = resource.json()["metrics"].get("image.size")
        return list(client.get(f"/v1/metric/{metric}/measures").json()) if metric else []

    what = lambda: f"image.size in gnocchi: {notification_agent.read_text()[-3000:]}"  # noqa: E731
    eventually(lambda: bool(measures()), what, timeout=90)
    assert {m[2] for m in measures()} == {float(len(data))}
    assert client.get(f"/v1/resource/image/{image.id}").json()["name"] == "metered"
    conn.image.delete_image(image)
