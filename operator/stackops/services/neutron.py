"""Neutron: networks, subnets, routers and ports, with OVN as the backend (ML2's ovn mechanism driver).

Components: OVN's databases and northd (services/ovn.py); neutron's database, RabbitMQ user and
keystone registration; a db-sync Job; the API (uWSGI serving neutron's WSGI module in the Kolla
neutron-server image) with its periodic workers and OVN maintenance worker; on compute and gateway
nodes Open vSwitch and ovn-controller; on compute nodes the OVN metadata agent, which proxies
instances' metadata requests to nova, signed with the secret both share.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

from stackops import certificates
from stackops.api.models import NeutronSpec, OpenStackCloudSpec
from stackops.credentials import CredentialSpec
from stackops.render.ini import IniSections, merge_sections, render_ini
from stackops.render.kolla import ConfigFile, KollaCommand, Permission
from stackops.services import api, designate, mariadb, nova, ovn, policy, rabbitmq
from stackops.services.base import CloudContext, RenderError, Resources, Step
from stackops.services.endpoints import api_scheme, api_service_name
from stackops.services.health_checks import HealthCheck, NetworkAgents
from stackops.services.hosts import AgentContainer, agent_step, node_affinity
from stackops.services.images import KollaUser, OpenStackImage, OpenStackImages
from stackops.services.openstack import CatalogEntry, DatabaseUpgrade, MainConfig, OpenStackService
from stackops.services.upgrades import ServiceUpgrade

CONFIG = MainConfig("neutron.conf", "/etc/neutron")
CONFIG_DIR = CONFIG.directory
NEUTRON_CONF = CONFIG.dest
ML2_CONF = f"{CONFIG_DIR}/plugins/ml2/ml2_conf.ini"
METADATA_AGENT_CONF = f"{CONFIG_DIR}/neutron_ovn_metadata_agent.ini"
REMOTES_SCRIPT = f"{CONFIG_DIR}/ovn-remotes.sh"
STATE_DIR = "/var/lib/neutron"
METADATA_STATE_DIR = f"{STATE_DIR}/kolla"  # the metadata agent's proxy socket, shared with its haproxies
# shared with nova: the metadata agent signs the requests it proxies, nova's metadata API checks them
METADATA_SECRET_KEY = "metadata-proxy-shared-secret"
# ml2_conf.ini's sections: a user's overrides of these go to ml2_conf.ini, which neutron reads last
ML2_SECTIONS = ("ml2", "ml2_type_flat", "ml2_type_geneve", "ml2_type_vlan", "ovn", "ovs")
ROOTWRAP = f"sudo neutron-rootwrap {CONFIG_DIR}/rootwrap.conf"  # as Kolla's sudoers allow it
SERVER_ARGS = f"--config-file {NEUTRON_CONF} --config-file {ML2_CONF}"
MIGRATE = f"neutron-db-manage {SERVER_ARGS} upgrade"


def service_client(ctx: CloudContext) -> dict[str, Any]:
    """neutron's own user, for the services it calls (nova, placement), at their internal endpoints."""
    return SERVICE.service_auth(ctx) | {"region_name": ctx.spec.region, "endpoint_type": "internal"}


def split_overrides(overrides: IniSections) -> tuple[IniSections, IniSections]:
    """The user's `config:` as (neutron.conf's part, ml2_conf.ini's part)."""
    ml2 = {s: o for s, o in overrides.items() if s in ML2_SECTIONS}
    return {s: o for s, o in overrides.items() if s not in ML2_SECTIONS}, ml2


class Neutron(OpenStackService[NeutronSpec]):
    name = "neutron"
    spec_path = "services.neutron"
    depends_on = ("keystone", "rabbitmq")
    upgrade_after = ("cinder",)  # the order of OpenStack's upgrade guides
    port = 9696
    # the OVN driver checks the OVN databases' schemas with ovsdb-client; the OVN metadata agent
    # proxies instances' metadata requests through haproxy, in a network namespace per network it
    # makes with ip (iproute2) and sets up with iptables
    openstack_images = OpenStackImages(
        KollaUser("neutron", 42435),
        (
            OpenStackImage("neutron-server", apt=("openvswitch-common",)),
            OpenStackImage("neutron-ovn-metadata-agent", apt=("haproxy", "iproute2", "iptables"), root_helper=True),
        ),
    )
    debian_images = ovn.IMAGES
    main_config = CONFIG
    databases = ("neutron",)
    messaging = True
    catalog = (CatalogEntry("network", "Neutron networking"),)
    # Neutron's expand migrations while the old servers run; then OVN the way OVN upgrades (upgrade()),
    # then the servers; the contract migrations once no old server is left. Metadata agents roll
    # with the other host agents.
    database_upgrade = DatabaseUpgrade(
        check=f"neutron-status {SERVER_ARGS} upgrade check",
        expand={"db-expand": f"{MIGRATE} --expand"},
        contract={"db-contract": f"{MIGRATE} --contract"},
    )
    config_files: ClassVar[dict[str, tuple[str, ...]]] = {
        "neutron.conf": (
            "neutron", "neutron.db", "nova.auth", "placement.auth", "designate.auth", "keystonemiddleware.auth_token",
            "oslo.concurrency", "oslo.db", "oslo.log", "oslo.messaging", "oslo.middleware", "oslo.policy",
        ),
        "ml2_conf.ini": ("neutron.ml2", "neutron.ml2.ovn"),
        "neutron_ovn_metadata_agent.ini": (
            "neutron.ovn.metadata.agent", "neutron.ml2.ovn", "neutron.agent", "oslo.log", "oslo.privsep",
        ),
    }  # fmt: skip
    components: ClassVar[dict[str, Resources]] = {
        "api": Resources(cpu="50m", memory="512Mi"),
        "db-sync": Resources(cpu="25m", memory="256Mi"),
        "periodic-workers": Resources(cpu="10m", memory="256Mi"),
        "ovn-maintenance-worker": Resources(cpu="10m", memory="256Mi"),
        "nb-db": Resources(cpu="25m", memory="256Mi"),
        "sb-db": Resources(cpu="25m", memory="256Mi"),
        "northd": Resources(cpu="25m", memory="128Mi"),
        "openvswitch-db": Resources(cpu="10m", memory="64Mi"),
        "openvswitch-vswitchd": Resources(cpu="25m", memory="256Mi"),
        "ovn-controller": Resources(cpu="25m", memory="128Mi"),
        "metadata-agent": Resources(cpu="10m", memory="256Mi"),
        ovn.BACKUPS.backup: Resources(cpu="25m", memory="128Mi"),
        ovn.BACKUPS.restore: Resources(cpu="25m", memory="128Mi"),
        ovn.BACKUPS.object_store: Resources(cpu="10m", memory="128Mi"),  # the upload or download (boto3)
        ovn.SYNC: Resources(cpu="50m", memory="512Mi"),
    }

    def own_credentials(self, spec: OpenStackCloudSpec) -> list[CredentialSpec]:
        return [CredentialSpec(METADATA_SECRET_KEY)]

    def certificates(self, ctx: CloudContext) -> list[certificates.CertificateRequest]:
        """OVN's databases' and their clients' (services/ovn.py)."""
        return ovn.certificate_requests(ctx)

    @property
    def ovn_pki(self) -> ovn.Pki:
        """Where neutron's processes find OVN's client certificate: beside their config and CA."""
        return ovn.client_pki(CONFIG_DIR, self.ca_file)

    def problems(self, spec: OpenStackCloudSpec) -> list[RenderError]:
        found = super().problems(spec)
        if self.enabled(spec) and not spec.nodes.gateway.match_labels:
            why = "OVN routes external traffic through gateway nodes (the compute labels make every compute node one)"
            found.append(RenderError("spec.nodes.gateway.matchLabels", f"at least one label is needed: {why}"))
        return found

    def health_checks(self, ctx: CloudContext) -> list[HealthCheck]:
        return [NetworkAgents()]

    def dns_integration(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        """With designate: ports' DNS names in `dns_domain`, and the names of ports and floating IPs
        with a DNS domain published in designate, by neutron's own user (no PTR records, which would
        make neutron own reverse zones)."""
        if not designate.SERVICE.enabled(ctx.spec):
            return {}
        return {
            "DEFAULT": {"dns_domain": ctx.spec.services.designate.dns_domain, "external_dns_driver": "designate"},
            "designate": SERVICE.service_auth(ctx)
            | {"url": f"{designate.SERVICE.catalog_urls(ctx)['internal']}/v2", "allow_reverse_dns_lookup": False},
        }

    def config(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        dns = self.dns_integration(ctx)
        return {
            "DEFAULT": {
                "debug": False,
                "core_plugin": "ml2",
                "service_plugins": "ovn-router",
                "transport_url": self.transport_url(ctx),
                "state_path": STATE_DIR,
                # OVN serves DHCP itself: there are no DHCP agents to tell
                "dhcp_agent_notification": False,
                **dns.get("DEFAULT", {}),
            },
            **{section: options for section, options in dns.items() if section != "DEFAULT"},
            "database": self.oslo_db(ctx),
            "keystone_authtoken": self.authtoken(ctx),
            # port events go to nova (an instance waits for its ports), resources to placement
            "nova": service_client(ctx),
            "placement": service_client(ctx),
            "oslo_concurrency": {"lock_path": f"{STATE_DIR}/tmp"},
            "oslo_middleware": {"enable_proxy_headers_parsing": True},
            "oslo_policy": policy.oslo_policy(ctx, self),
            **rabbitmq.oslo_messaging(ctx, self.ca_file),
        }

    def ml2_config(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        dns = designate.SERVICE.enabled(ctx.spec)
        physnets = [n.name for n in self.settings(ctx).provider_networks]
        return {
            "ml2": {
                "type_drivers": "geneve,vlan,flat",
                "project_network_types": "geneve",
                "mechanism_drivers": "ovn",
                # dns_domain_ports: ports' DNS names and domains, which neutron publishes in designate
                "extension_drivers": ["port_security", *(["dns_domain_ports"] if dns else [])],
                "overlay_ip_version": 4,
            },
            "ml2_type_geneve": {"vni_ranges": "1:65536", "max_header_size": 38},
            "ml2_type_flat": {"flat_networks": physnets},
            # a physnet without a range: admins may create VLAN networks on it with any VLAN ID
            "ml2_type_vlan": {"network_vlan_ranges": physnets},
            "ovn": {
                "ovn_nb_connection": ovn.connection(ctx, ovn.NB),
                "ovn_sb_connection": ovn.connection(ctx, ovn.SB),
                **ovn.client_options(ctx, self.ovn_pki),
                "ovn_metadata_enabled": True,
            },
        }

    def metadata_agent_config(self, ctx: CloudContext, ml2: IniSections) -> dict[str, dict[str, Any]]:
        return {
            "DEFAULT": {
                "debug": False,
                "nova_metadata_host": ctx.service_host(api_service_name(ctx, "nova", "metadata")),
                "nova_metadata_port": nova.METADATA_PORT,
                # nova's metadata API serves TLS with internal TLS: verified with the cloud's CA
                "nova_metadata_protocol": api_scheme(ctx),
                "auth_ca_cert": self.ca_file,
                "metadata_proxy_shared_secret": ctx.credentials[METADATA_SECRET_KEY],
                "metadata_proxy_socket": f"{METADATA_STATE_DIR}/metadata_proxy",
                "metadata_workers": 2,
            },
            # the agent runs as neutron and makes namespaces and haproxies through rootwrap and privsep
            "agent": {"root_helper": ROOTWRAP},
            "privsep": {"helper_command": f"{ROOTWRAP} privsep-helper"},
            "ovs": {"ovsdb_connection": f"tcp:127.0.0.1:{ovn.OVS_DB_PORT}"},
            # the same databases as the server's, after the user's overrides (e.g. an OVN run elsewhere)
            "ovn": ovn_connections(ml2) | ovn.client_options(ctx, self.ovn_pki),
        }

    def command_files(self) -> tuple[ConfigFile, ...]:
        return (*super().command_files(), ConfigFile("ml2_conf.ini", ML2_CONF, self.user.name, "0600"))

    def main_files(self, ctx: CloudContext) -> dict[str, str]:
        """neutron.conf and ml2_conf.ini after the user's overrides: what every neutron command reads."""
        conf_overrides, ml2_overrides = split_overrides(self.settings(ctx).config)
        return {
            "neutron.conf": render_ini(self.config(ctx), conf_overrides),
            "ml2_conf.ini": render_ini(self.ml2_config(ctx), ml2_overrides),
        }

    def commands(self, ctx: CloudContext) -> dict[str, KollaCommand]:
        """The commands of neutron's containers; an OVN restore asked for adds the sync Job's, only
        then: a command of its own in the config Secret would roll neutron's pods. Those that reach
        OVN's databases get their addresses (ovn-remotes.sh) and OVN's client certificate."""
        remotes = (
            ConfigFile("ovn-remotes.sh", REMOTES_SCRIPT, "neutron", "0700"),
            *ovn.client_config_files(ctx, self.ovn_pki, "neutron"),
        )
        uwsgi = ConfigFile("neutron-server-uwsgi.ini", f"{CONFIG_DIR}/neutron-server-uwsgi.ini", "neutron", "0600")
        state = Permission(STATE_DIR, "neutron:neutron")
        with_remotes = f"/bin/bash {REMOTES_SCRIPT}"
        commands = {
            "api": self.command(f"{with_remotes} uwsgi --ini {uwsgi.dest}", *remotes, uwsgi, *self.api_tls_files(ctx)),
            "db-sync": self.command(f"{MIGRATE} heads"),
            "periodic-workers": self.command(
                f"{with_remotes} neutron-periodic-workers {SERVER_ARGS}", *remotes, permissions=(state,)
            ),
            "ovn-maintenance-worker": self.command(
                f"{with_remotes} neutron-ovn-maintenance-worker {SERVER_ARGS}", *remotes, permissions=(state,)
            ),
        }
        if self.settings(ctx).ovn.restore is not None:
            # what neutron's database holds, made again in the northbound database where it is missing
            # or differs (repair; `log` would only say what differs)
            commands[ovn.SYNC] = self.command(
                f"{with_remotes} neutron-ovn-db-sync-util {SERVER_ARGS} --ovn-neutron_sync_mode repair",
                *remotes,
                permissions=(state,),
            )
        return commands

    def upgrade(self, ctx: CloudContext) -> ServiceUpgrade | None:
        """OVN rolls the way OVN upgrades: chassis (ovn-controller) before its databases and northd,
        so no controller meets logical flows it does not understand."""
        declared = super().upgrade(ctx)
        assert declared is not None
        chassis = [ctx.object_name(self.name, c).removeprefix(f"{ctx.name}-") for c in ovn.chassis_components(ctx)]
        return replace(declared, roll_first=(f"{self.name}-config", *chassis))

    def ml2(self, ctx: CloudContext) -> IniSections:
        """ml2_conf.ini's sections after the user's overrides."""
        return merge_sections(self.ml2_config(ctx), split_overrides(self.settings(ctx).config)[1])

    def server_files(self, ctx: CloudContext) -> dict[str, str]:
        return {
            **self.main_files(ctx),
            **ovn.client_files(ctx),
            "ovn-remotes.sh": self.remotes_script(ctx, self.ml2(ctx)),
            "neutron-server-uwsgi.ini": ctx.render_text(
                "neutron/neutron-server-uwsgi.ini.j2",
                port=self.port,
                processes=2,
                wsgi_script=api.site_packages(ctx, "neutron/wsgi/api.py"),
                config_files=["neutron.conf", "plugins/ml2/ml2_conf.ini"],
                tls=self.api_tls(ctx),
            ),
        }

    def server_kolla(self, ctx: CloudContext) -> api.Kolla:
        """The config Secret of neutron's own processes and Jobs."""
        return self.kolla(ctx, self.server_files(ctx), self.commands(ctx))

    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = self.settings(ctx)
        kolla = self.server_kolla(ctx)
        ovn_configs, ovn_steps = ovn.control_plane_steps(ctx, self)
        chassis_config, chassis_steps = ovn.chassis_steps(ctx, self)
        metadata_config, metadata_step = self.metadata_agent_step(ctx, self.ml2(ctx))
        config, *preamble = self.preamble(ctx, kolla, *ovn_configs, chassis_config, metadata_config)
        return [
            config,
            *ovn_steps,
            *preamble,
            api.job_step(ctx, self, "db-sync", kolla),
            api.api_step(ctx, self, kolla, workload=spec, port=self.port, probe_path="/healthcheck"),
            # one of each: their work is periodic, and a replacement pod picks it up
            api.worker_step(
                ctx, self, "periodic-workers", kolla, replicas=1,
                probes=process_probes("neutron-periodic-workers", mariadb.server(ctx).port),
            ),
            api.worker_step(
                ctx, self, "ovn-maintenance-worker", kolla, replicas=1,
                probes=process_probes("neutron-ovn-maintenance-worker", ovn.NB.port),
            ),
            *chassis_steps,
            metadata_step,
            *ovn.backup_steps(ctx, self),
        ]  # fmt: skip

    def closing_steps(self, ctx: CloudContext) -> list[Step]:
        """An OVN restore (spec.services.neutron.ovn.restore): the northbound database's restore Job,
        then neutron's OVN sync in repair mode, with neutron's config, once the restore is done."""
        restore = ovn.ovn_spec(ctx).restore
        if restore is None:
            return []
        (restored,) = ovn.restore_step(ctx, self)
        # the backup's name makes the Job one of its own per restore (Jobs are named by their spec)
        restored_env = {"name": "OVN_RESTORED_BACKUP", "value": restore.backup}
        sync = api.job_step(ctx, self, ovn.SYNC, self.server_kolla(ctx), env=[restored_env])
        return [restored, replace(sync, after_all=True)]

    def remotes_script(self, ctx: CloudContext, ml2: IniSections) -> str:
        """The wrapper that hands neutron's processes the OVN databases' addresses (see the template)."""
        return ctx.render_text("neutron/ovn-remotes.sh.j2", remotes=ovn_connections(ml2))

    def metadata_agent_step(self, ctx: CloudContext, ml2: IniSections) -> tuple[dict[str, Any], Step]:
        """The OVN metadata agent on every compute node, and its own config Secret: a change to the
        API's config does not restart agents across the fleet."""
        files = {
            "neutron_ovn_metadata_agent.ini": render_ini(self.metadata_agent_config(ctx, ml2)),
            "ovn-remotes.sh": self.remotes_script(ctx, ml2),
            **ovn.client_files(ctx),
        }
        command = KollaCommand(
            f"/bin/bash {REMOTES_SCRIPT} neutron-ovn-metadata-agent --config-file {METADATA_AGENT_CONF}",
            (
                ConfigFile("neutron_ovn_metadata_agent.ini", METADATA_AGENT_CONF, "neutron", "0600"),
                ConfigFile("ovn-remotes.sh", REMOTES_SCRIPT, "neutron", "0700"),
                *ovn.client_config_files(ctx, self.ovn_pki, "neutron", ca_listed=False),
            ),
            (Permission(METADATA_STATE_DIR, "neutron:neutron", recurse=True),),
        )
        kolla = api.kolla(
            ctx, self, "neutron-ovn-metadata-agent", files, {"metadata-agent": command}, self.user.uid,
            part="metadata-agent",
        )  # fmt: skip
        container = AgentContainer(
            "neutron-ovn-metadata-agent",
            kolla,
            "metadata-agent",
            mounts=(
                # the agent makes a network namespace per network; the host (and OVS) must see them
                {"name": "netns", "mountPath": "/run/netns", "mountPropagation": "Bidirectional"},
                {"name": "metadata-state", "mountPath": METADATA_STATE_DIR},
                {"name": "modules", "mountPath": "/lib/modules", "readOnly": True},
            ),
            probes=process_probes("neutron-ovn-metadata-agent", ovn.OVS_DB_PORT),
        )
        step = agent_step(
            ctx,
            self,
            ctx.object_name("neutron", "metadata-agent"),
            "metadata-agent",
            [container],
            affinity=node_affinity("spec.nodes.compute", [dict(ctx.spec.nodes.compute.match_labels)]),
            host_paths={"netns": "/run/netns", "metadata-state": METADATA_STATE_DIR, "modules": "/lib/modules"},
            resources={container.name: self.resources(ctx.spec, "metadata-agent")},
            role=ctx.spec.nodes.compute,
        )
        return kolla.config.obj, step


def ovn_connections(ml2: IniSections) -> dict[str, Any]:
    """The OVN databases neutron connects to, as ml2_conf.ini says after the user's overrides."""
    options = ml2.get("ovn", {})
    return {o: options[o] for o in ("ovn_nb_connection", "ovn_sb_connection") if o in options}


def process_probes(process: str, port: int) -> dict[str, dict[str, Any]]:
    """A process is alive while it holds a connection to `port` (Kolla's healthcheck_port)."""
    return api.exec_probes(["healthcheck_port", process, str(port)])


SERVICE = Neutron()
