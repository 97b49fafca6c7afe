"""One reconcile pass of a cloud's release: converge it, or take its upgrade one step further.

`status.release` is the release deployed; while spec.release asks for another one, each pass picks
up where the last stopped. What is done is read back from the cluster, not remembered: an upgrade
Job is found by its name (stackops.upgrade.plan), a roll by its objects' applied hash and
readiness, and `status.upgrade.completed` keeps the steps already passed. A killed operator
therefore resumes at the step it was in, and a pass never creates a Job that exists, so no
migration runs twice.

A pass stops (and the status is written) before anything that must be on record first: after the
pre-flight, before the first contract step (the rollback window closes in status before the
database moves past the old release), and before the final converge (which prunes the upgrade's
Jobs).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stackops.api.models import OpenStackCloud
from stackops.api.releases import transition_problem
from stackops.credentials import Credentials
from stackops.health.monitor import DEGRADED
from stackops.kube.client import Kube, Obj
from stackops.kube.engine import (
    APPLIED_HASH,
    Outcome,
    StepState,
    apply_steps,
    cloud_credentials,
    converge,
    desired,
    observe,
    owner_reference,
)
from stackops.kube.kinds import CLOUD, kind_of
from stackops.kube.readiness import condition, readiness
from stackops.plan import Plan, plan
from stackops.services.base import RenderOptions
from stackops.upgrade.plan import PREFLIGHT, UpgradePlan, UpgradeStep, at_release, plan_upgrade
from stackops.upgrade.record import UpgradeRecord, changed_sections

log = logging.getLogger(__name__)

PREFLIGHT_STEP = "upgrade-preflight"
# Degraded reasons, for people and for alerts.
PREFLIGHT_FAILED = "PreflightFailed"
STEP_FAILED = "UpgradeStepFailed"
REFUSED = "UpgradeRefused"


@dataclass
class ReleaseOutcome:
    """A pass's outcome, the upgrade record to keep in status (None: no upgrade under way), and the
    Degraded reason should the outcome have failed."""

    outcome: Outcome
    upgrade: UpgradeRecord | None = None
    reason: str = STEP_FAILED
    # per service: "done" (on the new release), "current", or absent (still on the old one)
    services: dict[str, str] = field(default_factory=dict)


def reconcile_release(
    kube: Kube,
    cloud: OpenStackCloud,
    uid: str,
    previous: Mapping[str, Any],
    spec: Mapping[str, Any],
    options: RenderOptions | None = None,
) -> ReleaseOutcome:
    """Converge `cloud`, or, while spec.release differs from status.release, upgrade it.

    `previous` is the status as last written, `spec` the spec as the user wrote it.
    """
    deployed = previous.get("release")
    record = UpgradeRecord.load(previous.get("upgrade"))
    target = cloud.spec.release
    if deployed is None or deployed == target:
        if record is not None and record.rollback_to is None:
            message = (
                f"spec.release went back to {deployed}, but the upgrade to {record.target} has contracted "
                f"databases past what {deployed} runs on: set spec.release to {record.target} to finish it"
            )
            return _stopped(record, StepState(PREFLIGHT_STEP, "", "Failed", message), REFUSED)
        if record is not None:
            log.info("cloud %s: back on %s, the upgrade to %s is abandoned", cloud.metadata.name, target, record.target)
        return ReleaseOutcome(converge(kube, cloud, uid, options))
    if record is not None and record.target != target:
        if record.phase == "Upgrading":
            back = f", or to {record.rollback_to} to go back" if record.rollback_to else ""
            under_way = f"the upgrade to {record.target} is under way"
            message = f"{under_way}: set spec.release to {record.target} to finish it{back}"
            return _stopped(record, StepState(PREFLIGHT_STEP, "", "Failed", message), REFUSED)
        record = None  # only the pre-flight ran: it starts over for the new target
    record = record or UpgradeRecord(str(deployed), target, rollback_to=str(deployed))
    return Upgrade(kube, cloud, uid, previous, spec, record, options).run()


def _stopped(record: UpgradeRecord, state: StepState, reason: str) -> ReleaseOutcome:
    return ReleaseOutcome(Outcome(steps=[state]), record, reason)


class Upgrade:
    """One pass of the upgrade of one cloud from `source` (deployed) to its spec's release."""

    def __init__(
        self,
        kube: Kube,
        cloud: OpenStackCloud,
        uid: str,
        previous: Mapping[str, Any],
        spec: Mapping[str, Any],
        record: UpgradeRecord,
        options: RenderOptions | None,
    ) -> None:
        self.kube, self.cloud, self.uid, self.previous, self.spec = kube, cloud, uid, previous, spec
        self.source, self.target, self.options = record.source, record.target, options
        self.owner = owner_reference(cloud, uid)
        self.record = record
        self.live: dict[tuple[str, str], Obj] = {}
        self.credentials = Credentials({})
        self.writes = 0

    @property
    def heading(self) -> str:
        return f"upgrade {self.source} → {self.target}"

    def run(self) -> ReleaseOutcome:
        problem = transition_problem(self.source, self.target)
        if problem:
            return self._preflight_failed(f"{problem} (deployed: {self.source})")
        # no record: deployed by a stackops that kept none, nothing to compare with
        recorded = self.previous.get("specHashes")
        changed = changed_sections(recorded, self.spec) if recorded is not None else []
        if changed and self.record.phase == "Preflight":
            return self._preflight_failed(
                f"{', '.join(changed)} changed along with spec.release; change spec.release alone "
                "(other changes before or after the upgrade)"
            )
        self.credentials = cloud_credentials(self.kube, self.cloud)
        upgrade = plan_upgrade(self.cloud, self.source, self.credentials, self.options)
        self.record.steps = len(upgrade.steps)
        self.live = observe(self.kube, self.cloud)
        if self.record.phase == "Preflight":
            return self._preflight(upgrade)
        return self._steps(upgrade)

    # -- pre-flight ---------------------------------------------------------------------------

    def _preflight_failed(self, message: str) -> ReleaseOutcome:
        state = StepState(PREFLIGHT_STEP, "", "Failed", f"{self.heading} cannot start: {message}")
        return ReleaseOutcome(Outcome(steps=[state], writes=self.writes), self.record, PREFLIGHT_FAILED)

    def _preflight_waiting(self, message: str) -> ReleaseOutcome:
        state = StepState(PREFLIGHT_STEP, "", "Waiting", f"{self.heading}, pre-flight: {message}")
        return ReleaseOutcome(Outcome(steps=[state], writes=self.writes), self.record, PREFLIGHT_FAILED)

    def _preflight(self, upgrade: UpgradePlan) -> ReleaseOutcome:
        """Nothing the cloud runs changes here: the checks only read, and what they apply is new."""
        healthy = condition(self.previous, "Healthy")
        if healthy.get("status") == "False":
            return self._preflight_waiting(f"waiting for the cloud to be Healthy: {healthy.get('message', '')}")
        problem = self._not_ready(plan(at_release(self.cloud, self.source), self.credentials, self.options))
        if problem is not None:
            failed, message = problem
            if failed:
                return self._preflight_failed(f"the cloud is not Ready: {message}")
            return self._preflight_waiting(f"waiting for the cloud to be Ready: {message}")
        state, message = self._run_jobs(upgrade.checks)
        if state == "Failed":
            return self._preflight_failed(f"an upgrade check failed: {message}")
        if state == "Waiting":
            return self._preflight_waiting(message)
        self.record.phase = "Upgrading"
        self.record.completed = [PREFLIGHT]
        # on record before the first step changes anything
        return self._preflight_waiting("passed; the upgrade starts")

    def _not_ready(self, deployed: Plan) -> tuple[bool, str] | None:
        """(failed, why) when an object of the running cloud is not ready; None when all are.

        What does not exist is not waited for: a finished Job may have been pruned, and a newer
        stackops may render an object the one that deployed the cloud did not (the roll creates it).
        """
        for obj in deployed.objects():
            current = self.live.get((obj["kind"], obj["metadata"]["name"]))
            if current is None:
                continue
            result = readiness(current)
            if not result.ready:
                return result.failed, result.message
        return None

    # -- steps --------------------------------------------------------------------------------

    def _steps(self, upgrade: UpgradePlan) -> ReleaseOutcome:
        record = self.record
        states = [StepState(PREFLIGHT_STEP, "", "Ready")]
        states += [
            StepState(_state_name(s), s.service, "Ready" if s.id in record.completed else "Pending")
            for s in upgrade.steps
        ]
        newly_done = False
        for index, step in enumerate(upgrade.steps, 1):
            if step.id in record.completed:
                continue
            unhealthy = self._unhealthy(upgrade, step)
            if unhealthy is None:  # the step is under way from here on
                record.step, record.service, record.current = index, step.service, step.name
            if step.kind == "finish":
                return self._finish(upgrade, states[:index], newly_done)
            result, message = unhealthy or self._run(step)
            if result == "Ready":
                states[index].state = "Ready"
                record.completed.append(step.id)
                newly_done = True
                continue
            prefix = f"{self.heading} stopped at" if result == "Failed" else f"{self.heading},"
            states[index].state = result
            states[index].message = f"{prefix} step {index}/{len(upgrade.steps)} {step.label}: {message}"
            break
        return ReleaseOutcome(Outcome(steps=states, writes=self.writes), record, STEP_FAILED, self._services(upgrade))

    def _services(self, upgrade: UpgradePlan) -> dict[str, str]:
        """Services whose every step passed ("done"), and the one under way ("current")."""
        passed: dict[str, list[bool]] = {}
        for step in upgrade.steps[:-1]:
            passed.setdefault(step.service, []).append(step.id in self.record.completed)
        states = {name: "done" for name, done in passed.items() if all(done)}
        if self.record.service in passed and self.record.service not in states:
            states[self.record.service] = "current"
        return states

    def _unhealthy(self, upgrade: UpgradePlan, step: UpgradeStep) -> tuple[str, str] | None:
        """A service starts its upgrade only while its health checks do not find it Degraded. Once
        started, its own steps may make it so for a while (a failing migration does): not waited on."""
        if (self.record.service, self.record.current) == (step.service, step.name):
            return None
        if any(s.id in self.record.completed for s in upgrade.steps if s.service == step.service):
            return None
        entry = (self.previous.get("services") or {}).get(step.service) or {}
        if entry.get("health") != DEGRADED:
            return None
        return "Waiting", f"waiting for {step.service} to be healthy: {entry.get('message', '')}"

    def _run(self, step: UpgradeStep) -> tuple[str, str]:
        if step.contract and self.record.rollback_to is not None:
            self.record.rollback_to = None
            return "Waiting", f"spec.release can no longer go back to {self.source}: {step.service} migrates next"
        if step.contract and not self._jobs_exist(step.objects) and not self._still_target():
            return "Waiting", "spec.release changed: looking again"
        if step.kind == "roll":
            outcome = apply_steps(self.kube, Plan(step.stages, {}), self.cloud, self.uid, self.live)
            self.writes += outcome.writes
            current = outcome.current
            return (current.state, current.message) if current else ("Ready", "")
        return self._run_jobs(step.objects)

    def _jobs_exist(self, objects: list[Obj]) -> bool:
        return all((o["kind"], o["metadata"]["name"]) in self.live for o in objects if o["kind"] == "Job")

    def _still_target(self) -> bool:
        """Read the cloud again: a rollback accepted just before the rollback window closed in status
        shows in its spec now, and then nothing may contract."""
        meta = self.cloud.metadata
        fresh = self.kube.get(CLOUD, meta.namespace, meta.name)
        return bool(fresh) and (fresh or {}).get("spec", {}).get("release") == self.target

    def _finish(self, upgrade: UpgradePlan, states: list[StepState], newly_done: bool) -> ReleaseOutcome:
        record = self.record
        services = self._services(upgrade)
        heading = f"{self.heading}, step {len(upgrade.steps)}/{len(upgrade.steps)} {upgrade.steps[-1].label}"
        if newly_done:
            # the converge prunes the upgrade's Jobs: what they did must be on record first
            waiting = StepState(_state_name(upgrade.steps[-1]), "", "Waiting", f"{heading}: recording progress")
            return ReleaseOutcome(Outcome(steps=[*states, waiting], writes=self.writes), record, STEP_FAILED, services)
        outcome = converge(self.kube, self.cloud, self.uid, self.options)
        outcome.steps = [*states, *outcome.steps]
        outcome.writes += self.writes
        if outcome.done:
            record.completed.append(upgrade.steps[-1].id)
        current = outcome.current
        if current is not None:
            current.message = f"{heading} at {self.target}: {current.message}"
        return ReleaseOutcome(outcome, record, STEP_FAILED, services)

    # -- Jobs -----------------------------------------------------------------------------------

    def _run_jobs(self, objects: list[Obj]) -> tuple[str, str]:
        """Apply the Secrets, create each Job that does not exist, and say how the Jobs are doing.

        An existing upgrade Job is never changed: a failed one whose spec changed since (a fix in
        the cloud's spec) is deleted, to be created again on the next pass; any other is waited for.
        """
        waiting: list[str] = []
        for obj in objects:
            want = desired(obj, self.owner)
            key = (obj["kind"], obj["metadata"]["name"])
            current = self.live.get(key)
            if obj["kind"] != "Job":
                if current is None or _applied(current) != _applied(want):
                    self.live[key] = self.kube.apply(kind_of(obj), want)
                    self.writes += 1
                continue
            if current is None:
                log.info("creating upgrade job %s", key[1])
                current = self.kube.apply(kind_of(obj), want)
                current.setdefault("kind", "Job")
                self.live[key] = current
                self.writes += 1
            if current["metadata"].get("deletionTimestamp"):
                waiting.append(f"job {key[1]} is being removed")
                continue
            result = readiness(current)
            if result.failed and _applied(current) != _applied(want):
                log.info("replacing failed upgrade job %s: its spec changed", key[1])
                self.kube.delete(kind_of(obj), obj["metadata"]["namespace"], key[1])
                self.writes += 1
                waiting.append(f"job {key[1]} failed and its spec changed since: running it again")
                continue
            if result.failed:
                return "Failed", result.message
            if not result.ready:
                waiting.append(result.message)
        return ("Waiting", waiting[0]) if waiting else ("Ready", "")


def _applied(obj: Obj) -> str | None:
    value = obj["metadata"].get("annotations", {}).get(APPLIED_HASH)
    return None if value is None else str(value)


def _state_name(step: UpgradeStep) -> str:
    return f"upgrade-{step.service}-{step.name}"
