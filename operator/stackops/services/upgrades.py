"""What a service declares about moving from one OpenStack release to the next.

A service module returns a ServiceUpgrade from `Service.upgrade(ctx)`, where `ctx` renders the
cloud at the release being upgraded to. Each command runs as a Kolla Job with that release's image
and config, in this order (stackops.upgrade.plan does the ordering):

    check     `<service>-status upgrade check`, in the pre-flight, before anything changes
    expand    additive schema changes and data copies the running (old) release still works with
    (roll)    the service's pods move to the new release's images and config; the regular steps
              named in `roll_first` go before the others, host agents among them included
    contract  removal of what only the old release needed: after it, no rollback
    (agents)  every service's host agents, node by node (the nodes' maxUnavailable)
    online    online data migrations, once every process of the cloud, agents included, runs the
              new release (nova and cinder require it before the next upgrade)

A service with no declaration (memcached, MariaDB) is only rolled. Component names must be
components of the service, so their resources can be overridden like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stackops.render.kolla import KollaCommand

CHECK_COMPONENT = "upgrade-check"


@dataclass(frozen=True)
class ServiceUpgrade:
    image: str  # the Kolla image the commands run in (subject to the service's image overrides)
    uid: int  # the service user of that image: the Jobs' fsGroup
    files: Mapping[str, str]  # the config files the commands read, as the new release renders them
    check: KollaCommand | None = None
    expand: Mapping[str, KollaCommand] = field(default_factory=dict)  # component -> command, in order
    contract: Mapping[str, KollaCommand] = field(default_factory=dict)
    online: Mapping[str, KollaCommand] = field(default_factory=dict)
    roll_first: tuple[str, ...] = ()  # names of regular steps
    # Its processes pin their RPC versions to the oldest service they see at start (nova's
    # upgrade_levels "auto", cinder's version caps): rolled while agents run the old release, they
    # start once more when every agent runs the new one.
    restart_after_agents: bool = False
    # volumes every upgrade Job mounts beside its config (keystone's key repositories: keystone-status
    # starts the token providers, which refuse to run without them)
    volumes: tuple[dict[str, Any], ...] = ()
    mounts: tuple[dict[str, Any], ...] = ()
    env: tuple[dict[str, Any], ...] = ()  # beside the Kolla config strategy (horizon's: no extend start)

    def commands(self) -> dict[str, KollaCommand]:
        """Every command by component: one config.json each in the service's upgrade config Secret."""
        checks = {CHECK_COMPONENT: self.check} if self.check else {}
        return {**checks, **self.expand, **self.contract, **self.online}
