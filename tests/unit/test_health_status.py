"""How health verdicts enter a cloud's status: per-service health, the Healthy condition, Ready
mirroring the worst, and the same status whether a reconcile or a health round writes it."""

from __future__ import annotations

from typing import Any

from stackops.health.monitor import DEGRADED, HEALTHY, CloudHealth, ServiceHealth
from stackops.kube.engine import Outcome, StepState
from tests.support.status import events_between, status_of, with_verdict

NOW, LATER, LATEST = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z", "2026-01-01T00:10:00Z"
DOWN = "internal endpoint http://demo-placement-api.openstack.svc:8778: connection refused"


def converged() -> Outcome:
    return Outcome(
        steps=[StepState("keystone-api", "keystone", "Ready"), StepState("placement-api", "placement", "Ready")],
        replicas={"keystone": (1, 1), "placement": (1, 1)},
    )


def verdict(placement: ServiceHealth, note: str = "") -> CloudHealth:
    return CloudHealth("openstack", "demo", {"keystone": ServiceHealth(HEALTHY), "placement": placement}, (), note)


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def test_a_failing_check_degrades_the_cloud_and_ready_names_the_service() -> None:
    healthy = status_of(None, 2, "2026.1", NOW, outcome=converged(), health=verdict(ServiceHealth(HEALTHY)))
    assert healthy["phase"] == "Ready"
    assert conditions(healthy)["Healthy"]["status"] == "True"
    assert healthy["services"]["placement"]["health"] == HEALTHY

    degraded = with_verdict(healthy, verdict(ServiceHealth(DEGRADED, DOWN)), healthy, LATER)
    found = conditions(degraded)
    assert degraded["phase"] == "Degraded"
    assert found["Healthy"] == {
        "type": "Healthy",
        "status": "False",
        "reason": "ServiceUnhealthy",
        "message": f"placement: {DOWN}",
        "observedGeneration": 2,
        "lastTransitionTime": LATER,
    }
    assert found["Ready"]["status"] == "False" and found["Ready"]["message"] == f"placement: {DOWN}"
    assert found["Degraded"]["reason"] == "ServiceUnhealthy"
    assert degraded["services"]["placement"] == {
        "phase": "Ready",
        "message": DOWN,
        "ready": "1/1",
        "release": "2026.1",
        "health": DEGRADED,
    }
    assert degraded["services"]["keystone"]["health"] == HEALTHY
    # the per-service Degraded Event comes from the health round (it names the service), not a second one here
    assert [e.reason for e in events_between(healthy, degraded)] == []

    recovered = with_verdict(degraded, verdict(ServiceHealth(HEALTHY)), degraded, LATEST)
    assert recovered["phase"] == "Ready" and conditions(recovered)["Ready"]["status"] == "True"
    assert recovered["services"]["placement"]["message"] == ""
    assert [e.reason for e in events_between(degraded, recovered)] == ["Ready"]


def test_a_reconcile_and_a_health_round_write_the_same_status() -> None:
    health = verdict(ServiceHealth(DEGRADED, DOWN))
    first = status_of(None, 2, "2026.1", NOW, outcome=converged(), health=health)
    assert with_verdict(first, health, first, LATER) == first  # the round finds nothing to write
    assert status_of(first, 2, "2026.1", LATER, outcome=converged(), health=health) == first
    # the operator restarted: no verdict yet, the last one stands
    assert status_of(first, 2, "2026.1", LATER, outcome=converged(), health=None) == first


def test_before_any_check_health_is_unknown_and_does_not_hold_ready_back() -> None:
    status = status_of(None, 1, "2026.1", NOW, outcome=converged())
    assert conditions(status)["Healthy"]["status"] == "Unknown"
    assert status["phase"] == "Ready" and conditions(status)["Ready"]["status"] == "True"


def test_a_failed_step_stays_the_reason_while_health_is_bad_too() -> None:
    failing = Outcome(
        steps=[StepState("placement-db-sync", "placement", "Failed", "job j failed: BackoffLimitExceeded")]
    )
    status = status_of(None, 1, "2026.1", NOW, outcome=failing, health=verdict(ServiceHealth(DEGRADED, DOWN)))
    assert conditions(status)["Degraded"]["reason"] == "StepFailed"
    assert conditions(status)["Healthy"]["status"] == "False"
    assert status["services"]["placement"]["message"] == DOWN
    assert [(e.type, e.reason) for e in events_between(None, status)] == [("Warning", "StepFailed")]


def test_a_step_failing_after_a_health_check_did_still_gets_its_event() -> None:
    waiting = Outcome(steps=[StepState("placement-db-sync", "placement", "Waiting", "waiting for job j")])
    crash = verdict(ServiceHealth(DEGRADED, "pod j-x1 is crash-looping (container db-sync, 3 restarts)"))
    before = status_of(None, 1, "2026.1", NOW, outcome=waiting, health=crash)
    assert conditions(before)["Degraded"]["reason"] == "ServiceUnhealthy"
    failing = Outcome(
        steps=[StepState("placement-db-sync", "placement", "Failed", "job j failed: BackoffLimitExceeded")]
    )
    after = status_of(before, 1, "2026.1", LATER, outcome=failing, health=crash)
    assert [(e.type, e.reason) for e in events_between(before, after)] == [("Warning", "StepFailed")]


def test_kubernetes_only_health_says_so() -> None:
    health = verdict(ServiceHealth(HEALTHY), "OpenStack checks are switched off")
    status = status_of(None, 1, "2026.1", NOW, outcome=converged(), health=health)
    assert conditions(status)["Healthy"]["message"] == "Kubernetes checks only: OpenStack checks are switched off"


def test_many_unhealthy_services_keep_the_condition_short() -> None:
    sick = {f"service{i}": ServiceHealth(DEGRADED, "x" * 100) for i in range(10)}
    status = with_verdict(
        status_of(None, 1, "2026.1", NOW, outcome=converged()),
        CloudHealth("openstack", "demo", sick),
        None,
        NOW,
    )
    message = str(conditions(status)["Healthy"]["message"])
    assert message.endswith("and 7 more services") and len(message) < 400
