"""The compute lifecycle's decisions (stackops.openstack.host_lifecycle): which nova host a Node is,
what a drain does next (policy per server, concurrency cap, timeouts, failures never retried), when
a host of a removed node goes, what a dead host gets, and when nova is not asked at all."""

from __future__ import annotations

from stackops.api.models import ComputeMaintenance, ComputeStatus, DeadHostStatus, NodeMaintenanceStatus
from stackops.openstack.host_lifecycle import (
    DRAIN_SETTLE,
    MAINTENANCE_ANNOTATION,
    Action,
    Drain,
    NodeView,
    ServerView,
    ServiceView,
    dead_host,
    drain,
    iso,
    maintenance_reason,
    needs_a_look,
    needs_disable,
    needs_enable,
    node_view,
    removal,
    removed_nodes,
    service_of,
)

T0 = 1_800_000_000.0
LABELS = {"stackops.dev/compute": "true"}  # the compute role's default label
SETTINGS = ComputeMaintenance(concurrency=2, timeout=300)


def server(sid: str, status: str = "ACTIVE", task: str | None = None, policy: str | None = None) -> ServerView:
    return ServerView(sid, status, "hv1", task_state=task, policy=policy)


def record(moving: dict[str, str] | None = None, failed: dict[str, str] | None = None) -> NodeMaintenanceStatus:
    return NodeMaintenanceStatus(host="hv1", since=iso(T0), moving=moving or {}, failed=failed or {})


def step(
    on_host: list[ServerView], rec: NodeMaintenanceStatus | None = None, now: float = T0 + 1, **kw: object
) -> Drain:
    settings = SETTINGS.model_copy(update=kw)
    return drain("node1", "hv1", on_host, [], rec or record(), settings, now)


# -- which nova host a Node is ------------------------------------------------------------------


def test_a_node_maps_to_the_service_named_by_its_name_or_a_hostname_address() -> None:
    services = [ServiceView("1", "other"), ServiceView("2", "Machine-7")]
    node = NodeView("node1", hostnames=("machine-7",))
    assert service_of(node, services) == services[1]  # host names compare without case
    assert service_of(NodeView("other"), services) == services[0]
    assert service_of(NodeView("node9", hostnames=("machine-9",)), services) is None


def test_the_nodes_own_name_wins_over_its_hostname_address() -> None:
    services = [ServiceView("1", "machine"), ServiceView("2", "node1")]
    assert service_of(NodeView("node1", hostnames=("machine",)), services) == services[1]


def test_node_view_reads_labels_annotation_cordon_and_readiness() -> None:
    node = {
        "metadata": {"name": "n1", "labels": LABELS, "annotations": {MAINTENANCE_ANNOTATION: "True"}},
        "spec": {"unschedulable": True},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": "hv1"}],
            "conditions": [{"type": "Ready", "status": "Unknown", "lastTransitionTime": iso(T0)}],
        },
    }
    view = node_view(node, LABELS)
    assert view == NodeView("n1", ("hv1",), True, True, True, False, T0)
    assert not node_view({**node, "metadata": {"name": "n1"}}, LABELS).compute


# -- maintenance: disable, drain, enable only what stackops disabled -------------------------------


def test_only_a_service_stackops_disabled_is_enabled_again() -> None:
    ours = ServiceView("1", "hv1", enabled=False, disabled_reason=maintenance_reason("node1"))
    theirs = ServiceView("1", "hv1", enabled=False, disabled_reason="broken fan, ticket 42")
    assert needs_disable(ServiceView("1", "hv1")) and not needs_disable(ours)
    assert needs_enable(ours, "node1")
    assert not needs_enable(theirs, "node1")
    assert not needs_enable(ours, "node2")  # another node's maintenance is not this one's
    assert not needs_enable(ServiceView("1", "hv1"), "node1") and not needs_enable(None, "node1")


def test_servers_move_at_most_concurrency_at_a_time_each_as_its_policy_says() -> None:
    servers = [
        server("a"),
        server("b", status="SHUTOFF"),  # live migration needs it running: moved cold
        server("c"),
        server("d", policy="Leave"),
        server("e", policy="Stop"),
    ]
    first = step(servers)
    assert first.actions == [Action("a", "live"), Action("b", "cold")]
    assert set(first.record.moving) == {"a", "b"} and first.record.phase == "Draining"
    assert first.record.message == "2 servers moving, 2 waiting for a slot"
    # a and b are under way (nova set their task state): no slot is free
    busy = [server("a", task="migrating"), server("b", status="SHUTOFF", task="resize_migrating"), *servers[2:]]
    assert step(busy, first.record, now=T0 + 5).actions == []
    # a has gone; b's cold migration finished elsewhere and waits for its confirmation
    moved = ServerView("b", "VERIFY_RESIZE", "hv2")
    later = drain("node1", "hv1", servers[2:], [moved], first.record, SETTINGS, T0 + 9)
    assert later.actions == [Action("b", "confirm"), Action("c", "live"), Action("e", "stop")]
    assert set(later.record.moving) == {"c", "e"}


def test_cold_migrate_and_stop_policies_and_a_policy_from_metadata() -> None:
    assert step([server("a")], policy="ColdMigrate").actions == [Action("a", "cold")]
    assert step([server("a", policy="ColdMigrate")]).actions == [Action("a", "cold")]
    assert step([server("a")], policy="Stop").actions == [Action("a", "stop")]
    stopped = step([server("a", status="SHUTOFF")], policy="Stop", now=T0 + DRAIN_SETTLE)
    assert stopped.actions == [] and stopped.record.phase == "Drained"
    assert stopped.record.message == "no server left to move (1 stay by policy): the node may be taken down"


def test_a_policy_in_metadata_that_is_none_of_them_is_reported_and_the_server_left_alone() -> None:
    result = step([server("a", policy="Teleport")], now=T0 + DRAIN_SETTLE)
    assert result.actions == []
    assert result.record.phase == "Failed"
    assert "stackops:maintenance-policy='Teleport' is not one of" in result.record.failed["a"]


def test_a_move_nova_gave_up_on_is_failed_and_not_retried() -> None:
    asked = record(moving={"a": iso(T0 + 1)})
    back = step([server("a")], asked, now=T0 + 20)  # ACTIVE on the same host, nova idle: rolled back
    assert back.actions == [] and back.record.phase == "Failed"
    assert back.record.failed["a"].startswith("stayed on hv1, ACTIVE: nova did not finish its move")
    assert [n.reason for n in back.notes] == ["ServerNotMoved", "NodeDrainFailed"]
    again = step([server("a")], back.record, now=T0 + 60)
    assert again.actions == [] and again.record.failed == back.record.failed and again.notes == []


def test_a_move_that_takes_longer_than_the_timeout_is_failed_and_frees_its_slot() -> None:
    asked = record(moving={"a": iso(T0)})
    still = step([server("a", task="migrating"), server("b")], asked, now=T0 + 299, concurrency=1)
    assert still.actions == [] and "a" in still.record.moving
    late = step([server("a", task="migrating"), server("b")], asked, now=T0 + 301, concurrency=1)
    assert late.record.failed["a"] == "did not move within 300s (nova: migrating)"
    # nova still works on it: it holds the slot until nova lets go
    assert late.actions == []
    freed = step([server("a"), server("b")], late.record, now=T0 + 320, concurrency=1)
    assert freed.actions == [Action("b", "live")] and "a" in freed.record.failed


def test_servers_that_cannot_move_are_failed_at_once() -> None:
    result = step([server("a", status="ERROR"), server("b", status="SUSPENDED")], now=T0 + DRAIN_SETTLE)
    assert result.actions == [] and result.record.phase == "Failed"
    assert result.record.failed == {"a": "is in ERROR", "b": "cannot be moved while SUSPENDED (policy LiveMigrate)"}


def test_a_server_busy_with_someone_elses_task_waits() -> None:
    result = step([server("a", task="resize_prep")])
    assert result.actions == [] and result.record.phase == "Draining" and not result.record.moving


def test_an_empty_host_is_drained_only_after_the_settle_time_since_the_disable() -> None:
    assert step([], now=T0 + 1).record.phase == "Draining"
    drained = step([], now=T0 + DRAIN_SETTLE)
    assert drained.record.phase == "Drained" and drained.record.instances == 0
    assert [n.reason for n in drained.notes] == ["NodeDrained"]
    assert step([], drained.record, now=T0 + 60).notes == []  # an Event per transition only


def test_a_failed_server_that_left_the_host_no_longer_fails_the_drain() -> None:
    failed = record(failed={"a": "is in ERROR"})
    assert step([], failed, now=T0 + DRAIN_SETTLE).record.phase == "Drained"


# -- removal -------------------------------------------------------------------------------------


def test_only_hosts_once_mapped_to_a_node_now_gone_or_out_of_the_selector_are_removed() -> None:
    known = {"n1": "hv1", "n2": "hv2", "n3": "hv3"}
    nodes = [NodeView("n1"), NodeView("n2", compute=False)]
    assert removed_nodes(known, nodes) == {"n2": "hv2", "n3": "hv3"}


def test_removal_waits_for_the_agent_to_stop_and_is_refused_while_servers_remain() -> None:
    up = ServiceView("1", "hv1", up=True)
    down = ServiceView("1", "hv1", up=False)
    assert removal("hv1", up, []).message == "nova-compute on hv1 still reports up: removed once it has stopped"
    refused = removal("hv1", down, ["s1", "s2", "s3", "s4"])
    assert not refused.remove
    assert refused.message == "refused: 4 servers remain on hv1 (s1, s2, s3 and 1 more); move or delete them"
    assert removal("hv1", down, []).remove
    assert removal("hv1", ServiceView("1", "hv1", forced_down=True), []).remove
    assert removal("hv1", None, []).remove  # only leftovers (provider, chassis) to clean


# -- dead hosts ----------------------------------------------------------------------------------


def dead_node(since: float = T0) -> NodeView:
    return NodeView("n1", ready=False, not_ready_since=since)


def test_a_node_not_ready_within_the_grace_period_is_left_alone() -> None:
    result = dead_host(dead_node(), ServiceView("1", "hv1"), [], None, 300, True, SETTINGS, T0 + 299)
    assert result.record is None and not result.force_down


def test_a_dead_host_is_forced_down_and_only_reported_by_default() -> None:
    result = dead_host(
        dead_node(), ServiceView("1", "hv1", up=False), [server("a")], None, 300, False, SETTINGS, T0 + 300
    )
    assert result.force_down and result.actions == []
    assert result.record is not None and result.record.forced_down
    assert result.record.message == (
        "NotReady past 300s: nova-compute on hv1 forced down; 1 servers on it (evacuate is off: report only)"
    )
    assert [n.reason for n in result.notes] == ["ComputeHostDead"]


def test_a_dead_host_is_evacuated_concurrency_at_a_time_when_opted_in() -> None:
    servers = [server("a"), server("b"), server("c")]
    first = dead_host(dead_node(), ServiceView("1", "hv1"), servers, None, 300, True, SETTINGS, T0 + 400)
    assert first.actions == [Action("a", "evacuate"), Action("b", "evacuate")]
    forced = ServiceView("1", "hv1", forced_down=True)
    busy = [server("a", task="rebuilding"), server("b", task="rebuilding"), server("c")]
    assert dead_host(dead_node(), forced, busy, first.record, 300, True, SETTINGS, T0 + 410).actions == []
    # a left the host; b's evacuation came to nothing
    rest = [server("b"), server("c")]
    later = dead_host(dead_node(), forced, rest, first.record, 300, True, SETTINGS, T0 + 420)
    assert not later.force_down and later.actions == [Action("c", "evacuate")]
    assert later.record is not None and later.record.failed["b"] == "was not evacuated (ACTIVE)"


def test_a_host_back_from_the_dead_gets_its_force_down_lifted_only_if_stackops_set_it() -> None:
    forced = ServiceView("1", "hv1", forced_down=True)
    ours = DeadHostStatus(host="hv1", forced_down=True)
    back = dead_host(NodeView("n1"), forced, [], ours, 300, False, SETTINGS, T0)
    assert back.lift_force_down and back.record is None
    assert [n.reason for n in back.notes] == ["ComputeHostRecovered"]
    theirs = DeadHostStatus(host="hv1", forced_down=False)
    assert not dead_host(NodeView("n1"), forced, [], theirs, 300, False, SETTINGS, T0).lift_force_down


# -- when nova is asked at all -------------------------------------------------------------------


def test_steady_state_asks_nova_nothing() -> None:
    known = ComputeStatus(hosts={"n1": "hv1"})
    assert not needs_a_look([NodeView("n1"), NodeView("cp", compute=False)], known, 300, T0)
    assert needs_a_look([NodeView("n1"), NodeView("n2")], known, 300, T0)  # a new node: find its host
    assert needs_a_look([NodeView("n1", maintenance=True)], known, 300, T0)
    assert needs_a_look([], known, 300, T0)  # n1 gone
    assert needs_a_look([dead_node(T0 - 300)], ComputeStatus(hosts={"n1": "hv1"}), 300, T0)
    assert not needs_a_look([dead_node(T0 - 10)], ComputeStatus(hosts={"n1": "hv1"}), 300, T0)
    maintenance = ComputeStatus(hosts={"n1": "hv1"}, maintenance={"n1": NodeMaintenanceStatus()})
    assert needs_a_look([NodeView("n1")], maintenance, 300, T0)  # its end: enable the service
