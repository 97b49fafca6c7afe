"""The cloud's NetworkPolicies, derived from what its services declare.

Every service's pods refuse every connection (`<cloud>-<service>-default-deny`, which selects them by
the cloud's and the service's labels: other tenants of the namespace are untouched) except those the
listeners of its steps admit (services/base.py: Listener), one NetworkPolicy per component that
serves something (`<cloud>-<service>-<component>`). Who a listener's clients are comes from what the
services already declare: the users of MariaDB, RabbitMQ and memcached are the services whose `uses`
names them (an OpenStack service's databases, messaging and keystone account say it), an API is open
to where spec.networkPolicies.apiAccess says, and so on (Clients). Host agents use their node's
network, so NetworkPolicy sees them as node addresses: spec.networkPolicies.nodeCIDRs, or else the
addresses of the cluster's nodes, which the operator reads from the Node objects on every pass (a
node that joins is admitted by the next pass).

A service's policies are its first step: they exist before its pods, and allowing rules come before
the default deny, so turning policies on under a running cloud never refuses a connection it needs.
They go when the service does, or all of them when spec.networkPolicies.enabled is false (the
operator prunes what it no longer renders).

Egress stays open: the cloud's processes reach DNS, the Kubernetes API (RabbitMQ's peer discovery),
and places only the user knows (Ceph monitors, NFS filers, an external database, URLs glance's
web-download fetches); the finding this answers is who reaches the backends, not where they connect.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from stackops.render.naming import CLOUD_LABEL
from stackops.services.base import Clients, CloudContext, Listener, Service, Step

NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace
DEFAULT_DENY = "default-deny"
STEP_SUFFIX = "network-policy"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")


def pod_templates(objects: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The pod templates of the workloads among `objects`."""
    for obj in objects:
        if obj["kind"] in WORKLOAD_KINDS:
            yield obj["spec"]["template"]


def runs_host_agents(steps: Sequence[Step]) -> bool:
    """Whether any pod of these steps uses its node's network (a host agent)."""
    return any(t["spec"].get("hostNetwork") for s in steps for t in pod_templates(s.objects))


@dataclass(frozen=True)
class Rendered:
    """One enabled service and the steps it rendered."""

    service: Service
    steps: list[Step]

    @property
    def host_agents(self) -> bool:
        return runs_host_agents(self.steps)

    @property
    def listeners(self) -> list[Listener]:
        return [listener for step in self.steps for listener in step.listeners]


@dataclass(frozen=True)
class Rule:
    """One ingress rule: into the pods of `service`'s `component`, on `ports`, from `peers` (None:
    from anywhere); `sources` says who in words (for docs/security.md and `stackops flows`)."""

    service: str
    component: str
    ports: tuple[int, ...]
    peers: list[dict[str, Any]] | None
    sources: tuple[str, ...]
    udp: bool = False

    def to_dict(self) -> dict[str, Any]:
        rule: dict[str, Any] = {} if self.peers is None else {"from": self.peers}
        protocols = ("TCP", "UDP") if self.udp else ("TCP",)
        return rule | {"ports": [{"protocol": p, "port": port} for port in sorted(self.ports) for p in protocols]}


def cloud_pods(ctx: CloudContext, **labels: str) -> dict[str, Any]:
    """A selector of the cloud's pods with `labels` besides the cloud's."""
    return {"matchLabels": {CLOUD_LABEL: ctx.name, **labels}}


def component_pods(ctx: CloudContext, service: str, component: str) -> dict[str, Any]:
    return cloud_pods(ctx, **{NAME_LABEL: service, COMPONENT_LABEL: component})


def node_cidrs(ctx: CloudContext) -> list[str]:
    """Where host agents' connections come from: spec.networkPolicies.nodeCIDRs, or else each
    node's own address (RenderOptions.node_addresses: the operator reads them from the Node
    objects; a render outside the cluster knows none)."""
    given = ctx.spec.network_policies.node_cidrs
    return list(given) if given else [f"{address}/32" for address in ctx.options.node_addresses]


def node_peers(ctx: CloudContext) -> list[dict[str, Any]]:
    return [{"ipBlock": {"cidr": cidr}} for cidr in node_cidrs(ctx)]


def _nodes(ctx: CloudContext, whose: str) -> tuple[str, ...]:
    if ctx.spec.network_policies.node_cidrs:
        return (f"nodeCIDRs ({whose})",)
    return (f"the nodes' addresses ({whose})",) if ctx.options.node_addresses else ()


def _peers(
    ctx: CloudContext, owner: Rendered, listener: Listener, cloud: Sequence[Rendered]
) -> tuple[list[dict[str, Any]] | None, tuple[str, ...]]:
    """The peers of a listener's rule and who they are in words; no peers at all: no rule."""
    spec = ctx.spec.network_policies
    service = owner.service.name
    found: list[dict[str, Any]]
    words: tuple[str, ...]
    match listener.clients:
        case Clients.API:
            access = spec.api_access
            if access.from_ == "Anywhere":
                return None, ("anywhere",)
            if access.from_ == "Cluster":
                found, words = [{"namespaceSelector": {}}], ("every pod of the cluster",)
            else:
                namespaces = {"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": sorted(access.namespaces)}
                found = [
                    {"podSelector": cloud_pods(ctx)},
                    {"namespaceSelector": {"matchExpressions": [namespaces]}},
                ]
                words = ("the cloud's pods", f"pods of the namespaces {', '.join(sorted(access.namespaces))}")
            return found + node_peers(ctx), words + _nodes(ctx, "host agents")
        case Clients.USERS:
            used = listener.used_as or service
            users = sorted((r for r in cloud if used in r.service.uses(ctx.spec)), key=lambda r: r.service.name)
            if not users:
                return [], ()
            names = [r.service.name for r in users]
            selector = cloud_pods(ctx) | {"matchExpressions": [{"key": NAME_LABEL, "operator": "In", "values": names}]}
            found, words = [{"podSelector": selector}], (f"pods of {', '.join(names)}",)
            agents = [r.service.name for r in users if r.host_agents]
            if agents:
                found += node_peers(ctx)
                words += _nodes(ctx, f"host agents of {', '.join(agents)}")
            return found, words
        case Clients.SERVICE:
            found, words = [{"podSelector": cloud_pods(ctx, **{NAME_LABEL: service})}], (f"pods of {service}",)
            if owner.host_agents:
                found += node_peers(ctx)
                words += _nodes(ctx, f"host agents of {service}")
            return found, words
        case Clients.MEMBERS:
            return [{"podSelector": component_pods(ctx, service, listener.component)}], ("its own members",)
        case Clients.JOBS:
            assert listener.jobs is not None
            jobs = cloud_pods(ctx, **{COMPONENT_LABEL: listener.jobs})
            return [{"podSelector": jobs}], (f"every service's {listener.jobs} Job",)
        case Clients.MONITORING:
            if spec.monitoring_namespace is None:
                return [], ()
            selector = {"matchLabels": {NAMESPACE_NAME_LABEL: spec.monitoring_namespace}}
            return [{"namespaceSelector": selector}], (f"pods of the namespace {spec.monitoring_namespace}",)


def rules(ctx: CloudContext, cloud: Sequence[Rendered]) -> list[Rule]:
    """Every ingress rule of the cloud, by service (in `cloud`'s order), component and port. A rule
    that would admit nobody is left out: an ingress rule without peers admits everyone."""
    found: list[Rule] = []
    for owner in cloud:
        for listener in owner.listeners:
            peers, sources = _peers(ctx, owner, listener, cloud)
            if peers == []:
                continue
            found.append(Rule(owner.service.name, listener.component, listener.ports, peers, sources, listener.udp))
    return found


def _policy(
    ctx: CloudContext, service: str, component: str, pods: dict[str, Any], ingress: list[Rule]
) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": pods, "policyTypes": ["Ingress"]}
    if ingress:
        spec["ingress"] = [rule.to_dict() for rule in sorted(ingress, key=lambda r: (sorted(r.ports), r.sources))]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": ctx.metadata(ctx.object_name(service, component), service, component),
        "spec": spec,
    }


def policies(ctx: CloudContext, owner: Rendered, cloud_rules: Sequence[Rule]) -> list[dict[str, Any]]:
    """A service's NetworkPolicies: one per component with rules (by component name), then the
    default deny of all its pods."""
    service = owner.service.name
    own = [rule for rule in cloud_rules if rule.service == service]
    allowing = []
    for component in sorted({rule.component for rule in own}):
        pods = component_pods(ctx, service, component)
        allowing.append(_policy(ctx, service, component, pods, [r for r in own if r.component == component]))
    deny = _policy(ctx, service, DEFAULT_DENY, cloud_pods(ctx, **{NAME_LABEL: service}), [])
    return [*allowing, deny]


def protect(ctx: CloudContext, cloud: Sequence[Rendered], cloud_rules: Sequence[Rule]) -> list[Rendered]:
    """`cloud` with each service's NetworkPolicies, made of `cloud_rules` (rules()), as its first
    step; a service that runs no pod (an `external` database) has none."""
    protected = []
    for owner in cloud:
        if not any(pod_templates([o for s in owner.steps for o in s.objects])):
            protected.append(owner)
            continue
        step = Step(f"{owner.service.name}-{STEP_SUFFIX}", owner.service.name, policies(ctx, owner, cloud_rules))
        protected.append(Rendered(owner.service, [step, *owner.steps]))
    return protected


def flows_markdown(cloud_rules: Sequence[Rule]) -> str:
    """The allowed flows as a Markdown table (docs/security.md, `stackops flows`)."""
    lines = ["| into | TCP ports | from |", "|---|---|---|"]
    for rule in cloud_rules:
        ports = ", ".join(str(p) for p in sorted(rule.ports)) + (" (and UDP)" if rule.udp else "")
        lines.append(f"| {rule.service} {rule.component} | {ports} | {'; '.join(rule.sources)} |")
    return "\n".join(lines) + "\n"
