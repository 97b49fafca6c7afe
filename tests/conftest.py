"""Shared fixtures: the example clouds, and a loader for test-local cloud documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from stackops.api.models import OpenStackCloud
from stackops.api.validation import parse_cloud

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
# a cloud no example is: rendered by the unit tests, and validated where it renders sections no example does
VARIANT = ROOT / "tests" / "data" / "variant-galera-rbd-httproute.yaml"


def cloud(spec: dict[str, Any] | None = None, name: str = "demo", namespace: str = "openstack") -> OpenStackCloud:
    """An OpenStackCloud from a spec fragment (release defaults to the default release)."""
    return parse_cloud(
        {
            "apiVersion": "stackops.dev/v1alpha1",
            "kind": "OpenStackCloud",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec or {},
        }
    )


@pytest.fixture(params=EXAMPLES, ids=lambda p: p.name)
def example(request: pytest.FixtureRequest) -> OpenStackCloud:
    return parse_cloud(yaml.safe_load(request.param.read_text()))
