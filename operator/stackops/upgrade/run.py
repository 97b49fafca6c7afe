"""The upgrade phase of a pass: while spec.release asks for another release than the one deployed,
take the upgrade one step further, or say why not.

`status.release` is the release deployed; while spec.release asks for another one, each pass picks
up where the last stopped. What is done is read back from the cluster, not remembered: an upgrade
Job is found by its name (stackops.upgrade.plan), a roll by its objects' applied hash and
readiness, and `status.upgrade.completed` keeps the steps already passed. A killed operator
therefore resumes at the step it was in, and a pass never creates a Job that exists, so no
migration runs twice.

The phase runs in two parts, so that a refusal changes nothing: `release_phase` judges spec.release
against the status before anything is read or rendered; `Upgrade.run` takes the upgrade further
with what the pass read and rendered once (stackops.kube.engine.Snapshot). Either ends the pass
(`UpgradeProgress.stopped`) or leaves it to converge the cloud: when there is no upgrade, and as
the upgrade's last step. The pass stops (and the status is written) before anything that must be on
record first: after the pre-flight, before the first contract step (the rollback window closes in
status before the database moves past the old release), and before the final converge (which
prunes the upgrade's Jobs).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stackops.api.models import OpenStackCloud, OpenStackCloudStatus, UpgradeStatus
from stackops.api.releases import transition_problem
from stackops.health.monitor import DEGRADED
from stackops.kube.client import Kube, Obj
from stackops.kube.engine import (
    Outcome,
    Snapshot,
    StepState,
    applied_hash,
    apply_if_changed,
    apply_steps,
    desired,
    owner_reference,
)
from stackops.kube.kinds import CLOUD, kind_of
from stackops.kube.readiness import readiness
from stackops.services.base import RenderOptions
from stackops.upgrade.plan import PREFLIGHT, UPGRADE_LABEL, UpgradePlan, UpgradeStep, plan_upgrade
from stackops.upgrade.record import changed_sections

log = logging.getLogger(__name__)

PREFLIGHT_STEP = "upgrade-preflight"
# Degraded reasons, for people and for alerts.
PREFLIGHT_FAILED = "PreflightFailed"
STEP_FAILED = "UpgradeStepFailed"
REFUSED = "UpgradeRefused"
# A service's place in an upgrade (UpgradeProgress.services); absent: still on the old release.
DONE, CURRENT = "done", "current"


@dataclass
class Finish:
    """The upgrade's last step is the pass's own converge: shown after the upgrade's steps, its
    messages under the step's heading."""

    states: list[StepState]  # the pre-flight and every step before, all done
    heading: str
    step_id: str
    writes: int


@dataclass
class UpgradeProgress:
    """What the upgrade makes of one pass.

    `record` is the upgrade as the status keeps it (None: none under way). `stopped` is the pass's
    outcome when the upgrade ends the pass; None lets the pass converge the cloud: there is no
    upgrade, or converging is the upgrade's last step (`finish`)."""

    record: UpgradeStatus | None = None
    stopped: Outcome | None = None
    reason: str = STEP_FAILED  # the Degraded reason, should the pass fail
    services: dict[str, str] = field(default_factory=dict)  # per service: DONE or CURRENT
    finish: Finish | None = None

    def converged(self, outcome: Outcome) -> Outcome:
        """The pass's converge, as the upgrade's last step when it is one."""
        finish = self.finish
        if finish is None or self.record is None:
            return outcome
        outcome.steps = [*finish.states, *outcome.steps]
        outcome.writes += finish.writes
        if outcome.done:
            self.record.completed.append(finish.step_id)
        current = outcome.current
        if current is not None:
            current.message = f"{finish.heading}: {current.message}"
        return outcome


def release_phase(cloud: OpenStackCloud, previous: OpenStackCloudStatus, spec: Mapping[str, Any]) -> UpgradeProgress:
    """What spec.release asks of this pass, judged before anything is read or rendered: no upgrade
    (no record), a refusal (stopped), or an upgrade for `Upgrade.run` to take further.

    `previous` is the status as last written, `spec` the spec as the user wrote it.
    """
    deployed = previous.release
    record = previous.upgrade.model_copy(deep=True) if previous.upgrade is not None else None
    target = cloud.spec.release
    if deployed is None or deployed == target:
        if record is not None and record.rollback_to is None:
            message = (
                f"spec.release went back to {deployed}, but the upgrade to {record.to} has contracted "
                f"databases past what {deployed} runs on: set spec.release to {record.to} to finish it"
            )
            return _stopped(record, StepState(PREFLIGHT_STEP, "", "Failed", message), REFUSED)
        if record is not None:
            log.info("cloud %s: back on %s, the upgrade to %s is abandoned", cloud.metadata.name, target, record.to)
        return UpgradeProgress()
    if record is not None and record.to != target:
        if record.phase == "Upgrading":
            back = f", or to {record.rollback_to} to go back" if record.rollback_to else ""
            under_way = f"the upgrade to {record.to} is under way"
            message = f"{under_way}: set spec.release to {record.to} to finish it{back}"
            return _stopped(record, StepState(PREFLIGHT_STEP, "", "Failed", message), REFUSED)
        record = None  # only the pre-flight ran: it starts over for the new target
    record = record or UpgradeStatus(from_=deployed, to=target, rollback_to=deployed)
    problem = transition_problem(record.from_, record.to)
    if problem:
        return _preflight_failed(record, f"{problem} (deployed: {record.from_})")
    # no record: deployed by a stackops that kept none, nothing to compare with
    recorded = previous.spec_hashes
    changed = changed_sections(recorded, spec) if recorded is not None else []
    if changed and record.phase == "Preflight":
        return _preflight_failed(
            record,
            f"{', '.join(changed)} changed along with spec.release; change spec.release alone "
            "(other changes before or after the upgrade)",
        )
    return UpgradeProgress(record)


def _heading(record: UpgradeStatus) -> str:
    return f"upgrade {record.from_} → {record.to}"


def _stopped(record: UpgradeStatus, state: StepState, reason: str, writes: int = 0) -> UpgradeProgress:
    return UpgradeProgress(record, Outcome(steps=[state], writes=writes), reason)


def _preflight_failed(record: UpgradeStatus, message: str, writes: int = 0) -> UpgradeProgress:
    state = StepState(PREFLIGHT_STEP, "", "Failed", f"{_heading(record)} cannot start: {message}")
    return _stopped(record, state, PREFLIGHT_FAILED, writes)


class Upgrade:
    """One pass of the upgrade in `record`, of one cloud from `record.from_` (deployed) to its spec's
    release, with what the pass read and rendered (`seen`)."""

    def __init__(
        self,
        kube: Kube,
        cloud: OpenStackCloud,
        uid: str,
        previous: OpenStackCloudStatus,
        record: UpgradeStatus,
        seen: Snapshot,
        options: RenderOptions | None,
    ) -> None:
        self.kube, self.cloud, self.uid, self.previous = kube, cloud, uid, previous
        self.record, self.seen, self.options = record, seen, options
        self.owner = owner_reference(cloud, uid)
        self.live = seen.live  # what the upgrade applies is seen by the converge that may follow
        self.writes = 0

    @property
    def heading(self) -> str:
        return _heading(self.record)

    def run(self) -> UpgradeProgress:
        upgrade = plan_upgrade(
            self.cloud, self.record.from_, self.seen.credentials, self.options, converged=self.seen.plan
        )
        self.record.steps = len(upgrade.steps)
        if self.record.phase == "Preflight":
            return self._preflight(upgrade)
        return self._steps(upgrade)

    # -- pre-flight ---------------------------------------------------------------------------

    def _preflight_waiting(self, message: str) -> UpgradeProgress:
        state = StepState(PREFLIGHT_STEP, "", "Waiting", f"{self.heading}, pre-flight: {message}")
        return _stopped(self.record, state, PREFLIGHT_FAILED, self.writes)

    def _preflight(self, upgrade: UpgradePlan) -> UpgradeProgress:
        """Nothing the cloud runs changes here: the checks only read, and what they apply is new."""
        healthy = next((c for c in self.previous.conditions if c.type == "Healthy"), None)
        if healthy is not None and healthy.status == "False":
            return self._preflight_waiting(f"waiting for the cloud to be Healthy: {healthy.message}")
        problem = self._not_ready()
        if problem is not None:
            failed, message = problem
            if failed:
                return _preflight_failed(self.record, f"the cloud is not Ready: {message}", self.writes)
            return self._preflight_waiting(f"waiting for the cloud to be Ready: {message}")
        state, message = self._run_jobs(upgrade.checks)
        if state == "Failed":
            return _preflight_failed(self.record, f"an upgrade check failed: {message}", self.writes)
        if state == "Waiting":
            return self._preflight_waiting(message)
        self.record.phase = "Upgrading"
        self.record.completed = [PREFLIGHT]
        # on record before the first step changes anything
        return self._preflight_waiting("passed; the upgrade starts")

    def _not_ready(self) -> tuple[bool, str] | None:
        """(failed, why) when an object of the running cloud is not ready; None when all are.

        The running cloud is what exists of what stackops applied, read rather than rendered at the
        old release again; the upgrade's own objects are not part of it.
        """
        for current in self.live.values():
            if applied_hash(current) is None or UPGRADE_LABEL in (current["metadata"].get("labels") or {}):
                continue
            result = readiness(current)
            if not result.ready:
                return result.failed, result.message
        return None

    # -- steps --------------------------------------------------------------------------------

    def _steps(self, upgrade: UpgradePlan) -> UpgradeProgress:
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
        outcome = Outcome(steps=states, writes=self.writes)
        return UpgradeProgress(record, outcome, STEP_FAILED, self._services(upgrade))

    def _services(self, upgrade: UpgradePlan) -> dict[str, str]:
        """Services whose every step passed (DONE), and the one under way (CURRENT)."""
        passed: dict[str, list[bool]] = {}
        for step in upgrade.steps[:-1]:
            passed.setdefault(step.service, []).append(step.id in self.record.completed)
        states = {name: DONE for name, done in passed.items() if all(done)}
        if self.record.service in passed and self.record.service not in states:
            states[self.record.service] = CURRENT
        return states

    def _unhealthy(self, upgrade: UpgradePlan, step: UpgradeStep) -> tuple[str, str] | None:
        """A service starts its upgrade only while its health checks do not find it Degraded. Once
        started, its own steps may make it so for a while (a failing migration does): not waited on."""
        if (self.record.service, self.record.current) == (step.service, step.name):
            return None
        if any(s.id in self.record.completed for s in upgrade.steps if s.service == step.service):
            return None
        entry = self.previous.services.get(step.service)
        if entry is None or entry.health != DEGRADED:
            return None
        return "Waiting", f"waiting for {step.service} to be healthy: {entry.message}"

    def _run(self, step: UpgradeStep) -> tuple[str, str]:
        if step.contract and self.record.rollback_to is not None:
            self.record.rollback_to = None
            return "Waiting", f"spec.release can no longer go back to {self.record.from_}: {step.service} migrates next"
        if step.contract and not self._jobs_exist(step.objects) and not self._still_target():
            return "Waiting", "spec.release changed: looking again"
        if step.kind == "roll":
            outcome = apply_steps(self.kube, step.stages, self.cloud, self.uid, self.live)
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
        return bool(fresh) and (fresh or {}).get("spec", {}).get("release") == self.record.to

    def _finish(self, upgrade: UpgradePlan, states: list[StepState], newly_done: bool) -> UpgradeProgress:
        record = self.record
        services = self._services(upgrade)
        last = upgrade.steps[-1]
        heading = f"{self.heading}, step {len(upgrade.steps)}/{len(upgrade.steps)} {last.label}"
        if newly_done:
            # the converge prunes the upgrade's Jobs: what they did must be on record first
            waiting = StepState(_state_name(last), "", "Waiting", f"{heading}: recording progress")
            outcome = Outcome(steps=[*states, waiting], writes=self.writes)
            return UpgradeProgress(record, outcome, STEP_FAILED, services)
        finish = Finish(states, f"{heading} at {record.to}", last.id, self.writes)
        return UpgradeProgress(record, None, STEP_FAILED, services, finish)

    # -- Jobs -----------------------------------------------------------------------------------

    def _run_jobs(self, objects: list[Obj]) -> tuple[str, str]:
        """Apply the Secrets, create each Job that does not exist, and say how the Jobs are doing.

        An existing upgrade Job is never changed: a failed one whose spec changed since (a fix in
        the cloud's spec) is deleted, to be created again on the next pass; any other is waited for.
        """
        waiting: list[str] = []
        for obj in objects:
            if obj["kind"] != "Job":
                _, written = apply_if_changed(self.kube, obj, self.owner, self.live)
                self.writes += int(written)
                continue
            want = desired(obj, self.owner)
            key = (obj["kind"], obj["metadata"]["name"])
            current = self.live.get(key)
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
            if result.failed and applied_hash(current) != applied_hash(want):
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


def _state_name(step: UpgradeStep) -> str:
    return f"upgrade-{step.service}-{step.name}"
