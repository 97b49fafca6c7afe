from __future__ import annotations

import pytest

from stackops.api.oslo import MultiString
from stackops.render.ini import IniSections, IniShapeError, render_ini


def test_sections_sorted_with_default_first_and_values_formatted() -> None:
    text = render_ini(
        {
            "token": {"provider": "fernet", "expiration": 3600},
            "DEFAULT": {"debug": False, "workers": 2},
            "cache": {"memcache_servers": ["a:11211", "b:11211"], "enabled": True},
        }
    )
    assert text == (
        "[DEFAULT]\ndebug = false\nworkers = 2\n\n"
        "[cache]\nenabled = true\nmemcache_servers = a:11211,b:11211\n\n"
        "[token]\nexpiration = 3600\nprovider = fernet\n"
    )


def test_multistring_values_repeat_the_option() -> None:
    defaults = {"DEFAULT": {"pci_alias": MultiString(("a", "b"))}}
    assert render_ini(defaults) == "[DEFAULT]\npci_alias = a\npci_alias = b\n"
    overrides = {"DEFAULT": {"pci_alias": {"type": "multistring", "values": ["x", "y", "z"]}}}
    assert render_ini(defaults, overrides) == "[DEFAULT]\npci_alias = x\npci_alias = y\npci_alias = z\n"


def test_overrides_win_option_by_option_and_null_removes() -> None:
    defaults = {"DEFAULT": {"debug": False, "use_stderr": True}}
    overrides: IniSections = {"DEFAULT": {"debug": True, "use_stderr": None}, "new": {"opt": "v"}}
    assert render_ini(defaults, overrides) == "[DEFAULT]\ndebug = true\n\n[new]\nopt = v\n"


def test_key_order_of_the_input_does_not_change_the_bytes() -> None:
    a = render_ini({"b": {"y": 1, "x": 2}, "a": {"k": "v"}})
    b = render_ini({"a": {"k": "v"}, "b": {"x": 2, "y": 1}})
    assert a == b


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"DEFAULT": {"debug": {"a": 1}}}, "DEFAULT.debug: a mapping cannot be an INI value"),
        ({"DEFAULT": "debug"}, "DEFAULT: a section must be a mapping of options"),
        ({"DEFAULT": {"banner": "two\nlines"}}, "DEFAULT.banner: a value cannot span several lines"),
        ({"DEFAULT": {"hosts": [["nested"]]}}, "DEFAULT.hosts: a list may hold only scalars"),
        ({"DEFAULT": {"hosts": ["a,b"]}}, "DEFAULT.hosts: a list may hold only scalars without commas"),
        ({"DEFAULT": {"m": {"type": "multistring"}}}, "DEFAULT.m: a multistring needs exactly"),
    ],
)
def test_shapes_ini_cannot_hold_are_named(overrides: dict[str, object], problem: str) -> None:
    with pytest.raises(IniShapeError) as caught:
        render_ini({}, overrides)  # type: ignore[arg-type]
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems
