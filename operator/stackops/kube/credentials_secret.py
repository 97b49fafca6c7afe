"""The credentials Secret: created once, completed when new services need more, keys rotated on
schedule; an existing password is never rewritten, but by a credential rotation's last step, once
nothing uses it any more (stackops.credentials: the rotation's state is an annotation here).

The Secret has no ownerReference on purpose: deleting a cloud with deletionPolicy Retain must leave
the passwords that its retained databases were created with.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubernetes.client.exceptions import ApiException

from stackops.certificates import CA_PRIVATE_KEY, CertificateRequest, issued
from stackops.credentials import (
    Credentials,
    CredentialSpec,
    KeyRotation,
    RotationAction,
    RotationState,
    complete,
    next_rotation,
)
from stackops.kube.client import Kube
from stackops.kube.kinds import MANAGED_KINDS
from stackops.render.naming import common_labels
from stackops.services.base import CREDENTIALS_SECRET_SUFFIX

SECRET = next(k for k in MANAGED_KINDS if k.kind == "Secret")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# The credential rotation's state (generation/phase/accounts[/own pairs on -b], no secret in it): kept with the values
# it says how to use, and written with them in one compare-and-swap.
ROTATION_ANNOTATION = "stackops.dev/credential-rotation"


def credentials_secret_name(cloud: str) -> str:
    return f"{cloud}-{CREDENTIALS_SECRET_SUFFIX}"


def rotated_annotation(rotation: KeyRotation) -> str:
    return f"stackops.dev/rotated-{rotation.prefix.rstrip('-')}"


def decoded(data: Mapping[str, str] | None) -> dict[str, str]:
    """A Secret's `data` (as the API gives it), its values decoded."""
    return {k: base64.b64decode(v).decode() for k, v in (data or {}).items()}


def _encode(values: dict[str, str]) -> dict[str, str]:
    return {k: base64.b64encode(v.encode()).decode() for k, v in sorted(values.items())}


def credentials_of(secret: Mapping[str, Any] | None) -> Credentials:
    """The credentials Secret (as the API gives it) as rendering sees it: its values and the state
    of its rotation."""
    annotations = ((secret or {}).get("metadata") or {}).get("annotations") or {}
    values = decoded((secret or {}).get("data"))
    return Credentials(values, rotation=RotationState.parse(annotations.get(ROTATION_ANNOTATION)))


def _due(annotation: str | None, rotation: KeyRotation, now: datetime.datetime) -> bool | None:
    """None when never stamped; else whether the interval has passed."""
    if not annotation:
        return None
    try:
        last = datetime.datetime.strptime(annotation, TIME_FORMAT).replace(tzinfo=datetime.UTC)
    except ValueError:
        return None
    return now - last >= datetime.timedelta(hours=rotation.interval_hours)


def next_values(
    existing: dict[str, str],
    annotations: dict[str, str],
    specs: list[CredentialSpec],
    rotations: Iterable[KeyRotation],
    now: datetime.datetime,
    certificates: Sequence[CertificateRequest] = (),
    ca_name: str | None = None,
    from_issuer: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """What the Secret should hold: missing values added, due keys rotated, rotation times stamped;
    with a `ca_name`, the cloud's CA made if missing and `certificates` issued or renewed where due
    (stackops.certificates), unless a cert-manager issuer gave them (`from_issuer`: its certificates,
    keys and CA, by the same keys; the cloud's own CA key is then of no use and not kept)."""
    values = complete(specs, existing)
    if from_issuer is not None:
        values = {k: v for k, v in values.items() if k != CA_PRIVATE_KEY} | dict(from_issuer)
    elif ca_name is not None:
        values = issued(values, certificates, ca_name, now)
    annotations = dict(annotations)
    stamp = now.strftime(TIME_FORMAT)
    for rotation in rotations:
        key = rotated_annotation(rotation)
        due = _due(annotations.get(key), rotation, now)
        if due is None:
            annotations[key] = stamp  # keys made now count as freshly rotated
        elif due:
            values = rotation.apply(values)
            annotations[key] = stamp
    return values, annotations


def ensure_credentials(
    kube: Kube,
    cloud: str,
    namespace: str,
    specs: Iterable[CredentialSpec],
    rotations: Iterable[KeyRotation] = (),
    now: datetime.datetime | None = None,
    certificates: Sequence[CertificateRequest] = (),
    ca_name: str | None = None,
    from_issuer: Mapping[str, str] | None = None,
) -> Credentials:
    """Read the Secret and write it only when something is missing, a rotation or a certificate's
    renewal is due, or a certificate from the cloud's issuer (`from_issuer`) differs from its copy."""
    specs, rotations = list(specs), list(rotations)
    now = now or datetime.datetime.now(datetime.UTC)
    name = credentials_secret_name(cloud)
    for _attempt in range(3):
        secret = kube.get(SECRET, namespace, name)
        existing = decoded(secret.get("data") if secret else None)
        old_annotations: dict[str, str] = dict((secret or {}).get("metadata", {}).get("annotations") or {})
        values, annotations = next_values(
            existing, old_annotations, specs, rotations, now, certificates, ca_name, from_issuer
        )
        rotation = RotationState.parse(annotations.get(ROTATION_ANNOTATION))
        if secret is not None and values == existing and annotations == old_annotations:
            return Credentials(values, rotation=rotation)
        try:
            if secret is None:
                kube.create(
                    SECRET,
                    {
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "metadata": {
                            "name": name,
                            "namespace": namespace,
                            "labels": common_labels(cloud, "stackops", "credentials"),
                            "annotations": annotations,
                        },
                        "type": "Opaque",
                        "data": _encode(values),
                    },
                )
            else:
                # resourceVersion makes this a compare-and-swap: a concurrent writer makes it fail (409)
                # and the loop re-reads instead of overwriting a value someone else just generated.
                changed = {k: v for k, v in values.items() if existing.get(k) != v}
                data: dict[str, Any] = _encode(changed)
                data |= {k: None for k in existing if k not in values}  # pruned keys
                metadata = {
                    "resourceVersion": secret["metadata"]["resourceVersion"],
                    "annotations": annotations,
                }
                kube.merge_patch(SECRET, namespace, name, {"metadata": metadata, "data": data})
            return Credentials(values, rotation=rotation)
        except ApiException as error:
            if error.status != 409:
                raise
    raise RuntimeError(f"credentials Secret {name} kept changing under the operator")


def take_rotation(
    kube: Kube,
    cloud: str,
    namespace: str,
    seen: RotationState,
    action: RotationAction,
    requested: int,
    rotated: Iterable[CredentialSpec],
    key_repositories: Iterable[str],
) -> RotationState | None:
    """Take a credential rotation's `action` on the Secret as it is now: new values and the state
    in one compare-and-swap, from the state `seen` (what the action was decided on). None when the
    Secret changed since (someone else took the step, or added a value): the next pass decides again."""
    name = credentials_secret_name(cloud)
    secret = kube.get(SECRET, namespace, name)
    if secret is None:
        return None
    existing = decoded(secret.get("data"))
    annotations = dict(secret["metadata"].get("annotations") or {})
    state = RotationState.parse(annotations.get(ROTATION_ANNOTATION))
    if state != seen:
        return None
    values, state = next_rotation(action, existing, state, requested, rotated, key_repositories)
    data: dict[str, Any] = _encode({k: v for k, v in values.items() if existing.get(k) != v})
    data |= {k: None for k in existing if k not in values}  # the new values, once promoted
    metadata = {
        "resourceVersion": secret["metadata"]["resourceVersion"],
        "annotations": {ROTATION_ANNOTATION: str(state)},
    }
    try:
        kube.merge_patch(SECRET, namespace, name, {"metadata": metadata, "data": data})
    except ApiException as error:
        if error.status == 409:
            return None
        raise
    return state
