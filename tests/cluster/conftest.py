"""A real control plane (etcd, kube-apiserver, KCM, scheduler) with kwok nodes, shared by the session.

Binaries come from hack/kube/build.sh (built on first use: minutes when cold). The cluster
has one control-plane node and two compute nodes; tests that need their own namespace
create one, so they do not see each other's objects.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stackops.devcluster import Binaries, LocalCluster, ensure_binaries
from tests.support.progress import printer


@pytest.fixture(scope="session")
def cluster_binaries(pytestconfig: pytest.Config) -> Binaries:
    return ensure_binaries(progress=printer(pytestconfig))


@pytest.fixture(scope="session")
def local_cluster(pytestconfig: pytest.Config, cluster_binaries: Binaries) -> Iterator[LocalCluster]:
    cluster = LocalCluster(binaries=cluster_binaries)
    cluster.start()
    printer(pytestconfig)(f"\nlocal cluster: started in {cluster.startup_seconds:.1f}s at {cluster.server}")
    try:
        yield cluster
    finally:
        cluster.stop()
