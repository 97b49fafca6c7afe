"""What the cloud's status keeps about an upgrade, so it can be followed, resumed and judged.

`status.upgrade` exists from the moment an upgrade is asked for until the cloud converged at the new
release (or went back to the old one): the release pair, whether the pre-flight passed, the steps
done (a second record next to the upgrade Jobs themselves, which are found by name), the step under
way as "n/N", and `rollbackTo` while spec.release may still go back (no contract step has started;
the CRD's CEL rule reads it).

`status.specHashes` is a hash per section of the spec the deployed release was converged with: an
upgrade refuses to start while another section changed along with spec.release.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from stackops.render.hashing import content_hash

# Fields that change nothing a cloud runs: they may change along with spec.release.
NOT_RENDERED = frozenset({"release", "paused", "deletionPolicy"})
# Fields whose parts are told apart in the record, so a refusal can name the service that changed.
SPLIT = frozenset({"services", "infrastructure"})

Phase = Literal["Preflight", "Upgrading"]


@dataclass
class UpgradeRecord:
    source: str
    target: str
    phase: Phase = "Preflight"
    completed: list[str] = field(default_factory=list)
    rollback_to: str | None = None
    step: int = 0  # 1-based position of the step under way (0 in the pre-flight)
    steps: int = 0
    service: str = ""
    current: str = ""

    @classmethod
    def load(cls, status: Mapping[str, Any] | None) -> UpgradeRecord | None:
        if not status:
            return None
        return cls(
            source=str(status.get("from", "")),
            target=str(status.get("to", "")),
            phase="Upgrading" if status.get("phase") == "Upgrading" else "Preflight",
            completed=[str(s) for s in status.get("completed", []) or []],
            rollback_to=status.get("rollbackTo"),
            step=int(status.get("step", 0) or 0),
            steps=int(status.get("steps", 0) or 0),
            service=str(status.get("service", "")),
            current=str(status.get("current", "")),
        )

    def dump(self) -> dict[str, Any]:
        values = asdict(self)
        result: dict[str, Any] = {
            "from": values.pop("source"),
            "to": values.pop("target"),
            "rollbackTo": values.pop("rollback_to"),
            **values,
        }
        return {key: value for key, value in result.items() if value is not None}


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
