"""Ceilometer: metering. Samples of what the cloud's users use, published to gnocchi, where they are
kept as measures of resources (instances, images, volumes …) and billed or alarmed on (aodh).

Components: the notification agent, which turns the notifications of the services it meters (glance,
nova, cinder, designate: they send them to its topic over its RabbitMQ user and vhost) into samples
by its meter definitions, and publishes them to gnocchi; the central agent, which polls the APIs
for what no notification says; on every compute node the compute agent, which polls libvirt for
each instance's CPU, memory, disk and network use (a DaemonSet beside nova-compute). The agents
read the pipeline and polling definitions the image ships (/etc/ceilometer). `ceilometer-upgrade`,
a Job once gnocchi serves, creates the resource types and archive policies its samples need in
gnocchi, and runs again with every release. Ceilometer has no API: a keystone user of its own
(its agents read gnocchi and the APIs as it) and no catalog entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar

from stackops.api.models import CeilometerSpec
from stackops.render.ini import render_ini
from stackops.render.kolla import KollaCommand
from stackops.services import api, rabbitmq
from stackops.services.base import CloudContext, Resources, Step
from stackops.services.hosts import AgentContainer, agent_step, node_affinity
from stackops.services.images import KollaUser, OpenStackImage, OpenStackImages
from stackops.services.openstack import DatabaseUpgrade, MainConfig, OpenStackService

CONFIG = MainConfig("ceilometer.conf", "/etc/ceilometer")
UPGRADE = f"ceilometer-upgrade --config-file {CONFIG.dest}"
# the topic oslo.messaging's notifiers send to by default, which the notification agent reads
TOPIC = "notifications"
# the services whose notifications its meter definitions turn into samples (images' sizes, volumes',
# snapshots' and backups' sizes, instances' flavors, DNS zones' existence)
METERED = ("glance", "nova", "cinder", "designate")
POLLING = {"central": "central", "compute": "compute"}  # component -> polling namespace


class Ceilometer(OpenStackService[CeilometerSpec]):
    name = "ceilometer"
    spec_path = "services.ceilometer"
    depends_on = ("keystone", "rabbitmq", "gnocchi")
    upgrade_after = ("gnocchi",)
    port = 0  # no API: nothing is served, nothing is in the catalog
    openstack_images = OpenStackImages(
        KollaUser("ceilometer", 42405),
        (
            OpenStackImage("ceilometer-notification"),
            OpenStackImage("ceilometer-central"),
            # libvirt's Python binding, as nova-compute's: the compute agent reads the domains
            OpenStackImage(
                "ceilometer-compute", pip=("libvirt-python",),
                build_deps=("gcc", "pkg-config", "libvirt-dev", "python3-dev"),
            ),
        ),
    )  # fmt: skip
    main_config = CONFIG
    messaging = True
    keystone_account = True
    notifications_from: ClassVar[Mapping[str, str]] = dict.fromkeys(METERED, TOPIC)
    # its gnocchi resource types move with the release, after gnocchi's own upgrade
    database_upgrade = DatabaseUpgrade(
        check=f"ceilometer-status --config-file {CONFIG.dest} upgrade check", expand={"gnocchi-resources": UPGRADE}
    )
    config_files: ClassVar[dict[str, tuple[str, ...]]] = {
        "ceilometer.conf": ("ceilometer", "ceilometer-auth", "oslo.log", "oslo.messaging"),
    }
    components: ClassVar[dict[str, Resources]] = {
        "notification": Resources(cpu="10m", memory="192Mi"),
        "central": Resources(cpu="10m", memory="128Mi"),
        "compute": Resources(cpu="10m", memory="128Mi"),
        "gnocchi-resources": Resources(cpu="25m", memory="192Mi"),
    }

    def config(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        return {
            "DEFAULT": {"debug": False, "transport_url": self.transport_url(ctx)},
            # how its agents and its gnocchi publisher reach the APIs: its own user, internal endpoints
            "service_credentials": {
                **self.service_auth(ctx),
                "interface": "internal",
                "region_name": ctx.spec.region,
            },
            **rabbitmq.oslo_messaging(ctx, self.ca_file),
        }

    def compute_config(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        """The compute agent's: libvirt's as nova-compute reaches it, on the node's socket."""
        base = self.config(ctx)
        virt_type = ctx.spec.services.nova.compute.virt_type
        base["DEFAULT"] |= {"hypervisor_inspector": "libvirt", "libvirt_type": virt_type}
        base["DEFAULT"] |= {"libvirt_uri": "qemu:///system"}
        return base

    def commands(self) -> dict[str, KollaCommand]:
        polling = {
            c: self.command(f"ceilometer-polling --config-file {CONFIG.dest} --polling-namespaces {namespace}")
            for c, namespace in POLLING.items()
        }
        return {
            "notification": self.command(f"ceilometer-agent-notification --config-file {CONFIG.dest}"),
            **polling,
            "gnocchi-resources": self.command(UPGRADE),
        }

    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = self.settings(ctx)
        commands = self.commands()
        control = {c: command for c, command in commands.items() if c != "compute"}
        kolla = self.kolla(ctx, self.main_files(ctx), control)
        return [
            *self.preamble(ctx, kolla),
            api.job_step(ctx, self, "gnocchi-resources", kolla),
            # notification agents share the topic: each notification reaches one of them
            api.worker_step(
                ctx, self, "notification", self.in_image(ctx, kolla, "ceilometer-notification"),
                replicas=spec.replicas, probes=rabbitmq.probes("ceilometer-agent-notification"),
            ),
            # one central agent: two would poll everything twice (no coordination backend)
            api.worker_step(ctx, self, "central", self.in_image(ctx, kolla, "ceilometer-central"), replicas=1),
            # on the hypervisors, while the cloud has them
            *([self.compute_step(ctx, commands["compute"])] if ctx.spec.services.nova.enabled else []),
        ]  # fmt: skip

    def compute_step(self, ctx: CloudContext, command: KollaCommand) -> Step:
        """The compute agent on every compute node (whichever compute group's DaemonSet of nova runs
        there), on libvirt's socket in the node's /run/libvirt."""
        files = {self.main_config.name: render_ini(self.compute_config(ctx), self.settings(ctx).config)}
        kolla = api.kolla(ctx, self, "ceilometer-compute", files, {"compute": command}, self.user.uid, part="compute")
        kolla = replace(kolla, image=ctx.image(self.settings(ctx), "ceilometer-compute"))
        libvirt = {"name": "libvirt-run", "mountPath": "/run/libvirt", "readOnly": True}
        container = AgentContainer("ceilometer-compute", kolla, "compute", mounts=(libvirt,), privileged=False)
        step = agent_step(
            ctx,
            self,
            ctx.object_name(self.name, "compute"),
            "compute",
            [container],
            affinity=node_affinity("spec.nodes.compute", [dict(ctx.spec.nodes.compute.match_labels)]),
            host_paths={"libvirt-run": "/run/libvirt"},
            resources={"ceilometer-compute": self.resources(ctx.spec, "compute")},
            role=ctx.spec.nodes.compute,
        )
        return replace(step, objects=[kolla.config.obj, *step.objects])


SERVICE = Ceilometer()
