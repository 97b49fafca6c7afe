"""Why a step waits: a pod's status read into a cause, and the cause in the cloud's status and Events."""

from __future__ import annotations

from typing import Any

from stackops.kube.engine import Outcome, StepState
from stackops.kube.pods import claims, failed_container, redacted_last_line, stuck_containers, unschedulable
from tests.support.status import events_between, status_of

NOW, LATER = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def pod(status: dict[str, Any], volumes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "demo-keystone-api-1"}, "spec": {"volumes": volumes or []}, "status": status}


def test_a_crash_loop_names_its_exit_code_and_last_line_but_not_its_restarts() -> None:
    def looping(restarts: int) -> dict[str, Any]:
        container = {
            "name": "keystone-api",
            "restartCount": restarts,
            "state": {
                "waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}
            },
            "lastState": {"terminated": {"exitCode": 1, "message": "starting\nERROR cannot load keystone.conf\n\n"}},
        }
        return pod({"containerStatuses": [container]})

    (stuck,) = stuck_containers(looping(3))
    assert stuck.describe() == (
        "pod demo-keystone-api-1 is crash-looping (container keystone-api, exit code 1): "
        "ERROR cannot load keystone.conf"
    )
    assert stuck_containers(looping(4))[0].describe() == stuck.describe()  # no write per restart


def test_an_image_that_cannot_be_pulled_says_so() -> None:
    waiting = {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "quay.io/x/keystone:2026.1"'}
    (stuck,) = stuck_containers(pod({"initContainerStatuses": [{"name": "init", "state": {"waiting": waiting}}]}))
    assert stuck.describe() == (
        "pod demo-keystone-api-1 cannot start container init: ImagePullBackOff: "
        'Back-off pulling image "quay.io/x/keystone:2026.1"'
    )
    starting = {"name": "api", "state": {"waiting": {"reason": "ContainerCreating"}}}
    assert stuck_containers(pod({"containerStatuses": [starting]})) == []  # just starting: no cause


def test_secrets_in_a_quoted_log_line_are_masked() -> None:
    line = "OperationalError: mysql+pymysql://keystone:s3cr3t@demo-mariadb:3306/keystone password=hunter2 token: abc"
    said = redacted_last_line(line)
    assert "s3cr3t" not in said and "hunter2" not in said and "abc" not in said
    assert "mysql+pymysql://keystone:***@demo-mariadb" in said
    assert len(redacted_last_line("x" * 500)) == 200


def test_unschedulable_pods_and_their_claims() -> None:
    scheduled = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/2 nodes fit"}
    volumes: list[dict[str, Any]] = [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-demo-mariadb-0"}},
        {"name": "c"},
    ]
    assert unschedulable(pod({"conditions": [scheduled]})) == "0/2 nodes fit"
    assert unschedulable(pod({"conditions": [{**scheduled, "reason": "SchedulingGated"}]})) == ""
    assert claims(pod({}, volumes)) == ["data-demo-mariadb-0"]


def test_a_failed_job_pod_names_its_container() -> None:
    ended = {"exitCode": 2, "reason": "Error", "message": "alembic.util.exc.CommandError: Can't locate revision"}
    failed = pod({"phase": "Failed", "containerStatuses": [{"name": "db-sync", "state": {"terminated": ended}}]})
    assert failed_container(failed) == (
        "pod demo-keystone-api-1 failed (container db-sync, Error, exit code 2): "
        "alembic.util.exc.CommandError: Can't locate revision"
    )


def test_a_blocked_step_makes_ready_say_blocked_and_posts_one_event_per_cause() -> None:
    cause = "pod demo-mariadb-0 cannot be scheduled: 0/1 nodes are available"
    message = f"waiting for statefulset demo-mariadb (0/1 ready): {cause}"

    def status(previous: dict[str, Any] | None, step_cause: str, now: str) -> dict[str, Any]:
        step = StepState("mariadb-server", "mariadb", "Waiting", message if step_cause else "waiting", step_cause)
        return status_of(previous, 1, "2026.1", now, outcome=Outcome(steps=[step]))

    first = status(None, cause, NOW)
    conditions = {c["type"]: c for c in first["conditions"]}
    assert conditions["Progressing"]["reason"] == "Blocked"
    assert conditions["Ready"]["reason"] == "Blocked" and conditions["Ready"]["message"] == message
    assert [(e.type, e.reason, e.message) for e in events_between(None, first)].count(
        ("Warning", "Blocked", message)
    ) == 1
    again = status(first, cause, LATER)
    assert again == first  # no write
    assert not [e for e in events_between(first, again) if e.reason == "Blocked"]
    just_waiting = status(first, "", LATER)
    assert {c["type"]: c for c in just_waiting["conditions"]}["Progressing"]["reason"] == "WaitingForStep"
