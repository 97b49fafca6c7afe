"""Content hashes: what lets a config change roll pods and nothing else, and keeps Jobs immutable."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from stackops.render.naming import fit

CONFIG_HASH_ANNOTATION = "stackops.dev/config-hash"
SPEC_HASH_LENGTH = 8


def content_hash(value: Any, length: int = 16) -> str:
    """sha256 of the canonical JSON of `value`; independent of key order."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


def name_job_by_spec(job: dict[str, Any]) -> dict[str, Any]:
    """Give a Job the hash of its spec as a name suffix.

    A Job's pod template cannot be patched, so a Job whose spec changes (new image, new config) must be
    a new Job; the same spec keeps the same name, so re-applying an unchanged cloud touches nothing.
    """
    base = job["metadata"]["name"]
    suffix = content_hash(job["spec"], SPEC_HASH_LENGTH)
    job["metadata"]["name"] = fit(f"{fit(base, 63 - SPEC_HASH_LENGTH - 1)}-{suffix}")
    return job
