"""The shape of oslo.config values a user may write under `config:`.

A value is a scalar (string, number, boolean), a list of scalars (a comma-separated ListOpt),
`{type: multistring, values: [...]}` (an option repeated on several lines, as openstack-helm writes
it), or null (remove the option). Anything else cannot be held by an INI file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Scalar = str | int | float | bool


@dataclass(frozen=True)
class MultiString:
    """An option written once per value (oslo MultiStrOpt)."""

    values: tuple[str, ...]


def is_multistring(value: object) -> bool:
    return isinstance(value, dict) and value.get("type") == "multistring"


def value_problem(value: object) -> str | None:
    """Why `value` cannot be an INI option value, or None when it can."""
    if value is None or isinstance(value, Scalar):
        if isinstance(value, str) and ("\n" in value or "\r" in value):
            return "a value cannot span several lines in an INI file"
        return None
    if isinstance(value, list):
        for item in value:
            if not isinstance(item, Scalar) or (isinstance(item, str) and "," in item):
                return "a list may hold only scalars without commas (use {type: multistring, values: [...]})"
        return None
    if is_multistring(value):
        assert isinstance(value, dict)
        values = value.get("values")
        if set(value) != {"type", "values"} or not isinstance(values, list):
            return "a multistring needs exactly {type: multistring, values: [list of strings]}"
        if any(not isinstance(v, Scalar) for v in values):
            return "multistring values must be scalars"
        return None
    if isinstance(value, dict):
        return "a mapping cannot be an INI value (use {type: multistring, values: [...]} for repeated options)"
    return f"a {type(value).__name__} cannot be an INI value"


def check_ini_shape(config: dict[str, Any]) -> list[str]:
    """Every problem in an override mapping, each naming `section.option`."""
    problems: list[str] = []
    for section, options in config.items():
        if not section or "]" in section or "\n" in section:
            problems.append(f"{section!r}: not a valid INI section name")
            continue
        if not isinstance(options, dict):
            problems.append(f"{section}: a section must be a mapping of options, not {type(options).__name__}")
            continue
        for option, value in options.items():
            if not option or "=" in option or "\n" in option:
                problems.append(f"{section}.{option}: not a valid option name")
                continue
            problem = value_problem(value)
            if problem:
                problems.append(f"{section}.{option}: {problem}")
    return problems
