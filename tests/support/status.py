"""A cloud's status as the cloud shows it (its JSON), built by the operator's own status code from
what a pass saw: what tests compare, key for key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackops.health.monitor import CloudHealth
from stackops.kube.engine import Outcome
from stackops.reconcile.errors import Failure
from stackops.reconcile.status import PassView, build_status, dump_status, load_status, with_health
from stackops.reconcile.transitions import Transition, transitions


def status_of(
    previous: Mapping[str, Any] | None,
    generation: int,
    release: str,
    now: str,
    *,
    outcome: Outcome | None = None,
    failure: Failure | None = None,
    paused: bool = False,
    health: CloudHealth | None = None,
) -> dict[str, Any]:
    """The status a pass that saw `outcome` (or `failure`, or a paused cloud) writes over `previous`."""
    seen = PassView(generation, release, outcome, failure, paused)
    return dump_status(build_status(load_status(previous), seen, now, health))


def with_verdict(
    status: Mapping[str, Any], health: CloudHealth | None, previous: Mapping[str, Any] | None, now: str
) -> dict[str, Any]:
    """`status` with a health round's verdict, as the health checks write it between passes."""
    return dump_status(with_health(load_status(status), health, load_status(previous), now))


def events_between(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[Transition]:
    """The Events writing `current` over `previous` posts."""
    return transitions(load_status(previous), load_status(current))
