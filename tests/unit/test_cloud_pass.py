"""The operator's core loop, pass by pass against the shared in-memory API: what a pass applies, when
it writes nothing, what pruning spares, how the status patch removes what went away, how the health
checks' verdicts reach the status, and what deleting a cloud keeps."""

from __future__ import annotations

import copy
from typing import Any

from stackops.health.monitor import DEGRADED, HEALTHY, CloudHealth, ServiceHealth
from stackops.kube.credentials_secret import credentials_secret_name
from stackops.reconcile.cloud_pass import write_health
from stackops.reconcile.teardown import tear_down
from stackops.render.naming import CLOUD_LABEL
from tests.support.passes import SMALL, UID, CloudPasses

SERVICE_LABEL = "app.kubernetes.io/name"


def deployed(**spec: Any) -> CloudPasses:
    c = CloudPasses({"release": "2026.1", **copy.deepcopy(SMALL), **spec})
    assert c.converge().current is None and c.status["phase"] == "Ready"
    c.kube.forget_writes()
    c.events.clear()
    return c


def services_applied(c: CloudPasses) -> set[str]:
    """The services whose objects the last pass applied."""
    found = set()
    for kind, name in c.kube.applied:
        labels = c.kube.objects[(kind, "openstack", name)]["metadata"].get("labels") or {}
        if labels.get(SERVICE_LABEL) and kind != "Secret":
            found.add(labels[SERVICE_LABEL])
    return found


def test_independent_services_are_applied_side_by_side_while_their_dependents_wait() -> None:
    c = CloudPasses({"release": "2026.1", **copy.deepcopy(SMALL)})
    c.reconcile()
    # nothing depends on another among the infrastructure: all of it in the first pass
    assert services_applied(c) == {"mariadb", "memcached", "rabbitmq"}
    assert {name: entry["phase"] for name, entry in c.status["services"].items()} == {
        "mariadb": "Deploying",
        "memcached": "Deploying",
        "rabbitmq": "Deploying",
        "keystone": "Pending",
        "placement": "Pending",
        "glance": "Pending",
    }
    # placement and glance need only keystone: they start in the same pass, once it is ready
    passes: list[set[str]] = []
    while c.reconcile().current is not None:
        passes.append(services_applied(c))
        c.kube.forget_writes()
        c.kube.settle()
    first = next(services for services in passes if services & {"placement", "glance"})
    assert {"placement", "glance"} <= first and "keystone" not in first


def test_a_converged_cloud_gets_a_pass_that_writes_nothing() -> None:
    c = deployed()
    assert c.reconcile().current is None
    assert c.kube.writes() == 0 and c.events == []


def db_sync_jobs(c: CloudPasses) -> set[str]:
    return {name for (kind, _, name) in c.kube.objects if kind == "Job" and name.startswith("demo-keystone-db-sync")}


def test_pruning_waits_for_a_superseded_job_that_still_runs() -> None:
    c = deployed()
    (old,) = db_sync_jobs(c)
    c.spec["services"] = {**c.spec["services"], "keystone": {"config": {"DEFAULT": {"debug": True}}}}
    c.kube.objects[("Job", "openstack", old)]["status"] = {}  # still migrating
    c.reconcile()
    new = db_sync_jobs(c)
    assert old in new and len(new) == 2  # the new Job beside the old one, which is not killed halfway
    assert ("Job", old) not in c.kube.deleted
    c.kube.settle()  # the old Job finishes (and the new one)
    c.reconcile()
    assert ("Job", old) in c.kube.deleted


def test_what_disappears_from_the_status_is_nulled_in_the_patch() -> None:
    c = deployed()
    assert "glance" in c.status["services"] and "image" in c.status["endpoints"]
    c.spec["services"] = {**c.spec["services"], "glance": {"enabled": False}}
    # keystone's Job removing what glance registered runs, while glance's objects are pruned
    current = c.reconcile().current
    assert current is not None and current.name == "keystone-deregistration"
    c.kube.settle()
    assert c.reconcile().current is None
    first, second = [p for (_, _, kind, p) in c.kube.patches if kind == "status"]
    # a merge patch merges maps: only an explicit null removes a key (endpoints once converged)
    assert first["status"]["services"]["glance"] is None and second["status"]["endpoints"]["image"] is None
    assert "glance" not in c.status["services"] and "image" not in c.status["endpoints"]
    # everything of glance is gone but its volume: data outlives what uses it
    assert [(kind, name) for (kind, _, name) in c.kube.objects if name.startswith("demo-glance")] == [
        ("PersistentVolumeClaim", "demo-glance-images")
    ]


def test_a_health_verdict_between_passes_goes_through_the_same_writer_and_the_next_pass_keeps_it() -> None:
    c = deployed()
    verdict = CloudHealth(
        "openstack",
        "demo",
        {name: ServiceHealth(HEALTHY) for name in c.status["services"]}
        | {"glance": ServiceHealth(DEGRADED, "internal endpoint: connection refused")},
    )
    c.state.health.publish(UID, verdict)
    write_health(c.state, c.stored, UID, verdict)
    assert c.status["phase"] == "Degraded" and c.status["services"]["glance"]["health"] == DEGRADED
    assert c.condition("Degraded")["reason"] == "ServiceUnhealthy"
    c.kube.forget_writes()
    c.reconcile()
    assert c.kube.writes() == 0  # the pass reads the same verdict: the status it builds is the one written


def test_deletion_removes_what_the_cloud_owns_and_its_data_only_under_delete() -> None:
    for policy, kept in (("Retain", True), ("Delete", False)):
        c = deployed(deletionPolicy=policy)
        claim = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data-demo-mariadb-0", "namespace": "openstack", "labels": {CLOUD_LABEL: "demo"}},
            "spec": {},
        }
        c.kube.objects[("PersistentVolumeClaim", "openstack", "data-demo-mariadb-0")] = claim  # the StatefulSet's
        data = {("Secret", credentials_secret_name("demo"))}
        data |= {(kind, name) for (kind, _, name) in c.kube.objects if kind == "PersistentVolumeClaim"}
        assert len(data) == 3  # the credentials, glance's images and the database's volume
        remaining = tear_down(c.state, c.stored, UID)
        assert remaining and not data & set(c.kube.deleted)  # data waits until everything owned is gone
        assert tear_down(c.state, c.stored, UID) == []
        left = {(kind, name) for (kind, _, name) in c.kube.objects}
        assert left - data == {("OpenStackCloud", "demo")}
        assert (left & data) == (data if kept else set()), policy
