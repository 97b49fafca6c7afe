"""A local Kubernetes control plane (real apiserver, KCM, scheduler; kwok nodes) for tests and dev."""

from stackops.devcluster.binaries import Binaries, ensure_binaries
from stackops.devcluster.cluster import LocalCluster, down
from stackops.devcluster.errors import DevClusterError
from stackops.devcluster.identities import OPERATOR_USER

__all__ = ["OPERATOR_USER", "Binaries", "DevClusterError", "LocalCluster", "down", "ensure_binaries"]
