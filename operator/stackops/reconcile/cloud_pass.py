"""One pass over one cloud, the operator's only way of reconciling it: the kopf handlers, the timer,
the waiter and the watch of Jobs call it, and so do the tests.

A pass reads the cloud's status as last written, judges spec.release against it (the upgrade
phase, stackops.upgrade.run: it may end the pass here, changing nothing), reads the cloud's
objects and renders its plan once, takes an upgrade under way one step further (it may end the
pass there too), converges the cloud (apply what changed, prune what is no longer rendered), and
writes the status built from what it saw, the upgrade's part and the latest health verdict.
The health checks' verdicts between passes go through the same writer (`write_health`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stackops.api.models import OpenStackCloud, OpenStackCloudStatus
from stackops.api.validation import parse_cloud
from stackops.credentials import RotationAction, RotationState, rotation_action
from stackops.health.monitor import CloudHealth
from stackops.kube.credentials_secret import take_rotation
from stackops.kube.engine import Outcome, Snapshot, StepState, converge, snapshot, with_node_addresses
from stackops.kube.kinds import CLOUD
from stackops.plan import migrated_keys, rotated_credentials
from stackops.reconcile.errors import Failure, classify
from stackops.reconcile.state import OperatorState
from stackops.reconcile.status import PassView, build_status, dump_status, load_status, restores, with_health
from stackops.reconcile.status_writer import write_status
from stackops.upgrade.record import spec_hashes
from stackops.upgrade.run import Upgrade, UpgradeProgress, release_phase

log = logging.getLogger(__name__)

# Temporary failures retried this many times before the status shows them (about 10 s with the
# backoff): a conflict or a restarting API server is retried quietly, a lasting one is named.
RETRIES_BEFORE_STATUS = 3


@dataclass(frozen=True)
class PassResult:
    """How a pass ended: the step it stopped at (waiting or failed; None when it has none), or the
    failure that stopped it (in the status already, once it is not a blip)."""

    current: StepState | None = None
    failure: Failure | None = None


def run_pass(state: OperatorState, body: Mapping[str, Any], uid: str, retry: int = 0) -> PassResult:
    """One pass over the cloud `body` (as a handler or a read saw it); `retry` counts the passes in a
    row that failed for a temporary reason."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    previous: Mapping[str, Any] = dict(body.get("status") or {})
    spec = dict(body.get("spec") or {})
    generation = int(meta.get("generation") or 0)
    release = str(spec.get("release", ""))
    with state.metrics.reconciling(namespace, name), state.locks[uid]:
        try:
            # The status as last written, not as the caller saw it: the timer's pass and a retry
            # may each have written since, and an upgrade's progress must never go back.
            fresh = state.kube.get(CLOUD, namespace, name)
            previous = dict((fresh or body).get("status") or {})
            cloud = parse_cloud(
                {"apiVersion": body["apiVersion"], "kind": body["kind"], "metadata": dict(meta), "spec": spec}
            )
            if cloud.spec.paused:
                view = PassView(generation, release, paused=True)
            else:
                outcome, progress, rotation = _converge_or_upgrade(state, cloud, uid, load_status(previous), spec)
                view = PassView(
                    generation,
                    release,
                    outcome,
                    upgrade=progress,
                    spec_hashes=spec_hashes(spec),
                    restores=restores(cloud),
                    rotation=rotation,
                )
        except Exception as error:  # classified here: nothing escapes unexamined
            failure = classify(error)
            state.metrics.reconcile_failed(namespace, name, failure.reason)
            failed = PassView(generation, release, failure=failure)
            if failure.permanent:
                log.error("cloud %s cannot be reconciled: %s", name, failure.message)
                _write(state, body, uid, previous, failed)
            else:
                log.warning("temporary problem with %s: %s", name, failure.message)
                if retry >= RETRIES_BEFORE_STATUS:  # not a blip: the status says why nothing moves
                    with contextlib.suppress(Exception):  # the API server may be what fails
                        _write(state, body, uid, previous, failed)
            return PassResult(failure=failure)
        _write(state, body, uid, previous, view)
    current = view.outcome.current if view.outcome is not None else None
    state.note_pass(uid, current)
    return PassResult(current)


def _converge_or_upgrade(
    state: OperatorState, cloud: OpenStackCloud, uid: str, previous: OpenStackCloudStatus, spec: Mapping[str, Any]
) -> tuple[Outcome, UpgradeProgress, RotationState | None]:
    """The steps of the pass: the upgrade's while it ends the pass, else the converge's, and a
    credential rotation's next phase when there is no upgrade (and the rotation's state then)."""
    progress = release_phase(cloud, previous, spec)
    if progress.stopped is not None:
        return progress.stopped, progress, None
    options = with_node_addresses(state.kube, cloud, state.render_options)
    seen = snapshot(state.kube, cloud, uid, options)
    if progress.record is not None:
        progress = Upgrade(state.kube, cloud, uid, previous, progress.record, seen, options).run()
        if progress.stopped is not None:
            return progress.stopped, progress, None
    outcome = progress.converged(converge(state.kube, cloud, uid, seen))
    if progress.record is not None:
        return outcome, progress, None  # a rotation waits for the upgrade, which converged last
    rotation = seen.credentials.rotation
    action = rotation_action(rotation, cloud.spec.credential_rotation.generation, outcome.done)
    if action is RotationAction.NONE:
        return outcome, progress, rotation
    taken = _take_rotation(state, cloud, seen, action)
    if taken is None:
        return outcome, progress, rotation
    # the next phase's objects right away: its Jobs start, and the pass waits for them
    seen = snapshot(state.kube, cloud, uid, options)
    return converge(state.kube, cloud, uid, seen), progress, seen.credentials.rotation


def _take_rotation(
    state: OperatorState, cloud: OpenStackCloud, seen: Snapshot, action: RotationAction
) -> RotationState | None:
    spec, meta = cloud.spec, cloud.metadata
    requested = spec.credential_rotation.generation
    rotated, keys = rotated_credentials(spec), migrated_keys(spec)
    taken = take_rotation(
        state.kube, meta.name, meta.namespace, seen.credentials.rotation, action, requested, rotated, keys
    )
    if taken is not None:
        log.info("cloud %s: credential rotation %s", meta.name, taken)
    return taken


def _write(
    state: OperatorState, body: Mapping[str, Any], uid: str, previous: Mapping[str, Any], view: PassView
) -> None:
    status = build_status(load_status(previous), view, state.clock(), state.health.latest(uid))
    write_status(state, body, previous, status)


def write_health(state: OperatorState, body: Mapping[str, Any], uid: str, verdict: CloudHealth) -> None:
    """The health checks' verdict into the status as it is now: a pass may have written since the
    round. Between passes, this is how a failed check shows (a pass reads the verdict itself)."""
    meta = body["metadata"]
    with state.locks[uid]:
        fresh = state.kube.get(CLOUD, meta["namespace"], meta["name"])
        previous: Mapping[str, Any] = dict((fresh or {}).get("status") or {})
        if fresh is None or fresh["metadata"].get("deletionTimestamp") or not previous.get("conditions"):
            return  # gone, or not reconciled yet: the first pass writes the verdict with the rest
        status = load_status(previous)
        write_status(state, body, previous, with_health(status, verdict, status, state.clock()))


def health_changes(status: Mapping[str, Any], verdict: CloudHealth, now: str) -> bool:
    """Whether `verdict` would change the status the cloud showed (no request made): a round whose
    verdict is already shown writes nothing."""
    if not status.get("conditions"):
        return False
    shown = load_status(status)
    return dump_status(with_health(shown, verdict, shown, now)) != status
