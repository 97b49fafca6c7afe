"""Designate: DNS as a service. Zones and record sets made through its API are served by a BIND 9
server stackops runs, and neutron publishes ports' and floating IPs' names there.

Components: the API (uWSGI in the Kolla designate-api image); central, which owns the zones in
designate's database; the worker, which adds each zone to BIND over rndc; the producer's periodic
tasks; mdns, the mini DNS server BIND transfers zones from; BIND itself (a StatefulSet, its zones on
a volume), built from Debian's bind9; Jobs for the database, the RabbitMQ user, the catalog
registration, db-sync, and the pool update (`designate-manage pool update`) once central and BIND
run, which tells designate where BIND and mdns are.

BIND takes its primary (mdns) by address only, and the worker queries BIND by address too, so the
rendered pools.yaml names them by placeholders that the pool update Job fills in with their
Services' cluster IPs (templates/designate/pool-update.sh.j2).
"""

from __future__ import annotations

from typing import Any, ClassVar

import yaml

from stackops.api.models import DesignateSpec, OpenStackCloudSpec
from stackops.credentials import CredentialSpec
from stackops.render.kolla import ConfigFile, KollaCommand, Permission
from stackops.services import api, policy, rabbitmq
from stackops.services.base import Clients, CloudContext, Listener, Resources, Step
from stackops.services.health_checks import DnsServices, HealthCheck
from stackops.services.images import DebianImage, KollaUser, OpenStackImage, OpenStackImages
from stackops.services.openstack import CatalogEntry, DatabaseUpgrade, MainConfig, OpenStackService

CONFIG = MainConfig("designate.conf", "/etc/designate")
MANAGE = f"designate-manage --config-file {CONFIG.dest}"
STATE_DIR = "/var/lib/designate"
PORT = 9001
MDNS_PORT = 5354
DNS_PORT = 53
RNDC_PORT = 953
USER = KollaUser("designate", 42411)
# the key rndc signs its commands with (HMAC-SHA256): a generated password, which is valid base64
RNDC_KEY = "designate-rndc-key"
RNDC_KEY_NAME = "designate"
RNDC_KEY_FILE = "rndc.key"
POOLS_FILE = "pools.yaml"
POOL_UPDATE_SCRIPT = "pool-update.sh"
NAMED_CONF = "named.conf"
BIND_DIR = "/etc/bind"
ZONES_DIR = "/var/lib/bind"
# kolla's BIND image builds on designate's; stackops' is Debian's bind9 alone, run as designate
BIND9 = DebianImage("designate-backend-bind9", ("bind9",), USER)


def rndc_key(ctx: CloudContext) -> str:
    """The key file rndc and BIND share."""
    secret = ctx.credentials[RNDC_KEY]
    return f'key "{RNDC_KEY_NAME}" {{\n    algorithm hmac-sha256;\n    secret "{secret}";\n}};\n'


class Designate(OpenStackService[DesignateSpec]):
    name = "designate"
    spec_path = "services.designate"
    depends_on = ("keystone", "rabbitmq")
    # after the core services, as in kolla-ansible's order; neutron calls its API, which either
    # release serves
    upgrade_after = ("heat",)
    port = PORT
    openstack_images = OpenStackImages(
        USER,
        (
            OpenStackImage("designate-api"),
            OpenStackImage("designate-central"),
            # rndc, which adds zones to BIND
            OpenStackImage("designate-worker", apt=("bind9-utils",)),
            OpenStackImage("designate-producer"),
            OpenStackImage("designate-mdns"),
        ),
    )
    debian_images = (BIND9,)
    main_config = CONFIG
    databases = ("designate",)
    messaging = True
    catalog = (CatalogEntry("dns", "Designate DNS service"),)
    database_upgrade = DatabaseUpgrade(
        check=f"designate-status --config-file {CONFIG.dest} upgrade check",
        expand={"db-sync": f"{MANAGE} database sync"},
    )
    config_files: ClassVar[dict[str, tuple[str, ...]]] = {
        "designate.conf": (
            "designate.conf", "keystonemiddleware.auth_token", "oslo.concurrency", "oslo.log", "oslo.messaging",
            "oslo.middleware", "oslo.policy",
        ),
    }  # fmt: skip
    components: ClassVar[dict[str, Resources]] = {
        "api": Resources(cpu="25m", memory="192Mi"),
        "central": Resources(cpu="25m", memory="192Mi"),
        "worker": Resources(cpu="10m", memory="192Mi"),
        "producer": Resources(cpu="10m", memory="192Mi"),
        "mdns": Resources(cpu="10m", memory="192Mi"),
        "bind9": Resources(cpu="10m", memory="64Mi"),
        "db-sync": Resources(cpu="25m", memory="192Mi"),
        "pool-update": Resources(cpu="25m", memory="192Mi"),
    }

    def own_credentials(self, spec: OpenStackCloudSpec) -> list[CredentialSpec]:
        return [CredentialSpec(RNDC_KEY)]

    def health_checks(self, ctx: CloudContext) -> list[HealthCheck]:
        return [DnsServices()]

    def mdns_host(self, ctx: CloudContext) -> str:
        return ctx.service_host(ctx.object_name(self.name, "mdns"))

    def bind9_host(self, ctx: CloudContext) -> str:
        return ctx.service_host(ctx.object_name(self.name, "bind9"))

    def nameservers(self, ctx: CloudContext) -> list[str]:
        """The zones' NS records: the spec's, or BIND's Service in the cluster's DNS."""
        own = self.settings(ctx).nameservers
        return own or [f"{ctx.service_fqdn(ctx.object_name(self.name, 'bind9'))}."]

    def config(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        return {
            "DEFAULT": {"debug": False, "transport_url": self.transport_url(ctx)},
            "storage:sqlalchemy": self.oslo_db(ctx),
            "keystone_authtoken": self.authtoken(ctx),
            # keystone's projects (quotas, shared zones) and neutron's floating IPs (reverse DNS),
            # at their internal endpoints, verified with the cloud's CA
            "keystone": {"cafile": self.ca_file, "valid_interfaces": "internal", "region_name": ctx.spec.region},
            "network_api:neutron": {"endpoint_type": "internalURL", "ca_certificates_file": self.ca_file},
            "service:api": {
                "auth_strategy": "keystone",
                # the base of the links in its answers
                "api_base_uri": self.catalog_urls(ctx)["public"],
                "enable_api_v2": True,
            },
            # one process per pod, as replicas scale them (designate's default, one per CPU of the
            # node, is none at all under oslo.service's threading backend: "'workers' must be an int")
            "service:central": {"workers": 1},
            "service:worker": {"workers": 1},
            "service:producer": {"workers": 1},
            "service:mdns": {"listen": f"0.0.0.0:{MDNS_PORT}", "workers": 1},
            "oslo_concurrency": {"lock_path": f"{STATE_DIR}/tmp"},
            "oslo_middleware": {"enable_proxy_headers_parsing": True},
            "oslo_policy": policy.oslo_policy(ctx, self),
            **rabbitmq.oslo_messaging(ctx, self.ca_file),
            # its notifications, to ceilometer when it meters them (oslo_messaging's noop driver otherwise)
            **self.notifications(ctx),
        }

    def pools(self, ctx: CloudContext) -> str:
        """pools.yaml, with @MDNS@ and @BIND9@ where the pool update Job puts their addresses."""
        target = {
            "type": "bind9",
            "description": "BIND 9 run by stackops",
            "masters": [{"host": "@MDNS@", "port": MDNS_PORT}],
            "options": {
                "host": "@BIND9@",
                "port": DNS_PORT,
                "rndc_host": "@BIND9@",
                "rndc_port": RNDC_PORT,
                "rndc_key_file": f"{CONFIG.directory}/{RNDC_KEY_FILE}",
            },
        }
        pool = {
            # made by db-sync under this name: the pool every zone goes to
            "name": "default",
            "description": "BIND 9 run by stackops",
            "attributes": {},
            "ns_records": [{"hostname": name, "priority": i} for i, name in enumerate(self.nameservers(ctx), 1)],
            "nameservers": [{"host": "@BIND9@", "port": DNS_PORT}],
            "targets": [target],
        }
        return yaml.safe_dump([pool], default_flow_style=False, sort_keys=True)

    def commands(self, ctx: CloudContext) -> dict[str, KollaCommand]:
        def config_file(key: str, mode: str = "0600") -> ConfigFile:
            return ConfigFile(key, f"{CONFIG.directory}/{key}", self.user.name, mode)

        state = Permission(STATE_DIR, "designate:designate", recurse=True)

        def process(binary: str, *files: ConfigFile) -> KollaCommand:
            return self.command(f"{binary} --config-file {CONFIG.dest}", *files, permissions=(state,))

        script, pools = config_file(POOL_UPDATE_SCRIPT, "0700"), config_file(POOLS_FILE)
        update = f"/bin/bash {script.dest} {pools.dest} {MANAGE} pool update --file"
        return {
            "api": self.uwsgi_command(ctx, permissions=(state,)),
            "central": process("designate-central"),
            "worker": process("designate-worker", config_file(RNDC_KEY_FILE)),
            "producer": process("designate-producer"),
            "mdns": process("designate-mdns"),
            "db-sync": self.command(f"{MANAGE} database sync"),
            "pool-update": self.command(update, script, pools),
        }

    def files(self, ctx: CloudContext) -> dict[str, str]:
        # designate.wsgi.api since designate 21; 2025.1 has only the virtualenv's script
        wsgi = api.wsgi_file(ctx.spec.release, "designate/wsgi/api.py", f"{api.KOLLA_VENV}/bin/designate-api-wsgi")
        return {
            **self.main_files(ctx),
            api.uwsgi_file(self.name): self.uwsgi_config(ctx, "designate-api", PORT, wsgi),
            RNDC_KEY_FILE: rndc_key(ctx),
            POOLS_FILE: self.pools(ctx),
            POOL_UPDATE_SCRIPT: ctx.render_text(
                "designate/pool-update.sh.j2", mdns_host=self.mdns_host(ctx), bind9_host=self.bind9_host(ctx)
            ),
        }

    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = self.settings(ctx)
        kolla = self.kolla(ctx, self.files(ctx), self.commands(ctx))

        def worker(component: str, replicas: int, **extra: Any) -> Step:
            image = self.in_image(ctx, kolla, f"designate-{component}")
            probes = rabbitmq.probes(f"designate-{component}")
            return api.worker_step(ctx, self, component, image, replicas=replicas, probes=probes, **extra)

        ports = [{"name": f"dns-{p.lower()}", "containerPort": MDNS_PORT, "protocol": p} for p in ("TCP", "UDP")]
        mdns = worker("mdns", spec.replicas, ports=ports)
        return [
            *self.preamble(ctx, kolla),
            api.job_step(ctx, self, "db-sync", kolla),
            worker("central", spec.replicas),
            api.api_step(ctx, self, kolla, workload=spec, port=PORT, probe_path="/healthcheck"),
            worker("worker", spec.replicas),
            # its periodic tasks run once each, as no coordination backend shares them out
            worker("producer", 1),
            # BIND transfers zones from mdns, and asks their serial
            Step(
                mdns.name,
                self.name,
                [*mdns.objects, *ctx.render("designate/mdns-service.yaml.j2", port=MDNS_PORT)],
                (Listener("mdns", (MDNS_PORT,), Clients.SERVICE, udp=True),),
            ),
            self.bind9_step(ctx),
            api.job_step(ctx, self, "pool-update", self.in_image(ctx, kolla, "designate-worker")),
        ]

    def bind9_step(self, ctx: CloudContext) -> Step:
        """BIND 9: named in the foreground, its config and rndc's key from a Secret of its own (it
        rolls when they change, not with designate.conf), its zones on its volume."""
        spec = self.settings(ctx)
        key = ConfigFile(RNDC_KEY_FILE, f"{BIND_DIR}/{RNDC_KEY_FILE}", USER.name, "0600")
        named = ConfigFile(NAMED_CONF, f"{BIND_DIR}/{NAMED_CONF}", USER.name, "0600")
        command = KollaCommand(f"/usr/sbin/named -g -c {named.dest}", (named, key))
        conf = ctx.render_text(
            "designate/named.conf.j2",
            zones_dir=ZONES_DIR,
            dns_port=DNS_PORT,
            rndc_port=RNDC_PORT,
            rndc_key_file=key.dest,
            rndc_key_name=RNDC_KEY_NAME,
        )
        files = {NAMED_CONF: conf, RNDC_KEY_FILE: rndc_key(ctx)}
        kolla = api.kolla(ctx, self, BIND9.name, files, {"bind9": command}, USER.uid, part="bind9")
        pod = ctx.pod_defaults(fs_group=USER.uid, run_as=USER.uid)
        pod["securityContext"]["sysctls"] = [{"name": "net.ipv4.ip_unprivileged_port_start", "value": str(DNS_PORT)}]
        objects = ctx.render(
            "designate/bind9.yaml.j2",
            pod=pod,
            image=kolla.image,
            config=kolla.config,
            config_volume=kolla.volume("bind9"),
            resources=self.resources(ctx.spec, "bind9"),
            storage=spec.bind9.storage,
            dns_port=DNS_PORT,
            rndc_port=RNDC_PORT,
            zones_dir=ZONES_DIR,
        )
        listeners = (
            # DNS for whoever may call the cloud's APIs: resolvers that forward the cloud's zones here
            Listener("bind9", (DNS_PORT,), Clients.API, udp=True),
            # rndc for designate's worker (and the pool update Job)
            Listener("bind9", (RNDC_PORT,), Clients.SERVICE),
        )
        return Step(f"{self.name}-bind9", self.name, [kolla.config.obj, *objects], listeners)


SERVICE = Designate()
