"""Kubernetes-layer health on the real control plane, and what the operator tells about it.

kwok makes a pod crash-loop when its image tag is `kwok-crash-loop` (operator/stackops/devcluster/
kwok-stages.yaml), as a broken image would on a real node; a Job running that image fails when its
restarts reach the backoff limit. The crash loop comes from someone changing keystone's Deployment
by hand, the failed Job from a broken placement image in the spec. Each must surface in the status,
the Events, the printer columns, the metrics and the Argo CD health check, naming the object. The
operator logs JSON here; every line of its log is read back at the end and holds no credential value.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from stackops.api.models import GROUP, PLURAL, VERSION
from stackops.devcluster.install import wait_for
from tests.support.argocd import argocd_health
from tests.support.cluster import NAMESPACE, Env, operated_cluster

CLOUD = "crashy"
BROKEN = "kwok-crash-loop"
# keystone, placement and glance on their infrastructure are enough to show it, and converge sooner
SMALL = {"services": {name: {"enabled": False} for name in ("cinder", "heat", "horizon", "neutron", "nova")}}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    args = ("--health-interval", "2", "--log-format", "json")
    with operated_cluster(tmp_path_factory.mktemp("health"), compute_nodes=1, volumes=10, operator_args=args) as env:
        yield env


def status(env: Env) -> dict[str, Any]:
    return env.get(CLOUD).get("status") or {}


def service(env: Env, name: str) -> dict[str, Any]:
    entry: dict[str, Any] = (status(env).get("services") or {}).get(name) or {}
    return entry


def condition(env: Env, kind: str) -> dict[str, Any]:
    return next((c for c in status(env).get("conditions", []) if c["type"] == kind), {})


def events(env: Env) -> list[tuple[str, str, str]]:
    found = env.core.list_namespaced_event(NAMESPACE, field_selector=f"involvedObject.name={CLOUD}").items
    return [(e.type, e.reason, e.message) for e in found]


def printer_columns(env: Env) -> dict[str, Any]:
    """The row `kubectl get openstackclouds` shows: the API server's Table for the cloud."""
    api = env.api
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}/{CLOUD}"
    request = api.param_serialize(
        "GET",
        path,
        header_params={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*request, _request_timeout=30)
    response.read()
    table = json.loads(response.data)
    names = [c["name"] for c in table["columnDefinitions"]]
    return dict(zip(names, table["rows"][0]["cells"], strict=True))


def metrics(env: Env) -> dict[tuple[str, str], float]:
    """(metric, service) -> value of this cloud, scraped from the operator's /metrics."""
    text = requests.get(f"http://127.0.0.1:{env.operator.metrics_port}/metrics", timeout=5).text
    return {
        (sample.name, sample.labels.get("service", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("cloud") == CLOUD
    }


def set_keystone_image(env: Env, image: str) -> None:
    """What `kubectl set image` does: the operator leaves a change it did not make alone."""
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "keystone-api", "image": image}]}}}}
    env.apps.patch_namespaced_deployment(f"{CLOUD}-keystone-api", NAMESPACE, patch)


def test_a_crash_looping_pod_is_named_with_its_restarts_and_recovery_is_told(env: Env) -> None:
    env.create(env.cloud_body(CLOUD, SMALL))
    env.wait_ready(CLOUD)
    assert condition(env, "Healthy")["status"] == "True"
    assert condition(env, "Healthy")["message"] == "Kubernetes checks only: OpenStack checks are switched off"
    good = env.apps.read_namespaced_deployment(f"{CLOUD}-keystone-api", NAMESPACE).spec.template.spec.containers[0]

    set_keystone_image(env, f"example.invalid/keystone:{BROKEN}")
    wait_for(lambda: service(env, "keystone").get("health") == "Degraded", "keystone Degraded", timeout=60)
    message = service(env, "keystone")["message"]
    pods = env.core.list_namespaced_pod(NAMESPACE, label_selector="app.kubernetes.io/name=keystone").items
    [pod] = [p for p in pods if p.spec.containers[0].image.endswith(BROKEN)]
    assert message.startswith(f"pod {pod.metadata.name} is crash-looping (container keystone-api, ")
    assert "restarts, last exit code 1)" in message
    ready = condition(env, "Ready")
    assert ready["status"] == "False" and ready["message"].startswith(f"keystone: pod {pod.metadata.name}")
    assert condition(env, "Healthy")["reason"] == "ServiceUnhealthy"
    assert status(env)["phase"] == "Degraded"
    wait_for(
        lambda: any(r == "Degraded" and m.startswith(f"keystone: pod {pod.metadata.name}") for _, r, m in events(env)),
        "a Degraded Event naming the pod",
    )
    columns = printer_columns(env)
    assert (columns["Phase"], columns["Ready"]) == ("Degraded", "False")
    scraped = metrics(env)
    assert scraped[("stackops_service_up", "keystone")] == 0.0 and scraped[("stackops_service_up", "mariadb")] == 1.0
    assert scraped[("stackops_reconcile_total", "")] >= 1
    argo, argo_message = argocd_health(env.get(CLOUD))
    assert argo == "Degraded" and argo_message.startswith(f"keystone: pod {pod.metadata.name} is crash-looping")

    # the image put back: keystone is healthy again, and the Events say so
    set_keystone_image(env, good.image)
    wait_for(lambda: service(env, "keystone").get("health") == "Healthy", "keystone Healthy", timeout=60)
    wait_for(lambda: ("Normal", "Recovered", "keystone is healthy again") in events(env), "a Recovered Event")
    env.wait_ready(CLOUD)
    assert printer_columns(env)["Phase"] == "Ready"
    wait_for(lambda: metrics(env)[("stackops_service_up", "keystone")] == 1.0, "keystone up in the metrics")
    assert argocd_health(env.get(CLOUD)) == ("Healthy", "every service is deployed and healthy")


def test_a_failed_job_is_named_in_status_events_and_columns(env: Env) -> None:
    env.wait_ready(CLOUD)
    env.patch_spec(
        CLOUD, {"services": {"placement": {"images": {"placement-api": f"example.invalid/placement:{BROKEN}"}}}}
    )
    wait_for(lambda: status(env).get("phase") == "Failed" or condition(env, "Degraded").get("reason") == "StepFailed",
             "the placement db-sync step failed", timeout=120)  # fmt: skip
    [job] = [
        j
        for j in env.jobs(CLOUD)
        if j.metadata.name.startswith(f"{CLOUD}-placement-db-sync-")
        and any(c.type == "Failed" and c.status == "True" for c in j.status.conditions or [])
    ]
    name = job.metadata.name
    degraded = condition(env, "Degraded")
    failed = f"job {name} failed: Job has reached the specified backoff limit"
    assert degraded["message"] == f"step placement-db-sync: {failed}"
    assert condition(env, "Ready")["message"] == degraded["message"]
    wait_for(
        lambda: service(env, "placement").get("health") == "Degraded" and name in service(env, "placement")["message"],
        "placement's health naming the Job",
    )
    assert ("Warning", "StepFailed", degraded["message"]) in events(env)
    wait_for(
        lambda: any(r == "Degraded" and m.startswith("placement: ") and name in m for _, r, m in events(env)),
        "a Degraded Event naming the Job",
    )
    assert printer_columns(env)["Phase"] == "Degraded"
    assert metrics(env)[("stackops_service_up", "placement")] == 0.0
    assert argocd_health(env.get(CLOUD)) == ("Degraded", degraded["message"])

    # a fix outside the spec: the failed Job deleted by hand runs again, on the deletion itself
    env.batch.delete_namespaced_job(name, NAMESPACE, propagation_policy="Background")
    wait_for(
        lambda: any(j.metadata.name == name and j.metadata.uid != job.metadata.uid for j in env.jobs(CLOUD)),
        f"{name} to be created again",
        timeout=120,
    )
    assert f"failed job {name} was deleted: looking at cloud {CLOUD} again" in env.operator.log()


def test_every_log_line_is_json_and_holds_no_credential(env: Env) -> None:
    secret = env.core.read_namespaced_secret(f"{CLOUD}-credentials", NAMESPACE)
    values = [base64.b64decode(v).decode() for v in secret.data.values()]
    assert len(values) >= 6
    lines = [line for line in env.operator.log().splitlines() if line.strip()]
    assert len(lines) > 20  # a whole run: start, deploy, crash loop, recovery, failed Job
    records = [json.loads(line) for line in lines]  # JSON, every one of them
    assert any(r.get("message", "").startswith("applying ") for r in records)
    leaked = [(line[:80], value[:4]) for line in lines for value in values if value in line]
    assert leaked == []
