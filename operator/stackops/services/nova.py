"""Nova: compute. Instances are scheduled by the control plane and run by agents on hypervisors.

Components: the compute API and the metadata API (under uWSGI), scheduler, conductor and the
noVNC console proxy on the control plane; Jobs that create the api, cell0 and cell1 databases, sync
them and map the cells; and on every compute node nova-compute with libvirt, one DaemonSet per compute
group (nodes in no group get the default one). New hypervisors are mapped into cell1 by the scheduler's
periodic host discovery, so adding a node needs no Job.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

from stackops.api.models import ComputeGroup, NovaSpec, OpenStackCloudSpec
from stackops.credentials import CredentialSpec, RotationPhase
from stackops.render.ini import merge_sections, render_ini
from stackops.render.kolla import ConfigFile, KollaCommand, Permission
from stackops.services import api, memcached, policy, rabbitmq
from stackops.services.base import CloudContext, Resources, Step
from stackops.services.endpoints import service_urls
from stackops.services.health_checks import ComputeServices, HealthCheck, ProvidersMatchHypervisors
from stackops.services.hosts import NODE_IP_AS_MY_IP, AgentContainer, agent_step, node_affinity
from stackops.services.images import DebianImage, KollaUser, OpenStackImage, OpenStackImages
from stackops.services.openstack import CatalogEntry, DatabaseUpgrade, MainConfig, OpenStackService

METADATA_PORT = 8775
NOVNCPROXY_PORT = 6080
CONFIG = MainConfig("nova.conf", "/etc/nova")
MANAGE = f"nova-manage --config-file {CONFIG.dest}"
USER = KollaUser("nova", 42436)  # libvirt's image has it too: its guests run as nova
# shared with neutron's metadata agent, which signs the requests it proxies to nova's metadata API
METADATA_SECRET_KEY = "metadata-proxy-shared-secret"
# the scheduler maps new hypervisors into cell1 this often (seconds)
HOST_DISCOVERY_INTERVAL = 60
CELL_URLS = "cell-urls"  # the component of a credential rotation's Job templating the cell mappings
CELL0_UUID = "00000000-0000-0000-0000-000000000000"  # nova's fixed uuid of cell0


def console_urls(ctx: CloudContext) -> dict[str, str]:
    return service_urls(ctx, ctx.spec.services.nova.endpoints, "nova", NOVNCPROXY_PORT, "novncproxy", "novncproxy")


def service_client(ctx: CloudContext) -> dict[str, Any]:
    """nova's own user plus where to find the other service: the internal endpoint of the cloud's region."""
    return SERVICE.service_auth(ctx) | {"region_name": ctx.spec.region, "valid_interfaces": "internal"}


class Nova(OpenStackService[NovaSpec]):
    name = "nova"
    spec_path = "services.nova"
    depends_on = ("keystone", "placement", "glance", "neutron", "rabbitmq")
    port = 8774
    apis = ("api", "metadata", "novncproxy")
    openstack_images = OpenStackImages(
        USER,
        (
            OpenStackImage("nova-api"),
            OpenStackImage("nova-conductor"),
            OpenStackImage("nova-scheduler"),
            OpenStackImage("nova-novncproxy", apt=("novnc",)),
            OpenStackImage(
                "nova-compute",
                apt=("libvirt-clients", "qemu-utils", "genisoimage", "openssh-client", "open-iscsi"),
                pip=("libvirt-python",),
                build_deps=("gcc", "pkg-config", "libvirt-dev", "python3-dev"),
                root_helper=True,
            ),
        ),
    )
    debian_images = (
        DebianImage(
            "nova-libvirt", ("libvirt-daemon-system", "qemu-system-x86", "qemu-utils", "procps"), peers=(USER,)
        ),
    )
    main_config = CONFIG
    databases = ("nova_api", "nova_cell0", "nova")
    messaging = True
    # the API version in the URL, as nova documents its endpoint: clients that post to it (neutron's
    # notifier, novaclient) get "300 Multiple Choices" from the unversioned root
    catalog = (CatalogEntry("compute", "Nova compute service", path="/v2.1"),)
    # Nova's rolling upgrade: the api and cell databases only grow, so the new schema goes in while
    # the old release runs (`db sync` without --local_cell migrates cell0 as well as cell1); then
    # conductors, schedulers and APIs roll in that order (their regular steps), compute agents later
    # with the other host agents, and the online data migrations once every nova-compute runs the
    # new release.
    database_upgrade = DatabaseUpgrade(
        check=f"nova-status --config-file {CONFIG.dest} upgrade check",
        expand={"api-db-sync": f"{MANAGE} api_db sync", "db-sync": f"{MANAGE} db sync"},
        online={"db-online-migrations": f"{MANAGE} db online_data_migrations"},
        restart_after_agents=True,
    )
    config_files: ClassVar[dict[str, tuple[str, ...]]] = {
        "nova.conf": (
            "nova.conf", "keystonemiddleware.auth_token", "oslo.log", "oslo.messaging", "oslo.policy",
            "oslo.privsep", "oslo.service.periodic_task", "oslo.service.service", "oslo.db",
            "oslo.middleware", "oslo.concurrency",
        ),
    }  # fmt: skip
    components: ClassVar[dict[str, Resources]] = {
        "api": Resources(cpu="50m", memory="512Mi"),
        "metadata": Resources(cpu="25m", memory="256Mi"),
        "scheduler": Resources(cpu="25m", memory="256Mi"),
        "conductor": Resources(cpu="25m", memory="256Mi"),
        "novncproxy": Resources(cpu="10m", memory="128Mi"),
        "api-db-sync": Resources(cpu="25m", memory="256Mi"),
        "cell-setup": Resources(cpu="25m", memory="256Mi"),
        CELL_URLS: Resources(cpu="25m", memory="256Mi"),
        "db-sync": Resources(cpu="25m", memory="256Mi"),
        "compute": Resources(cpu="50m", memory="512Mi"),
        "libvirt": Resources(cpu="50m", memory="512Mi"),
    }

    def own_credentials(self, spec: OpenStackCloudSpec) -> list[CredentialSpec]:
        return [CredentialSpec(METADATA_SECRET_KEY)]

    def health_checks(self, ctx: CloudContext) -> list[HealthCheck]:
        return [ComputeServices(), ProvidersMatchHypervisors()]

    def endpoints(self, ctx: CloudContext) -> dict[str, str]:
        return super().endpoints(ctx) | {"console": console_urls(ctx)["public"] + "/vnc_lite.html"}

    def config(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        """nova.conf of the control plane; compute agents add their own sections (compute_config)."""
        client = service_client(ctx)
        return {
            "DEFAULT": {
                "debug": False,
                "transport_url": self.transport_url(ctx),
                "state_path": "/var/lib/nova",
                **self.console_proxy_tls(ctx),
            },
            "api_database": self.oslo_db(ctx, "nova_api"),
            # cell1's database; cell0 is derived from it (nova_cell0) by `cell_v2 map_cell0`
            "database": self.oslo_db(ctx, "nova"),
            "keystone_authtoken": self.authtoken(ctx),
            # nova passes its own token along with the user's, so long operations outlive the user's token
            "service_user": {**self.service_auth(ctx), "send_service_user_token": True},
            "placement": client,
            "glance": {"valid_interfaces": "internal", "region_name": ctx.spec.region, "cafile": self.ca_file},
            # projects (flavor access, quotas) at keystone's internal endpoint
            "keystone": {"valid_interfaces": "internal", "region_name": ctx.spec.region, "cafile": self.ca_file},
            "neutron": {
                **client,
                "service_metadata_proxy": True,
                "metadata_proxy_shared_secret": ctx.credentials[METADATA_SECRET_KEY],
            },
            # cinder's internal endpoint (nova's default is its public one)
            "cinder": {
                "os_region_name": ctx.spec.region,
                "catalog_info": "block-storage::internalURL",
                "cafile": self.ca_file,
            },
            "scheduler": {"discover_hosts_in_cells_interval": HOST_DISCOVERY_INTERVAL},
            # RPC to compute agents at the version the oldest one speaks: during an upgrade the new
            # control plane still drives agents of the release before
            "upgrade_levels": {"compute": "auto"},
            "vnc": {
                "enabled": True,
                "novncproxy_host": "0.0.0.0",
                "novncproxy_port": NOVNCPROXY_PORT,
                "novncproxy_base_url": console_urls(ctx)["public"] + "/vnc_lite.html",
            },
            "cache": memcached.oslo_cache(ctx, self.ca_file),
            "oslo_concurrency": {"lock_path": "/var/lib/nova/tmp"},
            "oslo_middleware": {"enable_proxy_headers_parsing": True},
            "oslo_policy": policy.oslo_policy(ctx, self),
            **rabbitmq.oslo_messaging(ctx, self.ca_file),
            # its notifications, to ceilometer when it meters them (oslo_messaging's noop driver otherwise)
            **self.notifications(ctx),
        }

    def console_proxy_tls(self, ctx: CloudContext) -> dict[str, Any]:
        """The console proxy's TLS (options of [DEFAULT] it alone reads): only, with the APIs'
        certificate, which its container alone has (with internal TLS)."""
        tls = self.api_tls(ctx)
        return {"ssl_only": True, "cert": tls.cert, "key": tls.key} if tls else {}

    def compute_config(self, ctx: CloudContext, group: ComputeGroup | None) -> str:
        """nova.conf of compute agents: the control plane's, the hypervisor's sections, the user's
        compute overrides, then the group's. The agent's host name and IP are the node's own."""
        spec = self.settings(ctx)
        base = self.config(ctx)
        for section in ("api_database", "database", "keystone_authtoken"):
            del base[section]  # agents reach the databases through the conductor only
        base["DEFAULT"] |= {"compute_driver": "libvirt.LibvirtDriver"}
        base["libvirt"] = {"virt_type": spec.compute.virt_type, "connection_uri": "qemu+unix:///system"}
        # guest consoles listen on the node's management address only (my_ip: its InternalIP, from
        # the pod's environment), where the console proxy reaches them, not on every host interface
        base["vnc"] |= {"server_listen": "$my_ip", "server_proxyclient_address": "$my_ip"}
        for overrides in (spec.config, spec.compute.config):
            base = merge_sections(base, overrides)
        return render_ini(base, group.config if group else None)

    def commands(self, ctx: CloudContext) -> dict[str, KollaCommand]:
        cell_setup = ConfigFile("nova-cell-setup.sh", f"{CONFIG.directory}/nova-cell-setup.sh", "nova", "0700")
        return {
            "api": self.uwsgi_command(ctx),
            "metadata": self.uwsgi_command(ctx, "metadata"),
            "scheduler": self.command(f"nova-scheduler --config-file {CONFIG.dest}"),
            "conductor": self.command(f"nova-conductor --config-file {CONFIG.dest}"),
            "novncproxy": self.command(f"nova-novncproxy --config-file {CONFIG.dest}", *self.api_tls_files(ctx)),
            "api-db-sync": self.command(f"{MANAGE} api_db sync"),
            "cell-setup": self.command(f"/bin/bash {cell_setup.dest}", cell_setup),
            "db-sync": self.command(f"{MANAGE} db sync"),
        }

    def compute_commands(self) -> dict[str, KollaCommand]:
        # the state directory and the instances' disks in it (nova-compute does not make it)
        state = (Permission("/var/lib/nova", "nova:nova"), Permission("/var/lib/nova/instances", "nova:nova"))
        return {
            "compute": self.command(f"nova-compute --config-file {CONFIG.dest}", permissions=state),
            "libvirt": KollaCommand(
                "/usr/sbin/libvirtd",
                (
                    ConfigFile("libvirtd.conf", "/etc/libvirt/libvirtd.conf", "root", "0600"),
                    ConfigFile("qemu.conf", "/etc/libvirt/qemu.conf", "root", "0600"),
                ),
            ),
        }

    def cell_urls(self, ctx: CloudContext) -> list[Step]:
        """While a credential rotation grants: the Job that makes the cells' mappings templates,
        which each process fills from its config, so that they follow the rotated password and
        account. Its config is a Secret of its own, so that the workloads' does not change for it."""
        if ctx.credentials.rotation.phase is not RotationPhase.GRANTING:
            return []
        script = ConfigFile("nova-cell-urls.sh", f"{CONFIG.directory}/nova-cell-urls.sh", "nova", "0700")
        files = {
            **self.main_files(ctx),
            script.source: ctx.render_text("nova/nova-cell-urls.sh.j2", cell0=CELL0_UUID, cell0_database="nova_cell0"),
        }
        command = {CELL_URLS: self.command(f"/bin/bash {script.dest}", script)}
        first = self.openstack_images.images[0]
        kolla = api.kolla(ctx, self, first.name, files, command, self.user.uid, part="rotation")
        job = api.job_step(ctx, self, CELL_URLS, kolla)
        return [Step(job.name, self.name, [kolla.config.obj, *job.objects])]

    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = self.settings(ctx)
        files = {
            **self.main_files(ctx),
            "nova-cell-setup.sh": ctx.render_text("nova/nova-cell-setup.sh.j2"),
            api.uwsgi_file(self.name): self.uwsgi_config(ctx, "nova-api", self.port, "nova/wsgi/osapi_compute.py"),
            api.uwsgi_file(self.name, "metadata"): self.uwsgi_config(
                ctx, "nova-metadata", METADATA_PORT, "nova/wsgi/metadata.py"
            ),
        }
        kolla = self.kolla(ctx, files, self.commands(ctx))
        # one config Secret; each process runs its own Kolla image
        by_image = {c: self.in_image(ctx, kolla, f"nova-{c}") for c in ("scheduler", "conductor", "novncproxy")}
        return [
            *self.preamble(ctx, kolla),
            api.job_step(ctx, self, "api-db-sync", kolla),
            api.job_step(ctx, self, "cell-setup", kolla),
            *self.cell_urls(ctx),
            api.job_step(ctx, self, "db-sync", kolla),
            api.worker_step(
                ctx, self, "conductor", by_image["conductor"], replicas=spec.replicas,
                probes=rabbit_probes("nova-conductor"),
            ),
            api.worker_step(
                ctx, self, "scheduler", by_image["scheduler"], replicas=spec.replicas,
                probes=rabbit_probes("nova-scheduler"),
            ),
            api.api_step(ctx, self, kolla, workload=spec, port=self.port, probe_path="/"),
            api.api_step(ctx, self, kolla, workload=spec, port=METADATA_PORT, probe_path="/", component="metadata"),
            api.api_step(
                ctx, self, by_image["novncproxy"], workload=spec, port=NOVNCPROXY_PORT, probe_path=None,
                component="novncproxy", public_name="novncproxy",
            ),
            *self.compute_steps(ctx),
        ]  # fmt: skip

    def compute_steps(self, ctx: CloudContext) -> list[Step]:
        """One DaemonSet per compute group, first match wins, and the default for the remaining nodes."""
        spec = self.settings(ctx)
        compute_labels = dict(ctx.spec.nodes.compute.match_labels)
        groups = spec.compute.groups
        steps = []
        for index, group in enumerate([None, *groups]):
            if group is None:
                include, exclude, part = compute_labels, [g.node_selector.match_labels for g in groups], "compute"
                field = "spec.nodes.compute"
            else:
                earlier = groups[: index - 1]
                include = compute_labels | group.node_selector.match_labels
                exclude = [g.node_selector.match_labels for g in earlier]
                part, field = f"compute-{group.name}", f"spec.services.nova.compute.groups[{index - 1}]"
            steps.append(self.compute_step(ctx, group, part, node_affinity(field, [include], exclude)))
        return steps

    def compute_step(self, ctx: CloudContext, group: ComputeGroup | None, part: str, affinity: dict[str, Any]) -> Step:
        spec = self.settings(ctx)
        files = {
            "nova.conf": self.compute_config(ctx, group),
            "libvirtd.conf": ctx.render_text("nova/libvirtd.conf.j2"),
            "qemu.conf": ctx.render_text("nova/qemu.conf.j2"),
        }
        kolla = api.kolla(ctx, self, "nova-compute", files, self.compute_commands(), self.user.uid, part=part)
        libvirt = replace(kolla, image=ctx.image(spec, "nova-libvirt"))
        host: dict[str, dict[str, Any]] = {
            "run": {"name": "run", "mountPath": "/run", "mountPropagation": "Bidirectional"},
            "dev": {"name": "dev", "mountPath": "/dev"},
            "modules": {"name": "modules", "mountPath": "/lib/modules", "readOnly": True},
            "cgroup": {"name": "cgroup", "mountPath": "/sys/fs/cgroup"},
            "libvirt": {"name": "libvirt", "mountPath": "/var/lib/libvirt", "mountPropagation": "Bidirectional"},
            "instances": {"name": "instances", "mountPath": "/var/lib/nova", "mountPropagation": "Bidirectional"},
        }
        containers = [
            AgentContainer(
                "nova-libvirt", libvirt, "libvirt",
                mounts=tuple(host[n] for n in ("run", "dev", "modules", "cgroup", "libvirt", "instances")),
                probes=api.exec_probes(["virsh", "version", "--daemon"]),
            ),
            AgentContainer(
                "nova-compute", kolla, "compute",
                mounts=tuple(host[n] for n in ("run", "dev", "modules", "libvirt", "instances")),
                env=(NODE_IP_AS_MY_IP,),
                probes=rabbit_probes("nova-compute"),
            ),
        ]  # fmt: skip
        step = agent_step(
            ctx,
            self,
            ctx.object_name("nova", part),
            part,
            containers,
            affinity=affinity,
            host_paths={
                "run": "/run",
                "dev": "/dev",
                "modules": "/lib/modules",
                "cgroup": "/sys/fs/cgroup",
                "libvirt": "/var/lib/libvirt",
                "instances": "/var/lib/nova",
            },
            resources={
                "nova-compute": self.resources(ctx.spec, "compute"),
                "nova-libvirt": self.resources(ctx.spec, "libvirt"),
            },
            role=ctx.spec.nodes.compute,
        )
        # the group's config Secret goes with its DaemonSet: nothing else reads it
        return replace(step, objects=[kolla.config.obj, *step.objects])


def rabbit_probes(process: str) -> dict[str, dict[str, Any]]:
    """A worker is alive while its process holds a connection to RabbitMQ (Kolla's healthcheck_port)."""
    return api.exec_probes(["healthcheck_port", process, str(rabbitmq.AMQP_PORT)])


SERVICE = Nova()
