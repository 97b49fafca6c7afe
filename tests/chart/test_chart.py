"""The Helm chart, rendered by a real helm: lint, the Kubernetes 1.34 schema (strict), the CRDs and
RBAC rules taken from the code, a locked-down Deployment whose arguments the operator accepts."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import kubernetes_validate
import pytest
import yaml

from stackops import __version__
from stackops.cli import operator_options, parser
from stackops.reconcile.rbac import rules
from tests.chart.helm import CHART, ROOT, helm, of_kind, only, sync, template, values_args

NAMESPACED = {"watchNamespaces": ["tenant-a", "tenant-b"]}
EVERYTHING = {
    **NAMESPACED,
    "image": {"repository": "registry.example/stackops", "digest": "sha256:" + "ab" * 32},
    "imagePullSecrets": [{"name": "registry-credentials"}],
    "replicas": 2,
    "metrics": {"port": 9090, "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "extraArgs": ["--log-format=json"],
}
ALL_NAMESPACES = {"watchAllNamespaces": True}
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "namespaced": NAMESPACED,
    "all": ALL_NAMESPACES,
    "everything": EVERYTHING,
}


def rule_counts(found: list[dict[str, Any]]) -> Counter[str]:
    """RBAC rules as a multiset: their order does not matter to the API server."""
    return Counter(json.dumps(rule, sort_keys=True) for rule in found)


def test_helm_lint_passes_strictly() -> None:
    result = helm("lint", "--strict", str(CHART), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    for values in VALUE_SETS.values():
        result = helm("lint", "--strict", str(CHART), *values_args(values), check=False)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_rendered_chart_is_valid_kubernetes_1_34(values: dict[str, Any]) -> None:
    objects = template(values, crds=True)
    checked = 0
    for obj in objects:
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # prometheus-operator's CRD schema is not in the bundled Kubernetes schemas
        kubernetes_validate.validate(obj, "1.34", strict=True)
        checked += 1
    assert checked >= 6


def test_chart_crds_are_the_generated_crds() -> None:
    chart_crds = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    crds = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
    assert chart_crds == crds, "charts/stackops/crds differs from crds/: run `make chart`"
    assert sync.main(["--check"]) == 0, "charts/stackops is out of date: run `make chart`"


def test_the_default_serves_the_release_namespace_only() -> None:
    objects = template()
    roles = {r["metadata"]["name"]: r for r in of_kind(objects, "Role")}
    assert {r["metadata"]["namespace"] for r in roles.values()} == {"stackops-system"}
    granted = {resource for rule in only(objects, "ClusterRole")["rules"] for resource in rule["resources"]}
    assert granted <= sync.CLUSTER_SCOPED, granted
    container = only(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "--namespace=stackops-system" in container["args"]


def test_watching_every_namespace_grants_exactly_the_operator_rules_cluster_wide() -> None:
    objects = template(ALL_NAMESPACES)
    role = only(objects, "ClusterRole")
    assert rule_counts(role["rules"]) == rule_counts(rules())
    assert of_kind(objects, "Role") == []
    binding = only(objects, "ClusterRoleBinding")
    account = only(objects, "ServiceAccount")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": "stackops-system"}
    ]


def test_watching_some_namespaces_grants_their_objects_only_there() -> None:
    objects = template(NAMESPACED)
    roles = {r["metadata"]["namespace"]: r for r in of_kind(objects, "Role")}
    assert set(roles) == {"tenant-a", "tenant-b", "stackops-system"}
    cluster = only(objects, "ClusterRole")["rules"]
    # nothing namespaced is granted cluster-wide: no Secrets, Jobs or clouds outside the watched namespaces
    granted = {resource for rule in cluster for resource in rule["resources"]}
    assert granted <= sync.CLUSTER_SCOPED, granted
    leader = roles["stackops-system"]["rules"]
    assert {r for rule in leader for r in rule["resources"]} == {"leases"}
    assert roles["tenant-a"]["rules"] == roles["tenant-b"]["rules"]
    # and together the pieces are the operator's rules, nothing more
    assert rule_counts(roles["tenant-a"]["rules"] + leader + cluster) == rule_counts(rules())
    bindings = {b["metadata"]["namespace"]: b for b in of_kind(objects, "RoleBinding")}
    assert set(bindings) == set(roles)


def test_the_deployment_is_locked_down_and_probed_on_the_health_endpoint() -> None:
    deployment = only(template(), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532  # the image's stackops user
    [container] = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert container["image"] == f"quay.io/stackops/stackops:{__version__}"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["STACKOPS_IMAGE"] == container["image"]  # the Jobs it creates run the same image


def test_image_pull_secrets_replicas_and_digest_come_from_values() -> None:
    objects = template(EVERYTHING)
    deployment = only(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 2
    assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["containers"][0]["image"] == "registry.example/stackops@sha256:" + "ab" * 32


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_the_operator_accepts_the_deployment_arguments(values: dict[str, Any]) -> None:
    container = only(template(values), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][0] == "operator"  # the image's entrypoint is `stackops`
    options = operator_options(parser().parse_args(container["args"]))
    expected = () if values.get("watchAllNamespaces") else tuple(values.get("watchNamespaces") or ["stackops-system"])
    assert options.namespaces == expected
    assert (options.health_port, options.metrics_port) == (8080, 9090)


def test_the_metrics_service_and_service_monitor_reach_the_metrics_port() -> None:
    objects = template(EVERYTHING)
    pod = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    service = only(objects, "Service")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics"}]
    assert service["spec"]["selector"].items() <= pod.items()
    monitor = only(objects, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert of_kind(template(), "ServiceMonitor") == []  # optional: off unless asked for


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"replicaz": 2}, "replicaz"),
        ({"watchNamespaces": ["Not_A_Namespace"]}, "/watchNamespaces/0"),
        ({"image": {"repository": "x", "pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ],
)
def test_bad_values_are_refused_naming_the_field(values: dict[str, Any], field: str) -> None:
    result = helm("template", "stackops", str(CHART), *values_args(values), check=False)
    assert result.returncode != 0
    assert field in result.stderr and "panic" not in result.stderr


def test_chart_version_is_stackops_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == __version__
