"""A cloud that cannot converge says why, in Kubernetes' words, on a real control plane.

A cluster without any PersistentVolume: the database's claim stays Pending and its pod cannot be
scheduled. A second cloud asks for control-plane nodes no node is labelled as. Both wait forever;
what is checked is that the status, `stackops status` and an Event name the cause, and that a cause
that does not change is not posted again on every pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from stackops.devcluster.install import wait_for
from tests.support.cluster import NAMESPACE, Env, operated_cluster

NO_SUCH_NODES = {"nodes": {"controlPlane": {"matchLabels": {"pool.example.com/openstack": "yes"}}}}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with operated_cluster(tmp_path_factory.mktemp("waiting"), compute_nodes=1, volumes=0) as env:
        yield env


def _progressing(env: Env, name: str) -> dict[str, Any]:
    return env.condition(name, "Progressing")


def _wait_blocked(env: Env, name: str, words: str) -> dict[str, Any]:
    try:
        wait_for(lambda: words in _progressing(env, name).get("message", ""), f"{name} blocked", timeout=120.0)
    except TimeoutError:
        pytest.fail(f"{name}: {env.get(name).get('status')}\n--- operator log ---\n{env.operator.log()[-3000:]}")
    return env.get(name)


def _blocked_events(env: Env, name: str) -> list[str]:
    events = env.core.list_namespaced_event(NAMESPACE, field_selector=f"involvedObject.name={name}").items
    return [e.message for e in events if e.reason == "Blocked"]


def test_a_database_without_a_volume_says_its_claim_is_pending(env: Env) -> None:
    env.create(env.cloud_body("novolume"))
    cloud = _wait_blocked(env, "novolume", "is Pending")
    progressing = _progressing(env, "novolume")
    assert progressing["status"] == "True" and progressing["reason"] == "Blocked"
    message = progressing["message"]
    print(message)
    # the step, the pod the scheduler could not place, and the claim with the volume controller's reason
    assert message.startswith("waiting for statefulset novolume-mariadb (0/1 ready): pod novolume-mariadb-0 cannot")
    assert "unbound immediate PersistentVolumeClaims" in message
    assert "PersistentVolumeClaim data-novolume-mariadb-0 is Pending: no persistent volumes available" in message
    ready = next(c for c in cloud["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "Blocked" and ready["message"] == message
    assert cloud["status"]["services"]["mariadb"]["message"] == message

    shown = subprocess.run(
        [sys.executable, "-m", "stackops.cli", "status", "novolume", "-n", NAMESPACE, "--kubeconfig",
         str(env.cluster.kubeconfig)],
        capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "400"},
    )  # fmt: skip
    assert "no persistent volumes available" in shown.stdout, shown.stdout + shown.stderr

    wait_for(lambda: bool(_blocked_events(env, "novolume")), "a Blocked event", timeout=30.0)
    time.sleep(20)  # passes of the operator, with the cause unchanged
    events = _blocked_events(env, "novolume")
    assert events and len(events) == len(set(events)), events
    assert _progressing(env, "novolume")["message"] == message
    # what it names comes from pods and Events its own RBAC lets it list
    assert "Forbidden" not in env.operator.log()


def test_control_plane_pods_no_node_matches_say_so(env: Env) -> None:
    env.create(env.cloud_body("nowhere", NO_SUCH_NODES))
    cloud = _wait_blocked(env, "nowhere", "cannot be scheduled")
    # memcached needs no volume: its pod waits for a node only; the scheduler says why
    wait_for(
        lambda: "node affinity/selector" in env.get("nowhere")["status"]["services"]["memcached"]["message"],
        "memcached's cause",
        timeout=60.0,
    )
    memcached = env.get("nowhere")["status"]["services"]["memcached"]
    print(memcached["message"])
    assert memcached["phase"] == "Deploying"
    assert memcached["message"].startswith("waiting for statefulset nowhere-memcached (0/1 ready): pod nowhere-memc")
    assert "didn't match Pod's node affinity/selector" in memcached["message"]
    assert cloud["status"]["phase"] == "Deploying"
