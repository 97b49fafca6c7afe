"""A share type of manila's, as the default share type Job (`stackops job create-share-type`) makes
it: public, with the extra specs it is given. Idempotent: a type of that name is left as it is but
for the extra specs given, which are brought in line; other extra specs an administrator set stay.

Manila's share types are an API of its v2 (`/types`), which openstacksdk does not wrap: the calls go
through the catalog's shared-file-system endpoint with a microversion that has them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MICROVERSION = "2.50"


def ensure_share_type(conn: Any, name: str, extra_specs: Mapping[str, str]) -> list[str]:
    """Bring the share type `name` in line; returns what changed, for the Job's log."""
    api = conn.shared_file_system
    listed = api.get("/types?is_public=all", microversion=MICROVERSION)
    _raise_for(listed, "listing share types")
    found = next((t for t in listed.json()["share_types"] if t["name"] == name), None)
    if found is None:
        body = {"share_type": {"name": name, "share_type_access:is_public": True, "extra_specs": dict(extra_specs)}}
        created = api.post("/types", json=body, microversion=MICROVERSION)
        _raise_for(created, f"creating share type {name}")
        return [f"share type {name} created"]
    current = found.get("extra_specs") or {}
    differ = {key: value for key, value in extra_specs.items() if str(current.get(key)) != value}
    if not differ:
        return []
    updated = api.post(f"/types/{found['id']}/extra_specs", json={"extra_specs": differ}, microversion=MICROVERSION)
    _raise_for(updated, f"setting extra specs of share type {name}")
    return [f"share type {name}: {key} set to {value}" for key, value in sorted(differ.items())]


def _raise_for(response: Any, doing: str) -> None:
    from openstack import exceptions

    if response.status_code >= 400:
        raise exceptions.SDKException(f"{doing}: HTTP {response.status_code}: {response.text[:300]}")
