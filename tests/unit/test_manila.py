"""Rendering choices of manila: off unless enabled; API, scheduler and data service on the control
plane, the share service with the LVM driver on the storage nodes (where cinder's LVM volume service
runs), the default share type made by a Job once the API serves; its catalog entries, health check
and the share type Job's command."""

from __future__ import annotations

import configparser
from types import SimpleNamespace
from typing import Any

import pytest

from stackops.api.releases import RELEASES
from stackops.cli import parser
from stackops.credentials import Credentials
from stackops.openstack.share_types import ensure_share_type
from stackops.plan import Plan, plan, problems
from stackops.services import cinder, manila
from stackops.services.base import CloudContext
from stackops.services.health_checks import ShareServices
from tests.conftest import cloud
from tests.support.rendered import find, secret_data

ON = {"services": {"manila": {"enabled": True, "lvm": {"volumeGroup": "shares"}}}}


def conf(result: Plan) -> configparser.ConfigParser:
    parser_ = configparser.ConfigParser(interpolation=None)
    parser_.read_string(secret_data(result, "demo-manila-config")["manila.conf"])
    return parser_


def test_off_unless_enabled() -> None:
    assert not [s for s in plan(cloud()).steps if s.service == "manila"]


def test_its_steps_in_order_the_share_type_once_the_api_serves() -> None:
    steps = [s.name for s in plan(cloud(ON)).steps if s.service == "manila"]
    assert steps == [
        "manila-network-policy", "manila-config", "manila-database", "manila-messaging", "manila-registration",
        "manila-registration-manilav2", "manila-db-sync", "manila-api", "manila-default-share-type",
        "manila-scheduler", "manila-data", "manila-share",
    ]  # fmt: skip


def test_the_lvm_backend_exports_nfs_from_the_volume_group_the_spec_names() -> None:
    parsed = conf(plan(cloud(ON)))
    assert parsed["DEFAULT"]["enabled_share_backends"] == "lvm"
    assert parsed["DEFAULT"]["enabled_share_protocols"] == "NFS"
    assert parsed["DEFAULT"]["default_share_type"] == "default"
    assert parsed["lvm"]["share_driver"] == "manila.share.drivers.lvm.LVMShareDriver"
    assert parsed["lvm"]["driver_handles_share_servers"] == "false"
    assert parsed["lvm"]["lvm_share_volume_group"] == "shares"
    assert parsed["lvm"]["lvm_share_export_ips"] == "$my_ip"  # the node's address, from the pod's env
    assert "privsep-helper --config-file /etc/manila/manila.conf" in parsed["manila_sys_admin"]["helper_command"]


def test_the_share_service_runs_where_cinders_lvm_volume_service_runs() -> None:
    result = plan(cloud(ON))
    share = find(result, "DaemonSet", "manila", "share")["spec"]["template"]["spec"]
    volume = find(result, "DaemonSet", "cinder", "volume-lvm")["spec"]["template"]["spec"]
    assert share["affinity"] == volume["affinity"]  # spec.nodes.storage
    assert share["hostNetwork"] is True
    container = share["containers"][0]
    assert container["securityContext"] == {"privileged": True}
    env = {e["name"]: e for e in container["env"]}
    assert env["OS_DEFAULT__HOST"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert env["OS_DEFAULT__MY_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts[manila.STATE_DIR]["mountPropagation"] == "Bidirectional"
    assert {"/dev", "/run/lock/lvm", "/var/lib/nfs"} <= set(mounts)
    # a restart does not hand the files on mounted shares to manila
    ctx = CloudContext("demo", "openstack", cloud(ON).spec, Credentials({}))
    state = next(p for p in manila.SERVICE.commands(ctx)["share"].permissions if p.path == manila.STATE_DIR)
    assert not state.recurse
    assert cinder.STATE_DIR != manila.STATE_DIR


def test_lvm_needs_labels_to_find_storage_nodes() -> None:
    unlabelled: dict[str, Any] = {"storage": {"matchLabels": {}}}
    found = [str(p) for p in problems(cloud({**ON, "nodes": unlabelled}).spec)]
    assert "spec.nodes.storage.matchLabels: manila's LVM backend needs labels to find storage nodes" in found
    assert not any("manila" in str(p) for p in problems(cloud({"nodes": unlabelled}).spec))


def test_both_catalog_types_name_the_v2_api_at_the_apis_own_host() -> None:
    result = plan(cloud({"endpoints": {"publicDomain": "example.com"}, **ON}))
    args: dict[str, list[str]] = {}
    for component in ("registration", "registration-manilav2"):
        pod = find(result, "Job", "manila", component)["spec"]["template"]["spec"]
        args[component] = pod["containers"][0]["args"]
    assert "--type=share" in args["registration"] and "--name=manila" in args["registration"]
    assert "--type=sharev2" in args["registration-manilav2"] and "--name=manilav2" in args["registration-manilav2"]
    for listed in args.values():
        assert "--public-url=http://manila.example.com/v2" in listed
        assert "--internal-url=https://demo-manila-api.openstack.svc:8786/v2" in listed


def test_the_default_share_type_job_creates_the_specs_type() -> None:
    spec = {"services": {"manila": {"enabled": True, "defaultShareType": "nfs"}}}
    pod = find(plan(cloud(spec)), "Job", "manila", "default-share-type")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["stackops", "job", "create-share-type"]
    parsed = parser().parse_args(["job", "create-share-type", *container["args"]])
    assert parsed.name == "nfs"
    assert parsed.extra_spec == ["driver_handles_share_servers=False", "snapshot_support=True"]
    assert conf(plan(cloud(spec)))["DEFAULT"]["default_share_type"] == "nfs"


@pytest.mark.parametrize("release", sorted(RELEASES))
def test_the_api_serves_manilas_wsgi_module(release: str) -> None:
    result = plan(cloud({**ON, "release": release}))
    uwsgi = secret_data(result, "demo-manila-config")["manila-api-uwsgi.ini"]
    assert "site-packages/manila/wsgi/api.py" in uwsgi
    assert RELEASES[release].packages["manila"].startswith("manila>=")


class FakeResponse:
    def __init__(self, status: int, body: dict[str, Any] | None = None) -> None:
        self.status_code = status
        self.body = body or {}
        self.text = str(body)

    def json(self) -> dict[str, Any]:
        return self.body


class FakeManila:
    """Manila's /types as the Job calls it: what is listed, and what was posted."""

    def __init__(self, types: list[dict[str, Any]]) -> None:
        self.types = types
        self.posted: list[tuple[str, dict[str, Any]]] = []

    def get(self, path: str, microversion: str) -> FakeResponse:
        assert path == "/types?is_public=all"
        return FakeResponse(200, {"share_types": self.types})

    def post(self, path: str, json: dict[str, Any], microversion: str) -> FakeResponse:
        self.posted.append((path, json))
        return FakeResponse(200, json)


def test_the_share_type_is_created_once_and_its_specs_brought_in_line() -> None:
    specs = {"driver_handles_share_servers": "False", "snapshot_support": "True"}
    empty = FakeManila([])
    assert ensure_share_type(SimpleNamespace(shared_file_system=empty), "default", specs) == [
        "share type default created"
    ]
    assert empty.posted[0][1]["share_type"]["extra_specs"] == specs
    same = FakeManila([{"id": "t1", "name": "default", "extra_specs": {**specs, "other": "kept"}}])
    assert ensure_share_type(SimpleNamespace(shared_file_system=same), "default", specs) == []
    assert same.posted == []
    changed = FakeManila([{"id": "t1", "name": "default", "extra_specs": {"driver_handles_share_servers": "True"}}])
    assert ensure_share_type(SimpleNamespace(shared_file_system=changed), "default", specs) == [
        "share type default: driver_handles_share_servers set to False",
        "share type default: snapshot_support set to True",
    ]
    assert changed.posted == [("/types/t1/extra_specs", {"extra_specs": specs})]


class FakeServices:
    def __init__(self, services: list[dict[str, str]]) -> None:
        self.services = services

    def get(self, path: str, microversion: str) -> FakeResponse:
        assert path == "/services"
        return FakeResponse(200, {"services": self.services})


def test_the_health_check_names_share_services_that_are_down() -> None:
    services = [
        {"binary": "manila-share", "host": "node-a@lvm", "state": "up", "status": "enabled"},
        {"binary": "manila-share", "host": "node-b@lvm", "state": "down", "status": "enabled"},
        {"binary": "manila-share", "host": "node-c@lvm", "state": "down", "status": "disabled"},
        {"binary": "manila-scheduler", "host": "sched", "state": "down", "status": "enabled"},
    ]
    result = ShareServices().run(SimpleNamespace(shared_file_system=FakeServices(services)))
    assert not result.ok and result.message == "share service down on node-b@lvm"
    assert ShareServices().run(SimpleNamespace(shared_file_system=FakeServices(services[:1]))).ok
    ctx = CloudContext("demo", "openstack", cloud().spec, Credentials({}))
    assert [s.__class__.__name__ for s in manila.SERVICE.health_checks(ctx)] == ["ShareServices"]
