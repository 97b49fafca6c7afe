"""The one place a cloud's status is written, by a pass and by the health checks alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackops.api.models import OpenStackCloudStatus
from stackops.kube.client import Obj
from stackops.kube.kinds import CLOUD
from stackops.reconcile.state import OperatorState
from stackops.reconcile.status import dump_status, load_status
from stackops.reconcile.transitions import transitions


def merge_patch(previous: Mapping[str, Any], wanted: Mapping[str, Any]) -> Obj:
    """A JSON merge patch from `previous` to `wanted`: maps merge on the server, so a key that
    disappeared (a disabled service, its endpoint) must be nulled explicitly, at any depth."""
    patch: Obj = {key: None for key in previous if key not in wanted}
    for key, value in wanted.items():
        old = previous.get(key)
        patch[key] = merge_patch(old, value) if isinstance(value, dict) and isinstance(old, dict) else value
    return patch


def write_status(
    state: OperatorState, body: Mapping[str, Any], previous: Mapping[str, Any], status: OpenStackCloudStatus
) -> bool:
    """Patch the status of the cloud `body` from `previous` (as last written) to `status`, only when
    it changed, and post an Event for each transition. True when it wrote."""
    wanted = dump_status(status)
    if wanted == previous:
        return False
    meta = body["metadata"]
    patch = merge_patch(previous, wanted)
    state.kube.merge_patch(CLOUD, meta["namespace"], meta["name"], {"status": patch}, subresource="status")
    for event in transitions(load_status(previous), status):
        state.post_event(body, event)
    return True
