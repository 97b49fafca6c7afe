"""What to do next with a cloud's compute hosts, from what was seen of them: maintenance, removal and
dead hosts (docs/operations.md). Pure: no request, no clock (`now` is given, in seconds since the
epoch); stackops.openstack.compute reads nova, calls these and does what they decide.

Each look is one small state machine step per node; what must outlive a look (when a move was asked,
what failed, what stackops itself disabled or forced down) is kept in the cloud's status
(api.models.ComputeStatus), so an operator restarted mid-drain carries on where it was.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from stackops.api.models import (
    ComputeMaintenance,
    ComputeStatus,
    DeadHostStatus,
    MaintenancePolicy,
    NodeMaintenanceStatus,
)

MAINTENANCE_ANNOTATION = "stackops.dev/maintenance"
POLICY_METADATA = "stackops:maintenance-policy"  # a server's own maintenance policy, in its metadata
POLICIES: tuple[str, ...] = get_args(MaintenancePolicy)
# After the disable, an empty host counts as drained only this long later: a build the scheduler
# placed on it just before the disable reaches the host (and its list) within seconds.
DRAIN_SETTLE = 10.0
SHOWN = 3  # servers named in a message; the status stays small
LIVE_MIGRATABLE = ("ACTIVE", "PAUSED")
COLD_MIGRATABLE = ("ACTIVE", "SHUTOFF")

How = Literal["live", "cold", "stop", "evacuate"]


def iso(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def seconds(timestamp: str) -> float:
    return datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC).timestamp()


@dataclass(frozen=True)
class NodeView:
    """A Kubernetes Node as the compute lifecycle needs it."""

    name: str
    hostnames: tuple[str, ...] = ()  # its addresses of type Hostname
    compute: bool = True  # in the cloud's compute selector (spec.nodes.compute)
    maintenance: bool = False  # annotated stackops.dev/maintenance=true
    cordoned: bool = False
    ready: bool = True
    not_ready_since: float | None = None  # when its Ready condition last left True

    @property
    def names(self) -> frozenset[str]:
        """Every name its nova-compute host may have (host names compare without case)."""
        return frozenset(n.lower() for n in (self.name, *self.hostnames))


def node_view(node: Mapping[str, Any], compute_labels: Mapping[str, str]) -> NodeView:
    """The Node object `node`; in the compute selector when it has every label of `compute_labels`."""
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    status = node.get("status") or {}
    ready_condition = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    ready = ready_condition is not None and ready_condition.get("status") == "True"
    since = ready_condition.get("lastTransitionTime") if ready_condition and not ready else None
    return NodeView(
        name=str(meta["name"]),
        hostnames=tuple(a["address"] for a in status.get("addresses") or [] if a.get("type") == "Hostname"),
        compute=all(labels.get(key) == value for key, value in compute_labels.items()),
        maintenance=str(annotations.get(MAINTENANCE_ANNOTATION, "")).lower() == "true",
        cordoned=bool((node.get("spec") or {}).get("unschedulable")),
        ready=ready,
        not_ready_since=seconds(since) if since else None,
    )


@dataclass(frozen=True)
class ServiceView:
    """A nova-compute service record."""

    id: str
    host: str
    enabled: bool = True
    disabled_reason: str | None = None
    up: bool = True
    forced_down: bool = False


@dataclass(frozen=True)
class ServerView:
    """A server as nova shows it to an admin."""

    id: str
    status: str  # ACTIVE, SHUTOFF, MIGRATING, VERIFY_RESIZE, ERROR ...
    host: str
    task_state: str | None = None  # nova is busy with it (migrating, powering-off ...)
    policy: str | None = None  # its metadata stackops:maintenance-policy
    fault: str = ""  # nova's last fault message for it


def service_of(node: NodeView, services: Iterable[ServiceView]) -> ServiceView | None:
    """The nova-compute service of `node`: the one whose host is the Node's name or one of its
    Hostname addresses (host network: nova-compute takes the machine's host name, which need not be
    the Node's name). The Node's own name wins when both are there."""
    found = [s for s in services if s.host.lower() in node.names]
    found.sort(key=lambda s: s.host.lower() != node.name.lower())
    return found[0] if found else None


def maintenance_reason(node: str) -> str:
    """The disabled_reason stackops gives a node's nova-compute; ending maintenance re-enables only
    a service disabled with exactly this reason (an administrator's own disable stays)."""
    return f"stackops: maintenance of node {node}"


def needs_disable(service: ServiceView) -> bool:
    return service.enabled


def needs_enable(service: ServiceView | None, node: str) -> bool:
    return service is not None and not service.enabled and service.disabled_reason == maintenance_reason(node)


@dataclass(frozen=True)
class Note:
    """An Event to post about the cloud."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Action:
    """A call to make for one server: move it (live, cold), stop it, evacuate it, or confirm its
    finished cold migration."""

    server: str
    how: How | Literal["confirm"]


def policy_of(server: ServerView, default: str) -> tuple[str, str]:
    """The server's policy and, when its metadata names none of POLICIES, why it is not acted on (a
    mistake in a server's metadata must not move a server its owner meant to keep)."""
    if server.policy is None:
        return default, ""
    if server.policy in POLICIES:
        return server.policy, ""
    return default, f"metadata {POLICY_METADATA}={server.policy!r} is not one of {', '.join(POLICIES)}"


def how_to_move(policy: str, status: str) -> How | None:
    """The call that takes a server in `status` off the host under `policy`; None: none can."""
    if policy == "Stop":
        return "stop"
    if policy == "LiveMigrate" and status in LIVE_MIGRATABLE:
        return "live"
    if policy in ("LiveMigrate", "ColdMigrate") and status in COLD_MIGRATABLE:
        return "cold"  # a stopped server cannot live-migrate: it moves cold
    return None


@dataclass(frozen=True)
class Drain:
    """One step of a node's maintenance: the calls to make, and its record afterwards."""

    actions: list[Action]
    record: NodeMaintenanceStatus
    notes: list[Note] = field(default_factory=list)


def _named(entries: Mapping[str, str]) -> str:
    shown = "; ".join(f"{server}: {why}" for server, why in list(entries.items())[:SHOWN])
    more = len(entries) - SHOWN
    return f"{shown}; and {more} more" if more > 0 else shown


def drain(
    node: str,
    host: str,
    on_host: list[ServerView],
    moved: list[ServerView],
    record: NodeMaintenanceStatus,
    settings: ComputeMaintenance,
    now: float,
) -> Drain:
    """The next step of draining `host` (node `node`), whose nova-compute is disabled since
    `record.since`: `on_host` are its servers now (listed after the disable), `moved` those of
    `record.moving` that nova shows elsewhere. At most `settings.concurrency` servers move at once;
    a move nova gave up on, or that takes longer than `settings.timeout`, is failed and not retried."""
    moving = dict(record.moving)
    here = {s.id for s in on_host}
    failed = {server: why for server, why in record.failed.items() if server in here}
    actions: list[Action] = []
    notes: list[Note] = []

    def fail(server: ServerView, why: str) -> None:
        moving.pop(server.id, None)
        failed[server.id] = why
        notes.append(Note("Warning", "ServerNotMoved", f"node {node}: server {server.id} {why}"))

    for server in moved:
        if server.status == "VERIFY_RESIZE":
            actions.append(Action(server.id, "confirm"))  # a cold migration nova finished: make it final
    for server_id in [s for s in moving if s not in here]:
        del moving[server_id]  # moved away (or deleted): done
    busy, stays = 0, 0
    waiting: list[tuple[ServerView, How | None]] = []  # not asked yet; None: nova is busy with it
    for server in sorted(on_host, key=lambda s: s.id):
        if server.id in failed:
            continue
        policy, problem = policy_of(server, settings.policy)
        if problem:
            fail(server, problem)
            continue
        if policy == "Leave" or (policy == "Stop" and server.status == "SHUTOFF" and not server.task_state):
            moving.pop(server.id, None)
            stays += 1
            continue
        asked = moving.get(server.id)
        if asked is not None:
            if server.task_state:
                busy += 1
                if now - seconds(asked) > settings.timeout:
                    fail(server, f"did not move within {settings.timeout}s (nova: {server.task_state})")
            else:  # nova took the request and left the server here: it gave up
                fault = f" ({server.fault})" if server.fault else ""
                fail(server, f"stayed on {host}, {server.status}: nova did not finish its move{fault}")
            continue
        how = how_to_move(policy, server.status)
        if server.status == "ERROR":
            fail(server, f"is in ERROR{f' ({server.fault})' if server.fault else ''}")
        elif server.task_state:
            waiting.append((server, None))  # nova is busy with it for someone else: look again next time
        elif how is None:
            fail(server, f"cannot be moved while {server.status} (policy {policy})")
        else:
            waiting.append((server, how))
    for server, how in waiting:
        if busy >= settings.concurrency or how is None:
            continue
        actions.append(Action(server.id, how))
        moving[server.id] = iso(now)
        busy += 1
    since = seconds(record.since) if record.since else now
    to_move = len([s for s, _ in waiting if s.id not in moving]) + len(moving)
    if to_move == 0 and failed:
        phase, message = "Failed", f"{len(failed)} servers did not move: {_named(failed)}"
    elif to_move == 0 and now - since >= DRAIN_SETTLE:
        kept = f" ({stays} stay by policy)" if stays else ""
        phase, message = "Drained", f"no server left to move{kept}: the node may be taken down"
    else:
        phase = "Draining"
        message = f"{len(moving)} servers moving, {to_move - len(moving)} waiting for a slot"
        if failed:
            message += f"; {len(failed)} did not move: {_named(failed)}"
    after = NodeMaintenanceStatus(
        phase=phase,
        host=host,
        instances=len(on_host),
        message=message,
        since=record.since or iso(now),
        moving=moving,
        failed=failed,
    )
    if phase != record.phase or not record.since:
        kind: Literal["Normal", "Warning"] = "Warning" if phase == "Failed" else "Normal"
        reason = {"Draining": "NodeDraining", "Drained": "NodeDrained", "Failed": "NodeDrainFailed"}[phase]
        notes.append(Note(kind, reason, f"node {node} (nova host {host}): {message}"))
    return Drain(actions, after, notes)


@dataclass(frozen=True)
class Removal:
    """What becomes of a host whose node is gone or left the compute selector."""

    remove: bool
    message: str = ""  # why not (yet), for status


def removed_nodes(known: Mapping[str, str], nodes: Iterable[NodeView]) -> dict[str, str]:
    """Nodes stackops saw run a nova-compute (node -> host) that are now deleted or out of the compute
    selector. Only hosts once mapped to a Node are candidates: a host stackops never saw is not its
    to remove."""
    present = {n.name for n in nodes if n.compute}
    return {node: host for node, host in known.items() if node not in present}


def removal(host: str, service: ServiceView | None, servers: list[str]) -> Removal:
    """Whether `host`'s records (nova service, placement provider, OVN chassis) go now."""
    if service is not None and service.up and not service.forced_down:
        return Removal(False, f"nova-compute on {host} still reports up: removed once it has stopped")
    if servers:
        shown = ", ".join(servers[:SHOWN]) + (f" and {len(servers) - SHOWN} more" if len(servers) > SHOWN else "")
        return Removal(False, f"refused: {len(servers)} servers remain on {host} ({shown}); move or delete them")
    return Removal(True)


@dataclass(frozen=True)
class DeadHost:
    """One step for a compute node that may be dead: force its service down (or lift that), evacuate."""

    force_down: bool = False
    lift_force_down: bool = False
    actions: list[Action] = field(default_factory=list)
    record: DeadHostStatus | None = None
    notes: list[Note] = field(default_factory=list)


def is_dead(node: NodeView, grace: float, now: float) -> bool:
    return node.compute and not node.ready and node.not_ready_since is not None and now - node.not_ready_since >= grace


def dead_host(
    node: NodeView,
    service: ServiceView | None,
    on_host: list[ServerView],
    record: DeadHostStatus | None,
    grace: float,
    evacuate: bool,
    settings: ComputeMaintenance,
    now: float,
) -> DeadHost:
    """A compute node NotReady for `grace` seconds: its nova-compute is forced down (nova then stops
    scheduling there, and allows evacuation), and with `evacuate` its servers are rebuilt elsewhere,
    `settings.concurrency` at a time. Once the node is Ready again, a force-down stackops set is lifted."""
    if not is_dead(node, grace, now):
        if record is None:
            return DeadHost()
        lift = record.forced_down and service is not None and service.forced_down
        return DeadHost(
            lift_force_down=lift,
            notes=[Note("Normal", "ComputeHostRecovered", f"node {node.name} is Ready again")],
        )
    host = service.host if service is not None else (record.host if record else "")
    if service is None:
        message = f"NotReady past {grace:.0f}s; no nova-compute service found for it"
        after = DeadHostStatus(host=host, message=message)
        first = [] if record is not None else [Note("Warning", "ComputeHostDead", f"node {node.name}: {message}")]
        return DeadHost(record=after, notes=first)
    force = not service.forced_down
    forced_by_us = force or (record is not None and record.forced_down)
    evacuating = {s: t for s, t in (record.evacuating if record else {}).items()}
    here = {s.id for s in on_host}
    failed = {s: why for s, why in (record.failed if record else {}).items() if s in here}
    actions: list[Action] = []
    notes: list[Note] = []
    for server_id in [s for s in evacuating if s not in here]:
        del evacuating[server_id]
    if evacuate:
        busy = sum(1 for s in on_host if s.id in evacuating and s.task_state)
        for server in sorted(on_host, key=lambda s: s.id):
            if server.id in failed:
                continue
            asked = evacuating.get(server.id)
            if asked is not None and (not server.task_state or now - seconds(asked) > settings.timeout):
                del evacuating[server.id]
                why = f"was not evacuated ({server.status}{', ' + server.fault if server.fault else ''})"
                failed[server.id] = why
                notes.append(Note("Warning", "ServerNotEvacuated", f"node {node.name}: server {server.id} {why}"))
            elif asked is None and not server.task_state and busy < settings.concurrency:
                actions.append(Action(server.id, "evacuate"))
                evacuating[server.id] = iso(now)
                busy += 1
    what = f"evacuating {len(evacuating)}" if evacuate else "evacuate is off: report only"
    message = f"NotReady past {grace:.0f}s: nova-compute on {host} forced down; {len(on_host)} servers on it ({what})"
    if failed:
        message += f"; {len(failed)} not evacuated: {_named(failed)}"
    after = DeadHostStatus(
        host=host,
        forced_down=forced_by_us,
        instances=len(on_host),
        message=message,
        evacuating=evacuating,
        failed=failed,
    )
    if record is None:
        notes.insert(0, Note("Warning", "ComputeHostDead", f"node {node.name}: {message}"))
    return DeadHost(force_down=force, actions=actions, record=after, notes=notes)


def needs_a_look(nodes: Iterable[NodeView], previous: ComputeStatus, grace: float, now: float) -> bool:
    """Whether a look at nova is due at all: steady state (every compute node's host known, none in
    maintenance, gone or dead, nothing recorded) makes no OpenStack request."""
    nodes = list(nodes)
    if previous.maintenance or previous.removal or previous.dead:
        return True
    if removed_nodes(previous.hosts, nodes):
        return True
    return any(n.compute and (n.maintenance or n.name not in previous.hosts or is_dead(n, grace, now)) for n in nodes)
