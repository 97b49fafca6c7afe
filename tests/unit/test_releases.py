from __future__ import annotations

import itertools
from typing import Any

import celpy
import pytest
from celpy.adapter import json_to_cel

from stackops.api.releases import (
    RELEASES,
    SERVICE_PACKAGES,
    SUPPORTED_RELEASES,
    allowed_upgrades,
    transition_problem,
)
from stackops.api.schema_hints import release_transition_rules


def test_next_release_and_slurp_to_slurp_are_the_only_steps() -> None:
    assert allowed_upgrades("2025.1") == ("2025.2", "2026.1")
    assert allowed_upgrades("2025.2") == ("2026.1",)
    assert allowed_upgrades("2026.1") == ("2026.2",)
    assert allowed_upgrades("2026.2") == ()


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("2026.1", "2025.2", "downgrade"),
        ("2025.1", "2026.2", "skips"),
        ("2025.2", "2026.2", "skips"),
        ("2026.1", "2024.1", "not supported"),
    ],
)
def test_forbidden_transitions_say_why(old: str, new: str, fragment: str) -> None:
    problem = transition_problem(old, new)
    assert problem is not None and fragment in problem


def _cel_allows(old: str, new: str) -> bool:
    """The rules on a cloud that nothing is deployed of yet (no status); tests/unit/test_upgrade_cel.py
    covers the rules' reading of status."""
    env = celpy.Environment()
    activation: dict[str, Any] = {
        "self": json_to_cel({"spec": {"release": new}}),
        "oldSelf": json_to_cel({"spec": {"release": old}}),
    }
    for rule in release_transition_rules():
        program = env.program(env.compile(rule["rule"]))
        if not bool(program.evaluate(activation)):
            return False
    return True


def test_crd_cel_rules_agree_with_the_python_table_for_every_pair() -> None:
    # The API server enforces the CEL rules; the operator enforces the table. They must never disagree.
    for old, new in itertools.product(SUPPORTED_RELEASES, repeat=2):
        assert _cel_allows(old, new) == (transition_problem(old, new) is None), (old, new)


def test_packages_that_name_their_versions_name_them_for_every_release() -> None:
    for package in SERVICE_PACKAGES.values():
        assert not package.versions or set(package.versions) == set(SUPPORTED_RELEASES), package.name


def test_a_release_installs_the_major_of_its_number() -> None:
    # Epoxy (2025.1) is OpenStack's 31st release: nova 31, keystone 27
    assert RELEASES["2025.1"].packages["nova"] == "nova>=31,<32"
    assert RELEASES["2026.1"].requirements("keystone") == ["keystone>=29,<30", "oslo.policy<6"]
