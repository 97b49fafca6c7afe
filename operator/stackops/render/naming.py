"""Object names and labels. Every name starts with the cloud's name so clouds can share a namespace."""

from __future__ import annotations

import hashlib

DNS_LABEL_MAX = 63

PART_OF = "openstack"
MANAGED_BY = "stackops"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
CLOUD_LABEL = "stackops.dev/cloud"
NAME_LABEL = "app.kubernetes.io/name"  # the service
COMPONENT_LABEL = "app.kubernetes.io/component"
# on host agents' DaemonSets: the share of their nodes that must run them for the step to be ready
MIN_READY_PERCENT_ANNOTATION = "stackops.dev/min-ready-percent"


def fit(name: str, limit: int = DNS_LABEL_MAX) -> str:
    """`name` when short enough, else a prefix plus a hash of the whole: still unique, still stable."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-')}-{digest}"


def object_name(cloud: str, *parts: str) -> str:
    return fit("-".join((cloud, *parts)))


def selector_labels(cloud: str, service: str, component: str) -> dict[str, str]:
    """Labels a workload selects its pods by: they never change over the life of the cloud."""
    return {
        NAME_LABEL: service,
        "app.kubernetes.io/instance": cloud,
        COMPONENT_LABEL: component,
    }


def common_labels(cloud: str, service: str, component: str) -> dict[str, str]:
    return {
        **selector_labels(cloud, service, component),
        "app.kubernetes.io/part-of": PART_OF,
        MANAGED_BY_LABEL: MANAGED_BY,
        CLOUD_LABEL: cloud,
    }
