"""How an upgrade under way shows in each service's status entry.

The rest of what an upgrade contributes is decided where the status is built
(stackops.reconcile.status): the phase reads Upgrading, the reasons are the upgrade's,
`status.upgrade` holds its record, and `status.release` moves to the new release only once the
cloud converged there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from stackops.api.models import ServiceStatus, UpgradeStatus
from stackops.upgrade.run import CURRENT, DONE

UPGRADING: Final = "Upgrading"


def upgrade_services(
    now: Mapping[str, ServiceStatus],
    before: Mapping[str, ServiceStatus],
    places: Mapping[str, str],
    record: UpgradeStatus,
) -> dict[str, ServiceStatus]:
    """Every service with the release it runs: the new one once its steps passed, the old one before.

    `now` is what the pass saw of each service, `before` the status it started from, `places` each
    service's place in the upgrade (DONE, CURRENT, or absent: not started)."""
    services: dict[str, ServiceStatus] = {}
    for name in [*before, *(n for n in now if n not in before)]:
        if not name:
            continue  # the pre-flight and the final converge belong to no service
        old, new = before.get(name), now.get(name)
        entry = _merged(old, new)
        entry.ready = (new.ready if new else "") or (old.ready if old else "")
        place = places.get(name)
        if place == DONE:
            entry.release = record.to  # its phase as the pass saw it (the final converge runs it too)
        elif place == CURRENT:
            entry.phase = "Failed" if entry.phase == "Failed" else UPGRADING
            entry.release = record.from_
        else:
            entry.phase = old.phase if old else "Ready"
            entry.release = record.from_
            entry.message = old.message if old else ""
        services[name] = entry
    return services


def _merged(old: ServiceStatus | None, new: ServiceStatus | None) -> ServiceStatus:
    """`new` over `old`, field by field: what the pass did not see (None) stays as it was."""
    if old is None or new is None:
        return (new or old or ServiceStatus()).model_copy()
    return old.model_copy(update=new.model_dump(exclude_none=True))
