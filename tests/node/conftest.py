"""A real node beside the local control plane (kubelet, containerd, kube-proxy, CoreDNS), shared by the
session: pods really run here, in the node's own network namespace, from images built with buildah.

One real node per machine: a test that brings up its own (test_lifecycle.py) runs before the shared
one starts, and nothing else may hold the node's names and addresses meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from stackops.devcluster import Binaries, LocalCluster, ensure_binaries
from tests.support.progress import printer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/node/" in str(item.fspath):
            item.add_marker(pytest.mark.node)
    # the lifecycle test brings up real nodes of its own: before the session's shared one exists
    items.sort(key=lambda item: 0 if "tests/node/test_lifecycle.py" in str(item.fspath) else 1)


@pytest.fixture(scope="session")
def node_binaries(pytestconfig: pytest.Config) -> Binaries:
    return ensure_binaries(progress=printer(pytestconfig), real_node=True)


# torn down once tests/node is done: the other tests do not share the machine with a running cloud
@pytest.fixture(scope="package")
def real_cluster(pytestconfig: pytest.Config, node_binaries: Binaries) -> Iterator[LocalCluster]:
    say = printer(pytestconfig)
    cluster = LocalCluster(binaries=node_binaries, real_node=True, timeout=120.0)
    cluster.start(control_plane_nodes=0, compute_nodes=0)
    say(f"\nreal node: cluster up in {cluster.startup_seconds:.1f}s at {cluster.server}")
    try:
        cluster.load_images(["debian"], progress=lambda line: say(f"images: {line}"))
        yield cluster
    finally:
        cluster.stop()


DEBIAN = "localhost/stackops/debian:bookworm"


def python_pod(name: str, code: str, labels: dict[str, str] | None = None, restart: str = "Never") -> dict[str, Any]:
    """A pod that runs `code` with the Debian image's Python."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {"name": "main", "image": DEBIAN, "imagePullPolicy": "Never", "command": ["python3", "-c", code]}
            ],
        },
    }


def wait_pod(
    core: client.CoreV1Api, namespace: str, name: str, done: Callable[[Any], bool], timeout: float = 90
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        pod = core.read_namespaced_pod(name, namespace)
        if done(pod):
            return pod
        if time.monotonic() > deadline:
            raise AssertionError(f"pod {namespace}/{name} not done after {timeout}s: {pod.status}")
        time.sleep(0.5)


def finished(pod: Any) -> bool:
    return pod.status.phase in ("Succeeded", "Failed")


def ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
