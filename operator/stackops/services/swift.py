"""Swift: object storage. Accounts, containers and objects kept in several copies on the disks of
storage nodes, reached through the proxy with a keystone token, or through its S3 API with
keystone's EC2 credentials.

Components: the proxy (a Deployment, its pipeline with keystonemiddleware's auth_token and swift's
keystoneauth for tokens, s3api and s3token for S3 requests); on each storage node the spec names, a
StatefulSet of one pod pinned to that node, holding its devices (PVCs or directories of the node)
and running the account, container and object servers with their replicators, auditors, updaters
and the account reaper, and rsyncd, which the replicators copy whole partitions through; the rings,
built and rebalanced by the ring-builder Job.

The rings say which devices hold which partitions, by the devices' addresses: each storage pod's
stable DNS name under a headless Service. The ring-builder Job runs swift-ring-builder in the swift
image on the builder files of its last run (device changes move as few partitions as swift-ring-
builder can, min_part_hours apart), then stores rings and builders in the rings Secret, which the
proxy and the storage pods mount. The Secret is rendered empty and the Job fills it: the operator
applies only its metadata, so its data stays the Job's. The ring inputs are files of swift's config
Secret, so a changed ring rolls the proxy and the storage pods once the Job has stored it (swift
also reloads a ring file that changes under it).

swift.conf's hash path prefix and suffix, which place every object, are generated once into the
credentials Secret: losing them loses the data's places.
"""

from __future__ import annotations

from typing import Any, ClassVar

from stackops.api.models import OpenStackCloudSpec, SwiftNode, SwiftSpec
from stackops.credentials import CredentialSpec
from stackops.render import naming
from stackops.render.ini import IniSections, render_ini
from stackops.render.kolla import ConfigFile, KollaCommand
from stackops.services import api, identity, memcached
from stackops.services.base import Clients, CloudContext, Listener, RenderError, Resources, Step
from stackops.services.health_checks import HealthCheck, ObjectStoreAccount
from stackops.services.images import KollaUser, OpenStackImage, OpenStackImages
from stackops.services.openstack import CatalogEntry, MainConfig, OpenStackService

CONFIG = MainConfig("proxy-server.conf", "/etc/swift")
USER = KollaUser("swift", 42445)
PORT = 8080
# swift's own defaults since 2.x
SERVER_PORTS = {"account": 6202, "container": 6201, "object": 6200}
RSYNC_PORT = 873
# tells apart the pods of the storage nodes' StatefulSets, which share the storage component's labels
NODE_LABEL = "stackops.dev/swift-node"
RINGS = tuple(SERVER_PORTS)
DEVICES_DIR = "/srv/node"
# the rings Secret, as the proxy and the storage servers mount it (swift-start.sh links its rings
# into /etc/swift), and as the ring-builder Job finds its last builder files
RINGS_DIR = "/var/lib/swift/rings"
PREVIOUS_RINGS_DIR = "/var/lib/swift/rings-previous"
STATE_DIR = "/var/lib/swift"
HASH_PREFIX_KEY = "swift-hash-path-prefix"
HASH_SUFFIX_KEY = "swift-hash-path-suffix"
RING_SCRIPT = "ring-builder.sh"
START_SCRIPT = "swift-start.sh"
RING_DEVICES = "ring-devices"
SWIFT_CONF = "swift.conf"
RSYNCD_CONF = "rsyncd.conf"
# a fixed seed: the same builder files and devices give the same rings on every run
RING_SEED = 1
# the storage pods' containers: each server and the daemons that work on its data
DAEMONS = {
    "account": ("server", "replicator", "auditor", "reaper"),
    "container": ("server", "replicator", "auditor", "updater"),
    "object": ("server", "replicator", "auditor", "updater"),
}
STORAGE_COMPONENTS = tuple(f"{ring}-{daemon}" for ring, daemons in DAEMONS.items() for daemon in daemons)
# the proxy's pipeline: authtoken validates a request's keystone token (and lets one without a token
# by, delay_auth_decision); S3 requests are signed, and s3token asks keystone who signed them and
# sets the identity headers that keystoneauth then authorizes. authtoken comes before s3api, as
# swift's s3api docs order them: after s3token it would strip those headers (it drops every
# identity header it did not set itself) and find no token, and keystoneauth would answer 401,
# which s3api turns into SignatureDoesNotMatch
PIPELINE = (
    "catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk authtoken s3api s3token "
    "keystoneauth copy slo dlo versioned_writes symlink proxy-logging proxy-server"
)
EGG_FILTERS = {
    "catch_errors": "catch_errors", "gatekeeper": "gatekeeper", "healthcheck": "healthcheck",
    "proxy-logging": "proxy_logging", "listing_formats": "listing_formats", "bulk": "bulk", "copy": "copy",
    "slo": "slo", "dlo": "dlo", "symlink": "symlink",
}  # fmt: skip


def server_file(ring: str) -> str:
    return f"{ring}-server.conf"


class Swift(OpenStackService[SwiftSpec]):
    name = "swift"
    spec_path = "services.swift"
    depends_on = ("keystone",)
    # no database: an upgrade rolls its pods, the storage nodes' before the proxy's (the order of
    # its steps), as swift's upgrade notes ask; after the core services, as in kolla-ansible's order
    upgrade_after = ("heat",)
    port = PORT
    openstack_images = OpenStackImages(
        USER,
        (
            # keystonemiddleware is swift's `keystone` extra, which only the proxy loads
            OpenStackImage("swift-proxy-server", pip=("keystonemiddleware",)),
            # the replicators copy partitions with rsync; the ring-builder Job runs in swift-object
            OpenStackImage("swift-account", apt=("rsync",)),
            OpenStackImage("swift-container", apt=("rsync",)),
            OpenStackImage("swift-object", apt=("rsync",)),
            OpenStackImage("swift-rsyncd", apt=("rsync",)),
        ),
    )
    main_config = CONFIG
    catalog = (CatalogEntry("object-store", "Swift object storage", path="/v1/AUTH_%(project_id)s"),)
    components: ClassVar[dict[str, Resources]] = {
        "api": Resources(cpu="25m", memory="128Mi"),
        "ring-builder": Resources(cpu="25m", memory="128Mi"),
        **{c: Resources(cpu="10m", memory="96Mi") for c in STORAGE_COMPONENTS},
        "rsyncd": Resources(cpu="5m", memory="32Mi"),
    }

    def own_credentials(self, spec: OpenStackCloudSpec) -> list[CredentialSpec]:
        return [CredentialSpec(HASH_PREFIX_KEY), CredentialSpec(HASH_SUFFIX_KEY)]

    def health_checks(self, ctx: CloudContext) -> list[HealthCheck]:
        return [ObjectStoreAccount()]

    def problems(self, spec: OpenStackCloudSpec) -> list[RenderError]:
        found = super().problems(spec)
        settings = spec.services.swift
        if not settings.enabled:
            return found
        devices = sum(len(node.devices) for node in settings.nodes)
        if not settings.nodes:
            found.append(RenderError("spec.services.swift.nodes", "at least one storage node with its devices"))
        elif devices < settings.rings.replicas:
            found.append(RenderError(
                "spec.services.swift.nodes",
                f"{devices} device(s) cannot hold rings.replicas={settings.rings.replicas} copies of each partition",
            ))  # fmt: skip
        return found

    # where things are
    def storage_name(self, ctx: CloudContext, node: SwiftNode) -> str:
        """The StatefulSet of a storage node (short enough for its pods' names and revision labels)."""
        return naming.fit(ctx.object_name(self.name, "storage", node.node.replace(".", "-")), 52)

    def storage_service(self, ctx: CloudContext) -> str:
        return ctx.object_name(self.name, "storage")

    def storage_host(self, ctx: CloudContext, node: SwiftNode) -> str:
        """The storage pod's DNS name: the devices' address in the rings."""
        return ctx.service_fqdn(f"{self.storage_name(ctx, node)}-0.{self.storage_service(ctx)}")

    def rings_secret(self, ctx: CloudContext) -> str:
        return ctx.object_name(self.name, "rings")

    # config files
    def common(self) -> dict[str, Any]:
        """[DEFAULT] options every swift process shares."""
        return {"user": USER.name, "swift_dir": CONFIG.directory, "devices": DEVICES_DIR, "log_level": "INFO"}

    def proxy_tls(self, ctx: CloudContext) -> dict[str, Any]:
        """The proxy serves HTTPS with the API's certificate (internal TLS): swift's own server
        wraps its socket (and warns that a TLS terminator is its advice for production)."""
        tls = self.api_tls(ctx)
        return {"cert_file": tls.cert, "key_file": tls.key} if tls else {}

    def proxy_env(self) -> list[dict[str, str]]:
        """s3token's service user authenticates through a keystoneauth session of its own that
        takes no CA option: requests' CA bundle variable names the cloud's CA for it. The proxy
        calls no endpoint outside the cloud, so no public CA is missed."""
        return [{"name": "REQUESTS_CA_BUNDLE", "value": self.ca_file}]

    def config(self, ctx: CloudContext) -> IniSections:
        authtoken = identity.authtoken(ctx, self.name, self.keystone_password_key, self.ca_file)
        return {
            # one worker per pod, as replicas scale the proxy
            "DEFAULT": {"bind_ip": "0.0.0.0", "bind_port": PORT, "workers": 1, **self.common(), **self.proxy_tls(ctx)},
            "pipeline:main": {"pipeline": PIPELINE},
            # a project's account is made on its first request
            "app:proxy-server": {"use": "egg:swift#proxy", "account_autocreate": True},
            **{f"filter:{name}": {"use": f"egg:swift#{egg}"} for name, egg in sorted(EGG_FILTERS.items())},
            "filter:cache": {"use": "egg:swift#memcache", **memcached.swift_cache(ctx, self.ca_file)},
            "filter:s3api": {"use": "egg:swift#s3api", "location": ctx.spec.region},
            "filter:s3token": {
                "use": "egg:swift#s3token",
                "auth_uri": f"{identity.identity_urls(ctx)['internal']}/v3",
                # the CA it verifies keystone with (s3token names it `certfile`); its service
                # user's session reads REQUESTS_CA_BUNDLE instead (proxy_env)
                "certfile": self.ca_file,
                "reseller_prefix": "AUTH_",
                # keystone answers s3tokens requests only from a service's user
                **self.service_auth(ctx),
            },
            "filter:authtoken": {
                "paste.filter_factory": "keystonemiddleware.auth_token:filter_factory",
                # keystoneauth decides, which lets anonymous requests reach public containers
                "delay_auth_decision": True,
                **authtoken,
            },
            "filter:keystoneauth": {
                "use": "egg:swift#keystoneauth",
                "reseller_prefix": "AUTH_",
                "operator_roles": ["admin", "member"],
                "reseller_admin_role": "ResellerAdmin",
            },
            "filter:versioned_writes": {"use": "egg:swift#versioned_writes", "allow_versioned_writes": True},
        }

    def server_config(self, ring: str) -> IniSections:
        """account-, container- or object-server.conf: its server and its daemons' sections."""
        app = {"use": f"egg:swift#{ring}"}
        sections: dict[str, dict[str, Any]] = {
            # devices are PVCs or directories of the node, not always mount points of their own
            "DEFAULT": {
                "bind_ip": "0.0.0.0", "bind_port": SERVER_PORTS[ring], "workers": 1, "mount_check": False,
                **self.common(),
            },
            "pipeline:main": {"pipeline": f"healthcheck recon {ring}-server"},
            f"app:{ring}-server": app,
            "filter:healthcheck": {"use": "egg:swift#healthcheck"},
            # what `swift-recon` asks of each server
            "filter:recon": {"use": "egg:swift#recon", "recon_cache_path": STATE_DIR},
        }  # fmt: skip
        rsync = {"rsync_module": f"{{replication_ip}}::{ring}"}
        for daemon in DAEMONS[ring][1:]:
            # the daemons write their stats there: the state volume itself, which the kubelet makes
            # (swift makes no directory for them; a subdirectory would be missing in a new pod)
            sections[f"{ring}-{daemon}"] = {"recon_cache_path": STATE_DIR} | (rsync if daemon == "replicator" else {})
        return sections

    def swift_conf(self, ctx: CloudContext) -> str:
        return render_ini({
            "swift-hash": {
                "swift_hash_path_prefix": ctx.credentials[HASH_PREFIX_KEY],
                "swift_hash_path_suffix": ctx.credentials[HASH_SUFFIX_KEY],
            },
            "storage-policy:0": {"name": "Policy-0", "default": True},
        })  # fmt: skip

    def ring_devices(self, ctx: CloudContext) -> str:
        """The devices of the rings, one a line: ring, region, zone, host, port, device, weight."""
        spec = self.settings(ctx)
        lines = [
            f"{ring} {node.region} {node.zone} {self.storage_host(ctx, node)} {port} {device.name} {device.weight:g}"
            for ring, port in SERVER_PORTS.items()
            for node in spec.nodes
            for device in node.devices
        ]
        return "".join(f"{line}\n" for line in lines)

    def files(self, ctx: CloudContext) -> dict[str, str]:
        spec = self.settings(ctx)
        storage = {server_file(r): render_ini(self.server_config(r), spec.servers.config) for r in RINGS}
        rings = spec.rings
        return {
            **self.main_files(ctx),
            **storage,
            SWIFT_CONF: self.swift_conf(ctx),
            RSYNCD_CONF: ctx.render_text(
                "swift/rsyncd.conf.j2", rings=RINGS, devices_dir=DEVICES_DIR, state_dir=STATE_DIR, port=RSYNC_PORT
            ),
            RING_DEVICES: self.ring_devices(ctx),
            START_SCRIPT: ctx.render_text("swift/swift-start.sh.j2", rings_dir=RINGS_DIR, swift_dir=CONFIG.directory),
            RING_SCRIPT: ctx.render_text(
                "swift/ring-builder.sh.j2",
                rings=RINGS,
                part_power=rings.part_power,
                replicas=rings.replicas,
                min_part_hours=rings.min_part_hours,
                seed=RING_SEED,
            ),
        }

    def commands(self, ctx: CloudContext) -> dict[str, KollaCommand]:
        def config_file(key: str, mode: str = "0600") -> ConfigFile:
            return ConfigFile(key, f"{CONFIG.directory}/{key}", USER.name, mode)

        swift_conf, start = config_file(SWIFT_CONF), config_file(START_SCRIPT, "0700")
        started = f"/bin/bash {start.dest}"
        commands = {
            "api": self.command(
                f"{started} swift-proxy-server {CONFIG.dest} --verbose", swift_conf, start, *self.api_tls_files(ctx)
            ),
            "ring-builder": KollaCommand(
                f"/bin/bash {CONFIG.directory}/{RING_SCRIPT} {CONFIG.directory}/{RING_DEVICES} "
                f"{PREVIOUS_RINGS_DIR} {RINGS_DIR}",
                (config_file(RING_SCRIPT, "0700"), config_file(RING_DEVICES)),
            ),
            "rsyncd": KollaCommand(
                f"rsync --daemon --no-detach --config={CONFIG.directory}/{RSYNCD_CONF}", (config_file(RSYNCD_CONF),)
            ),
        }
        for ring, daemons in DAEMONS.items():
            conf = config_file(server_file(ring))
            for daemon in daemons:
                commands[f"{ring}-{daemon}"] = KollaCommand(
                    f"{started} swift-{ring}-{daemon} {conf.dest} --verbose", (conf, swift_conf, start)
                )
        return commands

    # steps
    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = self.settings(ctx)
        kolla = self.kolla(ctx, self.files(ctx), self.commands(ctx))
        rings = self.rings_secret(ctx)
        empty_rings = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": ctx.metadata(rings, self.name, "rings"),
            "type": "Opaque",
        }
        rings_volume = {"name": "rings", "secret": {"secretName": rings}}
        rings_mount = {"name": "rings", "mountPath": RINGS_DIR, "readOnly": True}
        return [
            *self.preamble(ctx, kolla, empty_rings),
            self.ring_builder_step(ctx, kolla),
            *(self.storage_step(ctx, kolla, node, rings_volume, rings_mount) for node in spec.nodes),
            Step(
                f"{self.name}-storage-service",
                self.name,
                ctx.render("swift/storage-service.yaml.j2", name=self.storage_service(ctx), ports=SERVER_PORTS),
            ),
            api.api_step(
                ctx, self, self.in_image(ctx, kolla, "swift-proxy-server"), workload=spec, port=PORT,
                probe_path="/healthcheck", extra_volumes=[rings_volume], extra_mounts=[rings_mount],
                env=self.proxy_env(),
            ),
        ]  # fmt: skip

    def ring_builder_step(self, ctx: CloudContext, kolla: api.Kolla) -> Step:
        """swift-ring-builder in the swift image, then `stackops job store-rings` writes what it
        built into the rings Secret (the only object its ServiceAccount may change)."""
        builder = api.sidecar(
            ctx,
            self,
            "ring-builder",
            self.in_image(ctx, kolla, "swift-object"),
            mounts=[
                {"name": "previous", "mountPath": PREVIOUS_RINGS_DIR, "readOnly": True},
                {"name": "built", "mountPath": RINGS_DIR},
            ],
        )
        objects = ctx.render(
            "swift/ring-builder.yaml.j2",
            name=ctx.object_name(self.name, "ring-builder"),
            rings=self.rings_secret(ctx),
            builder=builder,
            config=kolla.config,
            uid=USER.uid,
            resources=self.resources(ctx.spec, "ring-builder"),
            rings_dir=RINGS_DIR,
        )
        return Step(f"{self.name}-ring-builder", self.name, objects)

    def storage_step(
        self,
        ctx: CloudContext,
        kolla: api.Kolla,
        node: SwiftNode,
        rings_volume: dict[str, Any],
        rings_mount: dict[str, Any],
    ) -> Step:
        """A storage node's StatefulSet: every server and daemon of its devices, and rsyncd."""
        devices = [{"name": f"device-{d.name}", "mountPath": f"{DEVICES_DIR}/{d.name}"} for d in node.devices]
        state = {"name": "state", "mountPath": STATE_DIR}
        mounts = [*devices, state]
        containers = []
        for component in STORAGE_COMPONENTS:
            ring, daemon = component.split("-")
            sidecar = api.sidecar(
                ctx, self, component, self.in_image(ctx, kolla, f"swift-{ring}"), mounts=[*mounts, rings_mount]
            )
            if daemon == "server":
                check = {"httpGet": {"path": "/healthcheck", "port": SERVER_PORTS[ring]}, "timeoutSeconds": 10}
                sidecar.container["readinessProbe"] = check | {"periodSeconds": 10}
                sidecar.container["livenessProbe"] = check | {"initialDelaySeconds": 30, "periodSeconds": 30}
            containers.append(sidecar)
        containers.append(api.sidecar(ctx, self, "rsyncd", self.in_image(ctx, kolla, "swift-rsyncd"), mounts=mounts))
        pod = ctx.pod_defaults(fs_group=USER.uid, run_as=USER.uid)
        # rsyncd serves the port rsync's clients assume, without root
        pod["securityContext"]["sysctls"] = [{"name": "net.ipv4.ip_unprivileged_port_start", "value": str(RSYNC_PORT)}]
        name = self.storage_name(ctx, node)
        selector = ctx.selector(self.name, "storage") | {NODE_LABEL: node.node}
        objects = ctx.render(
            "swift/storage.yaml.j2",
            name=name,
            service_name=self.storage_service(ctx),
            selector=selector,
            labels=ctx.labels(self.name, "storage") | selector,
            pod=pod,
            node_selector=self.settings(ctx).node_selector.match_labels | {"kubernetes.io/hostname": node.node},
            config=kolla.config,
            containers=containers,
            chown_image=self.in_image(ctx, kolla, "swift-object").image,
            owned=[m for m in devices if any(m["name"] == f"device-{d.name}" for d in node.devices if d.host_path)],
            host_paths={f"device-{d.name}": d.host_path for d in node.devices if d.host_path},
            claims=[d for d in node.devices if not d.host_path],
            extra_volumes=[rings_volume],
            uid=USER.uid,
        )
        listeners = (
            # the servers: for the proxy, and for the other storage nodes' replicators and updaters
            Listener("storage", tuple(SERVER_PORTS.values()), Clients.SERVICE),
            # rsyncd: for the other storage nodes' replicators alone
            Listener("storage", (RSYNC_PORT,), Clients.MEMBERS),
        )
        return Step(name.removeprefix(f"{ctx.name}-"), self.name, objects, listeners)


SERVICE = Swift()
