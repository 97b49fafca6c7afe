"""Images built for real with buildah from the debootstrap base (the CI set: the operator image, base,
openstack-base and keystone), and a cloud rendered to run on them against MariaDB on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from stackops.api.releases import DEFAULT_RELEASE, RELEASES
from stackops.credentials import Credentials
from stackops.plan import Plan, plan
from stackops.services import keystone
from tests.conftest import cloud
from tests.images.build import CI_IMAGES, Buildah, Builder
from tests.support.mariadb import MariaDB
from tests.support.progress import printer
from tests.support.rendered import cloud_credentials

# The rendered Apache config listens on keystone's port; buildah shares the host's network.
KEYSTONE_PORT = keystone.SERVICE.port
KEYSTONE_URL = f"http://127.0.0.1:{KEYSTONE_PORT}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/images/" in str(item.fspath):
            item.add_marker(pytest.mark.images)


@pytest.fixture(scope="session")
def built(pytestconfig: pytest.Config) -> Builder:
    """The CI images, built now unless their inputs are unchanged since the cached build; a cold build
    takes minutes and prints its progress past pytest's capture."""
    say = printer(pytestconfig)
    builder = Builder(RELEASES[DEFAULT_RELEASE], log=lambda line: say(f"images: {line}"))
    builder.build(CI_IMAGES)
    return builder


@pytest.fixture(scope="session")
def buildah(built: Builder) -> Buildah:
    return built.buildah


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDB]:
    with MariaDB() as server:
        yield server


@dataclass(frozen=True)
class Cloud:
    """A rendered cloud whose images are the ones built here, and the Secrets its pods read."""

    plan: Plan
    credentials: Credentials
    secrets: dict[str, dict[str, str]]


@pytest.fixture(scope="session")
def rendered(mariadb: MariaDB) -> Cloud:
    """A cloud on localhost/stackops images (`spec.images`) with MariaDB as an external database; the
    tests run its keystone objects."""
    spec = {
        "images": {"registry": "localhost", "namespace": "stackops", "distro": "debian-bookworm"},
        # keystone is reached here at 127.0.0.1, which no certificate of the cloud names; TLS inside the
        # cloud is proven on the real node (tests/node/test_cloud.py), where clients use the Services' names
        "internalTLS": {"enabled": False},
        "infrastructure": {
            "database": {"external": {"host": mariadb.host, "port": mariadb.port, "secretRef": {"name": "db-admin"}}}
        },
        "services": {
            "keystone": {
                "endpoints": {"public": KEYSTONE_URL, "internal": KEYSTONE_URL},
                # no memcached here: the cache is turned off the way a user would
                "config": {"cache": {"enabled": False}},
            },
        },
    }
    model = cloud(spec)
    assert model.spec.release == DEFAULT_RELEASE
    credentials = Credentials(cloud_credentials(model))
    result = plan(model, credentials)
    secrets = {o["metadata"]["name"]: dict(o["stringData"]) for o in result.objects() if o["kind"] == "Secret"}
    secrets["db-admin"] = {"username": mariadb.root_user, "password": mariadb.root_password}
    secrets["demo-credentials"] = credentials.values()
    return Cloud(result, credentials, secrets)
