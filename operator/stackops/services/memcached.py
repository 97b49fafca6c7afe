"""memcached: token and API caches for the OpenStack services.

A StatefulSet behind a headless Service rather than a Deployment behind one address: oslo.cache
shards keys over the list of servers itself, so every client must see every pod by a stable name.
"""

from __future__ import annotations

from typing import ClassVar

from stackops.api.models import MemcachedSpec
from stackops.render.kolla import KollaCommand
from stackops.services.base import Clients, CloudContext, Listener, Resources, Service, Step
from stackops.services.images import DebianImage, KollaUser

PORT = 11211
USER = KollaUser("memcached", 42457)  # the memcached user of Kolla images


def memcached_spec(ctx: CloudContext) -> MemcachedSpec:
    return ctx.spec.infrastructure.memcached


def servers(ctx: CloudContext) -> list[str]:
    """host:port of every memcached pod, as oslo.cache's memcache_servers wants them."""
    name = ctx.object_name("memcached")
    host = ctx.service_host(name)
    return [f"{name}-{i}.{host}:{PORT}" for i in range(memcached_spec(ctx).replicas)]


class Memcached(Service):
    name = "memcached"
    spec_path = "infrastructure.memcached"
    debian_images = (DebianImage("memcached", ("memcached",), USER),)
    components: ClassVar[dict[str, Resources]] = {"server": Resources(cpu="10m", memory="64Mi")}

    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = memcached_spec(ctx)
        command = KollaCommand(command=f"/usr/bin/memcached -v -l 0.0.0.0 -p {PORT} -c 5000 -U 0 -m {spec.memory_mb}")
        config = ctx.config_secret(self.name, {"memcached.json": command.to_json()})
        # The cache itself plus room for connections: the request must cover what it will use.
        resources = self.resources(ctx.spec, "server", default=Resources(cpu="10m", memory=f"{spec.memory_mb + 64}Mi"))
        return [
            Step("memcached-config", self.name, [config.obj]),
            Step(
                "memcached-server",
                self.name,
                ctx.render(
                    "memcached/server.yaml.j2",
                    spec=spec,
                    image=ctx.image(spec, "memcached"),
                    config=config,
                    config_volume=config.volume("config", "memcached.json", command),
                    resources=resources,
                    port=PORT,
                    uid=USER.uid,
                ),
                (Listener("server", (PORT,), Clients.USERS),),
            ),
        ]


SERVICE = Memcached()
