"""Octavia: load balancing as a service. Load balancers, listeners, pools and members made through
its API, carried out by a provider driver.

The OVN provider (ovn-octavia-provider, installed beside octavia) is the default: octavia's API
hands each load balancer to the driver, which writes it into OVN's northbound database as an OVN
load balancer, so every chassis balances in its datapath and no VM is booted. The driver reports
back through octavia's driver agent, over unix sockets in a directory the API's pod shares between
the API and the agent (the agent's OVN provider agent also follows the northbound and southbound
databases, for members' health). Both reach OVN's databases as neutron does, through neutron's
ovn-remotes.sh, which resolves their Services' addresses at start.

The amphora provider is optional (spec.services.octavia.amphora): a VM per load balancer on a
management network, which octavia's worker boots through nova and drives over TLS, and whose
heartbeats its health manager hears. The network, image, flavor and certificates are the cloud's
(docs/octavia.md); stackops then runs the worker and health manager too.

Components: the API (uWSGI in the Kolla octavia-api image) with the driver agent beside it,
housekeeping (it purges deleted load balancers' rows, and rotates amphorae's certificates), with
the amphora provider the worker and the health manager; Jobs for its database, RabbitMQ user,
catalog registration and db-sync.
"""

from __future__ import annotations

from typing import Any, ClassVar

from stackops.api.models import OctaviaSpec, OpenStackCloudSpec
from stackops.credentials import CredentialSpec
from stackops.render.kolla import ConfigFile, KollaCommand
from stackops.services import api, glance, mariadb, neutron, nova, ovn, policy, rabbitmq
from stackops.services.base import Clients, CloudContext, Listener, RenderError, Resources, Service, Step
from stackops.services.health_checks import HealthCheck, LoadBalancerProviders
from stackops.services.images import KollaUser, OpenStackImage, OpenStackImages
from stackops.services.openstack import CatalogEntry, DatabaseUpgrade, MainConfig, OpenStackService

CONFIG = MainConfig("octavia.conf", "/etc/octavia")
MANAGE = f"octavia-db-manage --config-file {CONFIG.dest}"
PORT = 9876
HEALTH_MANAGER_PORT = 5555  # amphorae's heartbeats, over UDP
# where the API's provider drivers and the driver agent meet: a volume the API's pod shares. It is
# octavia-lib's default, which the OVN driver connects to whatever [driver_agent] says
# (tests/real/test_octavia.py)
SOCKETS_DIR = "/var/run/octavia"
REMOTES_SCRIPT = f"{CONFIG.directory}/ovn-remotes.sh"
CERTS_DIR = f"{CONFIG.directory}/certs"
# the files of spec.services.octavia.amphora.certificates (kolla-ansible's names)
SERVER_CA, SERVER_CA_KEY = "server_ca.cert.pem", "server_ca.key.pem"
CLIENT_CA, CLIENT_CERT = "client_ca.cert.pem", "client.cert-and-key.pem"
# amphora provider: heartbeats are signed with this key; amphorae's certificates and keys are kept
# in octavia's database encrypted with the passphrase (32 characters, as generated passwords are)
HEARTBEAT_KEY = "octavia-heartbeat-key"
CERTS_PASSPHRASE = "octavia-server-certs-key-passphrase"
OVN_PROVIDER = "ovn"
AMPHORA_PROVIDER = "amphora"


def amphora_enabled(ctx: CloudContext) -> bool:
    return SERVICE.settings(ctx).amphora.enabled


class Octavia(OpenStackService[OctaviaSpec]):
    name = "octavia"
    spec_path = "services.octavia"
    depends_on = ("keystone", "rabbitmq", "neutron")
    # after the core services, as in kolla-ansible's order; its providers work against either
    # release of neutron and OVN
    upgrade_after = ("heat",)
    port = PORT
    openstack_images = OpenStackImages(
        KollaUser("octavia", 42484),
        tuple(
            OpenStackImage(f"octavia-{c}") for c in ("api", "driver-agent", "housekeeping", "worker", "health-manager")
        ),
    )
    main_config = CONFIG
    databases = ("octavia",)
    # the amphora provider's API hands its work to the workers over RabbitMQ
    messaging = True
    catalog = (CatalogEntry("load-balancer", "Octavia load balancing"),)
    database_upgrade = DatabaseUpgrade(
        check=f"octavia-status --config-file {CONFIG.dest} upgrade check", expand={"db-sync": f"{MANAGE} upgrade head"}
    )
    config_files: ClassVar[dict[str, tuple[str, ...]]] = {
        "octavia.conf": (
            "octavia", "octavia.api.drivers.ovn", "keystonemiddleware.auth_token", "oslo.db", "oslo.log",
            "oslo.messaging", "oslo.middleware", "oslo.policy",
        ),
    }  # fmt: skip
    components: ClassVar[dict[str, Resources]] = {
        "api": Resources(cpu="25m", memory="256Mi"),
        "driver-agent": Resources(cpu="10m", memory="192Mi"),
        "housekeeping": Resources(cpu="10m", memory="128Mi"),
        "worker": Resources(cpu="25m", memory="256Mi"),
        "health-manager": Resources(cpu="10m", memory="192Mi"),
        "db-sync": Resources(cpu="25m", memory="192Mi"),
    }

    def uses(self, spec: OpenStackCloudSpec) -> frozenset[str]:
        """Beside its dependencies: OVN's databases, which its provider driver and agent reach."""
        return super().uses(spec) | {ovn.DIRECT_USE}

    def own_credentials(self, spec: OpenStackCloudSpec) -> list[CredentialSpec]:
        if not spec.services.octavia.amphora.enabled:
            return []
        return [CredentialSpec(HEARTBEAT_KEY), CredentialSpec(CERTS_PASSPHRASE)]

    def problems(self, spec: OpenStackCloudSpec) -> list[RenderError]:
        found = super().problems(spec)
        # (neutron, which its OVN provider needs, it depends on: plan.problems names it when off)
        if not self.enabled(spec):
            return found
        needed: dict[str, Service] = {"nova": nova.SERVICE, "glance": glance.SERVICE}
        if spec.services.octavia.amphora.enabled:
            for name in sorted(n for n, s in needed.items() if not s.enabled(spec)):
                found.append(
                    RenderError(
                        "spec.services.octavia.amphora.enabled",
                        f"needs spec.services.{name}.enabled: amphorae are servers booted from an image",
                    )
                )
        return found

    def providers(self, ctx: CloudContext) -> tuple[str, ...]:
        return (OVN_PROVIDER, *([AMPHORA_PROVIDER] if amphora_enabled(ctx) else []))

    def health_checks(self, ctx: CloudContext) -> list[HealthCheck]:
        return [LoadBalancerProviders(self.providers(ctx))]

    def config(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        descriptions = {OVN_PROVIDER: "OVN load balancers", AMPHORA_PROVIDER: "amphora VMs running haproxy"}
        ml2 = neutron.SERVICE.ml2(ctx)
        return {
            "DEFAULT": {"debug": False, "transport_url": self.transport_url(ctx)},
            "api_settings": {
                "auth_strategy": "keystone",
                "healthcheck_enabled": True,
                "enabled_provider_drivers": ",".join(f"{p}:{descriptions[p]}" for p in self.providers(ctx)),
                "default_provider_driver": OVN_PROVIDER,
            },
            "database": self.oslo_db(ctx),
            "keystone_authtoken": self.authtoken(ctx),
            # octavia's own user, for neutron (ports, security groups), nova and glance
            "service_auth": self.service_auth(ctx),
            "neutron": {"region_name": ctx.spec.region, "valid_interfaces": "internal", "cafile": self.ca_file},
            "driver_agent": {
                "status_socket_path": f"{SOCKETS_DIR}/status.sock",
                "stats_socket_path": f"{SOCKETS_DIR}/stats.sock",
                "get_socket_path": f"{SOCKETS_DIR}/get.sock",
                "enabled_provider_agents": OVN_PROVIDER,
            },
            # the databases neutron uses, after the user's overrides of neutron's [ovn]
            "ovn": neutron.ovn_connections(ml2) | ovn.client_options(ctx, self.ovn_pki),
            "oslo_messaging": {"topic": "octavia_prov"},
            "oslo_middleware": {"enable_proxy_headers_parsing": True},
            "oslo_policy": policy.oslo_policy(ctx, self),
            **self.amphora_config(ctx),
            **rabbitmq.oslo_messaging(ctx, self.ca_file),
        }

    def amphora_config(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        """The amphora provider's sections: where amphorae boot, how the controllers trust them and
        where they send heartbeats."""
        amphora = self.settings(ctx).amphora
        if not amphora.enabled:
            return {}
        return {
            "controller_worker": {
                "amp_boot_network_list": amphora.management_network,
                "amp_image_tag": amphora.image_tag,
                "amp_flavor_id": amphora.flavor,
                "amp_secgroup_list": amphora.security_groups,
                "client_ca": f"{CERTS_DIR}/{CLIENT_CA}",
                "loadbalancer_topology": "SINGLE",
            },
            "health_manager": {
                "bind_ip": "0.0.0.0",
                "bind_port": HEALTH_MANAGER_PORT,
                "controller_ip_port_list": amphora.health_manager_addresses,
                "heartbeat_key": ctx.credentials[HEARTBEAT_KEY],
            },
            "certificates": {
                "ca_certificate": f"{CERTS_DIR}/{SERVER_CA}",
                "ca_private_key": f"{CERTS_DIR}/{SERVER_CA_KEY}",
                "server_certs_key_passphrase": ctx.credentials[CERTS_PASSPHRASE],
            },
            "haproxy_amphora": {
                "client_cert": f"{CERTS_DIR}/{CLIENT_CERT}",
                "server_ca": f"{CERTS_DIR}/{SERVER_CA}",
            },
        }

    @property
    def ovn_pki(self) -> ovn.Pki:
        """Where its processes find OVN's client certificate: beside their config and CA."""
        return ovn.client_pki(CONFIG.directory, self.ca_file)

    def commands(self, ctx: CloudContext) -> dict[str, KollaCommand]:
        """Those that reach OVN's databases (the provider driver in the API and the driver agent) get
        their addresses (ovn-remotes.sh) and OVN's client certificate."""
        remotes = (
            ConfigFile("ovn-remotes.sh", REMOTES_SCRIPT, self.user.name, "0700"),
            *ovn.client_config_files(ctx, self.ovn_pki, self.user.name),
        )

        def process(binary: str) -> KollaCommand:
            return self.command(f"{binary} --config-file {CONFIG.dest}")

        api_command = self.uwsgi_command(ctx)
        with_remotes = f"/bin/bash {REMOTES_SCRIPT}"
        return {
            # the OVN provider driver runs inside the API's processes
            "api": KollaCommand(f"{with_remotes} {api_command.command}", (*api_command.files, *remotes)),
            "driver-agent": self.command(f"{with_remotes} octavia-driver-agent --config-file {CONFIG.dest}", *remotes),
            "housekeeping": process("octavia-housekeeping"),
            "worker": process("octavia-worker"),
            "health-manager": process("octavia-health-manager"),
            "db-sync": self.command(f"{MANAGE} upgrade head"),
        }

    def files(self, ctx: CloudContext) -> dict[str, str]:
        # octavia.wsgi.api since octavia 17; octavia 16 (2025.1) has no such module, only the
        # octavia-wsgi script its wheel installs in the virtualenv's bin/ (pbr's wsgi_scripts)
        wsgi = api.wsgi_file(ctx.spec.release, "octavia/wsgi/api.py", f"{api.KOLLA_VENV}/bin/octavia-wsgi")
        return {
            **self.main_files(ctx),
            api.uwsgi_file(self.name): self.uwsgi_config(ctx, "octavia-api", PORT, wsgi),
            "ovn-remotes.sh": neutron.SERVICE.remotes_script(ctx, neutron.SERVICE.ml2(ctx)),
            **ovn.client_files(ctx),
        }

    def certificates_volume(self, ctx: CloudContext) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The amphora provider's certificates Secret as CERTS_DIR, as (volumes, mounts)."""
        certificates = self.settings(ctx).amphora.certificates
        if certificates is None:
            return [], []
        secret = {"secretName": certificates.name, "defaultMode": 0o440}
        return [{"name": "certificates", "secret": secret}], [
            {"name": "certificates", "mountPath": CERTS_DIR, "readOnly": True}
        ]

    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = self.settings(ctx)
        kolla = self.kolla(ctx, self.files(ctx), self.commands(ctx))
        sockets = [{"name": "sockets", "emptyDir": {}}], [{"name": "sockets", "mountPath": SOCKETS_DIR}]
        certs_volumes, certs_mounts = self.certificates_volume(ctx)
        agent = api.sidecar(
            ctx, self, "driver-agent", self.in_image(ctx, kolla, "octavia-driver-agent"), mounts=sockets[1]
        )
        database = mariadb.server(ctx).port

        def worker(component: str, replicas: int, probes: dict[str, dict[str, Any]], **extra: Any) -> Step:
            image = self.in_image(ctx, kolla, f"octavia-{component}")
            return api.worker_step(
                ctx, self, component, image, replicas=replicas, probes=probes,
                extra_volumes=certs_volumes, extra_mounts=certs_mounts, **extra,
            )  # fmt: skip

        steps = [
            *self.preamble(ctx, kolla),
            api.job_step(ctx, self, "db-sync", kolla),
            api.api_step(
                ctx, self, kolla, workload=spec, port=PORT, probe_path="/healthcheck",
                extra_volumes=[*sockets[0], *certs_volumes], extra_mounts=[*sockets[1], *certs_mounts],
                sidecars=[agent],
            ),
            # its periodic purges (and certificate rotations) run once each
            worker("housekeeping", 1, neutron.process_probes("octavia-housekeeping", database)),
        ]  # fmt: skip
        if not spec.amphora.enabled:
            return steps
        ports = [{"name": "heartbeats", "containerPort": HEALTH_MANAGER_PORT, "protocol": "UDP"}]
        health_manager = worker(
            "health-manager", spec.replicas, neutron.process_probes("octavia-health-manager", database), ports=ports
        )
        # amphorae send their heartbeats from the management network, outside the cluster: the
        # health managers are reached as the APIs are (spec.networkPolicies.apiAccess)
        heartbeats = Listener("health-manager", (HEALTH_MANAGER_PORT,), Clients.API, udp=True)
        return [
            *steps,
            worker("worker", spec.replicas, rabbitmq.probes("octavia-worker")),
            Step(health_manager.name, self.name, health_manager.objects, (heartbeats,)),
        ]


SERVICE = Octavia()
