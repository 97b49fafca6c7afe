"""Cinder: block storage. Volumes live on LVM volume groups of storage nodes, in Ceph RBD, or on NFS.

Components: the API (uWSGI in the Kolla cinder-api image) and the scheduler on the control plane; a
db-sync Job after its database, its RabbitMQ user and its registration in keystone's catalog; the
volume service; and, when asked for, the backup service.

A volume belongs to the volume service `host` that created it, so that name must outlive any pod:
- LVM backends run where their volume group is: a DaemonSet on the storage nodes, each pod named
  after its node (and exporting volumes over iSCSI from the node's address, through the kernel's
  LIO target).
- Ceph RBD and NFS backends are reachable from anywhere: one Deployment of a single pod with a fixed
  host name, replaced (never doubled) when it moves.
Each volume service reads cinder.conf, which has a section per backend, plus a small file enabling
its own backends.
"""

from __future__ import annotations

from typing import Any, ClassVar

from stackops.api.models import CinderBackend, CinderSpec, OpenStackCloudSpec
from stackops.render.ini import render_ini
from stackops.render.kolla import ConfigFile, KollaCommand, Permission
from stackops.services import api, ceph, policy, rabbitmq
from stackops.services.base import CloudContext, RenderError, Resources, Step
from stackops.services.health_checks import HealthCheck, VolumeServices
from stackops.services.hosts import NODE_IP_AS_MY_IP, AgentContainer, agent_step, node_affinity
from stackops.services.images import KollaUser, OpenStackImage, OpenStackImages
from stackops.services.openstack import CatalogEntry, DatabaseUpgrade, MainConfig, OpenStackService

CONFIG = MainConfig("cinder.conf", "/etc/cinder")
MANAGE = f"cinder-manage --config-file {CONFIG.dest} db"
STATE_DIR = "/var/lib/cinder"
# The volume service of RBD/NFS backends and the backup service run anywhere, so they are known by
# these names rather than by their pod's. Backup replicas share theirs: any of them takes a backup's work.
VOLUME_HOST = "cinder-volume"
BACKUP_HOST = "cinder-backup"


def lvm_backends(spec: CinderSpec) -> list[CinderBackend]:
    return [b for b in spec.backends if b.type == "lvm"]


def shared_backends(spec: CinderSpec) -> list[CinderBackend]:
    """Backends any node can reach (RBD, NFS): served by the single volume Deployment."""
    return [b for b in spec.backends if b.type != "lvm"]


def nfs_shares_file(backend: CinderBackend) -> str:
    return f"nfs-shares-{backend.name}"


class Cinder(OpenStackService[CinderSpec]):
    name = "cinder"
    spec_path = "services.cinder"
    depends_on = ("keystone", "rabbitmq")
    upgrade_after = ("glance",)  # the order of OpenStack's upgrade guides
    port = 8776
    openstack_images = OpenStackImages(
        KollaUser("cinder", 42407),
        (
            OpenStackImage("cinder-api"),
            OpenStackImage("cinder-scheduler"),
            OpenStackImage("cinder-volume", apt=("lvm2", "qemu-utils", "open-iscsi"), root_helper=True),
            OpenStackImage("cinder-backup", apt=("qemu-utils",), root_helper=True),
        ),
    )
    main_config = CONFIG
    databases = ("cinder",)
    messaging = True
    # the v3 API, without a project in the path (cinder needs none since 3.67)
    catalog = (CatalogEntry("block-storage", "Cinder block storage service", path="/v3"),)
    # Cinder's rolling upgrade: its schema only grows (`db sync` while the old release runs); API,
    # scheduler, volume and backup services roll in that order, LVM volume services with the other
    # host agents; the online data migrations once every volume service runs the new release. Its
    # services cap their RPC versions at the oldest they see, so they start once more at the end.
    database_upgrade = DatabaseUpgrade(
        check=f"cinder-status --config-file {CONFIG.dest} upgrade check",
        expand={"db-sync": f"{MANAGE} sync"},
        online={"db-online-migrations": f"{MANAGE} online_data_migrations"},
        restart_after_agents=True,
    )
    # cinder's own namespace holds its [nova] options and those of every volume and backup driver
    # (a backend's section takes them from [backend_defaults]: config_sections_like)
    _namespaces = (
        "cinder", "keystonemiddleware.auth_token", "oslo.concurrency", "oslo.db", "oslo.log", "oslo.messaging",
        "oslo.middleware", "oslo.policy",
    )  # fmt: skip
    config_files: ClassVar[dict[str, tuple[str, ...]]] = {
        "cinder.conf": _namespaces,
        "cinder-volume.conf": _namespaces,
        "cinder-volume-lvm.conf": _namespaces,
        "cinder-backup.conf": _namespaces,
    }
    components: ClassVar[dict[str, Resources]] = {
        "api": Resources(cpu="25m", memory="256Mi"),
        "scheduler": Resources(cpu="25m", memory="256Mi"),
        "volume": Resources(cpu="25m", memory="256Mi"),
        # converts images to volumes with qemu-img on the node
        "volume-lvm": Resources(cpu="50m", memory="512Mi"),
        "backup": Resources(cpu="25m", memory="256Mi"),
        "db-sync": Resources(cpu="25m", memory="256Mi"),
    }

    def health_checks(self, ctx: CloudContext) -> list[HealthCheck]:
        return [VolumeServices()]

    def problems(self, spec: OpenStackCloudSpec) -> list[RenderError]:
        found = super().problems(spec)
        cinder = spec.services.cinder
        if lvm_backends(cinder) and not spec.nodes.storage.match_labels:
            found.append(
                RenderError("spec.nodes.storage.matchLabels", "lvm backends need labels to find storage nodes")
            )
        if (
            cinder.backup.enabled
            and cinder.backup.type == "nfs"
            and cinder.backup.nfs
            and len(cinder.backup.nfs.shares) > 1
        ):
            found.append(RenderError("spec.services.cinder.backup.nfs.shares", "backups go to exactly one share"))
        return found

    def config_sections_like(self, spec: OpenStackCloudSpec) -> dict[str, str]:
        # a backend's section takes the options cinder documents under [backend_defaults]
        return {backend.name: "backend_defaults" for backend in spec.services.cinder.backends}

    def backend_section(self, backend: CinderBackend) -> dict[str, Any]:
        common = {"volume_backend_name": backend.name}
        if backend.type == "lvm":
            assert backend.lvm is not None
            return common | {
                "volume_driver": "cinder.volume.drivers.lvm.LVMVolumeDriver",
                "volume_group": backend.lvm.volume_group,
                # the kernel's LIO target: no target daemon to run next to cinder-volume
                "target_helper": "lioadm",
                "target_protocol": "iscsi",
            }
        if backend.type == "rbd":
            assert backend.rbd is not None
            return common | {
                "volume_driver": "cinder.volume.drivers.rbd.RBDDriver",
                "rbd_cluster_name": backend.name,
                "rbd_ceph_conf": ceph.conf_path(backend.name),
                "rbd_pool": backend.rbd.pool,
                "rbd_user": backend.rbd.user,
                "report_discard_supported": True,
            }
        assert backend.nfs is not None
        return common | {
            "volume_driver": "cinder.volume.drivers.nfs.NfsDriver",
            "nfs_shares_config": f"{CONFIG.directory}/{nfs_shares_file(backend)}",
            "nfs_mount_options": backend.nfs.mount_options,
            "nfs_snapshot_support": True,
            # cinder-volume runs as the cinder user and mounts through rootwrap: files on the share
            # are not its own, so the secure file checks would refuse them
            "nas_secure_file_operations": False,
            "nas_secure_file_permissions": False,
        }

    def config(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        spec = self.settings(ctx)
        sections: dict[str, dict[str, Any]] = {
            "DEFAULT": {
                "debug": False,
                "transport_url": self.transport_url(ctx),
                "auth_strategy": "keystone",
                "state_path": STATE_DIR,
                "glance_catalog_info": "image:glance:internalURL",
                "glance_ca_certificates_file": self.ca_file,
            },
            "database": self.oslo_db(ctx),
            "keystone_authtoken": self.authtoken(ctx),
            # cinder calls nova (volume events, assisted snapshots) as its own user, whose credentials
            # are those it validates tokens with (auth_section lends the credentials only: the
            # session's CA is the section's own)
            "nova": {
                "auth_section": "keystone_authtoken",
                "region_name": ctx.spec.region,
                "interface": "internal",
                "cafile": self.ca_file,
            },
            "oslo_concurrency": {"lock_path": f"{STATE_DIR}/tmp"},
            "oslo_middleware": {"enable_proxy_headers_parsing": True},
            "oslo_policy": policy.oslo_policy(ctx, self),
            **rabbitmq.oslo_messaging(ctx, self.ca_file),
            # its notifications, to ceilometer when it meters them (oslo_messaging's noop driver otherwise)
            **self.notifications(ctx),
        }
        for backend in spec.backends:
            section = self.backend_section(backend)
            sections[backend.name] = {k: v for k, v in section.items() if v is not None}
        return sections

    def volume_config(self, backends: list[CinderBackend], host: str | None) -> str:
        """What one volume service adds to cinder.conf: its backends (and its fixed host name)."""
        default: dict[str, Any] = {"enabled_backends": [b.name for b in backends]}
        if host:
            default["host"] = host
        return render_ini({"DEFAULT": default})

    def backup_config(self, ctx: CloudContext) -> str:
        """What the backup service adds to cinder.conf: where backups go, and its fixed host name."""
        backup = self.settings(ctx).backup
        default: dict[str, Any] = {"host": BACKUP_HOST}
        if backup.type == "rbd":
            assert backup.rbd is not None
            default |= {
                "backup_driver": "cinder.backup.drivers.ceph.CephBackupDriver",
                # the backup driver knows no cluster name: its files are the default cluster's
                "backup_ceph_conf": ceph.conf_path("ceph"),
                "backup_ceph_user": backup.rbd.user,
                "backup_ceph_pool": backup.rbd.pool,
            }
        else:
            assert backup.nfs is not None
            default |= {
                "backup_driver": "cinder.backup.drivers.nfs.NFSBackupDriver",
                "backup_share": backup.nfs.shares[0],
                "backup_mount_options": backup.nfs.mount_options,
                "backup_mount_point_base": f"{STATE_DIR}/backup_mount",
            }
        return render_ini({"DEFAULT": {k: v for k, v in default.items() if v is not None}})

    def commands(self, ctx: CloudContext) -> dict[str, KollaCommand]:
        """What each cinder container runs; volume and backup services only where the spec has them."""
        spec = self.settings(ctx)
        state = Permission(STATE_DIR, "cinder:cinder", recurse=True)

        def config_file(key: str) -> ConfigFile:
            return ConfigFile(key, f"{CONFIG.directory}/{key}", self.user.name, "0600")

        def process(binary: str, overlay: str | None = None, data: tuple[str, ...] = ()) -> KollaCommand:
            """`binary` reading cinder.conf, then `overlay` (which wins), with `data` files next to them."""
            overlays = [config_file(overlay)] if overlay else []
            argv = " ".join([binary, *(f"--config-file {f.dest}" for f in (self.config_file, *overlays))])
            return self.command(argv, *overlays, *map(config_file, data), permissions=(state,))

        commands = {
            "api": self.uwsgi_command(ctx),
            "scheduler": process("cinder-scheduler"),
            "db-sync": self.command(f"{MANAGE} sync"),
        }
        if lvm_backends(spec):
            commands["volume-lvm"] = process("cinder-volume", "cinder-volume-lvm.conf")
        if shared_backends(spec):
            shares = tuple(nfs_shares_file(b) for b in shared_backends(spec) if b.type == "nfs")
            commands["volume"] = process("cinder-volume", "cinder-volume.conf", shares)
        if spec.backup.enabled:
            commands["backup"] = process("cinder-backup", "cinder-backup.conf")
        return commands

    def files(self, ctx: CloudContext) -> dict[str, str]:
        spec = self.settings(ctx)
        files = {
            **self.main_files(ctx),
            api.uwsgi_file(self.name): self.uwsgi_config(ctx, "cinder-api", self.port, "cinder/wsgi/api.py"),
        }
        if lvm_backends(spec):
            # each pod's host name is its node's, set from the environment
            files["cinder-volume-lvm.conf"] = self.volume_config(lvm_backends(spec), None)
        if shared_backends(spec):
            files["cinder-volume.conf"] = self.volume_config(shared_backends(spec), VOLUME_HOST)
            for backend in shared_backends(spec):
                if backend.nfs is not None:
                    files[nfs_shares_file(backend)] = "".join(f"{share}\n" for share in backend.nfs.shares)
        if spec.backup.enabled:
            files["cinder-backup.conf"] = self.backup_config(ctx)
        return files

    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = self.settings(ctx)
        kolla = self.kolla(ctx, self.files(ctx), self.commands(ctx))
        steps = [
            *self.preamble(ctx, kolla),
            api.job_step(ctx, self, "db-sync", kolla),
            api.api_step(ctx, self, kolla, workload=spec, port=self.port, probe_path="/healthcheck"),
            api.worker_step(
                ctx, self, "scheduler", self.in_image(ctx, kolla, "cinder-scheduler"),
                replicas=spec.replicas, probes=rabbitmq.probes("cinder-scheduler"),
            ),
        ]  # fmt: skip
        volume = self.in_image(ctx, kolla, "cinder-volume")
        if lvm_backends(spec):
            steps.append(self.lvm_step(ctx, volume))
        if shared_backends(spec):
            volumes, mounts = ceph.volume(
                [ceph.items(b.name, b.rbd) for b in shared_backends(spec) if b.rbd is not None]
            )
            steps.append(
                api.worker_step(
                    ctx, self, "volume", volume, replicas=1, probes=rabbitmq.probes("cinder-volume"),
                    extra_volumes=volumes, extra_mounts=mounts,
                    privileged=any(b.type == "nfs" for b in shared_backends(spec)), single=True,
                )
            )  # fmt: skip
        if spec.backup.enabled:
            backup = spec.backup
            # the backup driver reads the default cluster's files
            sources = [ceph.items("ceph", backup.rbd)] if backup.type == "rbd" and backup.rbd else []
            volumes, mounts = ceph.volume(sources)
            steps.append(
                api.worker_step(
                    ctx, self, "backup", self.in_image(ctx, kolla, "cinder-backup"),
                    replicas=spec.replicas, probes=rabbitmq.probes("cinder-backup"),
                    extra_volumes=volumes, extra_mounts=mounts, privileged=backup.type == "nfs",
                )
            )  # fmt: skip
        return steps

    def lvm_step(self, ctx: CloudContext, kolla: api.Kolla) -> Step:
        """cinder-volume on every storage node, with the node's devices, LVM locks and iSCSI target."""
        host_paths = {
            "dev": "/dev",
            "lvm-lock": "/run/lock/lvm",
            "modules": "/lib/modules",
            "configfs": "/sys/kernel/config",
            "target": "/etc/target",
            "state": STATE_DIR,
        }
        mounts = (
            {"name": "dev", "mountPath": "/dev"},
            {"name": "lvm-lock", "mountPath": "/run/lock/lvm"},
            {"name": "modules", "mountPath": "/lib/modules", "readOnly": True},
            {"name": "configfs", "mountPath": "/sys/kernel/config"},
            {"name": "target", "mountPath": "/etc/target"},
            {"name": "state", "mountPath": STATE_DIR},
        )
        env = (
            # volumes belong to `<node>@<backend>`: the name survives any pod on that node
            {"name": "OS_DEFAULT__HOST", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            # the iSCSI portal instances connect to
            NODE_IP_AS_MY_IP,
            # no udev in the container: device-mapper makes its device nodes itself
            {"name": "DM_DISABLE_UDEV", "value": "1"},
        )
        container = AgentContainer(
            "cinder-volume", kolla, "volume-lvm", mounts=mounts, env=env, probes=rabbitmq.probes("cinder-volume")
        )
        storage = dict(ctx.spec.nodes.storage.match_labels)
        return agent_step(
            ctx,
            self,
            ctx.object_name("cinder", "volume-lvm"),
            "volume-lvm",
            [container],
            affinity=node_affinity("spec.nodes.storage", [storage]),
            host_paths=host_paths,
            resources={"cinder-volume": self.resources(ctx.spec, "volume-lvm")},
            role=ctx.spec.nodes.storage,
        )


SERVICE = Cinder()
