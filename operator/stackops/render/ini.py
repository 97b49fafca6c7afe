"""oslo.config INI files from nested mappings.

Defaults come from the service module, overrides from the user's `config:`; overrides win option by
option. Output is sorted (DEFAULT first) so the same settings always give the same bytes, whatever
order a GitOps tool stored the keys in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackops.api.oslo import MultiString, check_ini_shape, is_multistring

IniSections = Mapping[str, Mapping[str, Any]]


class IniShapeError(ValueError):
    """A value that an INI file cannot hold; `problems` name each `section.option`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def merge_sections(defaults: IniSections, overrides: IniSections) -> dict[str, dict[str, Any]]:
    """Overrides replace defaults option by option; a None override removes the option."""
    merged: dict[str, dict[str, Any]] = {section: dict(options) for section, options in defaults.items()}
    for section, options in overrides.items():
        target = merged.setdefault(section, {})
        for option, value in options.items():
            if value is None:
                target.pop(option, None)
            else:
                target[option] = value
    return merged


def _format_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _lines(option: str, value: Any) -> list[str]:
    if isinstance(value, MultiString):
        return [f"{option} = {_format_scalar(v)}" for v in value.values]
    if is_multistring(value):
        return [f"{option} = {_format_scalar(v)}" for v in value["values"]]
    if isinstance(value, list | tuple):
        return [f"{option} = {','.join(_format_scalar(v) for v in value)}"]
    return [f"{option} = {_format_scalar(value)}"]


def render_ini(defaults: IniSections, overrides: IniSections | None = None) -> str:
    """One INI document; raises IniShapeError naming every option INI cannot hold."""
    overrides = overrides or {}
    problems = check_ini_shape(dict(overrides))
    if problems:
        raise IniShapeError(problems)
    merged = merge_sections(defaults, overrides)
    sections = sorted(merged, key=lambda s: (s != "DEFAULT", s))
    blocks: list[str] = []
    for section in sections:
        options = merged[section]
        if not options:
            continue
        body = [line for option in sorted(options) for line in _lines(option, options[option])]
        blocks.append("\n".join([f"[{section}]", *body]))
    return "\n\n".join(blocks) + "\n"
