"""Ceph clients (cinder's RBD backends and backup, glance's RBD stores): the user's client Secret
(spec ...rbd.secretRef, keys `ceph.conf` and `keyring`) as files of /etc/ceph.

Each cluster a service talks to is known by a name of its own (`<name>.conf`), with its keyring
where librados looks for it when told that name (`<name>.client.<user>.keyring`).
"""

from __future__ import annotations

from typing import Any

from stackops.api.models import RbdStore

CEPH_DIR = "/etc/ceph"
CONF_KEY = "ceph.conf"
KEYRING_KEY = "keyring"


def conf_path(cluster: str) -> str:
    return f"{CEPH_DIR}/{cluster}.conf"


def items(cluster: str, rbd: RbdStore) -> dict[str, Any]:
    """One Ceph client Secret as files of /etc/ceph: `<cluster>.conf` and its keyring."""
    return {
        "secret": {
            "name": rbd.secret_ref.name,
            "items": [
                {"key": CONF_KEY, "path": f"{cluster}.conf"},
                {"key": KEYRING_KEY, "path": f"{cluster}.client.{rbd.user}.keyring"},
            ],
        }
    }


def volume(sources: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """/etc/ceph made of the given Secrets (none: nothing mounted), as (volumes, mounts)."""
    if not sources:
        return [], []
    projected = {"name": "ceph", "projected": {"sources": sources, "defaultMode": 0o440}}
    return [projected], [{"name": "ceph", "mountPath": CEPH_DIR, "readOnly": True}]
