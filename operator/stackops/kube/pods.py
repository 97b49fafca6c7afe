"""Why a pod does not run, in Kubernetes' own words: read from its status, nothing fetched here.

The step engine names these when a step waits (stackops.kube.diagnosis); the health checks
name stuck containers of a running cloud (stackops.health.workloads).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Waiting reasons after which a container will not run without someone acting.
STUCK = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
MAX_LINE = 200  # of a log line quoted in a status message

# A status is read by whoever may read the cloud: what looks like a secret in a quoted log line goes.
_SECRETS = (
    (re.compile(r"(://[^:/@\s]+:)[^@\s]+@"), r"\1***@"),
    (re.compile(r"(?i)\b(password|passwd|secret|token|key)(\s*[=:]\s*)\S+"), r"\1\2***"),
)


@dataclass(frozen=True)
class StuckContainer:
    pod: str
    container: str
    reason: str  # the waiting reason, one of STUCK
    message: str = ""  # the kubelet's, for pull and config errors
    exit_code: int | None = None  # of the last run, for a crash loop
    restarts: int = 0
    last_line: str = ""  # the last thing it logged before it died (terminationMessagePolicy)

    def describe(self) -> str:
        """Stable while the cause is: no restart counts, so a status does not change with each restart."""
        if self.reason == "CrashLoopBackOff":
            exit_code = f", exit code {self.exit_code}" if self.exit_code is not None else ""
            said = f": {self.last_line}" if self.last_line else ""
            return f"pod {self.pod} is crash-looping (container {self.container}{exit_code}){said}"
        said = f": {self.message}" if self.message else ""
        return f"pod {self.pod} cannot start container {self.container}: {self.reason}{said}"


def redacted_last_line(text: str) -> str:
    """The last non-empty line of `text`, secrets masked, at most MAX_LINE characters."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[-1]
    for pattern, replacement in _SECRETS:
        line = pattern.sub(replacement, line)
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


def _container_statuses(pod: dict[str, Any]) -> list[dict[str, Any]]:
    status = pod.get("status") or {}
    return list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])


def stuck_containers(pod: dict[str, Any]) -> list[StuckContainer]:
    name = pod["metadata"]["name"]
    found = []
    for container in _container_statuses(pod):
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason not in STUCK:
            continue
        last = (container.get("lastState") or {}).get("terminated") or {}
        crash = reason == "CrashLoopBackOff"
        found.append(
            StuckContainer(
                pod=name,
                container=container["name"],
                reason=reason,
                message="" if crash else redacted_last_line(waiting.get("message") or ""),
                exit_code=int(last["exitCode"]) if crash and "exitCode" in last else None,
                restarts=int(container.get("restartCount", 0) or 0),
                last_line=redacted_last_line(last.get("message") or "") if crash else "",
            )
        )
    return found


def unschedulable(pod: dict[str, Any]) -> str:
    """The scheduler's reason a pod has no node ('' when it has one or is still being placed)."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if (condition.get("type"), condition.get("status"), condition.get("reason")) == (
            "PodScheduled",
            "False",
            "Unschedulable",
        ):
            return str(condition.get("message") or "no node fits it")
    return ""


def claims(pod: dict[str, Any]) -> list[str]:
    """The PersistentVolumeClaims a pod mounts."""
    volumes = (pod.get("spec") or {}).get("volumes") or []
    return [v["persistentVolumeClaim"]["claimName"] for v in volumes if v.get("persistentVolumeClaim")]


def failed_container(pod: dict[str, Any]) -> str:
    """For a pod that ran and failed (a Job's): which container, its exit code and last log line."""
    for container in _container_statuses(pod):
        ended = (container.get("state") or {}).get("terminated") or {}
        if ended and int(ended.get("exitCode", 0) or 0) != 0:
            said = redacted_last_line(ended.get("message") or "")
            reason = ended.get("reason") or "Error"
            return (
                f"pod {pod['metadata']['name']} failed (container {container['name']}, {reason}, "
                f"exit code {ended['exitCode']})" + (f": {said}" if said else "")
            )
    return ""
