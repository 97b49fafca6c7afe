"""The kopf handlers: when to reconcile a cloud, and what to tell the user about it.

create/update/resume converge the cloud and retry while it is on its way; a timer looks again
periodically so crashed pods, failed Jobs and fixes outside the spec are noticed; delete tears the
cloud down behind a finalizer, keeping credentials and volumes unless told otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import datetime
import functools
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import kopf
from kubernetes import client

from stackops.api.models import GROUP, PLURAL, VERSION
from stackops.api.validation import InvalidCloud, parse_cloud
from stackops.health.cloud import HealthSettings
from stackops.health.cloud import observe as observe_health
from stackops.health.monitor import REGISTRY, CloudHealth, CloudMonitor, HealthEvent, run_round
from stackops.kube.client import Kube, Obj
from stackops.kube.credentials_secret import SECRET, credentials_secret_name
from stackops.kube.engine import StepState, observe
from stackops.kube.kinds import CLOUD, PVC, kind_of
from stackops.kube.readiness import readiness
from stackops.reconcile import metrics
from stackops.reconcile.errors import Failure, backoff, classify
from stackops.reconcile.status import Status, build_status, transitions, with_health
from stackops.reconcile.upgrade_status import release_status, upgrade_transitions
from stackops.render.naming import CLOUD_LABEL, MANAGED_BY, MANAGED_BY_LABEL
from stackops.services.base import RenderOptions
from stackops.upgrade.run import reconcile_release

log = logging.getLogger(__name__)

FINALIZER = "stackops.dev/finalizer"
CHECK_INTERVAL = 60.0  # seconds between periodic looks at a converged cloud
WAIT_DELAY_CAP = 15.0  # longest pause between two looks while a step is becoming ready
IDLE_LOOK = 1.0  # how often a cloud's waiter checks, in memory, whether a pass left it waiting
COALESCE = 0.2  # after a wake-up, how long more wake-ups are gathered into the same pass

_kube: Kube | None = None
_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
# per cloud: the step it waits for, and how many looks in a row it has waited for it
_waiting: dict[str, tuple[str, int]] = {}
# per cloud (namespace, name): set when one of its workloads became ready or failed, so a waiting
# cloud looks again now rather than at its next backoff (converge_while_waiting)
_wakeups: dict[tuple[str, str], asyncio.Event] = {}
# per workload (kind, namespace, name): (ready, failed) when last seen, so only a change wakes
_workloads_seen: dict[tuple[str, str, str], tuple[bool, bool]] = {}
WORKLOAD_KINDS = (("apps", "deployments"), ("apps", "statefulsets"), ("apps", "daemonsets"), ("batch", "jobs"))


def _note_waiting(uid: str, step: str) -> None:
    """Count the looks in a row at the same unready step: the waiter backs off only while it stalls."""
    previous = _waiting.get(uid)
    _waiting[uid] = (step, previous[1] + 1 if previous and previous[0] == step else 0)


def kube() -> Kube:
    global _kube
    if _kube is None:
        _kube = Kube(client.ApiClient())  # the configuration stackops.reconcile.operator loaded
    return _kube


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


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _merge_patch(previous: Obj, wanted: Obj) -> Obj:
    """A JSON merge patch from `previous` to `wanted`: maps merge on the server, so a key that
    disappeared (a disabled service, its endpoint) must be nulled explicitly, at any depth."""
    patch: Obj = {key: None for key in previous if key not in wanted}
    for key, value in wanted.items():
        old = previous.get(key)
        patch[key] = _merge_patch(old, value) if isinstance(value, dict) and isinstance(old, dict) else value
    return patch


def _write_status(body: kopf.Body, previous: Status, status: Status) -> None:
    """Patch status only when it changed; keys that disappeared are removed explicitly."""
    if status == previous:
        return
    patch = _merge_patch(previous, status)
    meta = body["metadata"]
    kube().merge_patch(CLOUD, meta["namespace"], meta["name"], {"status": patch}, subresource="status")
    for event in [*transitions(previous, status), *upgrade_transitions(previous, status)]:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


# Temporary failures retried this many times before the status shows them (about 10 s with the
# backoff): a conflict or a restarting API server is retried quietly, a lasting one is named.
RETRIES_BEFORE_STATUS = 3


@metrics.measured
def reconcile_cloud(body: kopf.Body, uid: str, retry: int) -> StepState | None:
    """One pass over one cloud: the step it stopped at (waiting or failed), None when it has none.

    Raises kopf errors for what went wrong on the way, so kopf retries (temporary) or stops
    (permanent). A waiting step is not an error: converge_while_waiting looks again."""
    meta = body["metadata"]
    previous: Status = dict(body.get("status") or {})
    generation = int(meta.get("generation") or 0)
    raw = {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "metadata": dict(meta),
        "spec": dict(body["spec"] or {}),
    }
    release = str(raw["spec"].get("release", ""))
    with _locks[uid]:
        try:
            # The status as last written, not as this handler's body saw it: the timer's pass and a
            # retry may each have written since, and an upgrade's progress must never go back.
            fresh = kube().get(CLOUD, meta["namespace"], meta["name"])
            previous = dict((fresh or body).get("status") or {})
            cloud = parse_cloud(raw)
            if cloud.spec.paused:
                _write_status(
                    body,
                    previous,
                    build_status(previous, generation, release, _now(), health=REGISTRY.latest(uid), paused=True),
                )
                _waiting.pop(uid, None)
                return None
            result = reconcile_release(kube(), cloud, uid, previous, raw["spec"], RenderOptions())
        except Exception as error:  # classified below: nothing escapes unexamined
            failure: Failure = classify(error)
            metrics.reconcile_failed(meta["namespace"], meta["name"], failure.reason)
            if not failure.permanent:
                log.warning("temporary problem with %s: %s", meta["name"], failure.message)
                if retry >= RETRIES_BEFORE_STATUS:  # not a blip: the status says why nothing moves
                    with contextlib.suppress(Exception):  # the API server may be what fails
                        status = build_status(
                            previous, generation, release, _now(), health=REGISTRY.latest(uid), failure=failure
                        )
                        _write_status(body, previous, status)
                raise kopf.TemporaryError(failure.message, delay=backoff(retry)) from error
            log.error("cloud %s cannot be reconciled: %s", meta["name"], failure.message)
            _write_status(
                body,
                previous,
                build_status(previous, generation, release, _now(), health=REGISTRY.latest(uid), failure=failure),
            )
            raise kopf.PermanentError(failure.message) from error
        health = REGISTRY.latest(uid)
        status = build_status(previous, generation, release, _now(), health=health, outcome=result.outcome)
        _write_status(body, previous, release_status(status, previous, result, raw["spec"]))
    current = result.outcome.current
    if current is not None and current.state == "Waiting":
        _note_waiting(uid, current.name)
    else:
        _waiting.pop(uid, None)
    return current


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def reconcile(body: kopf.Body, uid: str, retry: int, **_: Any) -> None:
    """A pass for a new or changed spec; a step that waits is looked at again by
    converge_while_waiting, without kopf's retries (each would write to the cloud)."""
    current = reconcile_cloud(body, uid, retry)
    if current is not None and current.state == "Failed":
        raise kopf.PermanentError(f"step {current.name}: {current.message}")


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=5.0)
async def converge_while_waiting(body: kopf.Body, uid: str, logger: kopf.Logger, **_: Any) -> None:
    """While a step of the cloud waits, another pass as soon as one of its workloads becomes ready
    or fails (workload_changed), or after the step's backoff (1 to 15 s) when none does."""
    key = (body["metadata"]["namespace"], body["metadata"]["name"])
    wake = _wakeups[key] = asyncio.Event()
    try:
        while True:
            waiting = _waiting.get(uid)
            # not waiting: nothing to do but notice when a pass leaves it waiting (no request made)
            delay = backoff(waiting[1], base=1.0, cap=WAIT_DELAY_CAP) if waiting else IDLE_LOOK
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=delay)
            woken = wake.is_set()
            if woken:
                await asyncio.sleep(COALESCE)  # workloads often finish together: one pass for them all
            wake.clear()
            if uid not in _waiting or body["metadata"].get("deletionTimestamp"):
                continue
            if woken:
                _waiting[uid] = (_waiting[uid][0], 0)  # something moved: short looks again
            snapshot = kopf.Body(cast(kopf.RawBody, copy.deepcopy(dict(body))))  # kopf updates `body` live
            try:
                await asyncio.to_thread(reconcile_cloud, snapshot, uid, 0)
            except (kopf.TemporaryError, kopf.PermanentError) as error:
                logger.debug("pass of a waiting cloud: %s", error)  # in status already; look again later
    finally:
        if _wakeups.get(key) is wake:  # not a cloud of the same name made since
            del _wakeups[key]
        _waiting.pop(uid, None)


def _workload_state(obj: Obj) -> tuple[bool, bool]:
    found = readiness(obj)
    return found.ready, found.failed


async def workload_changed(event: kopf.RawEvent, namespace: str | None, **_: Any) -> None:
    """A workload of a cloud became ready, failed or went away: wake the cloud if it is waiting.
    (A watch handler in the event loop: no request, no write; most events change nothing.)"""
    obj = cast(Obj, event["object"])
    meta = obj.get("metadata") or {}
    if namespace is None or "kind" not in obj:
        return
    key = (str(obj["kind"]), namespace, str(meta.get("name")))
    if event["type"] == "DELETED":
        moved = _workloads_seen.pop(key, None) is not None
    else:
        state = _workload_state(obj)
        # what lets a step move on: ready or failed now, and not before (becoming unready after an
        # apply of ours is no news)
        moved = any(state) and _workloads_seen.get(key) != state
        _workloads_seen[key] = state
    wake = _wakeups.get((namespace, str((meta.get("labels") or {}).get(CLOUD_LABEL))))
    if moved and wake is not None:
        wake.set()


for _group, _plural in WORKLOAD_KINDS:
    kopf.on.event(_group, "v1", _plural, labels={CLOUD_LABEL: kopf.PRESENT, MANAGED_BY_LABEL: MANAGED_BY})(
        workload_changed
    )


@kopf.timer(GROUP, VERSION, PLURAL, interval=CHECK_INTERVAL, initial_delay=CHECK_INTERVAL)
def check(body: kopf.Body, uid: str, **_: Any) -> None:
    """A periodic look: notices what changed outside the spec. Never raises for a cloud on its way."""
    if body.get("metadata", {}).get("deletionTimestamp"):
        return
    with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):  # in status already; next tick looks again
        reconcile_cloud(body, uid, 0)


@kopf.on.event("batch", "v1", "jobs", labels={CLOUD_LABEL: kopf.PRESENT, MANAGED_BY_LABEL: MANAGED_BY})
def job_deleted(event: kopf.RawEvent, namespace: str | None, **_: Any) -> None:
    """A failed Job deleted by hand is how a fix outside the spec (the database, a volume) asks for
    the Job to run again: the cloud is looked at once more now, not at the next periodic look.
    (A watch handler: a change handler would annotate every Job it sees.)"""
    job = event["object"]
    if event["type"] != "DELETED" or namespace is None or not readiness({**job, "kind": "Job"}).failed:
        return
    name = job["metadata"]["labels"][CLOUD_LABEL]
    cloud = kube().get(CLOUD, namespace, name)
    if cloud is None or cloud["metadata"].get("deletionTimestamp"):
        return
    log.info("failed job %s was deleted: looking at cloud %s again", job["metadata"]["name"], name)
    with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):  # in status already, as for check()
        reconcile_cloud(kopf.Body(cast(kopf.RawBody, cloud)), cloud["metadata"]["uid"], 0)


# Health rounds run here, not in kopf's handler threads nor asyncio's default ones: a cloud whose
# APIs hang keeps one of these busy for at most a check timeout, and never a reconcile waiting.
_health_threads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health-round")


async def _in_health_thread(work: Callable[..., Any], *args: Any) -> Any:
    """`work(*args)` in a health thread, with kopf's context (kopf.event needs it)."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(
        _health_threads, functools.partial(context.run, work, *args)
    )


def _health_round(
    cloud_body: Obj, uid: str, monitor: CloudMonitor, settings: HealthSettings, seen: dict[str, str]
) -> tuple[CloudHealth, list[HealthEvent]] | None:
    """One health round of a cloud (in a thread of its own): its verdict, and the Events to post."""
    try:
        cloud = parse_cloud({key: cloud_body[key] for key in ("apiVersion", "kind", "metadata", "spec")})
    except InvalidCloud:
        return None  # the status says why already; there is nothing to check
    target = observe_health(kube(), cloud, cloud_body.get("status") or {}, settings)
    return run_round(monitor, target, uid, seen)


def _write_health(body: kopf.Body, uid: str, health: CloudHealth) -> None:
    """Write the verdict into the status as it is now: a reconcile may have written since the round."""
    meta = body["metadata"]
    with _locks[uid]:
        fresh = kube().get(CLOUD, meta["namespace"], meta["name"])
        previous: Status = dict((fresh or {}).get("status") or {})
        if fresh is None or fresh["metadata"].get("deletionTimestamp") or not previous.get("conditions"):
            return  # gone, or not reconciled yet: the first reconcile writes the verdict with the rest
        _write_status(body, previous, with_health(previous, health, previous, _now()))


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=5.0)
async def health(body: kopf.Body, uid: str, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Checks the cloud's health every interval in threads of its own, so reconciliation never waits
    for a slow API; writes status and Events only when the verdict changes."""
    settings: HealthSettings = memo.get("health") or HealthSettings()
    monitor = CloudMonitor(settings.interval, settings.timeout)
    services = (body.get("status") or {}).get("services") or {}
    seen = {name: str(entry.get("health", "")) for name, entry in services.items()}
    try:
        while True:
            snapshot = copy.deepcopy(dict(body))  # kopf updates the live `body` on this thread only
            result = None
            if not snapshot["metadata"].get("deletionTimestamp"):
                try:
                    result = await _in_health_thread(_health_round, snapshot, uid, monitor, settings, seen)
                except Exception as error:  # the cluster's API failing: look again next time
                    logger.warning("health check could not run: %s", classify(error).message)
            if result is not None:
                verdict, events = result
                for event in events:
                    kopf.event(body, type=event.type, reason=event.reason, message=event.message)
                seen = {name: h.state for name, h in verdict.services.items()}
                status = dict(body.get("status") or {})
                if status.get("conditions") and with_health(status, verdict, status, _now()) != status:
                    await _in_health_thread(_write_health, body, uid, verdict)
            await asyncio.sleep(monitor.next_delay())
    finally:
        monitor.close()
        REGISTRY.forget(uid)


@kopf.on.delete(GROUP, VERSION, PLURAL)
def delete(body: kopf.Body, uid: str, **_: Any) -> None:
    """Remove the cloud's objects and wait until they are gone; credentials and volumes stay unless
    deletionPolicy is Delete."""
    meta = body["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    policy = (body.get("spec") or {}).get("deletionPolicy", "Retain")
    client = kube()
    cloud = parse_cloud(
        {
            "apiVersion": body["apiVersion"],
            "kind": body["kind"],
            "metadata": {"name": name, "namespace": namespace},
            "spec": {},
        }
    )
    remaining = []
    for (kind_name, obj_name), obj in observe(client, cloud).items():
        owned = any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences", []) or [])
        if not owned:
            continue
        remaining.append(f"{kind_name.lower()} {obj_name}")
        if not obj["metadata"].get("deletionTimestamp"):
            client.delete(kind_of(obj), namespace, obj_name, propagation="Foreground")
    _waiting.pop(uid, None)
    metrics.forget(namespace, name)
    if remaining:
        raise kopf.TemporaryError(
            f"waiting for {len(remaining)} objects to be deleted: {', '.join(remaining[:5])}", delay=2
        )
    if policy == "Delete":
        client.delete(SECRET, namespace, credentials_secret_name(name))
        for pvc in client.list(PVC, namespace, f"{CLOUD_LABEL}={name}"):
            client.delete(PVC, namespace, pvc["metadata"]["name"])
        log.info("cloud %s deleted with its credentials and volumes (deletionPolicy Delete)", name)
    else:
        log.info("cloud %s deleted; credentials Secret and volumes kept (deletionPolicy Retain)", name)
