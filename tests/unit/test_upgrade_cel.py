"""The CRD's release rules as the API server evaluates them, including what they read from status:
a rollback is allowed back to the deployed release only while no contract step ran, and a skip is
counted from the deployed release. (tests/unit/test_releases.py compares them with the Python table
for clouds with nothing deployed; tests/cluster/test_upgrade.py runs them on the API server.)"""

from __future__ import annotations

from typing import Any

import celpy
import pytest
from celpy.adapter import json_to_cel

from stackops.api.schema_hints import release_transition_rules


def allowed(old: str, new: str, status: dict[str, Any] | None = None) -> bool:
    env = celpy.Environment()
    new_object: dict[str, Any] = {"spec": {"release": new}}
    if status is not None:
        new_object["status"] = status
    activation = {
        "self": json_to_cel(new_object),
        "oldSelf": json_to_cel({"spec": {"release": old}}),
    }
    return all(bool(env.program(env.compile(r["rule"])).evaluate(activation)) for r in release_transition_rules())


UNDER_WAY = {"release": "2025.2", "upgrade": {"from": "2025.2", "to": "2026.1", "rollbackTo": "2025.2"}}
CONTRACTED = {"release": "2025.2", "upgrade": {"from": "2025.2", "to": "2026.1"}}


@pytest.mark.parametrize(
    ("old", "new", "status", "ok"),
    [
        ("2026.1", "2025.2", UNDER_WAY, True),  # back to the deployed release, nothing contracted
        ("2026.1", "2025.2", CONTRACTED, False),  # a database moved past 2025.2
        ("2026.1", "2025.1", UNDER_WAY, False),  # below the deployed release
        ("2026.1", "2025.2", {"release": "2026.1"}, False),  # a plain downgrade
        ("2026.1", "2025.2", {"release": "2025.2"}, True),  # the operator has not started yet
        ("2026.1", "2025.2", None, False),
        ("2026.1", "2026.2", {"release": "2025.2"}, False),  # two edits in a row skip 2026.1's deploy
        ("2026.1", "2026.2", {"release": "2026.1"}, True),
        ("2025.2", "2026.1", {"release": "2025.1"}, True),  # SLURP to SLURP from what runs
        ("2026.1", "2026.1", CONTRACTED, True),
    ],
)
def test_release_rules_read_the_deployed_release_and_the_rollback_window(
    old: str, new: str, status: dict[str, Any] | None, ok: bool
) -> None:
    assert allowed(old, new, status) == ok
