"""The kopf handlers: when to reconcile a cloud, and what to tell the user about it.

create/update/resume converge the cloud and retry while it is on its way; a timer looks again
periodically so crashed pods, failed Jobs and fixes outside the spec are noticed; delete tears the
cloud down behind a finalizer, keeping credentials and volumes unless told otherwise.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import threading
from collections import defaultdict
from typing import Any

import kopf
from kubernetes import client

from stackops.api.models import GROUP, PLURAL, VERSION
from stackops.api.validation import parse_cloud
from stackops.reconcile.credentials import SECRET, credentials_secret_name
from stackops.reconcile.engine import converge, observe
from stackops.reconcile.errors import Failure, backoff, classify
from stackops.reconcile.kube import Kube, Obj
from stackops.reconcile.resources import CLOUD, PVC, kind_of
from stackops.reconcile.status import Status, build_status, transitions
from stackops.render.naming import CLOUD_LABEL
from stackops.services.base import RenderOptions

log = logging.getLogger(__name__)

FINALIZER = "stackops.dev/finalizer"
CHECK_INTERVAL = 60.0  # seconds between periodic looks at a converged cloud
WAIT_DELAY_CAP = 15.0  # longest pause between two looks while a step is becoming ready

_kube: Kube | None = None
_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
# per cloud: the step it waits for, and how many looks in a row it has waited for it
_waiting: dict[str, tuple[str, int]] = {}


def _wait_delay(uid: str, step: str) -> float:
    """Short while steps keep advancing, backing off only while the same step stays unready."""
    previous = _waiting.get(uid)
    stalled = previous[1] + 1 if previous and previous[0] == step else 0
    _waiting[uid] = (step, stalled)
    return backoff(stalled, base=1.0, cap=WAIT_DELAY_CAP)


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


def _write_status(body: kopf.Body, previous: Status, status: Status) -> None:
    """Patch status only when it changed; keys that disappeared are removed explicitly."""
    if status == previous:
        return
    patch: Obj = {key: None for key in previous if key not in status}
    patch.update(status)
    meta = body["metadata"]
    kube().merge_patch(CLOUD, meta["namespace"], meta["name"], {"status": patch}, subresource="status")
    for event in transitions(previous, status):
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


def reconcile_cloud(body: kopf.Body, uid: str, retry: int, *, keep_waiting: bool) -> None:
    """One reconcile of one cloud. Raises kopf errors so kopf retries (temporary) or stops (permanent)."""
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
            cloud = parse_cloud(raw)
            if cloud.spec.paused:
                _write_status(body, previous, build_status(previous, generation, release, _now(), paused=True))
                return
            outcome = converge(kube(), cloud, uid, RenderOptions())
        except Exception as error:  # classified below: nothing escapes unexamined
            failure: Failure = classify(error)
            if not failure.permanent:
                log.warning("temporary problem with %s: %s", meta["name"], failure.message)
                raise kopf.TemporaryError(failure.message, delay=backoff(retry)) from error
            log.error("cloud %s cannot be reconciled: %s", meta["name"], failure.message)
            _write_status(body, previous, build_status(previous, generation, release, _now(), failure=failure))
            raise kopf.PermanentError(failure.message) from error
        _write_status(body, previous, build_status(previous, generation, release, _now(), outcome=outcome))
    current = outcome.current
    if current is not None and current.state == "Waiting" and keep_waiting:
        raise kopf.TemporaryError(current.message, delay=_wait_delay(uid, current.name))
    if current is not None and current.state == "Failed" and keep_waiting:
        raise kopf.PermanentError(f"step {current.name}: {current.message}")


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def reconcile(body: kopf.Body, uid: str, retry: int, **_: Any) -> None:
    reconcile_cloud(body, uid, retry, keep_waiting=True)


@kopf.timer(GROUP, VERSION, PLURAL, interval=CHECK_INTERVAL, initial_delay=CHECK_INTERVAL)
def check(body: kopf.Body, uid: str, **_: Any) -> None:
    """A periodic look: notices what changed outside the spec. Never raises for a cloud on its way."""
    if body.get("metadata", {}).get("deletionTimestamp"):
        return
    with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):  # in status already; next tick looks again
        reconcile_cloud(body, uid, 0, keep_waiting=False)


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
