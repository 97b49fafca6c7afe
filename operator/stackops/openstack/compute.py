"""The compute hosts' day-2 operations against nova, placement and neutron (openstacksdk): one look
at every compute node of a cloud, doing what stackops.openstack.host_lifecycle decides.

The operator calls `look_after_hosts` periodically (stackops.reconcile.compute_hosts); the real tests
call it too, with the same connection an operator has. A failed call about one server is reported on
that server (status and Event), never retried; a failure to read nova fails the whole look, which
the next one repeats.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from stackops.api.models import ComputeSpec, ComputeStatus, DeadHostStatus, NodeMaintenanceStatus
from stackops.openstack.host_lifecycle import (
    POLICY_METADATA,
    Action,
    DeadHost,
    Drain,
    NodeView,
    Note,
    Removal,
    ServerView,
    ServiceView,
    dead_host,
    drain,
    is_dead,
    iso,
    maintenance_reason,
    needs_disable,
    needs_enable,
    removal,
    removed_nodes,
    service_of,
)

log = logging.getLogger(__name__)

COMPUTE_BINARY = "nova-compute"
# neutron's agents that stand for a host's OVN chassis; deleting them deletes the chassis
OVN_AGENT_TYPES = ("OVN Controller agent", "OVN Controller Gateway agent", "OVN Metadata agent")


@dataclass(frozen=True)
class HostsLook:
    """What one look saw and did: the compute part of the cloud's status, and the Events to post."""

    status: ComputeStatus
    notes: list[Note] = field(default_factory=list)


def services(conn: Any) -> list[ServiceView]:
    return [
        ServiceView(
            id=str(s.id),
            host=str(s.host),
            enabled=s.status == "enabled",
            disabled_reason=s.disabled_reason,
            up=s.state == "up",
            forced_down=bool(s.is_forced_down),
        )
        for s in conn.compute.services(binary=COMPUTE_BINARY)
    ]


def _server_view(server: Any) -> ServerView:
    return ServerView(
        id=str(server.id),
        status=str(server.status),
        host=str(server.compute_host or ""),
        task_state=server.task_state or None,
        policy=(server.metadata or {}).get(POLICY_METADATA),
        fault=str((server.fault or {}).get("message", "")),
    )


def servers_on(conn: Any, host: str) -> list[ServerView]:
    """Every project's servers on `host`, as nova's database has them now."""
    return [_server_view(s) for s in conn.compute.servers(details=True, all_projects=True, compute_host=host)]


def _servers(conn: Any, ids: Iterable[str]) -> list[ServerView]:
    found = [conn.compute.find_server(server_id, ignore_missing=True, all_projects=True) for server_id in ids]
    return [_server_view(s) for s in found if s is not None]


def _act(conn: Any, action: Action) -> str:
    """Make the call `action` names; '' when nova took it, else why not."""
    import openstack.exceptions

    compute = conn.compute
    try:
        if action.how == "live":
            compute.live_migrate_server(action.server, host=None, block_migration="auto")
        elif action.how == "cold":
            compute.migrate_server(action.server)
        elif action.how == "stop":
            compute.stop_server(action.server)
        elif action.how == "evacuate":
            compute.evacuate_server(action.server)
        else:
            compute.confirm_server_resize(action.server)
    except openstack.exceptions.SDKException as error:
        status = getattr(error, "status_code", None)
        details = getattr(error, "details", None) or str(error).splitlines()[0]
        return f"nova refused to {action.how} it: {f'HTTP {status} ' if status else ''}{details}"
    return ""


def _run(
    conn: Any, node: str, actions: list[Action], asked: dict[str, str], failed: dict[str, str], notes: list[Note]
) -> None:
    """Make the calls; one nova refused moves its server from `asked` to `failed` (not retried)."""
    for action in actions:
        why = _act(conn, action)
        if not why:
            log.info("node %s: asked nova to %s server %s", node, action.how, action.server)
            continue
        asked.pop(action.server, None)
        failed[action.server] = why
        notes.append(Note("Warning", "ServerNotMoved", f"node {node}: server {action.server} {why}"))


def maintain(
    conn: Any, node: NodeView, service: ServiceView, record: NodeMaintenanceStatus | None, spec: ComputeSpec, now: float
) -> Drain:
    """One step of `node`'s maintenance. The service is disabled FIRST and the host's servers listed
    only after: from the disable on the scheduler places nothing there, so no build can land on the
    host unseen between the list and the disable (one the scheduler placed just before it shows up on
    a later look: host_lifecycle.DRAIN_SETTLE)."""
    if needs_disable(service):
        conn.compute.disable_service(service.id, disabled_reason=maintenance_reason(node.name))
        log.info("node %s: nova-compute on %s disabled for maintenance", node.name, service.host)
    record = record or NodeMaintenanceStatus(host=service.host)
    on_host = servers_on(conn, service.host)
    here = {s.id for s in on_host}
    moved = _servers(conn, [s for s in record.moving if s not in here])
    step = drain(node.name, service.host, on_host, moved, record, spec.maintenance, now)
    moving, failed, notes = dict(step.record.moving), dict(step.record.failed), list(step.notes)
    _run(conn, node.name, step.actions, moving, failed, notes)
    return Drain(step.actions, step.record.model_copy(update={"moving": moving, "failed": failed}), notes)


def end_maintenance(conn: Any, node: str, service: ServiceView | None) -> Note:
    """The annotation is gone: the service is enabled again, only if stackops disabled it."""
    if needs_enable(service, node):
        assert service is not None
        conn.compute.enable_service(service.id)
        return Note("Normal", "MaintenanceEnded", f"node {node}: nova-compute on {service.host} enabled again")
    why = f"disabled by someone else ({service.disabled_reason})" if service and not service.enabled else "enabled"
    return Note("Normal", "MaintenanceEnded", f"node {node}: its nova-compute was left as it was: {why}")


def remove_host(conn: Any, host: str, service: ServiceView | None) -> Removal:
    """Remove what OpenStack keeps of `host`, unless servers remain there: its nova-compute service
    record (nova also deletes its compute nodes' resource providers), any placement provider left of
    it, and its OVN chassis (deleting neutron's OVN agents of the host deletes the chassis)."""
    decision = removal(host, service, [s.id for s in servers_on(conn, host)])
    if not decision.remove:
        return decision
    providers = {host}
    for hypervisor in conn.compute.hypervisors(details=True):
        if (getattr(hypervisor, "service_details", None) or {}).get("host") == host:
            providers.add(str(hypervisor.name))
    if service is not None:
        conn.compute.delete_service(service.id, ignore_missing=True)
    for provider in list(conn.placement.resource_providers()):
        if provider.name in providers:
            conn.placement.delete_resource_provider(provider, ignore_missing=True)
    if any(entry.get("type") == "network" for entry in conn.service_catalog or []):
        for agent in list(conn.network.agents(host=host)):
            if agent.agent_type in OVN_AGENT_TYPES:
                conn.network.delete_agent(agent, ignore_missing=True)
    return decision


def recover(
    conn: Any, node: NodeView, service: ServiceView | None, record: DeadHostStatus | None, spec: ComputeSpec, now: float
) -> DeadHost:
    """One step for a compute node that may be dead (host_lifecycle.dead_host): force down first, so
    that nova allows the evacuations asked after it."""
    if record is None and not is_dead(node, spec.dead_host_grace_seconds, now):
        return DeadHost()  # the usual case: no request
    on_host = servers_on(conn, service.host) if service is not None else []
    step = dead_host(node, service, on_host, record, spec.dead_host_grace_seconds, spec.evacuate, spec.maintenance, now)
    if service is not None and step.force_down:
        conn.compute.update_service_forced_down(service.id, forced=True)
        log.warning("node %s: nova-compute on %s forced down", node.name, service.host)
    if service is not None and step.lift_force_down:
        import openstack.exceptions

        try:
            conn.compute.update_service_forced_down(service.id, forced=False)
        except openstack.exceptions.BadRequestException as error:
            # nova refuses while evacuations are `done` but not `completed`: the host's nova-compute
            # completes them when it starts again; until then the force-down stays, and so does the record
            why = f"Ready again; force-down stays until nova accepts lifting it: {error.details or error}"
            assert record is not None
            return DeadHost(record=record.model_copy(update={"message": why}))
    if step.record is None:
        return step
    evacuating, failed, notes = dict(step.record.evacuating), dict(step.record.failed), list(step.notes)
    _run(conn, node.name, step.actions, evacuating, failed, notes)
    record = step.record.model_copy(update={"evacuating": evacuating, "failed": failed})
    return DeadHost(step.force_down, step.lift_force_down, step.actions, record, notes)


def look_after_hosts(
    conn: Any, nodes: list[NodeView], spec: ComputeSpec, previous: ComputeStatus, now: float
) -> HostsLook:
    """One look at every compute node: maintenance started, advanced or ended; hosts of removed
    nodes cleaned up (or refused); dead hosts forced down and evacuated (when opted in)."""
    found = services(conn)
    by_host = {s.host: s for s in found}
    notes: list[Note] = []
    status = ComputeStatus(hosts=dict(previous.hosts))
    compute_nodes = [n for n in nodes if n.compute]
    for node in compute_nodes:
        service = service_of(node, found)
        if service is not None:
            status.hosts[node.name] = service.host
    for node in compute_nodes:
        service = service_of(node, found)
        record = previous.maintenance.get(node.name)
        if node.maintenance and service is None:
            message = f"no nova-compute service for node {node.name} (hosts tried: {', '.join(sorted(node.names))})"
            status.maintenance[node.name] = NodeMaintenanceStatus(phase="Failed", message=message)
            if record is None or record.message != message:
                notes.append(Note("Warning", "NodeDrainFailed", message))
        elif node.maintenance and service is not None:
            step = maintain(conn, node, service, record, spec, now)
            status.maintenance[node.name] = step.record
            notes += step.notes
        dead = recover(conn, node, service, previous.dead.get(node.name), spec, now)
        if dead.record is not None:
            status.dead[node.name] = dead.record
        notes += dead.notes
    maintained = {n.name for n in compute_nodes if n.maintenance}
    for node_name, record in previous.maintenance.items():
        if node_name not in maintained:
            host = record.host or status.hosts.get(node_name, "")
            notes.append(end_maintenance(conn, node_name, by_host.get(host)))
    for node_name, host in removed_nodes(status.hosts, nodes).items():
        decision = remove_host(conn, host, by_host.get(host))
        if decision.remove:
            del status.hosts[node_name]
            notes.append(Note("Normal", "ComputeHostRemoved", f"node {node_name}: host {host} removed from OpenStack"))
            continue
        status.removal[node_name] = decision.message
        if previous.removal.get(node_name) != decision.message:
            refused = decision.message.startswith("refused")
            notes.append(
                Note(
                    "Warning" if refused else "Normal",
                    "ComputeHostRemovalWaits",
                    f"node {node_name}: {decision.message}",
                )
            )
    log.debug("compute hosts looked at, %s", iso(now))
    return HostsLook(status, notes)
