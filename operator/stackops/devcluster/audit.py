"""The apiserver's audit log, reduced to what tests ask of it: who wrote what.

The policy logs request metadata (verb, resource, user, response code; no bodies) for the
audited users only, so the log stays small and every line is about the operator under test.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
# One event per request: RequestReceived is omitted by the policy, ResponseStarted only
# happens for long-running requests (watches), which are never writes.
_FINAL_STAGES = frozenset({"ResponseComplete", "Panic"})


def policy_yaml(users: Sequence[str]) -> str:
    policy = {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [{"level": "Metadata", "users": list(users)}, {"level": "None"}],
    }
    return yaml.safe_dump(policy, sort_keys=False)


def line_count(path: Path) -> int:
    """How many events the log holds now: pass it as `since_line` to see only later ones."""
    try:
        with path.open("rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def events(path: Path, user: str | None = None, since_line: int = 0) -> list[dict[str, Any]]:
    """Events from line `since_line` on (0-based), of `user` if given."""
    found: list[dict[str, Any]] = []
    try:
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f):
                # A line being written right now may be incomplete: skip what does not parse.
                if number < since_line or not line.endswith("\n"):
                    continue
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if user is None or event.get("user", {}).get("username") == user:
                    found.append(event)
    except FileNotFoundError:
        pass
    return found


def writes(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The completed create/update/patch/delete/deletecollection requests among `found`."""
    return [e for e in found if e.get("verb") in WRITE_VERBS and e.get("stage") in _FINAL_STAGES]
