"""Rendering choices of barbican and designate: barbican's processes, its master key (the KEK) from
the credentials Secret and nowhere else, keystone's notifications to its listener; designate's
processes, its BIND 9 server, pools.yaml and rndc's key, neutron's DNS integration; the WSGI files
of both at each release."""

from __future__ import annotations

import base64
import configparser

import pytest
import yaml

from stackops.api.releases import SUPPORTED_RELEASES
from stackops.credentials import Credentials, complete
from stackops.plan import Plan, plan, required_credentials
from stackops.services import barbican, designate
from tests.conftest import cloud
from tests.support.rendered import cloud_credentials, find, secret_data

ON = {"services": {"barbican": {"enabled": True, "replicas": 2}}}
DESIGNATE = {"services": {"designate": {"enabled": True, "replicas": 2}}}


def conf(result: Plan, service: str, name: str | None = None) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(secret_data(result, f"demo-{service}-config")[name or f"{service}.conf"])
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
    creds = Credentials(cloud_credentials(spec))
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


WSGI = {
    "barbican": ("barbican/api/app.wsgi", "site-packages/barbican/wsgi/api.py"),
    "designate": ("/var/lib/kolla/venv/bin/designate-api-wsgi", "site-packages/designate/wsgi/api.py"),
}


@pytest.mark.parametrize("release", SUPPORTED_RELEASES)
@pytest.mark.parametrize("service", sorted(WSGI))
def test_the_api_serves_the_wsgi_file_of_the_releases_package(service: str, release: str) -> None:
    """2025.1's packages have no WSGI module yet: barbican's deprecated script, designate's pbr script."""
    result = plan(cloud({"services": {service: {"enabled": True}}, "release": release}))
    uwsgi = secret_data(result, f"demo-{service}-config")[f"{service}-api-uwsgi.ini"]
    old, new = WSGI[service]
    assert f"{old if release == '2025.1' else new}\n" in uwsgi


# designate


def test_designate_runs_its_processes_then_bind_then_tells_designate_where_they_are() -> None:
    result = plan(cloud(DESIGNATE))
    steps = [s.name for s in result.steps if s.service == "designate"]
    assert steps == [
        "designate-network-policy", "designate-config", "designate-database", "designate-messaging",
        "designate-registration", "designate-db-sync", "designate-central", "designate-api", "designate-worker",
        "designate-producer", "designate-mdns", "designate-bind9", "designate-pool-update",
    ]  # fmt: skip
    assert find(result, "Deployment", "designate", "producer")["spec"]["replicas"] == 1  # no coordination
    bind9 = find(result, "StatefulSet", "designate", "bind9")
    pod = bind9["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 42411  # not root: the port sysctl lets it bind 53 and 953
    assert pod["securityContext"]["sysctls"] == [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "53"}]
    assert bind9["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    ports = {(p["port"], p["protocol"]) for p in find(result, "Service", "designate", "bind9")["spec"]["ports"]}
    assert ports == {(53, "UDP"), (53, "TCP"), (953, "TCP")}


def test_pools_yaml_names_bind_and_mdns_by_placeholders_the_pool_update_fills_in() -> None:
    files = secret_data(plan(cloud(DESIGNATE)), "demo-designate-config")
    (pool,) = yaml.safe_load(files["pools.yaml"])
    assert pool["name"] == "default"  # the pool db-sync makes, which every zone goes to
    assert pool["ns_records"] == [{"hostname": "demo-designate-bind9.openstack.svc.cluster.local.", "priority": 1}]
    (target,) = pool["targets"]
    assert target["masters"] == [{"host": "@MDNS@", "port": 5354}]
    assert (target["options"]["host"], target["options"]["rndc_host"]) == ("@BIND9@", "@BIND9@")
    script = files["pool-update.sh"]
    assert "demo-designate-mdns.openstack.svc" in script and "demo-designate-bind9.openstack.svc" in script
    named = {"services": {"designate": {"enabled": True, "nameservers": ["ns1.example.com.", "ns2.example.com."]}}}
    (pool,) = yaml.safe_load(secret_data(plan(cloud(named)), "demo-designate-config")["pools.yaml"])
    assert [r["hostname"] for r in pool["ns_records"]] == ["ns1.example.com.", "ns2.example.com."]


def test_rndc_and_bind_share_the_key_of_the_credentials_secret() -> None:
    spec = cloud(DESIGNATE)
    creds = Credentials(cloud_credentials(spec))
    result = plan(spec, creds)
    key = creds[designate.RNDC_KEY]
    base64.b64decode(key, validate=True)  # BIND takes the secret as base64
    worker, bind9 = secret_data(result, "demo-designate-config"), secret_data(result, "demo-designate-bind9-config")
    assert worker["rndc.key"] == bind9["rndc.key"] and f'secret "{key}";' in bind9["rndc.key"]
    assert 'include "/etc/bind/rndc.key";' in bind9["named.conf"]


def test_neutron_publishes_dns_names_in_designate_only_when_designate_is_on() -> None:
    without = plan(cloud())
    assert "external_dns_driver" not in conf(without, "neutron")["DEFAULT"]
    assert conf(without, "neutron", "ml2_conf.ini")["ml2"]["extension_drivers"] == "port_security"
    spec = {"services": {"designate": {"enabled": True, "dnsDomain": "cloud.example.com."}}}
    result = plan(cloud(spec))
    neutron = conf(result, "neutron")
    assert neutron["DEFAULT"]["external_dns_driver"] == "designate"
    assert neutron["DEFAULT"]["dns_domain"] == "cloud.example.com."
    assert neutron["designate"]["url"] == "https://demo-designate-api.openstack.svc:9001/v2"
    assert neutron["designate"]["username"] == "neutron"
    ml2 = conf(result, "neutron", "ml2_conf.ini")["ml2"]
    assert ml2["extension_drivers"] == "port_security,dns_domain_ports"


def test_bind_admits_dns_over_udp_and_tcp_from_api_clients_and_rndc_from_designate_alone() -> None:
    result = plan(cloud(DESIGNATE))
    policy = find(result, "NetworkPolicy", "designate", "bind9")
    rules = {
        tuple(sorted((p["port"], p["protocol"]) for p in rule["ports"])): rule["from"]
        for rule in policy["spec"]["ingress"]
    }
    assert set(rules) == {((53, "TCP"), (53, "UDP")), ((953, "TCP"),)}
    assert rules[((953, "TCP"),)] == [
        {"podSelector": {"matchLabels": {"stackops.dev/cloud": "demo", "app.kubernetes.io/name": "designate"}}}
    ]
    mdns = find(result, "NetworkPolicy", "designate", "mdns")["spec"]["ingress"]
    assert [sorted(p["protocol"] for p in rule["ports"]) for rule in mdns] == [["TCP", "UDP"]]
