"""The compute timer's wiring (stackops.reconcile.compute_hosts) against the in-memory API and a small
stand-in for openstacksdk's compute proxy: nova is asked only when a Node asks for something, the
disable comes before the list of servers, status.compute and Events are written through the one
writer, and a pass keeps status.compute."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from stackops.kube.kinds import NODE
from stackops.openstack.host_lifecycle import MAINTENANCE_ANNOTATION, maintenance_reason
from stackops.reconcile.compute_hosts import look_after_compute
from tests.support.passes import UID, CloudPasses

T0 = 1_800_000_000.0
LABELS = {"stackops.dev/compute": "true"}  # the compute role's default label


class FakeCompute:
    """What look_after_hosts calls of conn.compute, recording the order of the calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.service = SimpleNamespace(
            id="s1", host="hv1", status="enabled", state="up", disabled_reason=None, is_forced_down=False
        )
        self.on_host = [
            SimpleNamespace(id=f"vm{i}", status="ACTIVE", compute_host="hv1", task_state=None, metadata={}, fault=None)
            for i in range(3)
        ]

    def services(self, binary: str) -> list[Any]:
        self.calls.append("services")
        return [self.service]

    def disable_service(self, service: str, disabled_reason: str) -> None:
        self.calls.append(f"disable {service}: {disabled_reason}")
        self.service.status, self.service.disabled_reason = "disabled", disabled_reason

    def enable_service(self, service: str) -> None:
        self.calls.append(f"enable {service}")
        self.service.status, self.service.disabled_reason = "enabled", None

    def servers(self, **query: Any) -> list[Any]:
        self.calls.append(f"servers on {query['compute_host']}")
        return list(self.on_host)

    def live_migrate_server(self, server: str, **_: Any) -> None:
        self.calls.append(f"live-migrate {server}")


def cloud_with_nova(passes: CloudPasses) -> None:
    conditions = [
        {"type": kind, "status": "True" if kind == "Ready" else "False", "reason": "AsExpected", "message": ""}
        for kind in ("Ready", "Paused", "Progressing", "Degraded")
    ]
    passes.stored["status"] = {
        "phase": "Ready",
        "conditions": conditions,
        "services": {"nova": {"phase": "Ready", "release": "2026.1"}},
    }


def node(maintenance: bool) -> dict[str, Any]:
    annotations = {MAINTENANCE_ANNOTATION: "true"} if maintenance else {}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "node1", "labels": LABELS, "annotations": annotations},
        "status": {
            "addresses": [{"type": "Hostname", "address": "hv1"}],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def test_a_node_in_maintenance_is_disabled_first_then_drained_and_its_end_enables_it() -> None:
    passes = CloudPasses({})
    cloud_with_nova(passes)
    compute = FakeCompute()
    conn = SimpleNamespace(compute=compute)
    passes.kube.objects[("Node", "", "node1")] = node(maintenance=True)

    look = look_after_compute(passes.state, passes.stored, UID, T0, lambda: conn)
    assert look is not None
    reason = maintenance_reason("node1")
    assert compute.calls == [
        "services",
        f"disable s1: {reason}",
        "servers on hv1",
        "live-migrate vm0",
        "live-migrate vm1",
    ]
    written = passes.status["compute"]
    assert written["hosts"] == {"node1": "hv1"}
    assert written["maintenance"]["node1"]["phase"] == "Draining"
    assert sorted(written["maintenance"]["node1"]["moving"]) == ["vm0", "vm1"]
    assert [e.reason for e in passes.events] == ["NodeDraining"]

    # a pass rebuilds the status from what it saw: status.compute stays as the timer wrote it
    passes.reconcile()
    assert passes.status["compute"] == written

    passes.kube.objects[("Node", "", "node1")] = node(maintenance=False)
    compute.calls.clear()
    look_after_compute(passes.state, passes.stored, UID, T0 + 30, lambda: conn)
    assert compute.calls == ["services", "enable s1"]
    assert "maintenance" not in passes.status["compute"] or not passes.status["compute"]["maintenance"]
    assert passes.events[-1].reason == "MaintenanceEnded"


def test_steady_state_makes_no_openstack_request() -> None:
    passes = CloudPasses({})
    cloud_with_nova(passes)
    passes.stored["status"]["compute"] = {"hosts": {"node1": "hv1"}}
    passes.kube.objects[("Node", "", "node1")] = node(maintenance=False)

    def refuse() -> Any:
        raise AssertionError("nova was asked")

    assert passes.kube.list(NODE, "")
    assert look_after_compute(passes.state, passes.stored, UID, T0, refuse) is None


def test_nothing_is_looked_at_before_nova_is_deployed() -> None:
    passes = CloudPasses({})
    passes.kube.objects[("Node", "", "node1")] = node(maintenance=True)
    assert look_after_compute(passes.state, passes.stored, UID, T0, lambda: None) is None
