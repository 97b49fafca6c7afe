"""Checking a rendered oslo.config file with `oslo-config-validator` of its service's package."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.commands import run


def validate(bin_dir: Path, namespaces: tuple[str, ...], path: Path) -> tuple[int, str]:
    argv = [str(bin_dir / "oslo-config-validator"), "--input-file", str(path)]
    for namespace in namespaces:
        argv += ["--namespace", namespace]
    result = run(argv, {})
    return result.returncode, result.stderr


def sections_as_groups(content: str, aliases: dict[str, str]) -> str:
    """`content` with each section in `aliases` renamed to the option group it takes its options from,
    and without the options no sample holds (RUNTIME_OPTIONS)."""
    for section, group in aliases.items():
        content = re.sub(rf"^\[{re.escape(section)}\]$", f"[{group}]", content, flags=re.MULTILINE)
    for option in RUNTIME_OPTIONS:
        content = re.sub(rf"^{option} = .*\n", "", content, flags=re.MULTILINE)
    return content


# Options a service registers at run time, per section it is given, which no sample config lists:
# glance_store's `store_description` of each enabled store (tests/real/test_glance.py shows glance
# taking it: GET /v2/info/stores returns it).
RUNTIME_OPTIONS = ("store_description",)
