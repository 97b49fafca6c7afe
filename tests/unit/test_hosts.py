"""Host agents at scale: a DaemonSet step is ready once its share of nodes run it; the rest is n/N."""

from __future__ import annotations

import json
from typing import Any

from stackops.health.workloads import enough_hosts, workload_problems
from stackops.kube.engine import Outcome, StepState
from stackops.kube.readiness import readiness
from stackops.plan import plan
from stackops.render.naming import MIN_READY_PERCENT_ANNOTATION
from tests.conftest import cloud
from tests.support.status import status_of


def daemonset(ready: int, nodes: int, percent: str | None = "90", updated: int | None = None) -> dict[str, Any]:
    annotations = {MIN_READY_PERCENT_ANNOTATION: percent} if percent else {}
    return {
        "kind": "DaemonSet",
        "metadata": {"name": "demo-nova-compute", "generation": 1, "annotations": annotations},
        "status": {
            "observedGeneration": 1,
            "desiredNumberScheduled": nodes,
            "numberReady": ready,
            "updatedNumberScheduled": nodes if updated is None else updated,
        },
    }


def test_a_share_of_the_nodes_makes_a_host_agent_ready() -> None:
    assert readiness(daemonset(900, 1000)).ready
    short = readiness(daemonset(899, 1000))
    assert not short.ready and short.message == "waiting for daemonset demo-nova-compute (899/1000 ready, 900 needed)"
    assert not readiness(daemonset(1000, 1000, updated=899)).ready  # a rollout not far enough yet
    assert not readiness(daemonset(1, 2)).ready  # rounded up: 90% of 2 is both
    assert readiness(daemonset(9, 10)).ready
    assert not readiness(daemonset(999, 1000, percent=None)).ready  # without the annotation: every node
    assert readiness(daemonset(0, 0)).ready  # no node of the role


def test_every_host_agent_carries_its_roles_share() -> None:
    spec = {"nodes": {"compute": {"matchLabels": {"c": "1"}, "minReadyPercent": 75}}}
    agents = [o for o in plan(cloud(spec)).objects() if o["kind"] == "DaemonSet"]
    shares = {o["metadata"]["name"]: o["metadata"]["annotations"][MIN_READY_PERCENT_ANNOTATION] for o in agents}
    assert shares["demo-nova-compute"] == "75"
    assert shares["demo-neutron-ovn-controller-gateway"] == "90"  # the gateway role's default


def test_one_broken_host_of_many_is_not_held_against_the_service() -> None:
    broken = {
        "metadata": {
            "name": "demo-nova-compute-x1",
            "labels": {"app.kubernetes.io/name": "nova"},
            "ownerReferences": [{"kind": "DaemonSet", "name": "demo-nova-compute"}],
        },
        "status": {
            "containerStatuses": [{"name": "nova-compute", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]
        },
    }
    assert enough_hosts([daemonset(999, 1000)]) == {"demo-nova-compute"}
    assert workload_problems([broken], [], enough_hosts([daemonset(999, 1000)])) == {}
    assert enough_hosts([daemonset(899, 1000)]) == frozenset()
    assert workload_problems([broken], [], enough_hosts([daemonset(899, 1000)]))["nova"]


def test_status_shows_each_host_agent_n_of_n() -> None:
    outcome = Outcome(
        steps=[StepState("nova-compute", "nova", "Ready")],
        hosts={"nova-compute": (999, 1000), "nova-compute-gpu": (8, 8)},
    )
    status = status_of(None, 1, "2026.1", "2026-01-01T00:00:00Z", outcome=outcome)
    assert status["phase"] == "Ready"
    assert status["hosts"] == {"nova-compute": "999/1000", "nova-compute-gpu": "8/8"}


def _agents() -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in plan(cloud()).objects() if o["kind"] == "DaemonSet"}


def test_agents_running_as_a_service_user_get_their_host_directories_from_root() -> None:
    agents = _agents()
    compute = agents["demo-nova-compute"]["spec"]["template"]["spec"]
    assert compute["securityContext"]["fsGroup"] == 42436  # nova's 0400 config files, group-readable
    (init,) = compute["initContainers"]
    assert init["securityContext"] == {"runAsUser": 0}  # not privileged: chown is all it does
    assert init["volumeMounts"] == [{"name": "instances", "mountPath": "/var/lib/nova"}]
    owned = json.loads(next(e["value"] for e in init["env"] if e["name"] == "KOLLA_CONFIG"))
    state = [{"path": "/var/lib/nova", "owner": "nova:nova"}, {"path": "/var/lib/nova/instances", "owner": "nova:nova"}]
    assert owned == {"command": "true", "config_files": [], "permissions": state}
    # made when missing (a new host), before kolla_start hands them over
    assert init["command"] == ["sh", "-euc", "mkdir -p /var/lib/nova /var/lib/nova/instances && exec kolla_start"]
    metadata = agents["demo-neutron-metadata-agent"]["spec"]["template"]["spec"]
    assert [m["mountPath"] for m in metadata["initContainers"][0]["volumeMounts"]] == ["/var/lib/neutron/kolla"]
    # Open vSwitch and OVN run as root: they own what they make, with no init container and no fsGroup
    chassis = agents["demo-neutron-ovn-controller"]["spec"]["template"]["spec"]
    assert "initContainers" not in chassis and "fsGroup" not in chassis["securityContext"]
