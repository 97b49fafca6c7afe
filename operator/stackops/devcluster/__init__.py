"""A local Kubernetes control plane (real apiserver, KCM, scheduler; kwok nodes) for tests and dev.

`LocalCluster` and `down` load lazily: they pull in the kubernetes client (~0.2 s), which
`stackops` commands that only register `dev cluster` in their parser should not pay for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stackops.devcluster.binaries import Binaries, ensure_binaries
from stackops.devcluster.errors import DevClusterError
from stackops.devcluster.identities import OPERATOR_USER

if TYPE_CHECKING:
    from stackops.devcluster.cluster import LocalCluster, down

__all__ = ["OPERATOR_USER", "Binaries", "DevClusterError", "LocalCluster", "down", "ensure_binaries"]


def __getattr__(name: str) -> Any:
    if name in ("LocalCluster", "down"):
        from stackops.devcluster import cluster

        return getattr(cluster, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
