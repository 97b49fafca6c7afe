"""The cloud's backups as Kubernetes shows them (MariaDB's and OVN's, each a BackupSet): the Jobs a
backup CronJob made, and the manifest the last successful one left as its pod's termination message
(its name, time, size and checksum: templates/common/backups.sh.j2 writes it; and where an object
store holds it, when its pod uploaded it: jobs/object_store.py). Read once a pass, for
the cloud's status."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from stackops.kube.client import Kube, Obj
from stackops.kube.kinds import POD
from stackops.kube.pods import redacted_last_line
from stackops.kube.readiness import readiness
from stackops.plan import BACKUP_SETS
from stackops.render.naming import COMPONENT_LABEL, NAME_LABEL
from stackops.services import mariadb
from stackops.services.backups import BackupSet


@dataclass(frozen=True)
class Backups:
    """The last successful backup (None: none yet, or its pod is gone), and why the newest backup
    Job failed when it did (a later success clears it)."""

    last: dict[str, str | int] | None = None
    failure: str = ""


def backup_jobs(live: Mapping[tuple[str, str], Obj], kind_of: BackupSet) -> list[Obj]:
    """The backup Jobs of a set, oldest first."""
    wanted = {NAME_LABEL: kind_of.service, COMPONENT_LABEL: kind_of.backup}
    jobs = [
        obj
        for (kind, _), obj in live.items()
        if kind == "Job" and all((obj["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
    ]
    return sorted(jobs, key=lambda j: (j["metadata"].get("creationTimestamp") or "", j["metadata"]["name"]))


def manifest(text: str) -> dict[str, str | int] | None:
    """A backup's manifest as its Job's pod reported it; None for anything else."""
    try:
        found = json.loads(text)
    except ValueError:
        return None
    if not isinstance(found, dict):
        return None
    fields = {"name": str, "time": str, "size": int, "sha256": str}
    if not all(isinstance(found.get(key), kind) for key, kind in fields.items()):
        return None
    # where an object store holds it, when the backup's pod uploaded it (jobs/object_store.py)
    uploaded = {"uploaded": found["uploaded"]} if isinstance(found.get("uploaded"), str) else {}
    return {key: found[key] for key in fields} | uploaded


def _said(kube: Kube, namespace: str, job: Obj, phase: str) -> list[str]:
    """What the Job's pods in `phase` left as their termination message (the script's manifest, or
    a failure's last log lines)."""
    said = []
    for pod in kube.list(POD, namespace, f"job-name={job['metadata']['name']}"):
        if (pod.get("status") or {}).get("phase") != phase:
            continue
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated") or {}
            said.append(terminated.get("message") or "")
    return said


def _reported(kube: Kube, namespace: str, job: Obj) -> dict[str, str | int] | None:
    found = (manifest(text) for text in _said(kube, namespace, job, "Succeeded"))
    return next((m for m in found if m is not None), None)


def backups(
    kube: Kube, namespace: str, live: Mapping[tuple[str, str], Obj], kind_of: BackupSet = mariadb.BACKUPS
) -> Backups | None:
    """What the backup Jobs of a set say; None when the cloud has none (no backups asked for, or none ran)."""
    finished = [(job, readiness(job)) for job in backup_jobs(live, kind_of)]
    finished = [(job, state) for job, state in finished if state.ready or state.failed]
    if not finished:
        return None
    newest, state = finished[-1]
    failure = ""
    if state.failed:  # Kubernetes says the Job failed; its pod's last log line says why
        why = [line for line in map(redacted_last_line, _said(kube, namespace, newest, "Failed")) if line]
        failure = f"{redacted_last_line(state.message)}: {why[-1]}" if why else redacted_last_line(state.message)
    for job, done in reversed(finished):
        if done.ready:
            last = _reported(kube, namespace, job)
            if last is not None:
                return Backups(last, failure)
    return Backups(None, failure)


def all_backups(kube: Kube, namespace: str, live: Mapping[tuple[str, str], Obj]) -> dict[str, Backups]:
    """What every set's backup Jobs say, by status field; a set without any is left out."""
    found = {kind_of.status: backups(kube, namespace, live, kind_of) for kind_of in BACKUP_SETS}
    return {field: said for field, said in found.items() if said is not None}
