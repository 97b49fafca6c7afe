"""What the cloud's status keeps to judge an upgrade: the spec the deployed release converged with.

(`status.upgrade`, the upgrade's progress, is stackops.api.models.UpgradeStatus: it exists from the
moment an upgrade is asked for until the cloud converged at the new release, or went back to the
old one; `rollbackTo` is set while spec.release may still go back, and the CRD's CEL rule reads it.)

`status.specHashes` is a hash per section of the spec the deployed release was converged with: an
upgrade refuses to start while another section changed along with spec.release.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackops.render.hashing import content_hash

# Fields that change nothing a cloud runs: they may change along with spec.release.
NOT_RENDERED = frozenset({"release", "paused", "deletionPolicy"})
# Fields whose parts are told apart in the record, so a refusal can name the service that changed.
SPLIT = frozenset({"services", "infrastructure"})


def spec_hashes(spec: Mapping[str, Any]) -> dict[str, str]:
    """A hash per section of the spec as the user wrote it (not defaulted: a newer stackops with new
    defaults must not see a change where the user made none)."""
    hashes: dict[str, str] = {}
    for key, value in spec.items():
        if key in NOT_RENDERED:
            continue
        if key in SPLIT and isinstance(value, Mapping):
            hashes |= {f"{key}.{part}": content_hash(sub) for part, sub in value.items()}
        else:
            hashes[key] = content_hash(value)
    return dict(sorted(hashes.items()))


def changed_sections(recorded: Mapping[str, str], spec: Mapping[str, Any]) -> list[str]:
    """Sections of `spec` that differ from the record, as `spec.<path>`."""
    now = spec_hashes(spec)
    return [f"spec.{key}" for key in sorted(recorded.keys() | now.keys()) if recorded.get(key) != now.get(key)]
