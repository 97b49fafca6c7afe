"""A cloud's compute nodes looked after (docs/operations.md): maintenance, removal, dead hosts.

The kopf layer calls `look_after_compute` periodically for every cloud (handlers.compute_hosts). It
reads the Nodes (the operator may list them cluster-wide already), and only when one of them asks
for something, or something is under way, connects to OpenStack as the cloud's admin and takes one
step (stackops.openstack.compute.look_after_hosts). What it saw goes into status.compute through
the one status writer, its Events through the operator's poster.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from stackops.api.models import ComputeStatus
from stackops.api.validation import InvalidCloud, parse_cloud
from stackops.health.cloud import openstack_access
from stackops.kube.kinds import CLOUD, NODE
from stackops.openstack.compute import HostsLook, look_after_hosts
from stackops.openstack.host_lifecycle import needs_a_look, node_view
from stackops.reconcile.state import OperatorState
from stackops.reconcile.status import load_status
from stackops.reconcile.status_writer import write_status
from stackops.reconcile.transitions import Transition

log = logging.getLogger(__name__)


def look_after_compute(
    state: OperatorState,
    body: Mapping[str, Any],
    uid: str,
    now: float | None = None,
    connect: Callable[[], Any] | None = None,
) -> HostsLook | None:
    """One look at the compute nodes of the cloud `body`; None when there was nothing to look at (no
    OpenStack request made). `connect` replaces the admin connection (tests)."""
    now = time.time() if now is None else now
    try:
        cloud = parse_cloud({key: body[key] for key in ("apiVersion", "kind", "metadata", "spec")})
    except InvalidCloud:
        return None  # the status says why already
    nova = cloud.spec.services.nova
    status = load_status(body.get("status"))
    deployed = status.services.get("nova")
    never_deployed = deployed is None or (deployed.release is None and status.compute is None)
    if cloud.spec.paused or not nova.enabled or never_deployed:
        return None  # nothing to do until nova was Ready once (then on, through its rollouts); nothing while paused
    previous = status.compute or ComputeStatus()
    labels = cloud.spec.nodes.compute.match_labels
    nodes = [node_view(node, labels) for node in state.kube.list(NODE, "")]
    if not needs_a_look(nodes, previous, nova.compute.dead_host_grace_seconds, now):
        return None
    if connect is None:
        access = openstack_access(state.kube, cloud, state.health_settings)
        if access is None:
            return None
        connect = access.connect
    look = look_after_hosts(connect(), nodes, nova.compute, previous, now)
    _write(state, body, uid, look)
    return look


def _write(state: OperatorState, body: Mapping[str, Any], uid: str, look: HostsLook) -> None:
    """status.compute as this look left it, into the status as it is now (a pass may have written
    since the look began); then its Events."""
    meta = body["metadata"]
    with state.locks[uid]:
        fresh = state.kube.get(CLOUD, meta["namespace"], meta["name"])
        previous: Mapping[str, Any] = dict((fresh or {}).get("status") or {})
        if fresh is None or fresh["metadata"].get("deletionTimestamp") or not previous.get("conditions"):
            return  # gone, or never reconciled (nova cannot be deployed then)
        status = load_status(previous).model_copy(update={"compute": look.status})
        write_status(state, body, previous, status)
    for note in look.notes:
        log.info("%s: %s", note.reason, note.message)
        state.post_event(body, Transition(note.type, note.reason, note.message))
