"""The steps that move a cloud from the release it runs to the release its spec asks for.

Pure, like stackops.plan: the same cloud, credentials and releases give the same steps and objects.

Order: the infrastructure rolls to the new release's images first (MariaDB, memcached, RabbitMQ),
then each OpenStack service in the order upstream upgrades them, each as

    expand Jobs  ->  roll (its config and workloads at the new release)  ->  contract Jobs

then compute agents (DaemonSets), last, node by node as their update strategy allows, then the
online data migrations that need every process on the new release, and finally the whole cloud
converged at the new release (its regular Jobs, pruning what the old one needed).
Before any of it, the pre-flight runs every service's `<service>-status upgrade check` as a Job
with the new release's image and config.

An upgrade Job is named after the release pair, the service and the step, not after its spec: the
Job of a step that already ran is found again, whatever the operator went through in between, so a
migration is never repeated and never skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from stackops.api.models import OpenStackCloud
from stackops.credentials import Credentials
from stackops.plan import Plan, enabled_services, plan
from stackops.render.hashing import SPEC_HASH_LENGTH, content_hash
from stackops.render.naming import fit
from stackops.services import all_services, api, dependency_order
from stackops.services.base import CloudContext, RenderOptions, Service, Step
from stackops.services.upgrades import CHECK_COMPONENT, ServiceUpgrade

UPGRADE_LABEL = "stackops.dev/upgrade"  # on every upgrade Job and Secret: "<from>-<to>"
# On the pod templates a service rolls while agents still run the release before (restart_after_agents):
# the final converge renders them without it, so they start again with every agent on the new release.
AGENTS_RELEASE_ANNOTATION = "stackops.dev/agents-release"
PREFLIGHT = "preflight"
ROLL = "roll"
AGENTS = "agents"
FINISH = "finish"
# Compute agents: rolled after every control-plane service, through the nodes.
AGENT_KINDS = frozenset({"DaemonSet"})

StepKind = Literal["jobs", "roll", "finish"]


@dataclass(frozen=True)
class UpgradeStep:
    service: str
    name: str  # a Job's component (db-expand …), or roll, agents, finish
    kind: StepKind
    objects: list[dict[str, Any]] = field(default_factory=list)
    contract: bool = False  # once it has started, the old release cannot run on the database again
    stages: list[Step] = field(default_factory=list)  # a roll: applied in order, each once the one before is ready

    @property
    def id(self) -> str:
        return f"{self.service}/{self.name}"

    @property
    def label(self) -> str:
        """How people read it in status and Events: "keystone db-expand"."""
        return f"{self.service} {self.name}" if self.kind != "finish" else "converge the cloud"


@dataclass(frozen=True)
class UpgradePlan:
    source: str
    target: str
    converged: Plan  # the cloud at the target release, what the last step applies
    checks: list[dict[str, Any]]  # the pre-flight: upgrade config Secrets and check Jobs
    steps: list[UpgradeStep]  # in order, the last one `finish`

    def step(self, step_id: str) -> UpgradeStep:
        return next(s for s in self.steps if s.id == step_id)


def at_release(cloud: OpenStackCloud, release: str) -> OpenStackCloud:
    return cloud.model_copy(update={"spec": cloud.spec.model_copy(update={"release": release})})


def upgrade_label(source: str, target: str) -> str:
    return f"{source}-{target}"


def upgrade_job_name(ctx: CloudContext, service: str, component: str, source: str, target: str) -> str:
    """`<cloud>-<service>-<component>-<hash of the release pair, service and component>`."""
    suffix = content_hash([source, target, service, component], SPEC_HASH_LENGTH)
    return fit(f"{fit(ctx.object_name(service, component), 63 - SPEC_HASH_LENGTH - 1)}-{suffix}")


def upgrade_order(services: Sequence[Service]) -> list[Service]:
    """`services` in the order they upgrade: each after what it depends on and what it upgrades after
    (`Service.upgrade_after`), ties by name. The order is taken over every service, so one that a
    cloud does not have leaves the others in their places."""
    graph = {s.name: (*s.depends_on, *s.upgrade_after) for s in all_services()}
    rank = {name: i for i, name in enumerate(dependency_order(graph))}
    return sorted(services, key=lambda s: rank[s.name])


def _labelled(obj: dict[str, Any], value: str) -> dict[str, Any]:
    meta = obj["metadata"]
    return {**obj, "metadata": {**meta, "labels": {**meta.get("labels", {}), UPGRADE_LABEL: value}}}


class _ServiceJobs:
    """One service's upgrade Jobs and the config Secret they read."""

    def __init__(self, ctx: CloudContext, service: Service, declared: ServiceUpgrade, source: str, target: str) -> None:
        unknown = [c for c in declared.commands() if c not in service.components]
        if unknown:
            raise ValueError(f"{service.name}: upgrade commands for unknown components: {', '.join(unknown)}")
        self.ctx, self.service, self.declared = ctx, service, declared
        self.source, self.target = source, target
        self.kolla = api.kolla(
            ctx, service, declared.image, dict(declared.files), declared.commands(), declared.uid, part="upgrade"
        )
        self.secret = _labelled(self.kolla.config.obj, upgrade_label(source, target))

    def job(self, component: str) -> dict[str, Any]:
        declared = self.declared
        [job] = api.job_step(
            self.ctx, self.service, component, self.kolla, declared.env, declared.volumes, declared.mounts
        ).objects
        job = _labelled(job, upgrade_label(self.source, self.target))
        name = upgrade_job_name(self.ctx, self.service.name, component, self.source, self.target)
        return {**job, "metadata": {**job["metadata"], "name": name}}

    def checks(self) -> list[dict[str, Any]]:
        return [self.secret, self.job(CHECK_COMPONENT)] if self.declared.check else []

    def expand(self) -> list[UpgradeStep]:
        return self._steps(self.declared.expand, contract=False)

    def contract(self) -> list[UpgradeStep]:
        return self._steps(self.declared.contract, contract=True)

    def online(self) -> list[UpgradeStep]:
        return self._steps(self.declared.online, contract=True)

    def _steps(self, components: Iterable[str], contract: bool) -> list[UpgradeStep]:
        return [
            UpgradeStep(self.service.name, c, "jobs", [self.secret, self.job(c)], contract=contract) for c in components
        ]


def _pinned(obj: dict[str, Any], source: str) -> dict[str, Any]:
    """A workload whose pods say they started while agents ran `source` (a changed template: the
    final converge, without it, restarts them)."""
    if obj["kind"] not in ("Deployment", "StatefulSet"):
        return obj
    template = obj["spec"]["template"]
    meta = template.get("metadata", {})
    annotations = {**meta.get("annotations", {}), AGENTS_RELEASE_ANNOTATION: source}
    template = {**template, "metadata": {**meta, "annotations": annotations}}
    return {**obj, "spec": {**obj["spec"], "template": template}}


def _roll(service: Service, regular: list[Step], declared: ServiceUpgrade | None, source: str) -> UpgradeStep | None:
    """The service's pods onto the new release, stage by stage as its regular steps go (nova's
    conductors before its API); host agents come last, except in the steps the service rolls first.

    A service that declares its upgrade rolls without its Jobs: they ran as expand and contract
    steps. One that does not runs its regular steps, db-sync Jobs and all, the new code migrating
    its database before its pods start: that closes the way back like a contract.
    """
    first = declared.roll_first if declared else ()
    unknown = sorted(set(first) - {s.name for s in regular})
    if unknown:
        raise ValueError(f"{service.name}: roll_first names no step of the service: {', '.join(unknown)}")

    def rolled(step: Step) -> list[dict[str, Any]]:
        objects = [
            o
            for o in step.objects
            if (o["kind"] not in AGENT_KINDS or step.name in first) and not (declared and o["kind"] == "Job")
        ]
        return [_pinned(o, source) for o in objects] if declared and declared.restart_after_agents else objects

    ordered = [s for s in regular if s.name in first] + [s for s in regular if s.name not in first]
    stages = [Step(s.name, s.service, objects) for s in ordered if (objects := rolled(s))]
    if not stages:
        return None
    objects = [o for s in stages for o in s.objects]
    has_jobs = any(o["kind"] == "Job" for o in objects)
    return UpgradeStep(service.name, ROLL, "roll", objects, contract=has_jobs, stages=stages)


def plan_upgrade(
    cloud: OpenStackCloud,
    source: str,
    credentials: Credentials,
    options: RenderOptions | None = None,
    *,
    converged: Plan | None = None,
) -> UpgradePlan:
    """The upgrade of `cloud` (which runs `source`) to its spec's release; `converged` is the cloud's
    plan when the caller rendered it already (a pass renders it once).

    Raises RenderError (naming the field) for a spec that cannot be rendered at either release.
    """
    target = cloud.spec.release
    converged = converged or plan(cloud, credentials, options)
    ctx = CloudContext(cloud.metadata.name, cloud.metadata.namespace, cloud.spec, credentials, options)
    checks: list[dict[str, Any]] = []
    steps: list[UpgradeStep] = []
    agents: list[UpgradeStep] = []
    online: list[UpgradeStep] = []
    for service in upgrade_order(enabled_services(cloud.spec)):
        declared = service.upgrade(ctx)
        jobs = _ServiceJobs(ctx, service, declared, source, target) if declared else None
        if jobs:
            checks += jobs.checks()
            steps += jobs.expand()
        regular = [s for s in converged.steps if s.service == service.name]
        roll = _roll(service, regular, declared, source)
        if roll is not None:
            steps.append(roll)
        if jobs:
            steps += jobs.contract()
            online += jobs.online()
        first = declared.roll_first if declared else ()
        hosted = [o for s in regular if s.name not in first for o in s.objects if o["kind"] in AGENT_KINDS]
        if hosted:
            stages = [Step(f"{service.name}-{AGENTS}", service.name, hosted)]
            agents.append(UpgradeStep(service.name, AGENTS, "roll", hosted, stages=stages))
    steps += [*agents, *online, UpgradeStep("cloud", FINISH, "finish")]
    return UpgradePlan(source, target, converged, checks, steps)
