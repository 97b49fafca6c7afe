"""Progress lines for a person watching a long test run."""

from __future__ import annotations

from collections.abc import Callable

import pytest


def printer(config: pytest.Config) -> Callable[[str], None]:
    """Print past pytest's output capture, that of file descriptor 1 included (a cold build must
    show its progress, and CI logs its phases' times)."""
    reporter = config.pluginmanager.getplugin("terminalreporter")
    if reporter is None:
        return print
    capture = config.pluginmanager.getplugin("capturemanager")

    def say(line: str) -> None:
        if capture is None:
            reporter.write_line(line)
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)

    return say
