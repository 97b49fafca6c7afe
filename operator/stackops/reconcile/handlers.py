"""The kopf handlers: when a cloud gets a pass (stackops.reconcile.cloud_pass), and what kopf is told.

create/update/resume run a pass for a new or changed spec; a waiter runs another while a step waits;
a timer looks again periodically so crashed pods, failed Jobs and fixes outside the spec are
noticed; health checks run beside; delete tears the cloud down behind a finalizer, keeping
credentials and volumes unless told otherwise. Every handler finds the operator's state
(stackops.reconcile.state.OperatorState) in kopf's memo.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any, cast

import kopf
from kubernetes import client

from stackops.api.models import GROUP, PLURAL, VERSION
from stackops.api.validation import InvalidCloud, parse_cloud
from stackops.health.cloud import observe as observe_health
from stackops.health.monitor import CloudHealth, CloudMonitor, HealthEvent, run_round
from stackops.kube.client import Obj
from stackops.kube.kinds import CLOUD
from stackops.kube.readiness import readiness
from stackops.reconcile.cloud_pass import PassResult, health_changes, run_pass, write_health
from stackops.reconcile.compute_hosts import look_after_compute
from stackops.reconcile.errors import backoff, classify
from stackops.reconcile.state import OperatorState
from stackops.reconcile.teardown import tear_down
from stackops.reconcile.transitions import Transition
from stackops.render.naming import CLOUD_LABEL, MANAGED_BY, MANAGED_BY_LABEL

log = logging.getLogger(__name__)

FINALIZER = "stackops.dev/finalizer"
CHECK_INTERVAL = 60.0  # seconds between periodic looks at a converged cloud
COMPUTE_LOOK = 20.0  # seconds between looks at a cloud's compute nodes (maintenance, removal, dead hosts)
WAIT_DELAY_CAP = 15.0  # longest pause between two looks while a step is becoming ready
IDLE_LOOK = 1.0  # how often a cloud's waiter checks, in memory, whether a pass left it waiting
COALESCE = 0.2  # after a wake-up, how long more wake-ups are gathered into the same pass
WORKLOAD_KINDS = (("apps", "deployments"), ("apps", "statefulsets"), ("apps", "daemonsets"), ("batch", "jobs"))


def operator_state(memo: kopf.Memo) -> OperatorState:
    """The state stackops.reconcile.operator made at startup, as kopf hands it to a handler."""
    state = memo.get("state")
    if not isinstance(state, OperatorState):
        raise kopf.PermanentError("the operator was started without its state (stackops.reconcile.operator.run)")
    return state


def post_event(body: Mapping[str, Any], event: Transition) -> None:
    """An Event about the cloud, through kopf (which posts it in the background)."""
    kopf.event(cast(kopf.Body, body), type=event.type, reason=event.reason, message=event.message)


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    """kopf connects with the configuration the operator loaded (in-cluster, or --kubeconfig), so
    the watch and stackops' own requests always act as the same identity."""
    config = client.Configuration.get_default_copy()
    header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix("authorization")
    parts = header.split(" ", 1) if header else []
    return kopf.ConnectionInfo(
        server=config.host,
        ca_path=config.ssl_ca_cert,
        insecure=not config.verify_ssl,
        scheme=parts[0] if len(parts) == 2 else None,
        token=parts[-1] if parts else None,
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
    )


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="stackops.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="stackops.dev", key="last-handled-configuration"
    )
    # stackops posts its own Events on transitions; kopf's per-retry log Events would only be noise.
    settings.posting.level = logging.CRITICAL + 10
    # Exclusivity comes from a Lease (see stackops.reconcile.operator), not from kopf's peering.
    settings.peering.standalone = True
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    settings.batching.error_delays = (1, 2, 5, 10, 20, 30, 60)
    settings.execution.max_workers = 8


def _kopf_errors(result: PassResult, retry: int) -> None:
    """What kopf makes of a pass: retry later (temporary), or stop (permanent). A waiting step is
    not an error: converge_while_waiting looks again."""
    failure = result.failure
    if failure is not None and failure.permanent:
        raise kopf.PermanentError(failure.message)
    if failure is not None:
        raise kopf.TemporaryError(failure.message, delay=backoff(retry))


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def reconcile(body: kopf.Body, uid: str, retry: int, memo: kopf.Memo, **_: Any) -> None:
    """A pass for a new or changed spec; a step that waits is looked at again by
    converge_while_waiting, without kopf's retries (each would write to the cloud)."""
    result = run_pass(operator_state(memo), body, uid, retry)
    _kopf_errors(result, retry)
    current = result.current
    if current is not None and current.state == "Failed":
        raise kopf.PermanentError(f"step {current.name}: {current.message}")


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=5.0)
async def converge_while_waiting(body: kopf.Body, uid: str, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """While a step of the cloud waits, another pass as soon as one of its workloads becomes ready
    or fails (workload_changed), or after the step's backoff (1 to 15 s) when none does."""
    state = operator_state(memo)
    key = (body["metadata"]["namespace"], body["metadata"]["name"])
    wake = state.wakeups[key] = asyncio.Event()
    try:
        while True:
            waiting = state.waiting.get(uid)
            # not waiting: nothing to do but notice when a pass leaves it waiting (no request made)
            delay = backoff(waiting[1], base=1.0, cap=WAIT_DELAY_CAP) if waiting else IDLE_LOOK
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=delay)
            woken = wake.is_set()
            if woken:
                await asyncio.sleep(COALESCE)  # workloads often finish together: one pass for them all
            wake.clear()
            if uid not in state.waiting or body["metadata"].get("deletionTimestamp"):
                continue
            if woken:
                state.waiting[uid] = (state.waiting[uid][0], 0)  # something moved: short looks again
            snapshot = copy.deepcopy(dict(body))  # kopf updates `body` live
            result = await asyncio.to_thread(run_pass, state, snapshot, uid)
            if result.failure is not None:
                logger.debug("pass of a waiting cloud: %s", result.failure.message)  # in status; look again later
    finally:
        if state.wakeups.get(key) is wake:  # not a cloud of the same name made since
            del state.wakeups[key]
        state.waiting.pop(uid, None)


def _workload_state(obj: Obj) -> tuple[bool, bool]:
    found = readiness(obj)
    return found.ready, found.failed


async def workload_changed(event: kopf.RawEvent, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    """A workload of a cloud became ready, failed or went away: wake the cloud if it is waiting.
    (A watch handler in the event loop: no request, no write; most events change nothing.)"""
    state = operator_state(memo)
    obj = cast(Obj, event["object"])
    meta = obj.get("metadata") or {}
    if namespace is None or "kind" not in obj:
        return
    key = (str(obj["kind"]), namespace, str(meta.get("name")))
    if event["type"] == "DELETED":
        moved = state.workloads_seen.pop(key, None) is not None
    else:
        found = _workload_state(obj)
        # what lets a step move on: ready or failed now, and not before (becoming unready after an
        # apply of ours is no news)
        moved = any(found) and state.workloads_seen.get(key) != found
        state.workloads_seen[key] = found
    wake = state.wakeups.get((namespace, str((meta.get("labels") or {}).get(CLOUD_LABEL))))
    if moved and wake is not None:
        wake.set()


for _group, _plural in WORKLOAD_KINDS:
    kopf.on.event(_group, "v1", _plural, labels={CLOUD_LABEL: kopf.PRESENT, MANAGED_BY_LABEL: MANAGED_BY})(
        workload_changed
    )


@kopf.timer(GROUP, VERSION, PLURAL, interval=CHECK_INTERVAL, initial_delay=CHECK_INTERVAL)
def check(body: kopf.Body, uid: str, memo: kopf.Memo, **_: Any) -> None:
    """A periodic look: notices what changed outside the spec. Never raises for a cloud on its way
    (what went wrong is in the status already; the next tick looks again)."""
    if body.get("metadata", {}).get("deletionTimestamp"):
        return
    run_pass(operator_state(memo), body, uid)


@kopf.on.event("batch", "v1", "jobs", labels={CLOUD_LABEL: kopf.PRESENT, MANAGED_BY_LABEL: MANAGED_BY})
def job_deleted(event: kopf.RawEvent, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    """A failed Job deleted by hand is how a fix outside the spec (the database, a volume) asks for
    the Job to run again: the cloud is looked at once more now, not at the next periodic look.
    (A watch handler: a change handler would annotate every Job it sees.)"""
    job = event["object"]
    if event["type"] != "DELETED" or namespace is None or not readiness({**job, "kind": "Job"}).failed:
        return
    state = operator_state(memo)
    name = job["metadata"]["labels"][CLOUD_LABEL]
    cloud = state.kube.get(CLOUD, namespace, name)
    if cloud is None or cloud["metadata"].get("deletionTimestamp"):
        return
    log.info("failed job %s was deleted: looking at cloud %s again", job["metadata"]["name"], name)
    run_pass(state, cloud, cloud["metadata"]["uid"])  # what went wrong is in the status, as for check()


@kopf.timer(GROUP, VERSION, PLURAL, interval=COMPUTE_LOOK, initial_delay=COMPUTE_LOOK)
def compute_hosts(body: kopf.Body, uid: str, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """The compute nodes' day-2 operations (reconcile.compute_hosts): a step of each maintenance,
    removal or dead host under way. Never raises: what failed is looked at again next time."""
    if body.get("metadata", {}).get("deletionTimestamp"):
        return
    try:
        look_after_compute(operator_state(memo), copy.deepcopy(dict(body)), uid)
    except Exception as error:
        logger.warning("compute nodes not looked after: %s", classify(error).message)


async def _in_health_thread(state: OperatorState, work: Callable[..., Any], *args: Any) -> Any:
    """`work(*args)` in a health thread, with kopf's context (kopf.event needs it)."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(
        state.health_threads, functools.partial(context.run, work, *args)
    )


def _health_round(
    state: OperatorState, cloud_body: Obj, uid: str, monitor: CloudMonitor, seen: dict[str, str]
) -> tuple[CloudHealth, list[HealthEvent]] | None:
    """One health round of a cloud (in a thread of its own): its verdict, and the Events to post."""
    try:
        cloud = parse_cloud({key: cloud_body[key] for key in ("apiVersion", "kind", "metadata", "spec")})
    except InvalidCloud:
        return None  # the status says why already; there is nothing to check
    target = observe_health(state.kube, cloud, cloud_body.get("status") or {}, state.health_settings)
    return run_round(monitor, target, uid, seen, state.health)


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=5.0)
async def health(body: kopf.Body, uid: str, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Checks the cloud's health every interval in threads of its own, so reconciliation never waits
    for a slow API; writes status and Events only when the verdict changes."""
    state = operator_state(memo)
    settings = state.health_settings
    monitor = CloudMonitor(settings.interval, settings.timeout)
    services = (body.get("status") or {}).get("services") or {}
    seen = {name: str(entry.get("health", "")) for name, entry in services.items()}
    try:
        while True:
            snapshot = copy.deepcopy(dict(body))  # kopf updates the live `body` on this thread only
            result = None
            if not snapshot["metadata"].get("deletionTimestamp"):
                try:
                    result = await _in_health_thread(state, _health_round, state, snapshot, uid, monitor, seen)
                except Exception as error:  # the cluster's API failing: look again next time
                    logger.warning("health check could not run: %s", classify(error).message)
            if result is not None:
                verdict, events = result
                for event in events:
                    kopf.event(body, type=event.type, reason=event.reason, message=event.message)
                seen = {name: h.state for name, h in verdict.services.items()}
                if health_changes(dict(body.get("status") or {}), verdict, state.clock()):
                    await _in_health_thread(state, write_health, state, body, uid, verdict)
            await asyncio.sleep(monitor.next_delay())
    finally:
        monitor.close()
        state.health.forget(uid)


@kopf.on.delete(GROUP, VERSION, PLURAL)
def delete(body: kopf.Body, uid: str, memo: kopf.Memo, **_: Any) -> None:
    """Remove the cloud's objects and wait until they are gone; credentials and volumes stay unless
    deletionPolicy is Delete."""
    remaining = tear_down(operator_state(memo), body, uid)
    if remaining:
        raise kopf.TemporaryError(
            f"waiting for {len(remaining)} objects to be deleted: {', '.join(remaining[:5])}", delay=2
        )
