from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from stackops.api.models import OpenStackCloud
from stackops.api.validation import load_cloud_text
from stackops.credentials import Credentials
from stackops.plan import Plan, plan
from stackops.render import output, templates
from stackops.render.hashing import CONFIG_HASH_ANNOTATION
from stackops.services.base import RenderError
from tests.conftest import EXAMPLES, ROOT, VARIANT, cloud
from tests.support.rendered import cloud_credentials, secret_files


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for obj in objects:
        template = obj.get("spec", {}).get("template")
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job") and template:
            yield obj, template


def by_kind_name(result: Plan) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in result.objects()}


def test_every_example_validates_against_the_kubernetes_1_34_schema(example: OpenStackCloud) -> None:
    for obj in plan(example).objects():
        kubernetes_validate.validate(obj, "1.34", strict=True)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_rendering_is_byte_identical_across_processes(path: os.PathLike[str]) -> None:
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        command = [sys.executable, "-m", "stackops.cli", "render", "-f", str(path)]
        outputs.add(subprocess.run(command, env=env, check=True, capture_output=True).stdout)
    assert len(outputs) == 1
    assert len(next(iter(outputs))) > 1000


@pytest.mark.parametrize("path", [*EXAMPLES, VARIANT], ids=lambda p: p.name)
def test_libyaml_and_pure_python_yaml_render_the_same_bytes(
    path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rendering uses libyaml where PyYAML has it, and its own one-pass loader and representer for
    plain data; the output must be what PyYAML's pure-Python safe loader and dumper make of it."""
    assert yaml.__with_libyaml__, "PyYAML without libyaml: nothing to compare"
    cloud_text = Path(path).read_text()
    fast = output.to_yaml(plan(load_cloud_text(cloud_text)).objects())
    monkeypatch.setattr(templates, "LOADER", yaml.SafeLoader)
    templates._parsed.cache_clear()  # parse again, with the pure-Python loader
    slow = output.to_yaml(plan(load_cloud_text(cloud_text)).objects(), output.dumper(yaml.SafeDumper, fast=False))
    assert fast == slow
    assert len(fast) > 1000


TRICKY_YAML = """
plain: [yes, No, TRUE, off, ~, null, '', 0x1F, 017, 1_000, -3, 190:20:30, 1.5, .inf, -.NaN, 2026-12-06]
quoted: ["yes", '0x1F', "1.5"]
base: &base {a: 1, b: [x, y]}
merged: {<<: *base, b: z}
alias: *base
1: int key
block: |
  two
  lines
empty:
"""


def test_the_object_loader_builds_what_safe_load_builds() -> None:
    fast = yaml.load(TRICKY_YAML, Loader=templates.LOADER)
    assert fast == yaml.load(TRICKY_YAML, Loader=yaml.SafeLoader)
    # it could fail: the plain tags are built by the loader's own pass, the rest by the safe constructor
    assert fast["plain"][:3] == [True, False, True] and fast["plain"][7:10] == [31, 15, 1000]
    assert fast["merged"] == {"a": 1, "b": "z"} and fast[1] == "int key"


@pytest.mark.parametrize(
    "value",
    [
        "a line with a trailing space \nand another\n" * 20,  # not a block: double-quoted, long
        "tab\there\n" * 30,
        "word " * 200,
        "\u2026 non-ASCII in a config file\n",
        "  leading spaces\n" + "y" * 300,
        "\x07" * 80,
    ],
)
def test_strings_libyaml_and_pure_python_would_fold_differently_are_written_alike(value: str) -> None:
    objects = [{"kind": "ConfigMap", "data": {"key": value, "n": 3, "on": True, "off": None, "list": [], "map": {}}}]
    fast, slow = output.to_yaml(objects), output.to_yaml(objects, output.dumper(yaml.SafeDumper, fast=False))
    assert fast == slow
    assert yaml.safe_load(fast)["data"]["key"] == value


def test_no_pod_is_best_effort(example: OpenStackCloud) -> None:
    for obj, template in pod_specs(plan(example).objects()):
        for container in template["spec"]["containers"] + template["spec"].get("initContainers", []):
            requests = container.get("resources", {}).get("requests", {})
            assert {"cpu", "memory"} <= requests.keys(), (obj["metadata"]["name"], container["name"])


def test_services_come_after_what_they_depend_on() -> None:
    steps = [s.name for s in plan(cloud()).steps]
    assert steps.index("mariadb-server") < steps.index("keystone-database") < steps.index("keystone-db-sync")
    assert steps.index("memcached-server") < steps.index("keystone-api")
    assert steps.index("keystone-db-sync") < steps.index("keystone-bootstrap") < steps.index("keystone-api")


def test_every_object_is_labelled_and_prefixed_by_its_cloud() -> None:
    for obj in plan(cloud(name="blue")).objects():
        labels = obj["metadata"]["labels"]
        assert obj["metadata"]["name"].startswith("blue-")
        assert obj["metadata"]["namespace"] == "openstack"
        assert labels["app.kubernetes.io/instance"] == "blue"
        assert labels["app.kubernetes.io/managed-by"] == "stackops"


def test_two_clouds_share_a_namespace_without_a_name_clash() -> None:
    blue = {(o["kind"], o["metadata"]["name"]) for o in plan(cloud(name="blue")).objects()}
    green = {(o["kind"], o["metadata"]["name"]) for o in plan(cloud(name="green")).objects()}
    assert blue and green and not blue & green


def _hash(result: Plan, kind: str, name: str) -> str:
    annotations: dict[str, str] = by_kind_name(result)[(kind, name)]["spec"]["template"]["metadata"]["annotations"]
    return annotations[CONFIG_HASH_ANNOTATION]


def test_a_config_change_rolls_its_service_and_nothing_else() -> None:
    before = plan(cloud())
    after = plan(cloud({"services": {"keystone": {"config": {"DEFAULT": {"debug": True}}}}}))
    assert _hash(before, "Deployment", "demo-keystone-api") != _hash(after, "Deployment", "demo-keystone-api")
    assert _hash(before, "StatefulSet", "demo-mariadb") == _hash(after, "StatefulSet", "demo-mariadb")
    assert "debug = true" in by_kind_name(after)[("Secret", "demo-keystone-config")]["stringData"]["keystone.conf"]

    def jobs(result: Plan) -> set[str]:
        return {n for k, n in by_kind_name(result) if k == "Job"}

    changed = jobs(before) ^ jobs(after)
    assert {n.rsplit("-", 1)[0] for n in changed} == {"demo-keystone-db-sync", "demo-keystone-bootstrap"}


def test_jobs_never_carry_secret_values_and_config_secrets_do() -> None:
    creds = Credentials(cloud_credentials(cloud()))
    result = plan(cloud(), creds)
    secrets = set(creds.values().values())
    for obj in result.objects():
        if obj["kind"] != "Secret":
            text = json.dumps(obj)
            assert not any(s in text for s in secrets), obj["metadata"]["name"]
    conf = by_kind_name(result)[("Secret", "demo-keystone-config")]["stringData"]["keystone.conf"]
    assert creds["keystone-database-password"] in conf


def test_images_follow_kolla_names_and_every_part_is_overridable() -> None:
    default = plan(cloud())
    api = by_kind_name(default)[("Deployment", "demo-keystone-api")]
    assert api["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "quay.io/openstack.kolla/keystone:2026.1-ubuntu-noble"
    )
    custom = plan(
        cloud(
            {
                "release": "2025.2",
                "images": {"registry": "r.example", "namespace": "ns", "distro": "debian-bookworm"},
                "services": {"keystone": {"images": {"keystone": "mirror/keystone:patched"}}},
            }
        )
    )
    objects = by_kind_name(custom)
    assert objects[("StatefulSet", "demo-mariadb")]["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "r.example/ns/mariadb-server:2025.2-debian-bookworm"
    )
    api = objects[("Deployment", "demo-keystone-api")]
    assert api["spec"]["template"]["spec"]["containers"][0]["image"] == "mirror/keystone:patched"


def test_resource_overrides_merge_over_defaults() -> None:
    result = plan(cloud({"services": {"keystone": {"resources": {"api": {"requests": {"cpu": 2}}}}}}))
    container = by_kind_name(result)[("Deployment", "demo-keystone-api")]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"] == {"cpu": 2, "memory": "256Mi"}


def test_unknown_component_in_resources_is_named() -> None:
    with pytest.raises(RenderError) as caught:
        plan(cloud({"services": {"keystone": {"resources": {"apii": {"requests": {"cpu": 1}}}}}}))
    assert str(caught.value) == (
        "spec.services.keystone.resources.apii: unknown component (known: api, db-sync, bootstrap, registration, "
        "deregistration, credential-migrate, upgrade-check, db-expand, db-migrate, db-contract)"
    )


def test_external_database_runs_no_server_and_uses_the_given_account() -> None:
    spec = {"infrastructure": {"database": {"external": {"host": "db.example", "secretRef": {"name": "db-admin"}}}}}
    result = plan(cloud(spec))
    assert not [o for o in result.objects() if o["metadata"]["labels"]["app.kubernetes.io/name"] == "mariadb"]
    job = next(o for o in result.objects() if o["metadata"]["name"].startswith("demo-keystone-database-"))
    assert "--host=db.example" in job["spec"]["template"]["spec"]["containers"][0]["args"]
    refs = secret_files(job["spec"]["template"]["spec"])
    assert refs["STACKOPS_DB_ADMIN_USER"] == {"name": "db-admin", "key": "username"}
    assert refs["STACKOPS_DB_ADMIN_PASSWORD"] == {"name": "db-admin", "key": "password"}
    assert refs["STACKOPS_DB_PASSWORD"] == {"name": "demo-credentials", "key": "keystone-database-password"}


def test_galera_cluster_has_wsrep_settings_and_a_disruption_budget() -> None:
    result = by_kind_name(plan(cloud({"infrastructure": {"database": {"replicas": 3}}})))
    cnf = result[("Secret", "demo-mariadb-config")]["stringData"]["my.cnf"]
    assert "wsrep_on = ON" in cnf
    assert "gcomm://demo-mariadb-0.demo-mariadb-cluster.openstack.svc," in cnf
    assert ("PodDisruptionBudget", "demo-mariadb") in result
    assert result[("StatefulSet", "demo-mariadb")]["spec"]["replicas"] == 3
    single = by_kind_name(plan(cloud()))
    assert "wsrep" not in single[("Secret", "demo-mariadb-config")]["stringData"]["my.cnf"]


def test_public_endpoint_by_ingress_or_http_route() -> None:
    ingress = by_kind_name(plan(cloud({"endpoints": {"publicDomain": "cloud.example", "tls": {"secretName": "tls"}}})))[
        ("Ingress", "demo-keystone-api")
    ]
    assert ingress["spec"]["rules"][0]["host"] == "keystone.cloud.example"
    assert ingress["spec"]["tls"] == [{"hosts": ["keystone.cloud.example"], "secretName": "tls"}]
    route = by_kind_name(
        plan(
            cloud(
                {
                    "endpoints": {
                        "publicDomain": "cloud.example",
                        "exposure": "HTTPRoute",
                        "gateway": {"name": "gw"},
                    }
                }
            )
        )
    )[("HTTPRoute", "demo-keystone-api")]
    assert route["spec"]["hostnames"] == ["keystone.cloud.example"]
    assert route["spec"]["parentRefs"] == [{"name": "gw"}]
    assert not [o for o in plan(cloud()).objects() if o["kind"] in ("Ingress", "HTTPRoute")]


def test_each_kolla_container_gets_its_own_config_json_listing_files_that_exist() -> None:
    result = plan(cloud())
    secrets = {o["metadata"]["name"]: o["stringData"] for o in result.objects() if o["kind"] == "Secret"}
    checked = 0
    for _obj, template in pod_specs(result.objects()):
        volumes = {v["name"]: v for v in template["spec"].get("volumes", [])}
        for container in template["spec"]["containers"]:
            if container.get("command") != ["kolla_start"]:
                continue
            (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/var/lib/kolla/config_files"]
            volume = volumes[mount["name"]]
            data = secrets[volume["secret"]["secretName"]]
            items = {i["path"]: i["key"] for i in volume["secret"]["items"]}
            config = json.loads(data[items["config.json"]])
            for entry in config["config_files"]:
                assert entry["source"].removeprefix("/var/lib/kolla/config_files/") in items
            assert {"name": "KOLLA_CONFIG_STRATEGY", "value": "COPY_ALWAYS"} in container["env"]
            checked += 1
    assert checked >= 10


def test_committed_crd_is_what_the_models_generate(tmp_path: os.PathLike[str]) -> None:
    from stackops.api.crd import crd_yaml

    committed = (ROOT / "crds" / "stackops.dev_openstackclouds.yaml").read_text()
    assert committed == crd_yaml(), "crds/ is stale: run `make crds`"


def test_crd_schema_is_structural_and_free_form_only_under_config() -> None:
    from stackops.api.crd import crd

    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    free_form: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        assert ("$ref" not in node and "anyOf" not in node) or node.get("x-kubernetes-int-or-string"), path
        if node.get("x-kubernetes-preserve-unknown-fields"):
            free_form.append(path)
            return
        if not node.get("x-kubernetes-int-or-string"):
            assert "type" in node, path
        for name, child in node.get("properties", {}).items():
            walk(child, f"{path}.{name}")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}.*")
        if "items" in node:
            walk(node["items"], f"{path}[]")

    walk(schema, "")
    # oslo.config overrides ({section: {option: value}}) and horizon's Django settings ({NAME: value})
    assert free_form and all(
        p.split(".")[-2] == "config" or p == ".spec.services.horizon.settings.*" for p in free_form
    ), free_form
    kubernetes_validate.validate(crd(), "1.34", strict=True)  # raises when the CRD itself is malformed


def test_committed_reference_is_what_the_models_generate() -> None:
    from stackops.api.reference import reference_markdown

    committed = (ROOT / "docs" / "reference.md").read_text()
    assert committed == reference_markdown(), "docs/reference.md is stale: run `make crds`"


def test_every_secret_key_a_pod_mounts_is_in_the_secret_the_cloud_renders_or_keeps(example: OpenStackCloud) -> None:
    """The kubelet refuses to start a pod whose Secret volume names a key the Secret lacks: every
    key of every Secret volume and projection is in a Secret of the plan or in the credentials
    Secret (Secrets the user gives are theirs to fill)."""
    credentials = cloud_credentials(example)
    result = plan(example, Credentials(credentials))
    secrets = {
        o["metadata"]["name"]: {*o.get("stringData", {}), *o.get("data", {})}
        for o in result.objects()
        if o["kind"] == "Secret"
    }
    secrets[f"{example.metadata.name}-credentials"] = set(credentials)
    pods = [t["spec"] for _, t in pod_specs(result.objects())]
    pods += [o["spec"]["jobTemplate"]["spec"]["template"]["spec"] for o in result.objects() if o["kind"] == "CronJob"]
    missing = []
    for pod in pods:
        for volume in pod.get("volumes", []):
            sources = [volume["secret"]] if "secret" in volume else []
            sources += [s["secret"] for s in volume.get("projected", {}).get("sources", []) if "secret" in s]
            for source in sources:
                name = source.get("secretName") or source.get("name")
                if name in secrets and not source.get("optional"):
                    missing += [(name, i["key"]) for i in source.get("items", []) if i["key"] not in secrets[name]]
    assert missing == []
