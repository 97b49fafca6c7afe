"""The credentials Secret: created once, completed when new services need more, never rewritten.

The Secret has no ownerReference on purpose: deleting a cloud with deletionPolicy Retain must leave
the passwords that its retained databases were created with.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

from kubernetes.client.exceptions import ApiException

from stackops.credentials import Credentials, CredentialSpec, complete
from stackops.reconcile.kube import Kube
from stackops.reconcile.resources import MANAGED_KINDS
from stackops.render.naming import common_labels
from stackops.services.base import CREDENTIALS_SECRET_SUFFIX

SECRET = next(k for k in MANAGED_KINDS if k.kind == "Secret")


def credentials_secret_name(cloud: str) -> str:
    return f"{cloud}-{CREDENTIALS_SECRET_SUFFIX}"


def _decode(data: dict[str, str] | None) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (data or {}).items()}


def _encode(values: dict[str, str]) -> dict[str, str]:
    return {k: base64.b64encode(v.encode()).decode() for k, v in sorted(values.items())}


def ensure_credentials(
    kube: Kube, cloud: str, namespace: str, specs: Iterable[CredentialSpec]
) -> Credentials:
    """Read the Secret, adding only values it lacks. Makes no write when nothing is missing."""
    specs = list(specs)
    name = credentials_secret_name(cloud)
    for _attempt in range(3):
        secret = kube.get(SECRET, namespace, name)
        existing = _decode(secret.get("data") if secret else None)
        values = complete(specs, existing)
        if secret is not None and values == existing:
            return Credentials(values)
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
                        },
                        "type": "Opaque",
                        "data": _encode(values),
                    },
                )
            else:
                # resourceVersion makes this a compare-and-swap: a concurrent writer makes it fail (409)
                # and the loop re-reads instead of overwriting a value someone else just generated.
                added = {k: v for k, v in values.items() if k not in existing}
                kube.merge_patch(
                    SECRET,
                    namespace,
                    name,
                    {
                        "metadata": {"resourceVersion": secret["metadata"]["resourceVersion"]},
                        "data": _encode(added),
                    },
                )
            return Credentials(values)
        except ApiException as error:
            if error.status != 409:
                raise
    raise RuntimeError(f"credentials Secret {name} kept changing under the operator")
