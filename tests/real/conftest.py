"""Real services for the tests in this folder: MariaDB from Debian, OpenStack services from PyPI."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackops.api.releases import DEFAULT_RELEASE, RELEASES
from tests.support.mariadb import MariaDB
from tests.support.service_venv import ensure_venv


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/real/" in str(item.fspath):
            item.add_marker(pytest.mark.real)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDB]:
    with MariaDB() as server:
        yield server


def service_venv(service: str, *extra: str) -> Path:
    """bin/ of a virtualenv holding the service's package at the default release's version."""
    return ensure_venv(service, [RELEASES[DEFAULT_RELEASE].packages[service], "PyMySQL", *extra])


@pytest.fixture(scope="session")
def keystone_bin() -> Path:
    return service_venv("keystone", "gunicorn")
