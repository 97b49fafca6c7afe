from __future__ import annotations

from typing import Any

import jinja2
import pytest
from kubernetes.client.exceptions import ApiException

from stackops.api.validation import InvalidCloud
from stackops.kube.engine import Outcome, StepState
from stackops.kube.readiness import readiness
from stackops.reconcile.errors import Failure, classify
from stackops.services.base import RenderError
from tests.support.status import events_between, status_of

NOW, LATER = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def job(name: str, condition: str | None) -> dict[str, object]:
    status = (
        {"conditions": [{"type": condition, "status": "True", "message": "BackoffLimitExceeded"}]} if condition else {}
    )
    return {"kind": "Job", "metadata": {"name": name}, "status": status}


def test_job_readiness() -> None:
    assert readiness(job("j", "Complete")).ready
    waiting = readiness(job("j", None))
    assert not waiting.ready and waiting.message == "waiting for job j"
    failed = readiness(job("j", "Failed"))
    assert failed.failed and failed.message == "job j failed: BackoffLimitExceeded"


def test_deployment_is_ready_only_when_the_current_generation_is_available() -> None:
    deployment: dict[str, Any] = {
        "kind": "Deployment",
        "metadata": {"name": "d", "generation": 2},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 1, "readyReplicas": 2, "updatedReplicas": 2, "availableReplicas": 2},
    }
    assert not readiness(deployment).ready  # controller has not seen the new spec yet
    deployment["status"]["observedGeneration"] = 2
    assert readiness(deployment).ready
    deployment["status"]["readyReplicas"] = 1
    assert readiness(deployment).message == "waiting for deployment d (1/2 ready)"


def outcome(*states: tuple[str, str, str, str]) -> Outcome:
    return Outcome(steps=[StepState(*s) for s in states], replicas={"keystone": (1, 1)})


def test_waiting_names_what_it_waits_for_and_ready_mirrors_it() -> None:
    result = outcome(
        ("mariadb-server", "mariadb", "Ready", ""),
        ("keystone-db-sync", "keystone", "Waiting", "waiting for job demo-keystone-db-sync-3f2a1b9c"),
        ("keystone-api", "keystone", "Pending", ""),
    )
    status = status_of(None, 3, "2026.1", NOW, outcome=result)
    conditions = {c["type"]: c for c in status["conditions"]}
    assert status["phase"] == "Deploying" and status["observedGeneration"] == 3
    assert conditions["Progressing"]["status"] == "True"
    assert conditions["Ready"] == {
        "type": "Ready",
        "status": "False",
        "reason": "WaitingForStep",
        "message": "waiting for job demo-keystone-db-sync-3f2a1b9c",
        "observedGeneration": 3,
        "lastTransitionTime": NOW,
    }
    assert status["services"]["mariadb"]["phase"] == "Ready"
    assert status["services"]["keystone"]["phase"] == "Deploying"
    assert "release" not in status  # nothing deployed yet


def test_a_failed_step_degrades_the_cloud_and_says_which() -> None:
    result = outcome(("keystone-db-sync", "keystone", "Failed", "job x failed: BackoffLimitExceeded"))
    status = status_of(None, 1, "2026.1", NOW, outcome=result)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert status["phase"] == "Degraded"
    assert ready["reason"] == "StepFailed" and "keystone-db-sync" in ready["message"]
    events = events_between(None, status)
    assert [(e.type, e.reason) for e in events] == [("Warning", "StepFailed")]


def test_converged_cloud_is_ready_and_transition_times_only_move_on_change() -> None:
    done = outcome(("keystone-api", "keystone", "Ready", ""))
    first = status_of(None, 1, "2026.1", NOW, outcome=done)
    assert first["phase"] == "Ready" and first["release"] == "2026.1"
    again = status_of(first, 1, "2026.1", LATER, outcome=done)
    assert again == first  # byte-identical: nothing to write
    assert events_between(first, again) == []


def test_paused_and_permanent_failures() -> None:
    paused = status_of(None, 1, "2026.1", NOW, paused=True)
    assert paused["phase"] == "Paused"
    assert next(c for c in paused["conditions"] if c["type"] == "Ready")["reason"] == "Paused"
    failed = status_of(None, 1, "2026.1", NOW, failure=Failure(True, "InvalidSpec", "spec.x: bad"))
    ready = next(c for c in failed["conditions"] if c["type"] == "Ready")
    assert failed["phase"] == "Failed" and ready["message"] == "spec.x: bad"


def test_errors_are_classified_once() -> None:
    assert classify(InvalidCloud(["spec.x: bad"])).permanent
    assert classify(RenderError("spec.y", "bad")).permanent
    assert not classify(ApiException(status=409, reason="Conflict")).permanent
    assert not classify(ApiException(status=503, reason="Unavailable")).permanent
    assert classify(ApiException(status=422, reason="Invalid")).permanent
    assert not classify(ConnectionRefusedError()).permanent


def test_a_lasting_temporary_failure_is_shown_as_retrying_without_failing_the_cloud() -> None:
    ready = status_of(None, 1, "2026.1", NOW, outcome=outcome(("keystone-api", "keystone", "Ready", "")))
    failure = Failure(False, "ApiUnavailable", "API server answered 500 Internal Server Error")
    retrying = status_of(ready, 1, "2026.1", LATER, failure=failure)
    conditions = {c["type"]: c for c in retrying["conditions"]}
    assert retrying["phase"] == "Deploying" and retrying["release"] == "2026.1"
    assert conditions["Progressing"]["status"] == "True"
    assert conditions["Progressing"]["message"] == "retrying: API server answered 500 Internal Server Error"
    assert conditions["Ready"]["status"] == "False" and conditions["Ready"]["reason"] == "ApiUnavailable"
    assert conditions["Degraded"]["status"] == "False"
    # the same failure again writes nothing new
    assert status_of(retrying, 1, "2026.1", LATER, failure=failure) == retrying


def test_a_template_that_cannot_handle_a_value_is_a_permanent_template_error() -> None:
    from stackops.render.templates import TemplateError, environment, render_text

    environment().loader = jinja2.DictLoader({"broken.j2": "{{ value | tojson }}"})
    try:
        with pytest.raises(TemplateError, match=r"template broken\.j2: TypeError") as caught:
            render_text("broken.j2", value=object())
    finally:
        environment.cache_clear()
    assert classify(caught.value).permanent
