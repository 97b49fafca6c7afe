"""memcached: token and API caches for the OpenStack services.

A StatefulSet behind a headless Service rather than a Deployment behind one address: the clients
spread keys over the list of servers themselves, so every client must see every pod by a stable name.

With the cloud's internal TLS (docs/security.md), memcached serves TLS only, on its one port, with a
certificate of the cloud's CA for every pod's name, and each of its clients verifies it: the
services' [keystone_authtoken] (keystonemiddleware), the oslo.cache [cache] sections of keystone,
nova and heat, and swift's cache filter. Each section comes from here, with the option names its
library reads.
"""

from __future__ import annotations

from typing import Any, ClassVar

from stackops import certificates
from stackops.api.models import MemcachedSpec
from stackops.render.kolla import KollaCommand
from stackops.services.base import (
    CA_FILE_KEY,
    Clients,
    CloudContext,
    Listener,
    Resources,
    ServedCertificate,
    Service,
    Step,
    served_paths,
)
from stackops.services.images import DebianImage, KollaUser

PORT = 11211
USER = KollaUser("memcached", 42457)  # the memcached user of Kolla images
# the server's certificate, key and the cloud's CA (a ServedCertificate: the command names them)
TLS_DIR = "/etc/memcached/tls"
TLS_FILES = served_paths(TLS_DIR)
# memcached's text protocol over TLS on its own port, from inside its container (openssl s_client,
# which Kolla's images have with ca-certificates and stackops' install; no name to check on
# loopback), bounded well within the probe's timeout: what a probe sends, the line it expects back
TLS_CLIENT = f"timeout 3 openssl s_client -quiet -connect 127.0.0.1:{PORT} 2>/dev/null"
# refresh_certs has the server load its certificate and key again, for new connections
TLS_RELOAD = f"printf 'refresh_certs\\r\\nquit\\r\\n' | {TLS_CLIENT} | grep -q '^OK'"
TLS_READY = f"printf 'version\\r\\nquit\\r\\n' | {TLS_CLIENT} | grep -q '^VERSION'"


def memcached_spec(ctx: CloudContext) -> MemcachedSpec:
    return ctx.spec.infrastructure.memcached


def tls(ctx: CloudContext) -> bool:
    """Whether memcached serves TLS, which its clients verify against the cloud's CA."""
    return ctx.internal_tls


def servers(ctx: CloudContext) -> list[str]:
    """host:port of every memcached pod, as oslo.cache's memcache_servers wants them."""
    name = ctx.object_name("memcached")
    host = ctx.service_host(name)
    return [f"{name}-{i}.{host}:{PORT}" for i in range(memcached_spec(ctx).replicas)]


def client_tls(ctx: CloudContext, ca_file: str, prefix: str = "") -> dict[str, Any]:
    """A client's TLS options, named `<prefix>tls_enabled` and `<prefix>tls_cafile` by all three
    libraries; `ca_file`: where the service's containers have the cloud's CA. Each builds an ssl
    context of Python's defaults from it, which checks the chain and the pod's name."""
    return {f"{prefix}tls_enabled": True, f"{prefix}tls_cafile": ca_file} if tls(ctx) else {}


def authtoken_cache(ctx: CloudContext, ca_file: str) -> dict[str, Any]:
    """keystonemiddleware's [keystone_authtoken] cache options (over TLS it uses python-binary-memcached)."""
    return {"memcached_servers": servers(ctx), **client_tls(ctx, ca_file, "memcache_")}


def oslo_cache(ctx: CloudContext, ca_file: str) -> dict[str, Any]:
    """An oslo.cache [cache] section on the cloud's memcached: oslo_cache.memcache_pool, the pooled
    backend that is safe under eventlet, which does TLS through python-binary-memcached."""
    return {
        "enabled": True,
        "backend": "oslo_cache.memcache_pool",
        "memcache_servers": servers(ctx),
        **client_tls(ctx, ca_file),
    }


def swift_cache(ctx: CloudContext, ca_file: str) -> dict[str, Any]:
    """Swift's own memcache client's options (the proxy's cache filter)."""
    return {"memcache_servers": servers(ctx), **client_tls(ctx, ca_file)}


class Memcached(Service):
    name = "memcached"
    spec_path = "infrastructure.memcached"
    served_tls_dir = TLS_DIR
    # openssl: the probe's TLS client
    debian_images = (DebianImage("memcached", ("memcached", "openssl"), USER),)
    components: ClassVar[dict[str, Resources]] = {"server": Resources(cpu="10m", memory="64Mi")}

    def certificates(self, ctx: CloudContext) -> list[certificates.CertificateRequest]:
        """Each pod's name through the headless Service, the names its clients use (servers())."""
        if not tls(ctx):
            return []
        names = certificates.pod_names(ctx.object_name("memcached"), ctx.namespace, ctx.spec.endpoints.cluster_domain)
        return [certificates.CertificateRequest(self.name, names)]

    def command(self, ctx: CloudContext) -> KollaCommand:
        """memcached's command line; with TLS, on its one port only (-Z: no plaintext listener)."""
        line = f"/usr/bin/memcached -v -l 0.0.0.0 -p {PORT} -c 5000 -U 0 -m {memcached_spec(ctx).memory_mb}"
        if not self.certificates(ctx):
            return KollaCommand(command=line)
        files_of = {"ssl_chain_cert": "server.crt", "ssl_key": "server.key", "ssl_ca_cert": CA_FILE_KEY}
        options = ",".join(f"{option}={TLS_FILES[key]}" for option, key in files_of.items())
        return KollaCommand(command=f"{line} -Z -o {options}")

    def readiness(self, served: ServedCertificate | None) -> dict[str, Any]:
        """Answers on its port; with TLS, answers VERSION over TLS after loading a renewed certificate."""
        if served is None:
            return {"tcpSocket": {"port": "memcached"}, "periodSeconds": 10}
        return {"exec": {"command": served.probe(TLS_RELOAD, TLS_READY)}, "periodSeconds": 10, "timeoutSeconds": 5}

    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = memcached_spec(ctx)
        command = self.command(ctx)
        served = self.served_certificate(ctx)
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
                    served=served,
                    readiness=self.readiness(served),
                    uid=USER.uid,
                ),
                (Listener("server", (PORT,), Clients.USERS),),
            ),
        ]


SERVICE = Memcached()
