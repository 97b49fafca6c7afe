"""Store swift's rings in their Secret: run by swift's ring-builder Job (`stackops job store-rings`)
after swift-ring-builder wrote the rings and their builder files into a directory.

The operator renders the Secret without data and the Job alone writes its data (a merge patch, by a
field manager other than the operator's), so the operator's passes never undo a rebalance. Safe to
repeat: files already stored as they are change nothing.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, Protocol

RING_SUFFIX = ".ring.gz"


class RingsJobError(Exception):
    """A problem the Job cannot retry its way out of (no rings built, no Secret to hold them)."""


class SecretStore(Protocol):
    def get(self, kind: Any, namespace: str, name: str) -> dict[str, Any] | None: ...

    def merge_patch(self, kind: Any, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]: ...


def store_rings(kube: SecretStore, secret_kind: Any, namespace: str, secret: str, directory: Path) -> list[str]:
    """Every file of `directory` into the Secret `secret`; returns the files that changed."""
    files = sorted(p for p in directory.iterdir() if p.is_file())
    if not any(p.name.endswith(RING_SUFFIX) for p in files):
        raise RingsJobError(f"{directory}: no ring ({RING_SUFFIX}) was built")
    wanted = {p.name: base64.b64encode(p.read_bytes()).decode() for p in files}
    current = kube.get(secret_kind, namespace, secret)
    if current is None:
        raise RingsJobError(f"Secret {namespace}/{secret} does not exist (the operator makes it before this Job)")
    stored = current.get("data") or {}
    changed = sorted(name for name, value in wanted.items() if stored.get(name) != value)
    if changed:
        kube.merge_patch(secret_kind, namespace, secret, {"data": wanted})
    return [f"{name} stored in Secret {secret}" for name in changed]
