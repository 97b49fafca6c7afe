"""Progress lines for a person watching a long test run."""

from __future__ import annotations

from collections.abc import Callable

import pytest


def printer(config: pytest.Config) -> Callable[[str], None]:
    """Print past pytest's output capture (a cold binary build must show progress)."""
    reporter = config.pluginmanager.getplugin("terminalreporter")
    if reporter is None:
        return print
    return lambda line: reporter.write_line(line)
