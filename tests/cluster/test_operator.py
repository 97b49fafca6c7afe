"""The operator on a real control plane: kube-apiserver, controller manager, scheduler, etcd, kwok.

The operator runs as its own process with its own identity, limited to the RBAC in
stackops.reconcile.rbac; what it writes is counted from the API server's audit log.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import yaml
from kubernetes.client.exceptions import ApiException

from stackops.api.models import PLURAL
from stackops.api.validation import load_cloud_text
from stackops.devcluster.install import wait_for
from stackops.kube.kinds import kind_of
from stackops.plan import plan
from stackops.render.hashing import CONFIG_HASH_ANNOTATION
from stackops.services import service as stackops_service
from tests.support.cluster import NAMESPACE, OTHER_NAMESPACE, Env, operated_cluster

SECOND = "stackops-operator-2"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    namespaces = (NAMESPACE, OTHER_NAMESPACE)
    workdir = tmp_path_factory.mktemp("operator")
    with operated_cluster(workdir, compute_nodes=2, volumes=40, namespaces=namespaces, extra_users=(SECOND,)) as env:
        print(f"control plane up in {env.cluster.startup_seconds:.1f}s")
        yield env


# -- the API server enforces the API ---------------------------------------------------------


def _rejection(env: Env, body: dict[str, Any]) -> str:
    with pytest.raises(ApiException) as caught:
        env.create(body)
    message: str = json.loads(caught.value.body)["message"]
    return message


def test_api_server_rejects_invalid_clouds_with_readable_messages(env: Env) -> None:
    bad_field = env.cloud_body("bad-field", namespace=OTHER_NAMESPACE)
    bad_field["spec"]["services"] = {"keystone": {"replicaz": 2}}
    assert 'unknown field "spec.services.keystone.replicaz"' in _rejection(env, bad_field)

    galera = env.cloud_body("galera", {"infrastructure": {"database": {"replicas": 2}}}, namespace=OTHER_NAMESPACE)
    assert "a Galera cluster needs 1 or at least 3 replicas" in _rejection(env, galera)

    release = env.cloud_body("old", {"release": "2024.1"}, namespace=OTHER_NAMESPACE)
    assert "spec.release: Unsupported value" in _rejection(env, release)

    # a quantity Kubernetes would refuse in the Deployment is refused with the cloud, before anything is applied
    cpu = {"services": {"keystone": {"resources": {"api": {"requests": {"cpu": "lots"}}}}}}
    quantity = env.cloud_body("lots", cpu, namespace=OTHER_NAMESPACE)
    rejected = _rejection(env, quantity)
    assert "spec.services.keystone.resources.api.requests.cpu" in rejected and "should match" in rejected, rejected
    secret = env.cloud_body("secret", {"images": {"pullSecrets": ["My Secret"]}}, namespace=OTHER_NAMESPACE)
    assert "spec.images.pullSecrets[0]" in _rejection(env, secret)

    name = env.cloud_body("Not_A_Label", namespace=OTHER_NAMESPACE)
    assert "metadata.name must be a DNS label" in _rejection(env, name) or "Invalid value" in _rejection(env, name)


@pytest.mark.parametrize(
    ("old", "new", "allowed"),
    [
        ("2025.1", "2025.2", True),
        ("2025.1", "2026.1", True),  # SLURP to SLURP
        ("2025.1", "2026.2", False),
        ("2025.2", "2026.1", True),
        ("2025.2", "2026.2", False),
        ("2026.1", "2026.2", True),
        ("2026.1", "2025.2", False),
        ("2026.2", "2025.1", False),
    ],
)
def test_cel_release_rules_on_the_api_server(env: Env, old: str, new: str, allowed: bool) -> None:
    name = f"cel-{old.replace('.', '-')}-{new.replace('.', '-')}"
    env.create(env.cloud_body(name, {"release": old}, namespace=OTHER_NAMESPACE))
    try:
        if allowed:
            assert env.patch_spec(name, {"release": new}, namespace=OTHER_NAMESPACE)["spec"]["release"] == new
        else:
            with pytest.raises(ApiException) as caught:
                env.patch_spec(name, {"release": new}, namespace=OTHER_NAMESPACE)
            assert caught.value.status == 422
            message = json.loads(caught.value.body)["message"]
            assert "spec.release cannot be downgraded" in message or "it cannot skip further" in message
    finally:
        env.delete(name, namespace=OTHER_NAMESPACE)


def test_release_is_defaulted_and_stored(env: Env) -> None:
    body = env.cloud_body("defaulted", namespace=OTHER_NAMESPACE)
    del body["spec"]["release"]
    created = env.create(body)
    env.delete("defaulted", namespace=OTHER_NAMESPACE)
    assert created["spec"]["release"] == "2026.1"


# -- converging --------------------------------------------------------------------------------


def test_example_cloud_goes_ready_in_dependency_order(env: Env) -> None:
    since = env.cluster.audit_line_count()
    env.create(env.cloud_body("demo"))
    cloud = env.wait_ready("demo")
    status = cloud["status"]
    assert status["phase"] == "Ready" and status["release"] == "2026.1"
    rendered = plan(load_cloud_text(yaml.safe_dump(env.cloud_body("demo"))))
    assert {s: v["phase"] for s, v in status["services"].items()} == {s.service: "Ready" for s in rendered.steps}
    assert {"mariadb", "rabbitmq", "keystone", "placement", "glance", "nova", "neutron"} <= set(status["services"])
    assert status["endpoints"] == rendered.endpoints
    assert status["endpoints"]["identity"] == "https://demo-keystone-api.openstack.svc:5000/v3"

    # Order of creation: every object the operator applied, by the step it belongs to.
    # (Job names end in a hash of their spec, which holds the real credentials: compare without it.)
    def key(resource: str, name: str) -> tuple[str, str]:
        return resource, name.rsplit("-", 1)[0] if resource == "jobs" else name

    step_of = {
        key(kind_of(o).plural, o["metadata"]["name"]): i for i, s in enumerate(rendered.steps) for o in s.objects
    }
    applied = [
        key(e["objectRef"]["resource"], e["objectRef"]["name"])
        for e in env.writes(since)
        if e["verb"] == "patch" and e["objectRef"].get("subresource") is None and e["objectRef"]["resource"] != PLURAL
    ]
    order = [step_of[a] for a in applied if a in step_of]
    assert len(order) == len(rendered.objects()), applied
    # Each service's steps in order; a service only once everything it depends on was applied
    # (and ready: the engine applies nothing of a service before its dependencies are ready).
    service_of = [rendered.steps[i].service for i in order]
    for service in set(service_of):
        own = [i for i, s in zip(order, service_of, strict=True) if s == service]
        assert own == sorted(own), f"{service}: {applied}"
    first = {s: service_of.index(s) for s in set(service_of)}
    last = {s: len(service_of) - 1 - service_of[::-1].index(s) for s in set(service_of)}
    for service in set(service_of):
        for dependency in dependencies(service):
            assert last[dependency] < first[service], f"{service} before {dependency} was done: {applied}"

    # Events on the transitions, for `kubectl describe`
    def reasons() -> set[str]:
        events = env.core.list_namespaced_event(NAMESPACE, field_selector="involvedObject.name=demo").items
        return {e.reason for e in events}

    wait_for(lambda: {"Deploying", "Ready"} <= reasons(), "Deploying and Ready events")

    # Owned by the cloud; Jobs completed by kwok; the control plane on control-plane nodes only,
    # host agents (DaemonSets) on the compute nodes only
    deployment = env.apps.read_namespaced_deployment("demo-keystone-api", NAMESPACE)
    assert deployment.metadata.owner_references[0].kind == "OpenStackCloud"
    pods = env.core.list_namespaced_pod(NAMESPACE, label_selector="stackops.dev/cloud=demo").items
    agents = {p.spec.node_name for p in pods if p.metadata.owner_references[0].kind == "DaemonSet"}
    control = {p.spec.node_name for p in pods if p.metadata.owner_references[0].kind != "DaemonSet"}
    assert control == {"control-plane-0"}
    assert agents == {"compute-0", "compute-1"}


def dependencies(service: str) -> set[str]:
    """Every service `service` needs, directly or through another."""
    direct = set(stackops_service(service).depends_on)
    return direct.union(*(dependencies(d) for d in direct))


def _stackops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackops.cli", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_status_and_events_commands_show_what_the_status_holds(env: Env) -> None:
    cloud = env.ensure_ready("demo")
    admin = str(env.cluster.kubeconfig)
    result = _stackops("status", "-n", NAMESPACE, "demo", "-o", "json", "--kubeconfig", admin)
    assert result.returncode == 0, result.stderr
    [summary] = json.loads(result.stdout)
    assert summary["phase"] == "Ready" and summary["release"] == "2026.1"
    assert summary["services"] == cloud["status"]["services"]
    table = _stackops("status", "-n", NAMESPACE, "--kubeconfig", admin)
    assert table.returncode == 0 and "openstack/demo" in table.stdout and "placement" in table.stdout
    events = _stackops("events", "demo", "-n", NAMESPACE, "--kubeconfig", admin)
    assert events.returncode == 0 and "Ready" in events.stdout
    missing = _stackops("status", "-n", NAMESPACE, "nope", "--kubeconfig", admin)
    assert missing.returncode == 2 and missing.stderr.strip() == "openstack/nope: no such OpenStackCloud"


def test_credentials_are_generated_once_and_never_in_status_or_logs(env: Env) -> None:
    env.ensure_ready("demo")
    secret = env.core.read_namespaced_secret("demo-credentials", NAMESPACE)
    assert not secret.metadata.owner_references  # survives deletion of the cloud
    import base64

    values = [base64.b64decode(v).decode() for v in secret.data.values()]
    assert len(values) >= 6
    status_text = str(env.get("demo")["status"])
    log = env.operator.log()
    for value in values:
        assert value not in status_text and value not in log


def test_a_reconcile_that_changes_nothing_writes_nothing(env: Env) -> None:
    env.ensure_ready("demo")
    env.operator.stop()
    since = env.cluster.audit_line_count()
    env.operator.start("-n", NAMESPACE)
    # the resume handler runs at start: wait until it has looked at the cloud (its list requests)
    wait_for(
        lambda: any(
            e.get("verb") == "list" and e.get("objectRef", {}).get("resource") == "jobs"
            for e in env.cluster.audit_events(since_line=since)
        ),
        "the operator to reconcile after its restart",
    )
    time.sleep(3)  # room for any write it would make after looking
    writes = env.writes(since)
    assert writes == [], [(e["verb"], e["objectRef"]) for e in writes]


def test_changing_replicas_changes_only_that_deployment(env: Env) -> None:
    env.ensure_ready("demo")
    before = env.apps.read_namespaced_deployment("demo-keystone-api", NAMESPACE)
    since = env.cluster.audit_line_count()
    env.patch_spec("demo", {"services": {"keystone": {"replicas": 2}}})
    env.ensure_ready("demo")
    after = env.apps.read_namespaced_deployment("demo-keystone-api", NAMESPACE)
    assert after.spec.replicas == 2
    assert after.spec.template.metadata.annotations == before.spec.template.metadata.annotations
    children = {
        (e["objectRef"]["resource"], e["objectRef"]["name"])
        for e in env.writes(since)
        if e["objectRef"]["resource"] not in (PLURAL, "events")
    }
    assert children == {("deployments", "demo-keystone-api")}


def test_a_config_override_rolls_keystone_with_a_new_config_hash(env: Env) -> None:
    env.ensure_ready("demo")
    before = env.apps.read_namespaced_deployment("demo-keystone-api", NAMESPACE)
    old_jobs = {j.metadata.name for j in env.jobs("demo")}
    env.patch_spec("demo", {"services": {"keystone": {"config": {"DEFAULT": {"debug": True}}}}})
    env.ensure_ready("demo")
    after = env.apps.read_namespaced_deployment("demo-keystone-api", NAMESPACE)
    old_hash = before.spec.template.metadata.annotations[CONFIG_HASH_ANNOTATION]
    assert after.spec.template.metadata.annotations[CONFIG_HASH_ANNOTATION] != old_hash
    replica_sets = env.apps.list_namespaced_replica_set(
        NAMESPACE,
        label_selector="app.kubernetes.io/instance=demo,app.kubernetes.io/name=keystone,app.kubernetes.io/component=api",
    ).items
    assert len(replica_sets) == 2  # a rollout happened
    # new db-sync/bootstrap Jobs; the superseded ones were removed once finished
    new_jobs = {j.metadata.name for j in env.jobs("demo")}
    wait_for(lambda: not ({j.metadata.name for j in env.jobs("demo")} & (old_jobs - new_jobs)), "old jobs pruned")
    changed = {n.rsplit("-", 1)[0] for n in new_jobs ^ old_jobs}
    assert changed == {"demo-keystone-db-sync", "demo-keystone-bootstrap"}


def test_fernet_keys_rotate_when_due(env: Env) -> None:
    env.ensure_ready("demo")
    stamp = "stackops.dev/rotated-keystone-fernet"
    secret = env.core.read_namespaced_secret("demo-credentials", NAMESPACE)
    assert secret.metadata.annotations[stamp]  # stamped when the keys were made
    before = env.core.read_namespaced_secret("demo-keystone-fernet-keys", NAMESPACE).data
    assert sorted(before) == ["0", "1"]
    # as if the last rotation were a day and a minute ago
    env.core.patch_namespaced_secret(
        "demo-credentials", NAMESPACE, {"metadata": {"annotations": {stamp: "2000-01-01T00:00:00Z"}}}
    )
    env.patch_spec("demo", {"services": {"keystone": {"fernet": {"rotationHours": 25}}}})  # wake the operator
    wait_for(
        lambda: sorted(env.core.read_namespaced_secret("demo-keystone-fernet-keys", NAMESPACE).data) == ["0", "1", "2"],
        "rotated fernet keys",
    )
    after = env.core.read_namespaced_secret("demo-keystone-fernet-keys", NAMESPACE).data
    assert after["2"] == before["0"] and after["1"] == before["1"] and after["0"] != before["0"]
    assert (
        env.core.read_namespaced_secret("demo-credentials", NAMESPACE).metadata.annotations[stamp]
        != "2000-01-01T00:00:00Z"
    )
    env.wait_ready("demo")


def test_paused_cloud_gets_no_writes(env: Env) -> None:
    env.ensure_ready("demo")
    env.patch_spec("demo", {"paused": True})
    wait_for(lambda: env.get("demo").get("status", {}).get("phase") == "Paused", "Paused phase")
    since = env.cluster.audit_line_count()
    env.patch_spec("demo", {"services": {"keystone": {"replicas": 3}}})
    time.sleep(3)
    children = [e for e in env.writes(since) if e["objectRef"]["resource"] not in (PLURAL, "events")]
    assert children == []
    assert env.apps.read_namespaced_deployment("demo-keystone-api", NAMESPACE).spec.replicas == 2
    assert env.condition("demo", "Paused")["status"] == "True"
    env.patch_spec("demo", {"paused": False, "services": {"keystone": {"replicas": 2}}})
    env.wait_ready("demo")


def test_a_spec_the_schema_lets_through_but_stackops_cannot_render_fails_cleanly(env: Env) -> None:
    # free-form oslo overrides pass the API server; a mapping as an INI value is caught by stackops
    broken = {"services": {"keystone": {"config": {"DEFAULT": {"debug": {"nested": 1}}}}}}
    env.create(env.cloud_body("broken", broken))
    wait_for(lambda: (env.get("broken").get("status") or {}).get("phase") == "Failed", "phase Failed")
    ready = env.condition("broken")
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert "spec.services.keystone.config" in ready["message"] and "DEFAULT.debug" in ready["message"]
    # nothing half-applied: no object of the cloud exists, not even its credentials
    assert not env.jobs("broken")
    assert not env.core.list_namespaced_secret(NAMESPACE, label_selector="stackops.dev/cloud=broken").items
    wait_for(
        lambda: (
            "InvalidSpec"
            in {
                e.reason
                for e in env.core.list_namespaced_event(NAMESPACE, field_selector="involvedObject.name=broken").items
            }
        ),
        "an InvalidSpec Event",
    )
    # fixing the spec is all it takes
    env.patch_spec("broken", {"services": {"keystone": {"config": {"DEFAULT": {"debug": True}}}}})
    env.wait_ready("broken")
    env.delete("broken")


# -- faults --------------------------------------------------------------------------------------


def test_killed_operator_resumes_without_duplicate_jobs_or_new_credentials(env: Env) -> None:
    env.create(env.cloud_body("crash"))
    wait_for(lambda: len(env.jobs("crash")) >= 1, "the first Job of cloud crash", interval=0.1)
    credentials = env.core.read_namespaced_secret("crash-credentials", NAMESPACE).data
    env.operator.kill()
    env.operator.start("-n", NAMESPACE)
    env.ensure_ready("crash")
    jobs = [
        (j.metadata.labels["app.kubernetes.io/name"], j.metadata.labels["app.kubernetes.io/component"])
        for j in env.jobs("crash")
    ]
    rendered = plan(load_cloud_text(yaml.safe_dump(env.cloud_body("crash"))))
    expected = sum(o["kind"] == "Job" for o in rendered.objects())
    assert len(jobs) == len(set(jobs)) == expected, jobs  # each Job once: none repeated after the restart
    assert env.core.read_namespaced_secret("crash-credentials", NAMESPACE).data == credentials


def test_apiserver_restart_during_a_reconcile(env: Env) -> None:
    env.create(env.cloud_body("restart"))
    wait_for(lambda: len(env.jobs("restart")) >= 1, "the first Job of cloud restart", interval=0.1)
    env.cluster.restart_apiserver()
    env.wait_ready("restart")


def test_two_operators_only_one_acts(env: Env) -> None:
    env.ensure_ready("demo")
    second = env.new_operator(SECOND, 18082)
    started = env.cluster.audit_line_count()
    second.start("-n", NAMESPACE)
    try:
        # up and standing by before the change (the change may converge faster than it starts)
        wait_for(lambda: "waiting to become the leader" in second.log(), "the second operator to wait", timeout=60)
        since = env.cluster.audit_line_count()
        env.patch_spec("demo", {"services": {"keystone": {"replicas": 3}}})
        env.wait_ready("demo")
        assert env.writes(since, user=SECOND) == []
        assert env.writes(since)  # the leader did the work
        # a standby is healthy while it waits: its pod's probes must not restart it
        assert requests.get(f"http://127.0.0.1:{second.health_port}/healthz", timeout=5).status_code == 200
        # the follower is not idle for lack of rights: it reads the Lease it waits for
        lease_reads = [
            e
            for e in env.cluster.audit_events(user=SECOND, since_line=started)
            if e.get("objectRef", {}).get("resource") == "leases"
        ]
        assert lease_reads and all(e["responseStatus"]["code"] == 200 for e in lease_reads)
        # the leader goes away: the second takes over
        env.operator.kill()
        wait_for(lambda: "is the leader" in second.log(), "the second operator to lead", timeout=60)
        env.patch_spec("demo", {"services": {"keystone": {"replicas": 1}}})
        env.wait_ready("demo")
        assert env.apps.read_namespaced_deployment("demo-keystone-api", NAMESPACE).spec.replicas == 1
    finally:
        second.stop()
        env.operator.start("-n", NAMESPACE)


def test_deleting_a_cloud_keeps_credentials_and_volumes_unless_asked(env: Env) -> None:
    env.ensure_ready("restart")
    env.delete("restart")
    wait_for(lambda: _gone(env, "restart"), "cloud restart deleted", timeout=120)
    assert not env.jobs("restart")
    assert not env.apps.list_namespaced_stateful_set(NAMESPACE, label_selector="stackops.dev/cloud=restart").items
    env.core.read_namespaced_secret("restart-credentials", NAMESPACE)  # kept
    pvcs = env.core.list_namespaced_persistent_volume_claim(NAMESPACE, label_selector="stackops.dev/cloud=restart")
    assert pvcs.items  # kept

    env.ensure_ready("crash")
    env.patch_spec("crash", {"deletionPolicy": "Delete"})
    env.delete("crash")
    wait_for(lambda: _gone(env, "crash"), "cloud crash deleted", timeout=120)
    with pytest.raises(ApiException):
        env.core.read_namespaced_secret("crash-credentials", NAMESPACE)
    wait_for(
        lambda: (
            not env.core.list_namespaced_persistent_volume_claim(
                NAMESPACE, label_selector="stackops.dev/cloud=crash"
            ).items
        ),
        "PVCs of crash removed",
    )


def _gone(env: Env, name: str) -> bool:
    try:
        env.get(name)
    except ApiException as error:
        status: int = error.status  # the kubernetes client is untyped here (pyproject's mypy overrides)
        return status == 404
    return False
