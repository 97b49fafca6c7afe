"""Rendering choices of barbican: its processes, its master key (the KEK) from the credentials Secret
and nowhere else, keystone's notifications to its listener, its WSGI file at each release."""

from __future__ import annotations

import base64
import configparser

import pytest

from stackops.api.releases import SUPPORTED_RELEASES
from stackops.credentials import Credentials, complete
from stackops.plan import Plan, plan, required_credentials
from stackops.services import barbican
from tests.conftest import cloud
from tests.support.rendered import find, secret_data

ON = {"services": {"barbican": {"enabled": True, "replicas": 2}}}


def conf(result: Plan, service: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(secret_data(result, f"demo-{service}-config")[f"{service}.conf"])
    return parser


def test_barbican_runs_its_api_worker_and_listener_after_its_jobs() -> None:
    result = plan(cloud(ON))
    steps = [s.name for s in result.steps if s.service == "barbican"]
    assert steps == [
        "barbican-network-policy", "barbican-config", "barbican-database", "barbican-messaging",
        "barbican-registration", "barbican-db-sync", "barbican-api", "barbican-worker", "barbican-keystone-listener",
    ]  # fmt: skip
    for component, image in (("worker", "barbican-worker"), ("keystone-listener", "barbican-keystone-listener")):
        workload = find(result, "Deployment", "barbican", component)
        assert workload["spec"]["replicas"] == 2
        pod = workload["spec"]["template"]["spec"]
        assert pod["containers"][0]["image"].endswith(f"/{image}:2026.1-ubuntu-noble")
        assert pod["securityContext"]["fsGroup"] == 42403  # Kolla's barbican user


def test_the_kek_is_a_generated_fernet_key_in_barbicans_config_secret_alone() -> None:
    spec = cloud(ON)
    creds = Credentials(complete(required_credentials(spec.spec), {}))
    result = plan(spec, creds)
    kek = creds[barbican.KEK_KEY]
    assert len(base64.urlsafe_b64decode(kek)) == 32
    sections = conf(result, "barbican")
    assert sections["simple_crypto_plugin"]["kek"] == kek
    assert sections["secretstore"]["enabled_secretstore_plugins"] == "store_crypto"
    assert sections["crypto"]["enabled_crypto_plugins"] == "simple_crypto"
    holding = [o["metadata"]["name"] for o in result.objects() if kek in str(o)]
    assert holding == ["demo-barbican-config"]
    # generated once: a later pass keeps it
    assert complete(required_credentials(spec.spec), creds.values())[barbican.KEK_KEY] == kek


def test_keystone_notifies_barbicans_listener_over_barbicans_transport_only_when_barbican_is_on() -> None:
    without = conf(plan(cloud()), "keystone")
    assert not without.has_section("oslo_messaging_notifications")
    assert "notification_format" not in without["DEFAULT"]
    result = plan(cloud(ON))
    keystone, own = conf(result, "keystone"), conf(result, "barbican")
    notifications = keystone["oslo_messaging_notifications"]
    assert notifications["driver"] == "messagingv2"
    assert notifications["topics"] == own["keystone_notifications"]["topic"] == barbican.NOTIFICATIONS_TOPIC
    assert notifications["transport_url"] == own["DEFAULT"]["transport_url"]
    assert keystone["DEFAULT"]["notification_format"] == "basic"  # the payload barbican's listener reads
    # the queue keystone declares is the listener's: the same queue type
    quorum = "rabbit_quorum_queue"
    assert keystone["oslo_messaging_rabbit"][quorum] == own["oslo_messaging_rabbit"][quorum] == "true"


@pytest.mark.parametrize("release", SUPPORTED_RELEASES)
def test_the_api_serves_the_wsgi_file_of_the_releases_package(release: str) -> None:
    result = plan(cloud({**ON, "release": release}))
    uwsgi = secret_data(result, "demo-barbican-config")["barbican-api-uwsgi.ini"]
    expected = "barbican/api/app.wsgi" if release == "2025.1" else "barbican/wsgi/api.py"
    assert f"site-packages/{expected}\n" in uwsgi
