"""Converging a cloud: apply its plan step by step, each step only once the one before is ready.

Every applied object carries the hash of what was applied, so an unchanged object is not sent
again: a reconcile of a converged cloud reads, and writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from stackops.api.models import GROUP, KIND, VERSION, OpenStackCloud
from stackops.certificates import CertificateRequest
from stackops.credentials import Credentials
from stackops.kube import issuer
from stackops.kube.backups import Backups, all_backups
from stackops.kube.client import Kube, Obj
from stackops.kube.credentials_secret import ensure_credentials
from stackops.kube.diagnosis import workload_cause
from stackops.kube.issuer import CERTIFICATE
from stackops.kube.kinds import MANAGED_KINDS, NODE, Kind, kind_of
from stackops.kube.readiness import Readiness, readiness
from stackops.logs import REDACTOR
from stackops.plan import Plan, ca_name, certificate_requests, key_rotations, plan, required_credentials
from stackops.render.hashing import content_hash
from stackops.render.naming import CLOUD_LABEL
from stackops.services import all_services
from stackops.services.base import RenderOptions, Step

log = logging.getLogger(__name__)

APPLIED_HASH = "stackops.dev/applied-hash"
# Data outlives the cloud object: not owned, so garbage collection never takes it; the delete
# handler removes it only under deletionPolicy Delete.
UNOWNED_KINDS = frozenset({"PersistentVolumeClaim"})


@dataclass
class StepState:
    name: str
    service: str
    state: str  # Ready | Waiting | Failed | Pending
    message: str = ""
    cause: str = ""  # what blocks it, when Kubernetes names it (also at the end of message)


@dataclass
class Outcome:
    steps: list[StepState]
    replicas: dict[str, tuple[int, int]] = field(default_factory=dict)  # per service: (ready, desired)
    hosts: dict[str, tuple[int, int]] = field(default_factory=dict)  # per host-agent step: (ready, nodes)
    writes: int = 0
    endpoints: dict[str, str] = field(default_factory=dict)
    # what the backup Jobs say, by status field (database, ovn), when the pass looked (converge)
    backups: dict[str, Backups] | None = None

    @property
    def current(self) -> StepState | None:
        return next((s for s in self.steps if s.state in ("Waiting", "Failed")), None)

    @property
    def done(self) -> bool:
        return all(s.state == "Ready" for s in self.steps)


def owner_reference(cloud: OpenStackCloud, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": cloud.metadata.name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def desired(obj: Obj, owner: dict[str, Any]) -> Obj:
    """The object as applied: owned by the cloud, annotated with the hash of its content."""
    owners = [] if obj["kind"] in UNOWNED_KINDS else [owner]
    result = {**obj, "metadata": {**obj["metadata"], "ownerReferences": owners}}
    annotations = dict(result["metadata"].get("annotations", {}))
    annotations[APPLIED_HASH] = content_hash(result)
    result["metadata"]["annotations"] = annotations
    return result


def observe(kube: Kube, cloud: OpenStackCloud) -> dict[tuple[str, str], Obj]:
    """Every object of the cloud that exists, one list request per kind."""
    selector = f"{CLOUD_LABEL}={cloud.metadata.name}"
    live: dict[tuple[str, str], Obj] = {}
    for kind in MANAGED_KINDS:
        for obj in kube.list(kind, cloud.metadata.namespace, selector):
            live[(kind.kind, obj["metadata"]["name"])] = obj
    return live


def owned_by(obj: Obj, uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences", []) or [])


def cloud_credentials(kube: Kube, cloud: OpenStackCloud, uid: str) -> Credentials:
    """The cloud's credentials Secret, completed with whatever its enabled services still miss (its
    certificates from the cloud's CA, or copied from cert-manager's Secrets when it names an issuer).
    Its values are masked wherever the operator would write them (logs, a quoted log line in status)."""
    requests = certificate_requests(cloud)
    from_issuer = None
    if cloud.spec.internal_tls.enabled and cloud.spec.internal_tls.issuer is not None:
        from_issuer = issued_by_issuer(kube, cloud, requests, owner_reference(cloud, uid))
    credentials = ensure_credentials(
        kube,
        cloud.metadata.name,
        cloud.metadata.namespace,
        required_credentials(cloud.spec),
        key_rotations(cloud.spec),
        certificates=requests,
        ca_name=ca_name(cloud),
        from_issuer=from_issuer,
    )
    REDACTOR.remember(credentials.values().values())
    return credentials


def issued_by_issuer(
    kube: Kube, cloud: OpenStackCloud, requests: Sequence[CertificateRequest], owner: dict[str, Any]
) -> dict[str, str]:
    """The cloud's Certificates brought in line with `requests` (kube.issuer: applied when changed,
    those no longer asked for deleted), and what cert-manager issued for them."""
    namespace, selector = cloud.metadata.namespace, f"{CLOUD_LABEL}={cloud.metadata.name}"
    live = {(CERTIFICATE.kind, o["metadata"]["name"]): o for o in kube.list(CERTIFICATE, namespace, selector)}
    wanted = issuer.certificates(cloud, requests)
    for obj in wanted:
        apply_if_changed(kube, obj, owner, live, CERTIFICATE)
    for _, stale in live.keys() - {(CERTIFICATE.kind, o["metadata"]["name"]) for o in wanted}:
        kube.delete(CERTIFICATE, namespace, stale)
    return issuer.issued(kube, cloud, requests)


@dataclass
class Snapshot:
    """The cloud as one pass sees it: its credentials, its plan (rendered once a pass), and every
    object of it that exists, kept up to date with what the pass applies."""

    credentials: Credentials
    plan: Plan
    live: dict[tuple[str, str], Obj]


def with_node_addresses(kube: Kube, cloud: OpenStackCloud, options: RenderOptions) -> RenderOptions:
    """`options` with the InternalIPs of the cluster's nodes when the cloud's NetworkPolicies admit
    host agents by them (policies on, no nodeCIDRs given): every node, as any may run an agent."""
    policies = cloud.spec.network_policies
    if not policies.enabled or policies.node_cidrs:
        return options
    addresses = {
        address["address"]
        for node in kube.list(NODE, "")
        for address in (node.get("status") or {}).get("addresses") or []
        if address.get("type") == "InternalIP" and address.get("address")
    }
    return replace(options, node_addresses=tuple(sorted(addresses)))


def snapshot(kube: Kube, cloud: OpenStackCloud, uid: str, options: RenderOptions | None = None) -> Snapshot:
    credentials = cloud_credentials(kube, cloud, uid)
    return Snapshot(credentials, plan(cloud, credentials, options), observe(kube, cloud))


def converge(kube: Kube, cloud: OpenStackCloud, uid: str, seen: Snapshot) -> Outcome:
    """Apply the plan step by step, then prune what it no longer renders."""
    outcome = apply_steps(kube, seen.plan.steps, cloud, uid, seen.live)
    outcome.endpoints = dict(seen.plan.endpoints)
    outcome.writes += prune(kube, seen.plan, cloud, uid, seen.live)
    outcome.backups = all_backups(kube, cloud.metadata.namespace, seen.live)
    return outcome


def applied_hash(obj: Obj) -> str | None:
    """The hash of what stackops applied, as the object carries it; None on what it did not apply."""
    value = obj["metadata"].get("annotations", {}).get(APPLIED_HASH)
    return None if value is None else str(value)


def apply_if_changed(
    kube: Kube, obj: Obj, owner: dict[str, Any], live: dict[tuple[str, str], Obj], kind: Kind | None = None
) -> tuple[Obj, bool]:
    """`obj` applied unless the live object carries the same applied hash: (the live object, whether
    it was written). `live` is updated with what was applied. `kind`: for an object of a kind the
    plan does not manage (a cloud's Certificates, kube.issuer)."""
    want = desired(obj, owner)
    key = (obj["kind"], obj["metadata"]["name"])
    current = live.get(key)
    if current is not None and applied_hash(current) == applied_hash(want):
        return current, False
    log.info("applying %s %s", obj["kind"], obj["metadata"]["name"])
    current = kube.apply(kind or kind_of(obj), want)
    current.setdefault("kind", obj["kind"])
    live[key] = current
    return current, True


def apply_steps(
    kube: Kube, steps: Sequence[Step], cloud: OpenStackCloud, uid: str, live: dict[tuple[str, str], Obj]
) -> Outcome:
    """Apply every step whose service's dependencies are all ready, each service's steps in order.

    Services that do not depend on each other come up side by side (placement, glance, neutron,
    cinder … once keystone is ready); a service waits while anything it depends on is not ready."""
    owner = owner_reference(cloud, uid)
    outcome = Outcome(steps=[StepState(s.name, s.service, "Pending") for s in steps])
    depends_on = {s.name: s.depends_on for s in all_services()}
    unfinished: set[str] = set()  # services with a step not ready yet
    for step, state in zip(steps, outcome.steps, strict=True):
        waits = unfinished if step.after_all else unfinished.intersection(depends_on.get(step.service, ()))
        if step.service in unfinished or waits:
            unfinished.add(step.service)
            continue  # Pending: what it needs is not ready
        waiting: list[tuple[Readiness, Obj]] = []
        for obj in step.objects:
            current, written = apply_if_changed(kube, obj, owner, live)
            outcome.writes += int(written)
            result = readiness(current)
            if result.hosts and result.replicas:
                outcome.hosts[step.name] = result.replicas
            if result.replicas:
                ready, wanted = outcome.replicas.get(step.service, (0, 0))
                outcome.replicas[step.service] = (ready + result.replicas[0], wanted + result.replicas[1])
            if not result.ready:
                waiting.append((result, current))
        failed = [(r, obj) for r, obj in waiting if r.failed]
        first = failed[0] if failed else waiting[0] if waiting else None
        if first is None:
            state.state = "Ready"
            continue
        result, current = first
        state.state = "Failed" if failed else "Waiting"
        state.cause = workload_cause(kube, cloud.metadata.namespace, current)
        state.message = f"{result.message}: {state.cause}" if state.cause else result.message
        unfinished.add(step.service)
    return outcome


def prune(kube: Kube, cloud_plan: Plan, cloud: OpenStackCloud, uid: str, live: dict[tuple[str, str], Obj]) -> int:
    """Delete what stackops applied for this cloud and no longer renders: superseded Jobs once they
    have finished, objects of disabled services. Objects stackops did not apply are never touched."""
    wanted = {(o["kind"], o["metadata"]["name"]) for o in cloud_plan.objects()}
    deleted = 0
    for (kind_name, name), obj in live.items():
        if (kind_name, name) in wanted or not owned_by(obj, uid):
            continue
        if applied_hash(obj) is None:
            continue
        finished = readiness(obj)
        if kind_name == "Job" and not (finished.ready or finished.failed):
            continue  # let a running Job finish rather than kill it halfway through a migration
        log.info("removing %s %s: no longer part of the cloud", kind_name, name)
        kube.delete(kind_of(obj), cloud.metadata.namespace, name)
        deleted += 1
    return deleted
