"""The upgrade phase pass by pass, through the operator's own pass against the shared in-memory API
(the real control plane is in tests/cluster/test_upgrade.py): order, resuming from any status,
exactly-once Jobs, failures, the rollback window and refusals."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest

from stackops.credentials import Credentials
from stackops.kube.engine import cloud_credentials
from stackops.kube.kinds import Kind
from stackops.upgrade.plan import plan_upgrade
from stackops.upgrade.record import spec_hashes
from stackops.upgrade.run import PREFLIGHT_FAILED, REFUSED, STEP_FAILED
from tests.support.passes import SMALL, CloudPasses

UPGRADE_EVENTS = {
    "UpgradeStarted",
    "PreflightPassed",
    "UpgradeStep",
    "RollbackWindowClosed",
    "Upgraded",
    "UpgradeRolledBack",
}


class Cloud(CloudPasses):
    def __init__(self, release: str = "2025.2", **spec: Any) -> None:
        super().__init__({"release": release, **copy.deepcopy(SMALL), **spec})

    @property
    def upgrade_events(self) -> list[str]:
        return [reason for reason in self.reasons() if reason in UPGRADE_EVENTS]

    def killed_before_the_status(self) -> None:
        """A pass whose operator dies before it writes the status: the Jobs it made stay."""
        self.kube.refuse_status = True
        with pytest.raises(ConnectionResetError):
            self.reconcile()
        self.kube.refuse_status = False


def deployed(release: str = "2025.2", **spec: Any) -> Cloud:
    c = Cloud(release, **spec)
    assert c.converge().current is None
    assert c.status["release"] == release and c.status["phase"] == "Ready"
    c.kube.forget_writes()
    c.events.clear()
    return c


def test_an_upgrade_runs_every_step_in_plan_order_and_each_job_once() -> None:
    c = deployed()
    c.spec["release"] = "2026.1"
    assert c.converge().current is None
    assert c.status["release"] == "2026.1" and c.status["phase"] == "Ready" and "upgrade" not in c.status
    upgrade = plan_upgrade(c.cloud, "2025.2", _credentials(c))
    order = {o["metadata"]["name"]: i for i, s in enumerate(upgrade.steps) for o in s.objects if o["kind"] == "Job"}
    jobs = [name for kind, name in c.kube.applied if kind == "Job" and name in order]
    assert jobs == sorted(order, key=order.__getitem__)  # every upgrade Job, once, in order
    checks = [o["metadata"]["name"] for o in upgrade.checks if o["kind"] == "Job"]
    applied = [name for _, name in c.kube.applied]
    assert all(applied.index(check) < applied.index(jobs[0]) for check in checks)  # pre-flight first
    events = c.upgrade_events
    assert Counter(events)["UpgradeStep"] == len(upgrade.steps) - 1
    assert events[0] == "UpgradeStarted" and events[1] == "PreflightPassed" and events[-1] == "Upgraded"
    images = {
        ctr["image"]
        for o in c.kube.objects.values()
        if o["kind"] in ("Deployment", "StatefulSet")
        for ctr in o["spec"]["template"]["spec"]["containers"]
    }
    assert images and all(":2026.1-" in image for image in images), images


def _credentials(c: Cloud) -> Credentials:
    return cloud_credentials(c.kube, c.cloud, "uid-of-the-cloud")  # no issuer: the uid owns nothing


@pytest.mark.parametrize("stop_after", [1, 3, 6, 12, 16])
def test_a_killed_operator_resumes_without_repeating_or_skipping(stop_after: int) -> None:
    c = deployed()
    c.spec["release"] = "2026.1"
    for _ in range(stop_after):
        c.reconcile()
        c.kube.settle()
    c.killed_before_the_status()
    c.kube.settle()
    assert c.converge().current is None
    jobs = Counter(name for kind, name in c.kube.applied if kind == "Job")
    upgrade = plan_upgrade(c.cloud, "2025.2", _credentials(c))
    for step in upgrade.steps:
        for obj in step.objects:
            if obj["kind"] == "Job":
                assert jobs[obj["metadata"]["name"]] == 1, step.id


def test_a_failing_step_stops_the_upgrade_naming_its_job_and_deleting_it_resumes() -> None:
    c = deployed()
    c.spec["release"] = "2026.1"
    current = c.converge(fail="demo-glance-db-expand").current
    assert current is not None and current.state == "Failed"
    assert c.status["phase"] == "Degraded" and c.status["release"] == "2025.2"
    degraded = c.condition("Degraded")
    assert degraded["reason"] == STEP_FAILED
    assert "demo-glance-db-expand-" in degraded["message"] and "glance db-expand" in degraded["message"]
    assert c.status["services"]["keystone"]["release"] == "2026.1"
    assert c.status["services"]["glance"] == c.status["services"]["glance"] | {"phase": "Failed", "release": "2025.2"}
    glance = c.kube.get(Kind("apps/v1", "Deployment", "deployments"), "openstack", "demo-glance-api")
    assert glance is not None and ":2025.2-" in glance["spec"]["template"]["spec"]["containers"][0]["image"]
    current = c.reconcile().current
    assert current is not None and current.state == "Failed"  # no retry loop
    # the fix: whatever made it fail is repaired, and the failed Job deleted
    failed = next(k for k in c.kube.objects if k[0] == "Job" and k[2].startswith("demo-glance-db-expand"))
    del c.kube.objects[failed]
    assert c.converge().current is None and c.status["release"] == "2026.1"
    assert Counter(name for kind, name in c.kube.applied if kind == "Job")[failed[2]] == 2


def test_a_failed_job_whose_spec_changed_is_run_again() -> None:
    c = deployed()
    c.spec["release"] = "2026.1"
    c.converge(fail="demo-glance-db-expand")
    c.spec["services"]["glance"] = {"config": {"DEFAULT": {"debug": True}}}  # a fix, mid-upgrade
    current = c.reconcile().current
    assert ("Job", next(n for k, n in c.kube.deleted if n.startswith("demo-glance-db-expand"))) in c.kube.deleted
    assert current is not None and "running it again" in current.message
    assert c.converge().current is None


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
    assert "RollbackWindowClosed" in c.upgrade_events
    c.stored["spec"]["release"] = "2025.2"  # a rollback the API server accepted just before the window closed
    result = c.reconcile(store_spec=False)
    assert [n for k, n in c.kube.applied if "db-contract" in n] == [] and result.current is not None
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
    assert c.converge().current is None
    assert c.status["release"] == "2025.2" and "upgrade" not in c.status and "UpgradeRolledBack" in c.upgrade_events
    assert ":2025.2-" in c.kube.objects[memcached]["spec"]["template"]["spec"]["containers"][0]["image"]


def test_going_back_after_a_contract_is_refused() -> None:
    c = deployed()
    c.spec["release"] = "2026.1"
    while "keystone/db-contract" not in (c.status.get("upgrade") or {}).get("completed", []):
        c.reconcile()
        c.kube.settle()
    c.kube.forget_writes()
    c.spec["release"] = "2025.2"  # past the API server's CEL rule, e.g. with an older CRD installed
    c.reconcile()
    assert c.condition("Degraded")["reason"] == REFUSED and c.kube.applied == []
    assert "has contracted databases" in c.condition("Ready")["message"]
    c.spec["release"] = "2026.1"
    assert c.converge().current is None and c.status["release"] == "2026.1"


def test_other_changes_riding_along_are_refused_before_anything_changes() -> None:
    c = deployed()
    assert c.status["specHashes"] == spec_hashes(c.spec)
    c.spec["release"] = "2026.1"
    c.spec["services"]["keystone"] = {"replicas": 2}
    c.reconcile()
    assert c.condition("Degraded")["reason"] == PREFLIGHT_FAILED and c.kube.applied == []
    assert "spec.services.keystone changed along with spec.release" in c.condition("Degraded")["message"]
    assert c.status["upgrade"]["rollbackTo"] == "2025.2" and c.status["phase"] == "Degraded"
    del c.spec["services"]["keystone"]
    assert c.converge().current is None and c.status["release"] == "2026.1"


def test_a_skip_past_the_deployed_release_is_refused() -> None:
    c = deployed("2025.2")
    c.spec["release"] = "2026.2"
    current = c.reconcile().current
    assert c.condition("Degraded")["reason"] == PREFLIGHT_FAILED and c.kube.applied == []
    assert "skips a release" in (current.message if current else "")


def test_a_new_target_is_refused_once_the_upgrade_changed_something() -> None:
    c = deployed("2025.1")
    c.spec["release"] = "2025.2"
    for _ in range(4):
        c.reconcile()
        c.kube.settle()
    assert c.status["upgrade"]["phase"] == "Upgrading"
    c.spec["release"] = "2026.1"
    current = c.reconcile().current
    assert c.condition("Degraded")["reason"] == REFUSED
    assert "the upgrade to 2025.2 is under way" in (current.message if current else "")


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
            progressing = c.condition("Progressing")
            assert (
                progressing["reason"] == "Upgrading"
                and f"{upgrade['step']}/{upgrade['steps']}" in (progressing["message"])
            )
        c.kube.settle()
        assert result.current is not None
    steps = [s for s, *_ in seen]
    assert steps == sorted(steps) and seen[-1][0] == seen[-1][1]
    assert ("keystone", "db-expand") in {(s, n) for *_, s, n in seen}


def test_an_empty_record_is_a_record_a_spec_of_only_a_release_is_compared_with() -> None:
    c = deployed()
    c.status["specHashes"] = {}  # as recorded for examples/minimal.yaml: every section defaulted
    c.spec["release"] = "2026.1"
    c.reconcile()
    assert c.condition("Degraded")["reason"] == PREFLIGHT_FAILED
    message = c.condition("Ready")["message"]
    assert "spec.services.nova" in message and "changed along with spec.release" in message


def test_a_service_starts_its_upgrade_only_while_its_health_checks_pass() -> None:
    c = deployed()
    c.status["services"]["glance"] |= {"health": "Degraded", "message": "job demo-glance-x failed"}
    c.spec["release"] = "2026.1"
    for _ in range(40):
        current = c.reconcile().current
        c.kube.settle()
        if current is not None and "glance" in current.message:
            break
    assert current is not None and current.state == "Waiting"
    assert "glance db-expand: waiting for glance to be healthy: job demo-glance-x failed" in current.message
    assert c.status["upgrade"]["service"] == "placement"  # glance has not started
    assert not [n for k, n in c.kube.applied if "glance-db-expand" in n]
    c.status["services"]["glance"] |= {"health": "Healthy", "message": ""}  # the health checks' next round
    assert c.converge().current is None and c.status["release"] == "2026.1"


def test_a_started_service_is_not_held_back_by_what_its_own_failing_step_does_to_its_health() -> None:
    c = deployed()
    c.spec["release"] = "2026.1"
    c.converge(fail="demo-glance-db-expand")
    c.status["services"]["glance"] |= {"health": "Degraded", "message": "job demo-glance-db-expand-x failed"}
    current = c.reconcile().current
    assert current is not None and current.state == "Failed"
    assert "job demo-glance-db-expand-" in current.message
    c.spec["services"]["glance"] = {"config": {"DEFAULT": {"debug": True}}}  # the fix
    assert c.converge().current is None
