"""Agents on hosts (nova-compute, libvirt, Open vSwitch, ovn-controller, LVM volumes): DaemonSets of
privileged Kolla containers sharing the host's network and PIDs, on the nodes a selector picks.

Which nodes: a DaemonSet runs on nodes matching any of its `include` label sets and none of its
`exclude` sets, so compute groups can split the compute nodes without two agents on one host.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stackops.api.models import AgentNodes
from stackops.render.kolla import KollaCommand, config_mount
from stackops.render.naming import MIN_READY_PERCENT_ANNOTATION
from stackops.services.api import Kolla
from stackops.services.base import CloudContext, RenderError, Service, Step

# Excluding label sets multiplies selector terms; beyond this the groups are better told apart by one label.
MAX_SELECTOR_TERMS = 64

Labels = Mapping[str, str]


def node_affinity(field_path: str, include: Sequence[Labels], exclude: Sequence[Labels] = ()) -> dict[str, Any]:
    """Required node affinity: all labels of one `include` set, and not all labels of any `exclude` set.

    nodeSelectorTerms are ORed and a term's expressions ANDed, so "not (a and b)" becomes "not a, or
    not b": each term takes one included set and one label from every excluded set.
    """
    terms: list[list[dict[str, Any]]] = []
    for wanted in include:
        required = [{"key": k, "operator": "In", "values": [v]} for k, v in sorted(wanted.items())]
        for choice in itertools.product(*(sorted(e.items()) for e in exclude)):
            if any(wanted.get(k) == v for k, v in choice):
                continue  # asks for a label and its absence: matches no node
            term = required + [{"key": k, "operator": "NotIn", "values": [v]} for k, v in sorted(set(choice))]
            if term not in terms:
                terms.append(term)
    if len(terms) > MAX_SELECTOR_TERMS:
        raise RenderError(field_path, f"these selectors need {len(terms)} node selector terms (at most "
                          f"{MAX_SELECTOR_TERMS}); tell groups apart by fewer labels")  # fmt: skip
    if not terms:
        raise RenderError(field_path, "selects no node: every node it names is also excluded")
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": t} for t in terms]
            }
        }
    }


# oslo.config reads [DEFAULT] my_ip from here: a host agent's address is its node's InternalIP (the
# management address the API server reaches the node at), never one it guesses from its routes
NODE_IP_AS_MY_IP = {"name": "OS_DEFAULT__MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}}


@dataclass(frozen=True)
class AgentContainer:
    """One container of a host agent pod: a Kolla command of its service, with host mounts."""

    name: str
    kolla: Kolla
    component: str
    mounts: tuple[dict[str, Any], ...] = ()
    env: tuple[dict[str, Any], ...] = ()
    probes: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    privileged: bool = True

    @property
    def volume_name(self) -> str:
        return f"config-{self.component}"

    def config_volume(self) -> dict[str, Any]:
        return self.kolla.volume(self.component, self.volume_name)

    def config_mount(self) -> dict[str, Any]:
        return config_mount(self.volume_name)

    def _on_host(self, path: str) -> dict[str, Any] | None:
        return next((m for m in self.mounts if path == m["mountPath"] or path.startswith(m["mountPath"] + "/")), None)

    @property
    def host_paths_config(self) -> str | None:
        """A config.json that only sets the owners of the host paths this container's command
        names, for an init container running as root; None when the container runs as root itself
        or names none. Host directories are made by root (containerd, on first mount), and Kolla's
        service users cannot take them over."""
        if self.kolla.uid == 0:
            return None
        owned = tuple(p for p in self.kolla.commands[self.component].permissions if self._on_host(p.path))
        return KollaCommand("true", permissions=owned).to_json() if owned else None

    @property
    def host_paths_made(self) -> list[str]:
        """The host directories the command names, made first when missing (Kolla's permissions
        pass over a missing path: a service's directory on a new host does not exist yet)."""
        paths = [p.path for p in self.kolla.commands[self.component].permissions if self._on_host(p.path)]
        return [path for path in paths if not any(c in path for c in "*?[")]

    @property
    def host_paths_mounts(self) -> list[dict[str, Any]]:
        """The host mounts `host_paths_config` changes, without propagation (a privilege of
        privileged containers, which the init container need not be)."""
        paths = [p.path for p in self.kolla.commands[self.component].permissions]
        found = [m for m in (self._on_host(p) for p in paths) if m is not None]
        return [{"name": m["name"], "mountPath": m["mountPath"]} for m in dict((m["name"], m) for m in found).values()]


def agents_group(containers: Sequence[AgentContainer]) -> int | None:
    """The group owning an agent pod's Secret volumes: the non-root Kolla user its containers run as
    (Kolla config files are 0400, readable by the group the kubelet gives them). Host paths keep
    their owners: the kubelet changes ownership only of the volumes it makes."""
    users = sorted({c.kolla.uid for c in containers if c.kolla.uid != 0})
    if len(users) > 1:
        raise ValueError(f"an agent pod's containers run as one non-root user, not {users}")
    return users[0] if users else None


def agent_step(
    ctx: CloudContext,
    service: Service,
    name: str,
    component: str,
    containers: Sequence[AgentContainer],
    *,
    affinity: dict[str, Any],
    host_paths: Mapping[str, str],
    resources: Mapping[str, dict[str, Any]],
    role: AgentNodes,
    extra_volumes: Sequence[dict[str, Any]] = (),
) -> Step:
    """A DaemonSet `name` of `containers`; `host_paths` maps volume names to host directories.
    Pods roll `role.maxUnavailable` nodes at a time (spec.nodes.<role>), so a config change or an
    upgrade never takes every host down at once; the step is ready once `role.minReadyPercent` of
    the nodes run it (stackops.kube.readiness reads the annotation)."""
    metadata = ctx.metadata(name, service.name, component)
    metadata["annotations"] = {MIN_READY_PERCENT_ANNOTATION: str(role.min_ready_percent)}
    return Step(
        name.removeprefix(f"{ctx.name}-"),
        service.name,
        ctx.render(
            "common/agent.yaml.j2",
            name=name,
            metadata=metadata,
            service=service.name,
            component=component,
            containers=list(containers),
            affinity=affinity,
            host_paths=dict(sorted(host_paths.items())),
            resources=resources,
            max_unavailable=role.max_unavailable,
            extra_volumes=list(extra_volumes),
            fs_group=agents_group(containers),
            config_hash=ctx.config_annotations(*sorted({c.kolla.config.hash for c in containers})),
        ),
    )
