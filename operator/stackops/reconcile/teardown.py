"""Deleting a cloud: every object it owns goes, and then, under deletionPolicy Delete only, its
credentials Secret and volumes (neither is owned, so garbage collection never takes them)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from stackops.api.validation import parse_cloud
from stackops.kube.credentials_secret import SECRET, credentials_secret_name
from stackops.kube.engine import observe, owned_by
from stackops.kube.kinds import PVC, kind_of
from stackops.reconcile.state import OperatorState
from stackops.render.naming import CLOUD_LABEL

log = logging.getLogger(__name__)


def tear_down(state: OperatorState, body: Mapping[str, Any], uid: str) -> list[str]:
    """Delete what the cloud `body` owns; what is still there ("kind name"), to be waited for. Once
    nothing is left, its credentials and volumes go too if its deletionPolicy is Delete."""
    meta = body["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    policy = (body.get("spec") or {}).get("deletionPolicy", "Retain")
    kube = state.kube
    cloud = parse_cloud(
        {
            "apiVersion": body["apiVersion"],
            "kind": body["kind"],
            "metadata": {"name": name, "namespace": namespace},
            "spec": {},
        }
    )
    remaining = []
    for (kind_name, obj_name), obj in observe(kube, cloud).items():
        if not owned_by(obj, uid):
            continue
        remaining.append(f"{kind_name.lower()} {obj_name}")
        if not obj["metadata"].get("deletionTimestamp"):
            kube.delete(kind_of(obj), namespace, obj_name, propagation="Foreground")
    state.waiting.pop(uid, None)
    state.metrics.forget(namespace, name)
    if remaining:
        return remaining
    if policy == "Delete":
        kube.delete(SECRET, namespace, credentials_secret_name(name))
        for pvc in kube.list(PVC, namespace, f"{CLOUD_LABEL}={name}"):
            kube.delete(PVC, namespace, pvc["metadata"]["name"])
        log.info("cloud %s deleted with its credentials and volumes (deletionPolicy Delete)", name)
    else:
        log.info("cloud %s deleted; credentials Secret and volumes kept (deletionPolicy Retain)", name)
    return []
