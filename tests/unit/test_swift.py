"""Rendering choices of swift: its steps (the ring builder before the storage nodes, the storage
nodes before the proxy), the devices of its rings, the proxy's pipeline, what its storage pods admit,
spec mistakes named by field, and `stackops job store-rings`."""

from __future__ import annotations

import base64
import configparser
from pathlib import Path
from typing import Any

import pytest

from stackops.jobs.rings import RingsJobError, store_rings
from stackops.plan import plan
from stackops.services import swift
from stackops.services.base import RenderError
from tests.conftest import cloud
from tests.support.rendered import find, secret_data

NODES = [
    {"node": "node-a", "zone": 1, "devices": [{"name": "d1"}, {"name": "d2", "hostPath": "/srv/d2", "weight": 50}]},
    {"node": "node-b.example", "zone": 2, "devices": [{"name": "d1", "storage": {"size": "2Ti"}}]},
]
ON = {"services": {"swift": {"enabled": True, "nodes": NODES}}}


def test_swift_is_off_unless_enabled_and_its_steps_come_in_order() -> None:
    assert not [s for s in plan(cloud()).steps if s.service == "swift"]
    steps = [s.name for s in plan(cloud(ON)).steps if s.service == "swift"]
    assert steps == [
        "swift-network-policy", "swift-config", "swift-registration", "swift-ring-builder",
        "swift-storage-node-a", "swift-storage-node-b-example", "swift-storage-service", "swift-api",
    ]  # fmt: skip


def test_the_rings_devices_are_the_storage_pods_dns_names() -> None:
    devices = secret_data(plan(cloud(ON)), "demo-swift-config")["ring-devices"].splitlines()
    host_a = "demo-swift-storage-node-a-0.demo-swift-storage.openstack.svc.cluster.local"
    assert f"object 1 1 {host_a} 6200 d1 100" in devices
    assert f"account 1 1 {host_a} 6202 d2 50" in devices
    assert len(devices) == 9  # three devices in each of three rings


def test_storage_nodes_are_pinned_with_their_devices_on_pvcs_or_host_paths() -> None:
    result = plan(cloud(ON))
    node_a = next(o for o in result.objects() if o["kind"] == "StatefulSet" and o["metadata"]["name"].endswith("a"))
    pod = node_a["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"stackops.dev/object-storage": "true", "kubernetes.io/hostname": "node-a"}
    assert [c["metadata"]["name"] for c in node_a["spec"]["volumeClaimTemplates"]] == ["device-d1"]
    assert {"name": "device-d2", "hostPath": {"path": "/srv/d2", "type": "DirectoryOrCreate"}} in pod["volumes"]
    assert pod["initContainers"][0]["command"] == ["chown", "42445:42445", "/srv/node/d2"]
    names = {c["name"] for c in pod["containers"]}
    assert {"swift-object-replicator", "swift-container-updater", "swift-account-reaper", "swift-rsyncd"} <= names
    assert node_a["spec"]["selector"]["matchLabels"]["stackops.dev/swift-node"] == "node-a"


def test_the_proxy_takes_keystone_tokens_and_s3_signatures() -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(secret_data(plan(cloud(ON)), "demo-swift-config")["proxy-server.conf"])
    pipeline = parser["pipeline:main"]["pipeline"].split()
    # authtoken after s3token would strip the identity s3token set (tests/real/test_swift.py's S3 test)
    assert pipeline.index("authtoken") < pipeline.index("s3api") < pipeline.index("s3token")
    assert pipeline.index("s3token") < pipeline.index("keystoneauth") < pipeline.index("proxy-server")
    assert parser["filter:authtoken"]["paste.filter_factory"] == "keystonemiddleware.auth_token:filter_factory"
    assert parser["filter:s3token"]["username"] == "swift"  # keystone's s3tokens asks for a service
    assert parser["filter:keystoneauth"]["operator_roles"] == "admin,member"


def test_the_ring_builder_may_change_the_rings_secret_alone() -> None:
    result = plan(cloud(ON))
    role = find(result, "Role", "swift", "ring-builder")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["demo-swift-rings"], "verbs": ["get", "patch"]}
    ]
    rings = next(o for o in result.objects() if o["kind"] == "Secret" and o["metadata"]["name"] == "demo-swift-rings")
    assert "data" not in rings and "stringData" not in rings  # the Job's to fill
    job = find(result, "Job", "swift", "ring-builder")["spec"]["template"]["spec"]
    assert job["initContainers"][0]["name"] == "swift-ring-builder"
    assert job["containers"][0]["command"] == ["stackops", "job", "store-rings"]


def test_storage_servers_admit_swifts_pods_and_rsync_only_the_storage_nodes() -> None:
    result = plan(cloud(ON))
    rules = find(result, "NetworkPolicy", "swift", "storage")["spec"]["ingress"]
    by_ports = {tuple(p["port"] for p in rule["ports"]): rule["from"] for rule in rules}
    swift_pods = {"stackops.dev/cloud": "demo", "app.kubernetes.io/name": "swift"}
    assert by_ports[(6200, 6201, 6202)] == [{"podSelector": {"matchLabels": swift_pods}}]
    storage = swift_pods | {"app.kubernetes.io/component": "storage"}
    assert by_ports[(873,)] == [{"podSelector": {"matchLabels": storage}}]


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ({"enabled": True}, "spec.services.swift.nodes", "at least one storage node"),
        (
            {"enabled": True, "nodes": [{"node": "a", "devices": [{"name": "d1"}, {"name": "d2"}]}]},
            "spec.services.swift.nodes",
            "2 device(s) cannot hold rings.replicas=3",
        ),
    ],
)
def test_spec_mistakes_are_named_by_field(spec: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(RenderError) as caught:
        plan(cloud({"services": {"swift": spec}}))
    assert caught.value.field == field and message in caught.value.message


def test_a_device_without_a_node_is_refused_by_the_schema() -> None:
    with pytest.raises(ValueError, match=r"nodes\.0\.node"):
        cloud({"services": {"swift": {"enabled": True, "nodes": [{"devices": [{"name": "d1"}]}]}}})


class FakeSecrets:
    def __init__(self, data: dict[str, str] | None) -> None:
        self.secret = None if data is None else {"data": data}
        self.patches: list[dict[str, Any]] = []

    def get(self, kind: Any, namespace: str, name: str) -> dict[str, Any] | None:
        return self.secret

    def merge_patch(self, kind: Any, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.patches.append(patch)
        return {}


def test_store_rings_writes_what_changed_and_nothing_when_nothing_did(tmp_path: Path) -> None:
    (tmp_path / "object.ring.gz").write_bytes(b"\x1f\x8bring")
    (tmp_path / "object.builder").write_bytes(b"builder")
    (tmp_path / "backups").mkdir()
    fake = FakeSecrets({})
    assert store_rings(fake, None, "openstack", "demo-swift-rings", tmp_path) == [
        "object.builder stored in Secret demo-swift-rings",
        "object.ring.gz stored in Secret demo-swift-rings",
    ]
    (patch,) = fake.patches
    assert base64.b64decode(patch["data"]["object.ring.gz"]) == b"\x1f\x8bring"
    again = FakeSecrets(patch["data"])
    assert store_rings(again, None, "openstack", "demo-swift-rings", tmp_path) == []
    assert again.patches == []


def test_store_rings_refuses_an_empty_directory_or_a_missing_secret(tmp_path: Path) -> None:
    with pytest.raises(RingsJobError, match="no ring"):
        store_rings(FakeSecrets({}), None, "openstack", "demo-swift-rings", tmp_path)
    (tmp_path / "account.ring.gz").write_bytes(b"ring")
    with pytest.raises(RingsJobError, match="does not exist"):
        store_rings(FakeSecrets(None), None, "openstack", "demo-swift-rings", tmp_path)


def test_swift_images_run_as_kollas_swift_user() -> None:
    assert swift.SERVICE.user.uid == 42445
    assert "swift-proxy-server" in swift.SERVICE.images


def test_the_daemons_write_their_stats_where_the_storage_pods_state_volume_is() -> None:
    """swift makes no recon directory: the daemons' recon_cache_path is the state volume's mount."""
    result = plan(cloud(ON))
    node_a = next(o for o in result.objects() if o["kind"] == "StatefulSet" and o["metadata"]["name"].endswith("a"))
    containers = node_a["spec"]["template"]["spec"]["containers"]
    replicator = next(c for c in containers if c["name"] == "swift-object-replicator")
    state = next(m["mountPath"] for m in replicator["volumeMounts"] if m["name"] == "state")
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(secret_data(result, "demo-swift-config")["object-server.conf"])
    assert parser["object-replicator"]["recon_cache_path"] == state
    assert parser["filter:recon"]["recon_cache_path"] == state
