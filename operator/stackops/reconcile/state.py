"""What the operator keeps while it runs, in one object made at startup (stackops.reconcile.operator)
and handed to every handler through kopf's memo, and to every pass: the Kubernetes client, the
health settings and verdicts, the metrics, and per cloud its lock and whether it waits."""

from __future__ import annotations

import asyncio
import datetime
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from stackops.health.cloud import HealthSettings
from stackops.health.monitor import Registry
from stackops.kube.client import Kube
from stackops.kube.engine import StepState
from stackops.reconcile.metrics import Metrics
from stackops.reconcile.transitions import Transition
from stackops.services.base import RenderOptions

# Posts an Event about the cloud `body` (the kopf layer: kopf.event; tests: a list).
EventPoster = Callable[[Mapping[str, Any], Transition], None]
# A workload of a cloud, as a watch event names it: (kind, namespace, name).
WorkloadKey = tuple[str, str, str]
HEALTH_THREADS = 4


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _no_events(body: Mapping[str, Any], event: Transition) -> None:
    """Until the kopf layer says where Events go."""


@dataclass
class OperatorState:
    kube: Kube
    post_event: EventPoster = _no_events
    health_settings: HealthSettings = field(default_factory=HealthSettings)
    health: Registry = field(default_factory=Registry)  # the latest verdict of every cloud's checks
    metrics: Metrics = field(init=False)
    render_options: RenderOptions = field(default_factory=RenderOptions)
    clock: Callable[[], str] = utc_now  # for lastTransitionTime
    # one pass or health write at a time per cloud (uid): each reads the status the last one wrote
    locks: defaultdict[str, threading.Lock] = field(default_factory=lambda: defaultdict(threading.Lock))
    # per cloud (uid): the step it waits for, and how many looks in a row it has waited for it
    waiting: dict[str, tuple[str, int]] = field(default_factory=dict)
    # per cloud (namespace, name): set when one of its workloads became ready or failed, so a waiting
    # cloud looks again now rather than at its next backoff
    wakeups: dict[tuple[str, str], asyncio.Event] = field(default_factory=dict)
    # per workload: (ready, failed) when last seen, so only a change wakes its cloud
    workloads_seen: dict[WorkloadKey, tuple[bool, bool]] = field(default_factory=dict)
    # Health rounds run here, not in kopf's handler threads nor asyncio's default ones: a cloud whose
    # APIs hang keeps one of these busy for at most a check timeout, and never a reconcile waiting.
    health_threads: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=HEALTH_THREADS, thread_name_prefix="health-round")
    )

    def __post_init__(self) -> None:
        self.metrics = Metrics(self.health)

    def note_pass(self, uid: str, current: StepState | None) -> None:
        """Remember whether the cloud's pass left it waiting, counting the looks in a row at the same
        unready step: its waiter backs off only while it stalls."""
        if current is None or current.state != "Waiting":
            self.waiting.pop(uid, None)
            return
        previous = self.waiting.get(uid)
        self.waiting[uid] = (current.name, previous[1] + 1 if previous and previous[0] == current.name else 0)
