"""Manila: shared file systems. Shares (NFS exports here) that many servers mount at once.

Components: the API (uWSGI in the Kolla manila-api image), the scheduler, which picks a backend's
pool for each share, and the data service, which copies data between shares (host-assisted
migration, backups) by mounting them, all on the control plane; a db-sync Job after its database,
its RabbitMQ user and its two catalog registrations (`share` and `sharev2`, both manila's v2 API,
the only one it serves); and, once the API serves, a Job that creates the default share type.

The share service runs the LVM driver where cinder's LVM volume service runs (spec.nodes.storage):
a DaemonSet on the storage nodes, each pod named after its node, since a share belongs to the share
service `host` that created it (`<node>@lvm`). Each share is a logical volume of the volume group
the spec names, formatted, mounted under /var/lib/manila/mnt and exported over NFS from the node's
address by the node's kernel NFS server: the pod writes the node's exports table and mounts on the
node (docs/manila.md). Without share servers (driver_handles_share_servers False): the default share
type says so, and the scheduler sends shares of that type to the LVM backend.
"""

from __future__ import annotations

from typing import Any, ClassVar

from stackops.api.models import ManilaSpec, OpenStackCloudSpec
from stackops.render.kolla import KollaCommand, Permission
from stackops.services import api, identity, policy, rabbitmq
from stackops.services.base import CloudContext, RenderError, Resources, Step
from stackops.services.health_checks import HealthCheck, ShareServices
from stackops.services.hosts import NODE_IP_AS_MY_IP, AgentContainer, agent_step, node_affinity
from stackops.services.images import KollaUser, OpenStackImage, OpenStackImages
from stackops.services.openstack import CatalogEntry, DatabaseUpgrade, MainConfig, OpenStackService

CONFIG = MainConfig("manila.conf", "/etc/manila")
DB_SYNC = f"manila-manage --config-file {CONFIG.dest} db sync"
PORT = 8786
STATE_DIR = "/var/lib/manila"
# the share service's backend: its section of manila.conf, and its name in the scheduler's host@backend
BACKEND = "lvm"
# manila's privileged calls (lvcreate, mount, exportfs) go through its privsep daemon, which manila
# starts with `sudo privsep-helper` unless told otherwise; the image's sudoers allow manila-rootwrap
# alone, and rootwrap lets privsep-helper through (oslo.rootwrap always does)
PRIVSEP_SECTION = "manila_sys_admin"  # the section of manila's privsep context (manila.privsep)
PRIVSEP_HELPER = f"sudo manila-rootwrap {CONFIG.directory}/rootwrap.conf privsep-helper --config-file {CONFIG.dest}"
# what the default share type says of the LVM backend: no share servers, snapshots
DEFAULT_TYPE_EXTRA_SPECS = {"driver_handles_share_servers": "False", "snapshot_support": "True"}


class Manila(OpenStackService[ManilaSpec]):
    name = "manila"
    spec_path = "services.manila"
    depends_on = ("keystone", "rabbitmq")
    # after the core services, as in kolla-ansible's order
    upgrade_after = ("heat",)
    port = PORT
    openstack_images = OpenStackImages(
        KollaUser("manila", 42429),
        (
            OpenStackImage("manila-api"),
            OpenStackImage("manila-scheduler"),
            # lvm2 for the volumes, exportfs (nfs-kernel-server) for the node's exports table
            OpenStackImage("manila-share", apt=("lvm2", "nfs-kernel-server"), root_helper=True),
            # mounts the shares it copies between
            OpenStackImage("manila-data", apt=("nfs-common",), root_helper=True),
        ),
    )
    main_config = CONFIG
    databases = ("manila",)
    messaging = True
    # manila serves only its v2 API: `share` (the type older clients look up) and `sharev2` name it alike
    catalog = (
        CatalogEntry("share", "Manila shared file systems service", path="/v2"),
        CatalogEntry("sharev2", "Manila shared file systems service v2", path="/v2", name="manilav2"),
    )
    database_upgrade = DatabaseUpgrade(
        check=f"manila-status --config-file {CONFIG.dest} upgrade check", expand={"db-sync": DB_SYNC}
    )
    # the LVM driver's options are manila's own namespace's; a backend section takes them from [DEFAULT]
    config_files: ClassVar[dict[str, tuple[str, ...]]] = {
        "manila.conf": (
            "manila", "keystonemiddleware.auth_token", "oslo.concurrency", "oslo.db", "oslo.log",
            "oslo.messaging", "oslo.middleware", "oslo.policy", "oslo.privsep",
        ),
    }  # fmt: skip
    components: ClassVar[dict[str, Resources]] = {
        "api": Resources(cpu="25m", memory="256Mi"),
        "scheduler": Resources(cpu="10m", memory="192Mi"),
        "data": Resources(cpu="10m", memory="192Mi"),
        "share": Resources(cpu="25m", memory="256Mi"),
        "db-sync": Resources(cpu="25m", memory="256Mi"),
        "default-share-type": Resources(cpu="10m", memory="128Mi"),
    }

    def health_checks(self, ctx: CloudContext) -> list[HealthCheck]:
        return [ShareServices()]

    def problems(self, spec: OpenStackCloudSpec) -> list[RenderError]:
        found = super().problems(spec)
        if spec.services.manila.enabled and not spec.nodes.storage.match_labels:
            found.append(
                RenderError("spec.nodes.storage.matchLabels", "manila's LVM backend needs labels to find storage nodes")
            )
        return found

    def config_sections_like(self, spec: OpenStackCloudSpec) -> dict[str, str]:
        # the backend's section takes the driver options manila registers in [DEFAULT]; its privsep
        # context's section the options oslo.privsep documents under [privsep]
        return {BACKEND: "DEFAULT", PRIVSEP_SECTION: "privsep"}

    def config(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        spec = self.settings(ctx)
        return {
            "DEFAULT": {
                "debug": False,
                "transport_url": self.transport_url(ctx),
                "auth_strategy": "keystone",
                "state_path": STATE_DIR,
                "enabled_share_backends": BACKEND,
                "enabled_share_protocols": "NFS",
                "default_share_type": spec.default_share_type,
                "rootwrap_config": f"{CONFIG.directory}/rootwrap.conf",
            },
            BACKEND: {
                "share_backend_name": BACKEND,
                "share_driver": "manila.share.drivers.lvm.LVMShareDriver",
                "driver_handles_share_servers": False,
                "lvm_share_volume_group": spec.lvm.volume_group,
                # the node's address ([DEFAULT] my_ip, from the pod's environment): what clients mount
                "lvm_share_export_ips": "$my_ip",
            },
            "database": self.oslo_db(ctx),
            "keystone_authtoken": self.authtoken(ctx),
            PRIVSEP_SECTION: {"helper_command": PRIVSEP_HELPER},
            "oslo_concurrency": {"lock_path": f"{STATE_DIR}/tmp"},
            "oslo_middleware": {"enable_proxy_headers_parsing": True},
            "oslo_policy": policy.oslo_policy(ctx, self),
            **rabbitmq.oslo_messaging(ctx, self.ca_file),
        }

    def commands(self, ctx: CloudContext) -> dict[str, KollaCommand]:
        # not recursive: the shares are mounted under it, and their files are their users'
        state = Permission(STATE_DIR, "manila:manila")

        def process(binary: str) -> KollaCommand:
            return self.command(f"{binary} --config-file {CONFIG.dest}", permissions=(state,))

        return {
            "api": self.uwsgi_command(ctx),
            "scheduler": process("manila-scheduler"),
            "data": process("manila-data"),
            "share": process("manila-share"),
            "db-sync": self.command(DB_SYNC),
        }

    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = self.settings(ctx)
        files = {
            **self.main_files(ctx),
            api.uwsgi_file(self.name): self.uwsgi_config(ctx, "manila-api", PORT, "manila/wsgi/api.py"),
        }
        kolla = self.kolla(ctx, files, self.commands(ctx))
        return [
            *self.preamble(ctx, kolla),
            api.job_step(ctx, self, "db-sync", kolla),
            api.api_step(ctx, self, kolla, workload=spec, port=PORT, probe_path="/healthcheck"),
            self.default_share_type_step(ctx),
            api.worker_step(
                ctx, self, "scheduler", self.in_image(ctx, kolla, "manila-scheduler"),
                replicas=spec.replicas, probes=rabbitmq.probes("manila-scheduler"),
            ),
            api.worker_step(
                ctx, self, "data", self.in_image(ctx, kolla, "manila-data"),
                replicas=spec.replicas, probes=rabbitmq.probes("manila-data"), privileged=True,
            ),
            self.share_step(ctx, self.in_image(ctx, kolla, "manila-share")),
        ]  # fmt: skip

    def default_share_type_step(self, ctx: CloudContext) -> Step:
        """A Job from the stackops image: the share type manila gives a share created without one."""
        spec = self.settings(ctx)
        args = [
            f"--region={ctx.spec.region}",
            f"--name={spec.default_share_type}",
            *(f"--extra-spec={key}={value}" for key, value in DEFAULT_TYPE_EXTRA_SPECS.items()),
        ]
        resources = self.resources(ctx.spec, "default-share-type")
        objects = identity.admin_job(ctx, self.name, "default-share-type", "create-share-type", args, resources)
        return Step("manila-default-share-type", self.name, objects)

    def share_step(self, ctx: CloudContext, kolla: api.Kolla) -> Step:
        """manila-share on every storage node, with the node's devices, LVM locks, mounts and exports."""
        host_paths = {
            "dev": "/dev",
            "lvm-lock": "/run/lock/lvm",
            "state": STATE_DIR,
            "nfs": "/var/lib/nfs",
        }
        mounts = (
            {"name": "dev", "mountPath": "/dev"},
            {"name": "lvm-lock", "mountPath": "/run/lock/lvm"},
            # the shares' mounts reach the node, where its NFS server exports them
            {"name": "state", "mountPath": STATE_DIR, "mountPropagation": "Bidirectional"},
            # the node's exports table, which exportfs writes and the node's mountd reads
            {"name": "nfs", "mountPath": "/var/lib/nfs"},
        )
        env = (
            # shares belong to `<node>@lvm`: the name survives any pod on that node
            {"name": "OS_DEFAULT__HOST", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            # the address shares are exported from
            NODE_IP_AS_MY_IP,
            # no udev in the container: device-mapper makes its device nodes itself
            {"name": "DM_DISABLE_UDEV", "value": "1"},
        )
        container = AgentContainer(
            "manila-share", kolla, "share", mounts=mounts, env=env, probes=rabbitmq.probes("manila-share")
        )
        storage = dict(ctx.spec.nodes.storage.match_labels)
        return agent_step(
            ctx,
            self,
            ctx.object_name("manila", "share"),
            "share",
            [container],
            affinity=node_affinity("spec.nodes.storage", [storage]),
            host_paths=host_paths,
            resources={"manila-share": self.resources(ctx.spec, "share")},
            role=ctx.spec.nodes.storage,
        )


SERVICE = Manila()
