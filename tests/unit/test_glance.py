"""Glance as operators expect it: several stores, the import methods a user enables with
web-download's filters, and an image cache pruned by a sidecar of the API pod."""

from __future__ import annotations

import configparser
import json
from typing import Any

import pytest

from stackops.api.validation import InvalidCloud, load_cloud_text
from stackops.plan import plan
from tests.conftest import cloud
from tests.support.rendered import find, secret_data

HEADER = "apiVersion: stackops.dev/v1alpha1\nkind: OpenStackCloud\nmetadata: {name: demo}\n"
CEPH = {"rbd": {"pool": "images-dr", "user": "glance-dr", "secretRef": {"name": "ceph-dr"}}}


def glance_conf(glance: dict[str, Any]) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, default_section="no defaults: DEFAULT is a section here")
    parser.read_string(
        secret_data(plan(cloud({"services": {"glance": glance}})), "demo-glance-config")["glance-api.conf"]
    )
    return parser


def api_pod(glance: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = find(plan(cloud({"services": {"glance": glance}})), "Deployment", "glance", "api")["spec"][
        "template"
    ]["spec"]
    return pod


def test_further_stores_beside_the_default_one() -> None:
    glance = {
        "stores": [
            {"name": "fast", "type": "pvc", "size": "100Gi", "storageClassName": "nvme", "description": "NVMe"},
            {"name": "dr", "type": "rbd", **CEPH},
        ],
        "importMethods": ["glance-direct", "copy-image"],
    }
    conf = glance_conf(glance)
    assert conf["DEFAULT"]["enabled_backends"] == "file:file,fast:file,dr:rbd"
    assert conf["glance_store"]["default_backend"] == "file"
    assert conf["fast"]["filesystem_store_datadir"] == "/var/lib/glance-stores/fast"
    assert conf["fast"]["store_description"] == "NVMe"
    assert dict(conf["dr"]) == {
        "rbd_store_pool": "images-dr",
        "rbd_store_user": "glance-dr",
        "rbd_store_ceph_conf": "/etc/ceph/dr.conf",
    }
    assert conf["DEFAULT"]["enabled_import_methods"] == "[glance-direct, copy-image]"
    rendered = plan(cloud({"services": {"glance": glance}}))
    claims = {o["metadata"]["name"]: o["spec"] for o in rendered.objects() if o["kind"] == "PersistentVolumeClaim"}
    assert claims["demo-glance-store-fast"]["storageClassName"] == "nvme"
    assert claims["demo-glance-store-fast"]["resources"] == {"requests": {"storage": "100Gi"}}
    pod = api_pod(glance)
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["store-fast"] == "/var/lib/glance-stores/fast" and mounts["ceph"] == "/etc/ceph"
    ceph = next(v for v in pod["volumes"] if v["name"] == "ceph")["projected"]["sources"]
    assert ceph == [
        {
            "secret": {
                "name": "ceph-dr",
                "items": [
                    {"key": "ceph.conf", "path": "dr.conf"},
                    {"key": "keyring", "path": "dr.client.glance-dr.keyring"},
                ],
            }
        }
    ]


def test_the_default_rbd_store_gets_its_ceph_client_secret() -> None:
    pod = api_pod({"backend": {"type": "rbd", "rbd": {"secretRef": {"name": "ceph-client-glance"}}}})
    ceph = next(v for v in pod["volumes"] if v["name"] == "ceph")["projected"]["sources"][0]["secret"]
    assert ceph["items"] == [
        {"key": "ceph.conf", "path": "ceph.conf"},
        {"key": "keyring", "path": "ceph.client.glance.keyring"},
    ]


def test_only_uploads_by_default_and_web_download_filtered_when_enabled() -> None:
    conf = glance_conf({})
    assert conf["DEFAULT"]["enabled_import_methods"] == "[glance-direct]"
    assert not conf.has_section("import_filtering_opts")
    web = glance_conf(
        {"importMethods": ["glance-direct", "web-download"], "webDownload": {"allowedHosts": ["images.example.org"]}}
    )
    assert dict(web["import_filtering_opts"]) == {
        "allowed_hosts": "[images.example.org]",
        "allowed_ports": "[80, 443]",
        "allowed_schemes": "[http, https]",
    }


@pytest.mark.parametrize(
    ("glance", "message"),
    [
        ({"importMethods": ["copy-image"]}, "copy-image copies between stores; it needs a second one in stores"),
        ({"stores": [{"name": "file"}]}, "stores[].name must be unique (repeated: file)"),
        ({"importMethods": ["glance-direct", "glance-direct"]}, "importMethods must be unique"),
        (
            {"importMethods": ["ftp"]},
            "importMethods.0: Input should be 'glance-direct', 'web-download' or 'copy-image'",
        ),
        ({"stores": [{"name": "x", "type": "rbd"}]}, "rbd: required when type is rbd"),
        (
            {"replicas": 2, "backend": {"accessMode": "ReadWriteMany"}, "stores": [{"name": "two"}]},
            "stores[0].accessMode",
        ),
    ],
)
def test_mistakes_are_named(glance: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidCloud) as caught:
        load_cloud_text(HEADER + "spec: " + json.dumps({"services": {"glance": glance}}))
    assert any(message in p for p in caught.value.problems), caught.value.problems


def test_the_image_cache_lives_on_the_pods_disk_pruned_by_a_sidecar() -> None:
    glance = {"imageCache": {"enabled": True, "maxSizeGiB": 5, "pruneIntervalSeconds": 300}}
    conf = glance_conf(glance)
    assert conf["DEFAULT"]["image_cache_dir"] == "/var/lib/glance-cache"
    assert conf["DEFAULT"]["image_cache_max_size"] == str(5 * 2**30)
    assert conf["paste_deploy"]["flavor"] == "keystone+cachemanagement"
    pod = api_pod(glance)
    api, pruner = pod["containers"]
    assert pruner["name"] == "glance-cache-pruner" and pruner["image"] == api["image"]
    for container in (api, pruner):
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["OS_DEFAULT__WORKER_SELF_REFERENCE_URL"] == "https://$(POD_IP):9292"
        assert {"name": "cache", "mountPath": "/var/lib/glance-cache"} in container["volumeMounts"]
    data = secret_data(plan(cloud({"services": {"glance": glance}})), "demo-glance-config")
    command = json.loads(data["glance-cache-pruner.json"])
    assert command["command"] == "sh /etc/glance/glance-cache-loop.sh"
    assert "glance-cache-pruner --config-file /etc/glance/glance-api.conf" in data["glance-cache-loop.sh"]
    assert "sleep 300" in data["glance-cache-loop.sh"]
    assert len(api_pod({})["containers"]) == 1  # off by default: no sidecar, no cache settings
    assert not glance_conf({}).has_option("DEFAULT", "image_cache_dir")
