"""Serialising rendered objects: the bytes users diff in GitOps, so stable and readable."""

from __future__ import annotations

import json
from typing import Any

import yaml

# libyaml's emitter where PyYAML was built with it (ten times the pure-Python one's speed); both write
# the same bytes for what stackops renders (tests/unit/test_render.py compares them).
_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Config files read as files, not as one line of escapes.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def dumper(base: type[yaml.SafeDumper] = _BaseDumper) -> type[yaml.SafeDumper]:
    """The dumper of rendered objects over `base` (libyaml's when present)."""
    cls: type[yaml.SafeDumper] = type("StackopsDumper", (base,), {})
    cls.add_representer(str, _str)
    return cls


_Dumper = dumper()


# No folding of long values: libyaml and PyYAML fold long quoted strings at different places, and a
# value on one line shows in a diff as the one line that changed. UTF-8 as is, so a config file with
# one non-ASCII character still reads as a file (a block), not as one line of escapes.
_NO_FOLDING = 2**30


def to_yaml(objects: list[dict[str, Any]], dumper: type[yaml.SafeDumper] = _Dumper) -> str:
    return yaml.dump_all(
        objects, Dumper=dumper, sort_keys=False, width=_NO_FOLDING, allow_unicode=True, explicit_start=True
    )


def to_json(objects: list[dict[str, Any]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, indent=2) + "\n"
