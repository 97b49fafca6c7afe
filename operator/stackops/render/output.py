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


# The YAML tags of the plain data rendering makes (the template loader builds these itself too).
STR_TAG, INT_TAG, BOOL_TAG, NULL_TAG = (f"tag:yaml.org,2002:{t}" for t in ("str", "int", "bool", "null"))
MAP_TAG, SEQ_TAG = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


class _PlainData:
    """Represents the plain data rendering makes (dicts, lists, strings, ints, booleans, None) in one
    recursive pass, as the safe representer would (block style, keys in order, no anchors: rendered
    objects share no sub-object); anything else goes to the safe representer."""

    def represent_data(self, data: Any) -> yaml.Node:
        kind = type(data)
        if kind is str:
            return yaml.ScalarNode(STR_TAG, data, style="|" if "\n" in data else None)
        if kind is dict:
            pairs = [(self.represent_data(k), self.represent_data(v)) for k, v in data.items()]
            return yaml.MappingNode(MAP_TAG, pairs, flow_style=False)
        if kind is list:
            return yaml.SequenceNode(SEQ_TAG, [self.represent_data(item) for item in data], flow_style=False)
        if kind is bool:
            return yaml.ScalarNode(BOOL_TAG, "true" if data else "false")
        if kind is int:
            return yaml.ScalarNode(INT_TAG, str(data))
        if data is None:
            return yaml.ScalarNode(NULL_TAG, "null")
        return super().represent_data(data)  # type: ignore[misc,no-any-return]


def dumper(base: type[yaml.SafeDumper] = _BaseDumper, fast: bool = True) -> type[yaml.SafeDumper]:
    """The dumper of rendered objects over `base` (libyaml's when present); `fast`: plain data
    represented in one pass (tests/unit/test_render.py compares it with the safe representer)."""
    bases = (_PlainData, base) if fast else (base,)
    cls: type[yaml.SafeDumper] = type("StackopsDumper", bases, {})
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
