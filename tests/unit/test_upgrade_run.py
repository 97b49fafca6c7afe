"""The upgrade runner pass by pass, against an in-memory API (the real control plane is in
tests/cluster/test_upgrade.py): order, resuming from any status, exactly-once Jobs, failures, the
rollback window and refusals."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest

from stackops.api.models import OpenStackCloud
from stackops.kube.client import Obj
from stackops.kube.kinds import Kind
from stackops.reconcile.status import build_status
from stackops.reconcile.upgrade_status import release_status, upgrade_transitions
from stackops.upgrade.plan import plan_upgrade
from stackops.upgrade.record import spec_hashes
from stackops.upgrade.run import PREFLIGHT_FAILED, REFUSED, STEP_FAILED, ReleaseOutcome, reconcile_release
from tests.conftest import cloud

UID = "8d5c0f5e-0000-4000-8000-000000000001"
# The cloud of examples/minimal.yaml before compute, networking and the rest: its passes stay quick.
SMALL = {"services": {name: {"enabled": False} for name in ("nova", "neutron", "cinder", "horizon", "heat")}}
NOW = "2026-11-22T00:00:00Z"


class FakeKube:
    """Objects by (kind, namespace, name); what a cluster does (Jobs complete, pods roll) happens only
    in settle(), so a test decides what is finished when."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.applied: list[tuple[str, str]] = []
        self.deleted: list[tuple[str, str]] = []
        self.spec_release: str | None = None  # what a fresh read of the cloud shows

    def get(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        if kind.kind == "OpenStackCloud":
            return {"spec": {"release": self.spec_release}}
        found = self.objects.get((kind.kind, namespace, name))
        return copy.deepcopy(found) if found else None

    def list(self, kind: Kind, namespace: str, selector: str = "", *, fields: str = "", limit: int = 0) -> list[Obj]:
        return [copy.deepcopy(o) for (k, ns, _), o in self.objects.items() if k == kind.kind and ns == namespace]

    def apply(self, kind: Kind, obj: Obj) -> Obj:
        key = (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])
        old = self.objects.get(key)
        stored = copy.deepcopy(obj)
        generation = (old or {}).get("metadata", {}).get("generation", 0)
        changed = old is None or old.get("spec") != obj.get("spec")
        stored["metadata"]["generation"] = generation + 1 if changed else generation
        stored["status"] = {} if changed else (old or {}).get("status", {})
        self.objects[key] = stored
        self.applied.append((obj["kind"], obj["metadata"]["name"]))
        return copy.deepcopy(stored)

    def create(self, kind: Kind, obj: Obj) -> Obj:
        return self.apply(kind, {**obj, "kind": kind.kind})

    def merge_patch(self, kind: Kind, namespace: str, name: str, patch: Obj, subresource: str | None = None) -> Obj:
        obj = self.objects[(kind.kind, namespace, name)]
        for key, value in patch.items():
            if isinstance(value, dict):
                obj.setdefault(key, {}).update({k: v for k, v in value.items() if v is not None})
            else:
                obj[key] = value
        return copy.deepcopy(obj)

    def delete(self, kind: Kind, namespace: str, name: str, propagation: str = "Background") -> bool:
        self.deleted.append((kind.kind, name))
        return self.objects.pop((kind.kind, namespace, name), None) is not None

    # what the cluster does
    def settle(self, fail: str | None = None) -> None:
        """Every Job completes (a Job whose name starts with `fail` fails), every workload rolls out."""
        for (kind, _, name), obj in self.objects.items():
            if kind == "Job" and not obj["status"]:
                failed = fail is not None and name.startswith(fail)
                condition = {"type": "Failed" if failed else "Complete", "status": "True", "reason": "BackoffLimit"}
                obj["status"] = {"conditions": [condition]}
            elif kind in ("Deployment", "StatefulSet"):
                replicas = obj["spec"].get("replicas", 1)
                obj["status"] = {
                    "observedGeneration": obj["metadata"]["generation"],
                    "readyReplicas": replicas,
                    "updatedReplicas": replicas,
                    "availableReplicas": replicas,
                }
            elif kind == "DaemonSet":
                obj["status"] = {"observedGeneration": obj["metadata"]["generation"], "desiredNumberScheduled": 0}


class Cloud:
    """One cloud through its passes: the status each pass writes is what the next one reads."""

    def __init__(self, release: str = "2025.2", **spec: Any) -> None:
        self.kube = FakeKube()
        self.spec: dict[str, Any] = {"release": release, **copy.deepcopy(SMALL), **spec}
        self.status: dict[str, Any] = {}
        self.events: list[str] = []

    @property
    def cloud(self) -> OpenStackCloud:
        return cloud(self.spec)

    def reconcile(self, *, record: bool = True) -> ReleaseOutcome:
        """One pass; `record=False` is an operator killed before it wrote the status."""
        self.kube.spec_release = self.spec["release"]
        result = reconcile_release(self.kube, self.cloud, UID, self.status, self.spec)  # type: ignore[arg-type]
        status = build_status(self.status, 1, self.spec["release"], NOW, outcome=result.outcome)
        status = release_status(status, self.status, result, self.spec)
        if record:
            self.events += [e.reason for e in upgrade_transitions(self.status, status)]
            self.status = status
        return result

    def converge(self, limit: int = 60, fail: str | None = None) -> ReleaseOutcome:
        for _ in range(limit):
            result = self.reconcile()
            if result.outcome.done or (result.outcome.current and result.outcome.current.state == "Failed"):
                return result
            self.kube.settle(fail)
        raise AssertionError(f"no end after {limit} passes: {self.status}")


def deployed(release: str = "2025.2", **spec: Any) -> Cloud:
    c = Cloud(release, **spec)
    assert c.converge().outcome.done
    assert c.status["release"] == release and c.status["phase"] == "Ready"
    c.kube.applied.clear()
    return c


def upgrade_jobs(c: Cloud) -> list[str]:
    return [name for kind, name in c.kube.applied if (kind == "Job" and "-db-" in name) or "upgrade-check" in name]


def test_an_upgrade_runs_every_step_in_plan_order_and_each_job_once() -> None:
    c = deployed()
    c.spec["release"] = "2026.1"
    result = c.converge()
    assert result.outcome.done and result.upgrade is not None
    assert c.status["release"] == "2026.1" and c.status["phase"] == "Ready" and "upgrade" not in c.status
    upgrade = plan_upgrade(c.cloud, "2025.2", _credentials(c))
    order = {o["metadata"]["name"]: i for i, s in enumerate(upgrade.steps) for o in s.objects if o["kind"] == "Job"}
    jobs = [name for kind, name in c.kube.applied if kind == "Job" and name in order]
    assert jobs == sorted(order, key=order.__getitem__)  # every upgrade Job, once, in order
    checks = [o["metadata"]["name"] for o in upgrade.checks if o["kind"] == "Job"]
    applied = [name for _, name in c.kube.applied]
    assert all(applied.index(check) < applied.index(jobs[0]) for check in checks)  # pre-flight first
    assert Counter(c.events)["UpgradeStep"] == len(upgrade.steps) - 1
    assert c.events[0] == "UpgradeStarted" and c.events[1] == "PreflightPassed" and c.events[-1] == "Upgraded"
    images = {
        ctr["image"]
        for o in c.kube.objects.values()
        if o["kind"] in ("Deployment", "StatefulSet")
        for ctr in o["spec"]["template"]["spec"]["containers"]
    }
    assert images and all(":2026.1-" in image for image in images), images


def _credentials(c: Cloud) -> Any:
    from stackops.kube.engine import cloud_credentials

    return cloud_credentials(c.kube, c.cloud)  # type: ignore[arg-type]


@pytest.mark.parametrize("stop_after", [1, 3, 6, 12, 16])
def test_a_killed_operator_resumes_without_repeating_or_skipping(stop_after: int) -> None:
    c = deployed()
    c.spec["release"] = "2026.1"
    for _ in range(stop_after):
        c.reconcile()
        c.kube.settle()
    c.reconcile(record=False)  # killed before its status was written: the Jobs it made stay
    c.kube.settle()
    assert c.converge().outcome.done
    jobs = Counter(name for kind, name in c.kube.applied if kind == "Job")
    upgrade = plan_upgrade(c.cloud, "2025.2", _credentials(c))
    for step in upgrade.steps:
        for obj in step.objects:
            if obj["kind"] == "Job":
                assert jobs[obj["metadata"]["name"]] == 1, step.id


def test_a_failing_step_stops_the_upgrade_naming_its_job_and_deleting_it_resumes() -> None:
    c = deployed()
    c.spec["release"] = "2026.1"
    result = c.converge(fail="demo-glance-db-expand")
    current = result.outcome.current
    assert current is not None and current.state == "Failed"
    assert c.status["phase"] == "Degraded" and c.status["release"] == "2025.2"
    degraded = next(x for x in c.status["conditions"] if x["type"] == "Degraded")
    assert degraded["reason"] == STEP_FAILED
    assert "demo-glance-db-expand-" in degraded["message"] and "glance db-expand" in degraded["message"]
    assert c.status["services"]["keystone"]["release"] == "2026.1"
    assert c.status["services"]["glance"] == c.status["services"]["glance"] | {"phase": "Failed", "release": "2025.2"}
    glance = c.kube.get(Kind("apps/v1", "Deployment", "deployments"), "openstack", "demo-glance-api")
    assert glance is not None and ":2025.2-" in glance["spec"]["template"]["spec"]["containers"][0]["image"]
    assert c.reconcile().outcome.current.state == "Failed"  # type: ignore[union-attr]  (no retry loop)
    # the fix: whatever made it fail is repaired, and the failed Job deleted
    failed = next(k for k in c.kube.objects if k[0] == "Job" and k[2].startswith("demo-glance-db-expand"))
    del c.kube.objects[failed]
    assert c.converge().outcome.done and c.status["release"] == "2026.1"
    assert Counter(name for kind, name in c.kube.applied if kind == "Job")[failed[2]] == 2


def test_a_failed_job_whose_spec_changed_is_run_again() -> None:
    c = deployed()
    c.spec["release"] = "2026.1"
    c.converge(fail="demo-glance-db-expand")
    c.spec["services"]["glance"] = {"config": {"DEFAULT": {"debug": True}}}  # a fix, mid-upgrade
    result = c.reconcile()
    assert ("Job", next(n for k, n in c.kube.deleted if n.startswith("demo-glance-db-expand"))) in c.kube.deleted
    assert result.outcome.current is not None and "running it again" in result.outcome.current.message
    assert c.converge().outcome.done


def test_the_rollback_window_closes_in_status_before_the_first_contract_job() -> None:
    c = deployed()
    c.spec["release"] = "2026.1"
    c.reconcile()
    while "rollbackTo" in c.status["upgrade"]:
        assert c.status["upgrade"]["rollbackTo"] == "2025.2"
        c.kube.settle()
        c.reconcile()
    # the pass that closed the window stopped there: keystone rolled, nothing contracted yet
    assert "keystone/roll" in c.status["upgrade"]["completed"]
    assert [n for k, n in c.kube.applied if "db-contract" in n] == []
    assert "RollbackWindowClosed" in c.events
    c.kube.spec_release = "2025.2"  # a rollback the API server accepted just before the window closed
    result = reconcile_release(c.kube, c.cloud, UID, c.status, c.spec)  # type: ignore[arg-type]
    assert [n for k, n in c.kube.applied if "db-contract" in n] == [] and not result.outcome.done
    c.reconcile()
    assert [n for k, n in c.kube.applied if "db-contract" in n]


def test_going_back_before_any_contract_converges_the_old_release_again() -> None:
    c = deployed()
    c.spec["release"] = "2026.1"
    for _ in range(4):
        c.reconcile()
        c.kube.settle()
    memcached = ("StatefulSet", "openstack", "demo-memcached")
    assert ":2026.1-" in c.kube.objects[memcached]["spec"]["template"]["spec"]["containers"][0]["image"]
    c.spec["release"] = "2025.2"
    assert c.converge().outcome.done
    assert c.status["release"] == "2025.2" and "upgrade" not in c.status and "UpgradeRolledBack" in c.events
    assert ":2025.2-" in c.kube.objects[memcached]["spec"]["template"]["spec"]["containers"][0]["image"]


def test_going_back_after_a_contract_is_refused() -> None:
    c = deployed()
    c.spec["release"] = "2026.1"
    while "keystone/db-contract" not in (c.status.get("upgrade") or {}).get("completed", []):
        c.reconcile()
        c.kube.settle()
    c.kube.applied.clear()
    c.spec["release"] = "2025.2"  # past the API server's CEL rule, e.g. with an older CRD installed
    result = c.reconcile()
    assert result.reason == REFUSED and c.kube.applied == []
    assert "has contracted databases" in next(x for x in c.status["conditions"] if x["type"] == "Ready")["message"]
    c.spec["release"] = "2026.1"
    assert c.converge().outcome.done and c.status["release"] == "2026.1"


def test_other_changes_riding_along_are_refused_before_anything_changes() -> None:
    c = deployed()
    assert c.status["specHashes"] == spec_hashes(c.spec)
    c.spec["release"] = "2026.1"
    c.spec["services"]["keystone"] = {"replicas": 2}
    result = c.reconcile()
    assert result.reason == PREFLIGHT_FAILED and c.kube.applied == []
    message = next(x for x in c.status["conditions"] if x["type"] == "Degraded")["message"]
    assert "spec.services.keystone changed along with spec.release" in message
    assert c.status["upgrade"]["rollbackTo"] == "2025.2" and c.status["phase"] == "Degraded"
    del c.spec["services"]["keystone"]
    assert c.converge().outcome.done and c.status["release"] == "2026.1"


def test_a_skip_past_the_deployed_release_is_refused() -> None:
    c = deployed("2025.2")
    c.spec["release"] = "2026.2"
    result = c.reconcile()
    assert result.reason == PREFLIGHT_FAILED and c.kube.applied == []
    assert "skips a release" in (result.outcome.current.message if result.outcome.current else "")


def test_a_new_target_is_refused_once_the_upgrade_changed_something() -> None:
    c = deployed("2025.1")
    c.spec["release"] = "2025.2"
    for _ in range(4):
        c.reconcile()
        c.kube.settle()
    assert c.status["upgrade"]["phase"] == "Upgrading"
    c.spec["release"] = "2026.1"
    result = c.reconcile()
    assert result.reason == REFUSED
    assert "the upgrade to 2025.2 is under way" in (result.outcome.current.message if result.outcome.current else "")


def test_status_shows_progress_as_n_of_m_and_the_release_of_each_service() -> None:
    c = deployed()
    c.spec["release"] = "2026.1"
    seen = []
    while True:
        result = c.reconcile()
        upgrade = c.status.get("upgrade")
        if upgrade is None:
            break
        seen.append((upgrade["step"], upgrade["steps"], upgrade["service"], upgrade["current"]))
        if upgrade["phase"] == "Upgrading" and upgrade["step"]:
            assert c.status["phase"] == "Upgrading" and c.status["release"] == "2025.2"
            progressing = next(x for x in c.status["conditions"] if x["type"] == "Progressing")
            assert (
                progressing["reason"] == "Upgrading"
                and f"{upgrade['step']}/{upgrade['steps']}" in (progressing["message"])
            )
        c.kube.settle()
        assert not result.outcome.done
    steps = [s for s, *_ in seen]
    assert steps == sorted(steps) and seen[-1][0] == seen[-1][1]
    assert ("keystone", "db-expand") in {(s, n) for *_, s, n in seen}


def test_an_empty_record_is_a_record_a_spec_of_only_a_release_is_compared_with() -> None:
    c = deployed()
    c.status["specHashes"] = {}  # as recorded for examples/minimal.yaml: every section defaulted
    c.spec["release"] = "2026.1"
    assert c.reconcile().reason == PREFLIGHT_FAILED
    message = next(x for x in c.status["conditions"] if x["type"] == "Ready")["message"]
    assert "spec.services.nova" in message and "changed along with spec.release" in message


def test_a_service_starts_its_upgrade_only_while_its_health_checks_pass() -> None:
    c = deployed()
    c.status["services"]["glance"] |= {"health": "Degraded", "message": "job demo-glance-x failed"}
    c.spec["release"] = "2026.1"
    for _ in range(40):
        result = c.reconcile()
        c.kube.settle()
        current = result.outcome.current
        if current is not None and "glance" in current.message:
            break
    assert current is not None and current.state == "Waiting"
    assert "glance db-expand: waiting for glance to be healthy: job demo-glance-x failed" in current.message
    assert c.status["upgrade"]["service"] == "placement"  # glance has not started
    assert not [n for k, n in c.kube.applied if "glance-db-expand" in n]
    c.status["services"]["glance"] |= {"health": "Healthy", "message": ""}  # the health checks' next round
    assert c.converge().outcome.done and c.status["release"] == "2026.1"


def test_a_started_service_is_not_held_back_by_what_its_own_failing_step_does_to_its_health() -> None:
    c = deployed()
    c.spec["release"] = "2026.1"
    c.converge(fail="demo-glance-db-expand")
    c.status["services"]["glance"] |= {"health": "Degraded", "message": "job demo-glance-db-expand-x failed"}
    result = c.reconcile()
    assert result.outcome.current is not None and result.outcome.current.state == "Failed"
    assert "job demo-glance-db-expand-" in result.outcome.current.message
    c.spec["services"]["glance"] = {"config": {"DEFAULT": {"debug": True}}}  # the fix
    assert c.converge().outcome.done
