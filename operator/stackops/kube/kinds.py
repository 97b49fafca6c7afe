"""The kinds stackops manages, with their REST paths: no discovery round-trips needed."""

from __future__ import annotations

from dataclasses import dataclass

from stackops.api.models import GROUP, PLURAL, VERSION


@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        parts = [base]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
        if subresource:
            parts.append(subresource)
        return "/".join(parts)


# Order matters for deletion: workloads before what they mount.
MANAGED_KINDS: tuple[Kind, ...] = (
    Kind("batch/v1", "Job", "jobs"),
    Kind("batch/v1", "CronJob", "cronjobs"),
    Kind("apps/v1", "Deployment", "deployments"),
    Kind("apps/v1", "StatefulSet", "statefulsets"),
    Kind("apps/v1", "DaemonSet", "daemonsets"),
    Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    Kind("networking.k8s.io/v1", "Ingress", "ingresses"),
    Kind("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes"),
    Kind("gateway.networking.k8s.io/v1", "BackendTLSPolicy", "backendtlspolicies"),
    # after the workloads they guard: a pruned service's pods go before their policies
    Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
    Kind("v1", "Service", "services"),
    Kind("v1", "ConfigMap", "configmaps"),
    Kind("v1", "Secret", "secrets"),
    Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    Kind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    Kind("rbac.authorization.k8s.io/v1", "Role", "roles"),
    Kind("v1", "ServiceAccount", "serviceaccounts"),
)
_BY_KIND = {(k.api_version, k.kind): k for k in MANAGED_KINDS}

CLOUD = Kind(f"{GROUP}/{VERSION}", "OpenStackCloud", PLURAL)
EVENT = Kind("v1", "Event", "events")
POD = Kind("v1", "Pod", "pods")  # only read: health checks look for crash-looping pods
NODE = Kind("v1", "Node", "nodes", namespaced=False)  # only read: their addresses (node_addresses)
PVC = next(k for k in MANAGED_KINDS if k.kind == "PersistentVolumeClaim")
LEASE = Kind("coordination.k8s.io/v1", "Lease", "leases")


def kind_of(obj: dict[str, object]) -> Kind:
    key = (str(obj["apiVersion"]), str(obj["kind"]))
    try:
        return _BY_KIND[key]
    except KeyError:
        raise ValueError(f"stackops does not manage {key[1]} ({key[0]})") from None
