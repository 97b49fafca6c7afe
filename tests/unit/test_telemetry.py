"""Rendering choices of gnocchi, aodh and ceilometer: gnocchi's metricd beside its API on the
storage volume, aodh's and ceilometer's need of gnocchi, the metered services' notifications to
ceilometer's topic over its transport, ceilometer's keystone user without a catalog entry and its
compute agent on the compute nodes; gnocchi's versions by release."""

from __future__ import annotations

import configparser

import pytest

from stackops.api.releases import RELEASES
from stackops.api.validation import InvalidCloud
from stackops.cli import parser
from stackops.plan import Plan, plan, problems
from stackops.services import ceilometer, gnocchi
from tests.conftest import cloud
from tests.support.rendered import find, secret_data

TELEMETRY = {"services": {name: {"enabled": True} for name in ("gnocchi", "aodh", "ceilometer")}}


def conf(result: Plan, service: str, name: str) -> configparser.ConfigParser:
    parser_ = configparser.ConfigParser(interpolation=None)
    parser_.read_string(secret_data(result, f"demo-{service}-config")[name])
    return parser_


def test_gnocchis_metricd_runs_beside_its_api_on_the_storage_volume() -> None:
    result = plan(cloud(TELEMETRY))
    steps = [s.name for s in result.steps if s.service == "gnocchi"]
    assert steps == [
        "gnocchi-network-policy", "gnocchi-config", "gnocchi-database", "gnocchi-registration", "gnocchi-db-sync",
        "gnocchi-api",
    ]  # fmt: skip
    pod = find(result, "Deployment", "gnocchi", "api")["spec"]["template"]["spec"]
    claim = {v["name"]: v for v in pod["volumes"]}["storage"]["persistentVolumeClaim"]["claimName"]
    assert claim == "demo-gnocchi-storage"
    for container in pod["containers"]:  # the API and metricd, on the same volume
        assert {"name": "storage", "mountPath": gnocchi.STORAGE_DIR} in container["volumeMounts"]
    assert [c["name"] for c in pod["containers"]] == ["gnocchi-api", "gnocchi-metricd"]
    job = find(result, "Job", "gnocchi", "db-sync")["spec"]["template"]["spec"]
    assert any(v.get("persistentVolumeClaim", {}).get("claimName") == claim for v in job["volumes"])
    storage = conf(result, "gnocchi", "gnocchi.conf")["storage"]
    assert (storage["driver"], storage["file_basepath"]) == ("file", gnocchi.STORAGE_DIR)


def test_more_gnocchi_replicas_need_a_shared_volume() -> None:
    with pytest.raises(InvalidCloud) as caught:
        cloud({"services": {"gnocchi": {"enabled": True, "replicas": 2}}})
    assert "spec.services.gnocchi" in str(caught.value) and "ReadWriteMany" in str(caught.value)
    cloud({"services": {"gnocchi": {"enabled": True, "replicas": 2, "storage": {"accessMode": "ReadWriteMany"}}}})


@pytest.mark.parametrize("service", ["aodh", "ceilometer"])
def test_aodh_and_ceilometer_need_gnocchi(service: str) -> None:
    found = [str(p) for p in problems(cloud({"services": {service: {"enabled": True}}}).spec)]
    assert any(p.startswith(f"spec.services.{service}.enabled") and "gnocchi" in p for p in found), found


def test_the_metered_services_notify_ceilometer_over_its_transport() -> None:
    result = plan(cloud(TELEMETRY))
    transport = conf(result, "ceilometer", "ceilometer.conf")["DEFAULT"]["transport_url"]
    for service, name in (("glance", "glance-api.conf"), ("nova", "nova.conf"), ("cinder", "cinder.conf")):
        notifications = conf(result, service, name)["oslo_messaging_notifications"]
        assert notifications["driver"] == "messagingv2", service
        assert (notifications["topics"], notifications["transport_url"]) == (ceilometer.TOPIC, transport)
        assert notifications["retry"] == "0"
        # the notifier declares the queue: with the quorum queues of every messaging service
        assert conf(result, service, name)["oslo_messaging_rabbit"]["rabbit_quorum_queue"] == "true"
    # keystone's stay barbican's alone (none here)
    assert not conf(result, "keystone", "keystone.conf").has_section("oslo_messaging_notifications")
    without = plan(cloud({}))
    assert not conf(without, "glance", "glance-api.conf").has_section("oslo_messaging_notifications")
    assert conf(without, "nova", "nova.conf")["oslo_messaging_notifications"]["driver"] == "noop"


def test_ceilometer_has_a_keystone_user_and_no_catalog_entry() -> None:
    result = plan(cloud(TELEMETRY))
    job = find(result, "Job", "ceilometer", "registration")["spec"]["template"]["spec"]["containers"][0]
    parsed = parser().parse_args([*job["command"][1:], *job["args"]])
    assert (parsed.type, parsed.public_url, parsed.internal_url) == (None, None, None)
    assert parsed.user.startswith("ceilometer")
    assert [u.name for u in ceilometer.SERVICE.keystone_users()] == ["ceilometer"]
    assert ceilometer.SERVICE.catalog_names() == []


def test_ceilometers_compute_agent_runs_on_every_compute_node_unprivileged() -> None:
    result = plan(cloud(TELEMETRY))
    agent = find(result, "DaemonSet", "ceilometer", "compute")["spec"]["template"]["spec"]
    terms = agent["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    compute = cloud(TELEMETRY).spec.nodes.compute.match_labels
    assert terms == [{"matchExpressions": [{"key": k, "operator": "In", "values": [v]} for k, v in compute.items()]}]
    (container,) = agent["containers"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["runAsUser"] == ceilometer.SERVICE.user.uid
    assert {"name": "libvirt-run", "mountPath": "/run/libvirt", "readOnly": True} in container["volumeMounts"]
    compute_conf = conf(result, "ceilometer", "ceilometer.conf")  # the control plane's: no libvirt there
    assert "libvirt_type" not in compute_conf["DEFAULT"]
    no_nova = plan(cloud({"services": {**TELEMETRY["services"], "nova": {"enabled": False}}}))
    assert not [s for s in no_nova.steps if s.name == "ceilometer-compute"]


@pytest.mark.parametrize(
    ("series", "version"), [("2025.1", ">=4.6.5,<4.7"), ("2026.1", ">=4.7,<4.8"), ("2026.2", ">=4.7.1,<4.8")]
)
def test_gnocchi_is_installed_at_the_version_of_its_own_that_fits_the_release(series: str, version: str) -> None:
    assert RELEASES[series].packages["gnocchi"] == f"gnocchi[keystone,mysql]{version}"
