"""Release upgrades and operator self-upgrade on the real control plane.

kube-apiserver, etcd, controller manager, scheduler and kwok as in test_operator.py, with the
operator as its own process. What happened, and in which order, is read from the API server's
audit log (the operator's requests) and from the Job controller's Events (pods created per Job).
A failing migration is a container image kwok crash-loops (operator/stackops/devcluster/kwok-stages.yaml),
set through the cloud's own image overrides.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from stackops.api.models import GROUP, PLURAL, VERSION
from stackops.api.validation import parse_cloud
from stackops.credentials import Credentials
from stackops.devcluster.cluster import free_ports
from stackops.devcluster.install import install_crds, wait_for
from stackops.kube.kinds import kind_of
from stackops.render.hashing import CONFIG_HASH_ANNOTATION
from stackops.upgrade.plan import AGENTS_RELEASE_ANNOTATION, UpgradePlan, plan_upgrade
from tests.support.cluster import NAMESPACE, OTHER_NAMESPACE, ROOT, Env, operated_cluster
from tests.support.operator import OperatorProcess

OPERATOR = "stackops-operator"
SOURCE, TARGET = "2025.2", "2026.1"
# Clouds other than the example one: the services an upgrade has Jobs for, and what they stand on.
SMALL = {"services": {name: {"enabled": False} for name in ("nova", "neutron", "cinder", "horizon", "heat")}}
CRASH = ":kwok-crash-loop"  # an image tag kwok crash-loops (operator/stackops/devcluster/kwok-stages.yaml)
# The operator as it was before upgrades were written: the self-upgrade test adopts its clouds.
OLDER_REVISION = "a79d6d1ba5b18cba2832e47cec5f84c104fbbb44"
WORKLOADS = ("deployments", "statefulsets", "daemonsets")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("operator")
    with operated_cluster(workdir, compute_nodes=2, volumes=60, namespaces=(NAMESPACE, OTHER_NAMESPACE)) as env:
        yield env


# -- helpers ----------------------------------------------------------------------------------


def upgrade_plan(env: Env, name: str, spec: dict[str, Any] | None = None) -> UpgradePlan:
    """The upgrade as stackops renders it for the cloud `name`, with its credentials: the regular Jobs
    a roll runs are named after their spec, which holds the hash of their config."""
    body = env.cloud_body(name, {**(spec or {}), "release": TARGET})
    secret = env.core.read_namespaced_secret(f"{name}-credentials", NAMESPACE)
    values = {key: base64.b64decode(value).decode() for key, value in (secret.data or {}).items()}
    return plan_upgrade(parse_cloud(body), SOURCE, Credentials(values))


def upgrade_jobs(upgrade: UpgradePlan) -> list[str]:
    """The upgrade's own Jobs: pre-flight checks, expand and contract steps."""
    jobs = [*upgrade.checks, *(o for s in upgrade.steps if s.kind == "jobs" for o in s.objects)]
    return [o["metadata"]["name"] for o in jobs if o["kind"] == "Job"]


def operator_requests(env: Env, since: int) -> list[dict[str, Any]]:
    return [
        e
        for e in env.cluster.audit_events(user=OPERATOR, since_line=since)
        if e.get("objectRef", {}).get("resource") != "leases"
    ]


def applied(env: Env, since: int) -> list[tuple[str, str]]:
    """(resource, name) of every object the operator applied (server-side apply is a PATCH), in order."""
    return [
        (e["objectRef"]["resource"], e["objectRef"]["name"])
        for e in operator_requests(env, since)
        if e["verb"] == "patch" and e["objectRef"].get("subresource") is None and e["objectRef"]["resource"] != PLURAL
    ]


def pods_created(env: Env) -> Counter[str]:
    """How many pods the Job controller created for each Job (its SuccessfulCreate Events)."""
    events = env.core.list_namespaced_event(NAMESPACE, field_selector="involvedObject.kind=Job").items
    return Counter(e.involved_object.name for e in events if e.reason == "SuccessfulCreate")


def kill_operator_after(env: Env, since: int, what: str, match: Callable[[dict[str, Any]], bool]) -> None:
    """SIGKILL the operator right after it sent the first request `match` accepts: the audit log is
    written before the API server answers, so the operator dies with that request just made."""
    deadline = time.monotonic() + 180
    while not any(match(e) for e in operator_requests(env, since)):
        if time.monotonic() > deadline:
            pytest.fail(f"the operator never got to {what}\n{env.operator.log()[-3000:]}")
        time.sleep(0.02)
    env.operator.kill()


def apply_of(resource: str, prefix: str) -> Callable[[dict[str, Any]], bool]:
    def match(event: dict[str, Any]) -> bool:
        ref = event.get("objectRef", {})
        return (
            event.get("verb") == "patch" and ref.get("resource") == resource and ref.get("name", "").startswith(prefix)
        )

    return match


def reasons(env: Env, name: str) -> list[tuple[str, str]]:
    events = env.core.list_namespaced_event(NAMESPACE, field_selector=f"involvedObject.name={name}").items
    return [(e.reason, e.message) for e in sorted(events, key=lambda e: e.metadata.creation_timestamp)]


def images(env: Env, cloud: str) -> dict[str, set[str]]:
    """Container images of the cloud's workloads, by workload."""
    selector = f"stackops.dev/cloud={cloud}"
    found: dict[str, set[str]] = {}
    for items in (
        env.apps.list_namespaced_deployment(NAMESPACE, label_selector=selector).items,
        env.apps.list_namespaced_stateful_set(NAMESPACE, label_selector=selector).items,
        env.apps.list_namespaced_daemon_set(NAMESPACE, label_selector=selector).items,
    ):
        for workload in items:
            pod = workload.spec.template.spec
            found[workload.metadata.name] = {c.image for c in [*pod.containers, *(pod.init_containers or [])]}
    return found


def status(env: Env, name: str) -> dict[str, Any]:
    return dict(env.get(name).get("status") or {})


def wait_until(env: Env, check: Callable[[], bool], what: str, cloud: str, timeout: float = 600) -> None:
    """wait_for, failing with the cloud's upgrade status, conditions and the operator's log."""
    try:
        wait_for(check, what, timeout=timeout, interval=0.5)
    except TimeoutError:
        current = status(env, cloud)
        conditions = {c["type"]: c.get("message") for c in current.get("conditions", [])}
        pytest.fail(
            f"timed out waiting for {what}: upgrade {current.get('upgrade')}\n{conditions}\n"
            f"--- operator log ---\n{env.operator.log()[-4000:]}"
        )


def stopped(env: Env, cloud: str) -> bool:
    """The upgrade stopped at a failed step (not a health check seeing the crash-looping pod first)."""
    degraded = env.condition(cloud, "Degraded")
    return degraded.get("status") == "True" and degraded.get("reason") == "UpgradeStepFailed"


def deployed(env: Env, name: str, spec: dict[str, Any] | None = None) -> None:
    env.create(env.cloud_body(name, {**(spec or {}), "release": SOURCE}))
    cloud = env.wait_ready(name, timeout=300)
    assert cloud["status"]["release"] == SOURCE and "specHashes" in cloud["status"]


def remove(env: Env, name: str) -> None:
    """Delete a cloud this module is done with: fewer pods for kwok and the API server to keep."""
    env.patch_spec(name, {"deletionPolicy": "Delete"})
    env.delete(name)


# -- the API server enforces the release rules ---------------------------------------------------


def test_release_rules_on_the_api_server_read_the_deployed_release_and_the_rollback_window(env: Env) -> None:
    """Clouds where no operator acts (status written here as the operator would): a skip counted from
    the deployed release, a rollback only while status.upgrade.rollbackTo says no database moved on."""
    name = "cel-status"
    env.create(env.cloud_body(name, {"release": TARGET}, namespace=OTHER_NAMESPACE))

    def set_status(value: dict[str, Any]) -> None:
        obj = env.get(name, OTHER_NAMESPACE)
        obj["status"] = value
        env.custom.replace_namespaced_custom_object_status(GROUP, VERSION, OTHER_NAMESPACE, PLURAL, name, obj)

    def refused(release: str) -> str:
        with pytest.raises(ApiException) as caught:
            env.patch_spec(name, {"release": release}, namespace=OTHER_NAMESPACE)
        assert caught.value.status == 422
        message: str = json.loads(caught.value.body)["message"]
        assert "spec.release" in message
        return message

    try:
        upgrade = {"from": SOURCE, "to": TARGET, "phase": "Upgrading"}
        set_status({"release": SOURCE, "upgrade": upgrade})  # contracted: no rollbackTo
        assert "cannot be downgraded" in refused(SOURCE)
        assert "cannot skip further" in refused("2026.2")  # 2025.2 runs: 2026.2 skips 2026.1
        set_status({"release": SOURCE, "upgrade": {**upgrade, "rollbackTo": SOURCE}})
        assert "cannot be downgraded" in refused("2025.1")  # below what runs, even in the window
        assert env.patch_spec(name, {"release": SOURCE}, namespace=OTHER_NAMESPACE)["spec"]["release"] == SOURCE
    finally:
        env.delete(name, namespace=OTHER_NAMESPACE)


# -- operator self-upgrade ------------------------------------------------------------------------


class OlderOperator(OperatorProcess):
    """`stackops operator` from the code at OLDER_REVISION: its `operator/` and `crds/`, recorded in
    tests/data (`git archive`), so the test needs no git history (CI may clone shallowly)."""

    def __init__(self, env: Env, workdir: Path) -> None:
        recorded = ROOT / "tests" / "data" / f"operator-{OLDER_REVISION[:7]}.tar.gz"
        subprocess.run(["tar", "-xzf", str(recorded), "-C", str(workdir)], check=True)
        self.crd = yaml.safe_load((workdir / "crds" / "stackops.dev_openstackclouds.yaml").read_text())
        source = {"PYTHONPATH": str(workdir / "operator"), "STACKOPS_IMAGE": "stackops:test"}
        super().__init__(env.cluster.kubeconfig_for(OPERATOR), workdir / "older-operator.log", free_ports(1)[0], source)

    def command(self, *args: str) -> list[str]:
        """Only the flags that release had (no metrics port, no OpenStack checks to turn off)."""
        command = [sys.executable, "-m", "stackops.cli", "operator", "--kubeconfig", str(self.kubeconfig)]
        return [*command, "--health-port", str(self.health_port), *args]


def replace_crd(env: Env, body: dict[str, Any]) -> None:
    extensions = client.ApiextensionsV1Api(env.api)
    current = extensions.read_custom_resource_definition(body["metadata"]["name"])
    body = {**body, "metadata": {**body["metadata"], "resourceVersion": current.metadata.resource_version}}
    extensions.replace_custom_resource_definition(body["metadata"]["name"], body)


def workloads(env: Env, cloud: str) -> dict[str, dict[str, Any]]:
    """Each workload's pod template and generation, by resource/name."""
    selector = f"stackops.dev/cloud={cloud}"
    listed = {
        "deployments": env.apps.list_namespaced_deployment(NAMESPACE, label_selector=selector).items,
        "statefulsets": env.apps.list_namespaced_stateful_set(NAMESPACE, label_selector=selector).items,
        "daemonsets": env.apps.list_namespaced_daemon_set(NAMESPACE, label_selector=selector).items,
    }
    return {
        f"{resource}/{item.metadata.name}": {
            "template": env.api.sanitize_for_serialization(item.spec.template),
            "generation": item.metadata.generation,
        }
        for resource, items in listed.items()
        for item in items
    }


def mounted_files(env: Env, template: dict[str, Any]) -> dict[str, str]:
    """What the pod reads from Secrets: secret/key -> value (the inputs of its config hash)."""
    files: dict[str, str] = {}
    for volume in template["spec"].get("volumes", []):
        secret = volume.get("secret")
        if not secret:
            continue
        try:
            data = env.core.read_namespaced_secret(secret["secretName"], NAMESPACE).data or {}
        except ApiException:
            continue
        keys = [item["key"] for item in secret.get("items", [])] or list(data)
        files |= {f"{secret['secretName']}/{key}": data.get(key, "") for key in keys}
    return files


def test_a_newer_operator_adopts_an_older_ones_cloud_restarting_only_what_changed(
    env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    older = OlderOperator(env, tmp_path)
    env.operator.stop()
    replace_crd(env, older.crd)  # as the older release installed it
    older.start("-n", NAMESPACE)
    try:
        env.create(env.cloud_body("adopted"))
        env.wait_ready("adopted", timeout=300)
    finally:
        older.stop()
    before = workloads(env, "adopted")
    files_before = {key: mounted_files(env, w["template"]) for key, w in before.items()}
    assert before, older.log()[-3000:]
    since = env.cluster.audit_line_count()

    install_crds(env.api)  # the current CRD: the stored cloud must still load
    env.operator.start("-n", NAMESPACE)
    # converged by the current operator: it records the spec (the older one did not)
    wait_for(lambda: "specHashes" in status(env, "adopted"), "the current operator to converge", timeout=300)
    env.wait_ready("adopted", timeout=300)
    after = workloads(env, "adopted")
    changed, rolled, violations = [], [], []
    for key, old in before.items():
        new = after[key]
        old_annotations = old["template"]["metadata"].get("annotations", {})
        new_annotations = new["template"]["metadata"].get("annotations", {})
        without_hash = [
            {**t, "metadata": {**t["metadata"], "annotations": {**a, CONFIG_HASH_ANNOTATION: None}}}
            for t, a in ((old["template"], old_annotations), (new["template"], new_annotations))
        ]
        template_changed = without_hash[0] != without_hash[1]
        files_changed = sorted(
            k for k, v in mounted_files(env, new["template"]).items() if files_before[key].get(k) != v
        )
        hash_changed = old_annotations.get(CONFIG_HASH_ANNOTATION) != new_annotations.get(CONFIG_HASH_ANNOTATION)
        if new["generation"] != old["generation"]:
            rolled.append(key)
        if template_changed or hash_changed:
            what = [p for p in _differences(without_hash[0], without_hash[1])] + files_changed
            changed.append(f"{key}: {', '.join(what) or 'config hash only'}")
            if hash_changed and not template_changed and not files_changed:
                violations.append(f"{key}: a new config hash, though nothing it reads changed")
        elif new["generation"] != old["generation"]:
            violations.append(f"{key}: rolled, though its template is the same")
    with capsys.disabled():
        print("\nworkloads the newer operator changed:\n  " + "\n  ".join(changed or ["none"]))
        added = sorted(set(after) - set(before))
        print("workloads it added (services the older one did not have):\n  " + "\n  ".join(added or ["none"]))
    assert violations == []
    assert sorted(rolled) == sorted(c.split(":")[0] for c in changed)  # exactly the changed ones rolled
    unchanged = [k for k in before if k not in rolled]
    writes = {(r, n) for r, n in applied(env, since)}
    assert all((k.split("/")[0], k.split("/")[1]) not in writes for k in unchanged)
    remove(env, "adopted")


def _differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Dotted paths where two rendered templates differ (for the list of what changed)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for k in sorted(old.keys() | new.keys()) for d in _differences(old.get(k), new.get(k), f"{path}.{k}")]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True)) for d in _differences(a, b, f"{path}[{i}]")]
    return [] if old == new else [path.lstrip(".")]


# -- an upgrade of the example cloud ------------------------------------------------------------


def test_an_upgrade_of_the_example_cloud_runs_its_steps_in_order_and_ends_on_the_new_release(env: Env) -> None:
    deployed(env, "demo")
    upgrade = upgrade_plan(env, "demo")
    since = env.cluster.audit_line_count()
    env.patch_spec("demo", {"release": TARGET})
    seen: list[dict[str, Any]] = []

    def done() -> bool:
        current = status(env, "demo")
        if current.get("upgrade"):
            seen.append(current["upgrade"] | {"phase_": current.get("phase"), "release_": current.get("release")})
        return current.get("release") == TARGET and current.get("phase") == "Ready"

    wait_until(env, done, "the upgrade to finish", "demo")
    cloud = env.get("demo")
    assert cloud["status"]["release"] == TARGET and "upgrade" not in cloud["status"]
    assert {s["release"] for s in cloud["status"]["services"].values()} == {TARGET}

    # while it ran: Upgrading, still on the old release, n of N moving forward
    assert seen and all(s["release_"] == SOURCE for s in seen)
    assert {s["phase_"] for s in seen} <= {"Upgrading", "Deploying"}
    steps = [s["step"] for s in seen if s["phase"] == "Upgrading"]
    assert steps == sorted(steps) and {s["steps"] for s in seen} == {len(upgrade.steps)}

    # the order, from what the operator applied: pre-flight checks, then step by step
    position: dict[tuple[str, str], int] = {}
    for obj in upgrade.checks:
        position[(kind_of(obj).plural, obj["metadata"]["name"])] = -1
    for index, step in enumerate(upgrade.steps):
        for obj in step.objects:
            position.setdefault((kind_of(obj).plural, obj["metadata"]["name"]), index)
    writes = [w for w in applied(env, since) if w[0] in ("jobs", *WORKLOADS)]
    last = len(upgrade.steps) - 1
    order = [position.get(w, last) for w in writes]  # unknown: the final converge's Jobs
    finishing = order.index(last)
    # the final converge starts nova's and cinder's control planes once more (agents on the new
    # release), and nothing else: what it writes again is what their rolls marked
    marked = {
        (kind_of(o).plural, o["metadata"]["name"])
        for s in upgrade.steps
        for o in s.objects
        if AGENTS_RELEASE_ANNOTATION in o.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations", {})
    }
    again = {w for w in writes[finishing:] if w in position and w[0] in WORKLOADS}
    assert again == marked and {n.split("-")[1] for _, n in marked} == {"nova", "cinder"}, (again, marked)
    order = order[:finishing] + [last] * (len(order) - finishing)
    if order != sorted(order):
        pytest.fail(
            "applied out of plan order:\n" + "\n".join(f"{p}: {r}/{n}" for (r, n), p in zip(writes, order, strict=True))
        )
    jobs = upgrade_jobs(upgrade)
    assert [w[1] for w in writes if w[1] in jobs] == jobs  # every upgrade Job, once, in plan order
    rolled = [w for w in writes if w[0] in WORKLOADS]
    assert ("statefulsets", "demo-mariadb") in rolled and ("deployments", "demo-keystone-api") in rolled
    assert rolled.index(("statefulsets", "demo-mariadb")) < rolled.index(("deployments", "demo-keystone-api"))
    created = pods_created(env)
    assert all(created[job] == 1 for job in jobs), {job: created[job] for job in jobs}

    templates = workloads(env, "demo")
    assert not [
        k
        for k, w in templates.items()
        if AGENTS_RELEASE_ANNOTATION in (w["template"]["metadata"].get("annotations") or {})
    ]

    # every image on the new tag (the operator's own image runs only stackops Jobs)
    found = images(env, "demo")
    assert found and all(i.endswith(f":{TARGET}-ubuntu-noble") for s in found.values() for i in s), found

    # an Event for each step
    events = reasons(env, "demo")
    step_events = [m for r, m in events if r == "UpgradeStep"]
    assert len(step_events) == len(set(step_events)) == len(upgrade.steps) - 1, step_events
    assert {"UpgradeStarted", "PreflightPassed", "RollbackWindowClosed", "Upgraded"} <= {r for r, _ in events}

    # what only the upgrade needed is gone: its Jobs and their config Secrets
    def leftovers() -> list[str]:
        selector = "stackops.dev/cloud=demo,stackops.dev/upgrade"
        jobs = env.batch.list_namespaced_job(NAMESPACE, label_selector=selector).items
        secrets = env.core.list_namespaced_secret(NAMESPACE, label_selector=selector).items
        return [o.metadata.name for o in [*jobs, *secrets]]

    wait_for(lambda: not leftovers(), "the upgrade's Jobs and Secrets to be removed", timeout=120)

    # the way back is closed now, at the API server
    with pytest.raises(ApiException) as caught:
        env.patch_spec("demo", {"release": SOURCE})
    assert caught.value.status == 422 and "cannot be downgraded" in json.loads(caught.value.body)["message"]
    remove(env, "demo")


# -- faults ---------------------------------------------------------------------------------------


def test_an_operator_killed_in_each_phase_resumes_and_runs_each_migration_once(env: Env) -> None:
    deployed(env, "resume", SMALL)
    upgrade = upgrade_plan(env, "resume", SMALL)
    since = env.cluster.audit_line_count()
    env.patch_spec("resume", {"release": TARGET})
    phases = [
        ("the pre-flight: its first check Job", apply_of("jobs", "resume-keystone-upgrade-check-")),
        ("a migration Job: keystone db-expand", apply_of("jobs", "resume-keystone-db-expand-")),
        ("a rollout: keystone's API", apply_of("deployments", "resume-keystone-api")),
    ]
    for what, match in phases:
        kill_operator_after(env, since, what, match)
        upgrade_status = status(env, "resume").get("upgrade") or {}
        print(f"killed in {what}; status: step {upgrade_status.get('step')}/{upgrade_status.get('steps')}")
        env.operator.start("-n", NAMESPACE)
    env.wait_ready("resume", timeout=600)
    assert status(env, "resume")["release"] == TARGET

    jobs = upgrade_jobs(upgrade)
    applies = Counter(name for resource, name in applied(env, since) if resource == "jobs")
    created = pods_created(env)
    assert {job: (applies[job], created[job]) for job in jobs} == {job: (1, 1) for job in jobs}
    remove(env, "resume")


def test_a_failing_migration_stops_the_upgrade_naming_its_job_and_a_fix_resumes_it(env: Env) -> None:
    deployed(env, "failing", SMALL)
    upgrade = upgrade_plan(env, "failing", SMALL)
    [expand] = [n for n in upgrade_jobs(upgrade) if n.startswith("failing-glance-db-expand-")]
    since = env.cluster.audit_line_count()
    env.patch_spec("failing", {"release": TARGET})
    # mid-upgrade, glance's image breaks (kwok crash-loops it); glance has not started yet
    wait_for(lambda: any(apply_of("deployments", "failing-keystone-api")(e) for e in operator_requests(env, since)),
             "keystone's roll", timeout=300)  # fmt: skip
    broken = f"quay.io/openstack.kolla/glance-api{CRASH}"
    env.patch_spec("failing", {"services": {"glance": {"images": {"glance-api": broken}}}})

    wait_until(env, lambda: stopped(env, "failing"), "the upgrade to stop at glance db-expand", "failing", 300)
    current = status(env, "failing")
    assert current["phase"] == "Degraded" and current["release"] == SOURCE
    assert current["upgrade"]["service"] == "glance" and current["upgrade"]["current"] == "db-expand"
    degraded = env.condition("failing", "Degraded")
    assert degraded["reason"] == "UpgradeStepFailed" and f"job {expand} failed" in degraded["message"]
    assert env.condition("failing", "Ready")["message"] == degraded["message"]
    assert current["services"]["keystone"]["release"] == TARGET
    assert current["services"]["glance"]["phase"] == "Failed" and current["services"]["glance"]["release"] == SOURCE
    assert images(env, "failing")["failing-glance-api"] == {f"quay.io/openstack.kolla/glance-api:{SOURCE}-ubuntu-noble"}
    assert ("Warning", "UpgradeStepFailed") in {
        (e.type, e.reason)
        for e in env.core.list_namespaced_event(NAMESPACE, field_selector="involvedObject.name=failing").items
    }
    # keystone has contracted its database: the API server refuses to go back
    with pytest.raises(ApiException) as caught:
        env.patch_spec("failing", {"release": SOURCE})
    assert caught.value.status == 422

    env.patch_spec("failing", {"services": {"glance": {"images": None}}})  # the fix
    env.wait_ready("failing", timeout=600)
    assert status(env, "failing")["release"] == TARGET
    applies = Counter(name for resource, name in applied(env, since) if resource == "jobs")
    assert applies[expand] == 2  # the failed Job, and the one after the fix
    assert all(applies[job] == 1 for job in upgrade_jobs(upgrade) if job != expand)
    remove(env, "failing")


def test_going_back_before_any_contract_runs_the_old_release_again(env: Env) -> None:
    deployed(env, "back", SMALL)
    since = env.cluster.audit_line_count()
    env.patch_spec("back", {"release": TARGET})
    # the infrastructure rolls first; keystone's image breaks before its db-expand runs
    mariadb_roll = apply_of("statefulsets", "back-mariadb")
    wait_for(lambda: any(mariadb_roll(e) for e in operator_requests(env, since)), "MariaDB's roll", timeout=300)
    broken = f"quay.io/openstack.kolla/keystone{CRASH}"
    env.patch_spec("back", {"services": {"keystone": {"images": {"keystone": broken}}}})
    wait_until(env, lambda: stopped(env, "back"), "keystone db-expand to fail", "back", 300)
    current = status(env, "back")
    assert current["upgrade"]["rollbackTo"] == SOURCE and current["upgrade"]["current"] == "db-expand"
    assert any(i.endswith(f":{TARGET}-ubuntu-noble") for i in images(env, "back")["back-mariadb"])

    env.patch_spec("back", {"release": SOURCE, "services": {"keystone": {"images": None}}})  # the API server agrees
    env.wait_ready("back", timeout=600)
    current = status(env, "back")
    assert current["release"] == SOURCE and "upgrade" not in current
    found = images(env, "back")
    assert all(i.endswith(f":{SOURCE}-ubuntu-noble") for s in found.values() for i in s), found
    assert "UpgradeRolledBack" in {r for r, _ in reasons(env, "back")}
    remove(env, "back")
