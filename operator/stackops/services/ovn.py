"""OVN, neutron's network backend: the parts neutron's module deploys besides its own processes.

- The northbound and southbound databases: StatefulSets of ovsdb-server, one Raft cluster each when
  there is more than one replica. Members find each other by stable DNS names (a headless Service);
  clients reach each member through a Service of its own, whose address never changes.
- ovn-northd, which translates the northbound database (what neutron wants) into the southbound one
  (what every chassis does).
- The chassis on compute and gateway nodes: Open vSwitch (its database and vswitchd) and
  ovn-controller in one privileged host pod. Gateway nodes carry external traffic, so their chassis
  say `enable-chassis-as-gw`; that one value is all that tells the two DaemonSets apart.
- Backups (`ovn.backup`): a CronJob snapshots both databases onto a volume of their own; `ovn.restore`
  stops neutron's server and workers, restores the northbound database with a Job, and has neutron's
  OVN sync repair what neutron made since (services/neutron.py renders that Job: neutron's config).

With the cloud's internal TLS (the default) the databases speak TLS only, to their clients and among
a Raft cluster's members, and OVN's TLS is mutual: each database presents its certificate, and every
client (neutron's processes, northd, the chassis, octavia's OVN provider, the backup Jobs) one
certificate of the cloud's CA made for OVN's clients (CLIENT). OVN checks that a peer's certificate
is signed by the CA, not the name in it; so the names a database's certificate carries are what its
clients call it, for any client that does check them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from stackops import certificates
from stackops.api.models import AgentNodes, NeutronSpec, OvnSpec, Restore
from stackops.render.kolla import ConfigFile, KollaCommand
from stackops.services import api
from stackops.services.api import Kolla
from stackops.services.backups import SCRIPTS_DIR, BackupRun, BackupSet, backup_objects
from stackops.services.base import (
    CA_FILE_KEY,
    SERVED_CERT,
    SERVED_KEY,
    Clients,
    CloudContext,
    ConfigSecret,
    Listener,
    Service,
    Step,
    served_paths,
)
from stackops.services.hosts import AgentContainer, Labels, agent_step, node_affinity
from stackops.services.images import DebianImage

# what a service other than neutron names in its `uses` to reach the NB and SB databases itself
# (octavia's OVN provider driver)
DIRECT_USE = "ovn-databases"
OVS_DB_PORT = 6640  # Open vSwitch's database on each chassis, on the host's loopback only
RUN_DIR = "/run/ovn"
DATA_DIR = "/var/lib/ovn"
SCHEMA_DIR = "/usr/share/ovn"
GATEWAY_CMS_OPTIONS = "enable-chassis-as-gw"
# the components of the chassis DaemonSets (chassis_components)
CHASSIS = "ovn-controller"
GATEWAY_CHASSIS = "ovn-controller-gateway"
# ovn-controller and the databases check each other this often (ms); OVN's 5 s default makes busy
# chassis drop and reconnect
PROBE_INTERVAL_MS = 60000
# the certificate every client of the databases presents (see the module's docstring)
CLIENT = "ovn-client"
# where the databases, northd and ovn-controller find their certificate, key and the cloud's CA
TLS_DIR = "/etc/ovn/tls"


@dataclass(frozen=True)
class Database:
    """The northbound or southbound database."""

    kind: str  # nb or sb
    schema_name: str
    port: int  # clients
    raft_port: int  # cluster members among themselves
    image: str

    @property
    def component(self) -> str:
        return f"{self.kind}-db"

    @property
    def schema(self) -> str:
        return f"{SCHEMA_DIR}/ovn-{self.kind}.ovsschema"

    @property
    def db_file(self) -> str:
        return f"{DATA_DIR}/ovn{self.kind}_db.db"

    @property
    def socket(self) -> str:
        return f"{RUN_DIR}/ovn{self.kind}_db.sock"

    @property
    def pidfile(self) -> str:
        return f"{RUN_DIR}/ovn{self.kind}_db.pid"

    @property
    def control(self) -> str:
        return f"{RUN_DIR}/ovn{self.kind}_db.ctl"

    @property
    def start_script(self) -> str:
        return f"ovn-{self.kind}-db-start.sh"


NB = Database("nb", "OVN_Northbound", 6641, 6643, "ovn-nb-db-server")
SB = Database("sb", "OVN_Southbound", 6642, 6644, "ovn-sb-db-server")
DATABASES = (NB, SB)
# neutron's images besides its own (Kolla's run as root)
IMAGES = (
    DebianImage("ovn-nb-db-server", ("ovn-central", "procps"), aliases=("ovn-sb-db-server", "ovn-northd")),
    DebianImage("ovn-controller", ("ovn-host", "procps")),
    DebianImage("openvswitch-db-server", ("openvswitch-switch", "procps"), aliases=("openvswitch-vswitchd",)),
)


def neutron_spec(ctx: CloudContext) -> NeutronSpec:
    return ctx.spec.services.neutron


@dataclass(frozen=True)
class Pki:
    """Where a process of OVN finds its TLS files: its private key, its certificate, the CA."""

    private_key: str
    certificate: str
    ca_cert: str

    @property
    def options(self) -> str:
        """The same, as ovsdb-server, ovsdb-client, ovn-northd and ovn-controller take them."""
        return f"--private-key={self.private_key} --certificate={self.certificate} --ca-cert={self.ca_cert}"

    def config_files(self, key: str, owner: str, ca_listed: bool = False) -> tuple[ConfigFile, ...]:
        """Kolla's copies of certificate `key` (a CertificateRequest's name, the config Secret's keys
        `<key>.crt` and `<key>.key`) and of the CA (unless the command already lists it)."""
        return (
            ConfigFile(f"{key}.key", self.private_key, owner, "0600"),
            ConfigFile(f"{key}.crt", self.certificate, owner, "0600"),
            *(() if ca_listed else (ConfigFile(CA_FILE_KEY, self.ca_cert, owner, "0644"),)),
        )


# the files of the databases, northd and ovn-controller (their images run them as root)
SERVER_PKI = Pki(*(served_paths(TLS_DIR)[name] for name in (SERVED_KEY, SERVED_CERT, CA_FILE_KEY)))
CLIENT_PKI = Pki(f"{TLS_DIR}/client.key", f"{TLS_DIR}/client.crt", f"{TLS_DIR}/{CA_FILE_KEY}")


def tls(ctx: CloudContext) -> bool:
    """Whether the databases speak TLS only, with certificates of the cloud's CA on both sides."""
    return ctx.internal_tls


def scheme(ctx: CloudContext) -> str:
    return "ssl" if tls(ctx) else "tcp"


def server_certificate(ctx: CloudContext, db: Database) -> certificates.CertificateRequest:
    """Every name of every member: its own Service's (clients) and its name in the cluster (Raft)."""
    domain, cluster = ctx.spec.endpoints.cluster_domain, ctx.service_fqdn(cluster_service(ctx, db))
    names = [
        name
        for member in members(ctx, db)
        for name in (*certificates.service_names(member, ctx.namespace, domain), f"{member}.{cluster}")
    ]
    return certificates.CertificateRequest(f"ovn-{db.kind}", tuple(names))


def client_certificate(ctx: CloudContext) -> certificates.CertificateRequest:
    return certificates.CertificateRequest(CLIENT, (ctx.object_name(CLIENT),))


def certificate_requests(ctx: CloudContext) -> list[certificates.CertificateRequest]:
    """The databases' certificates and their clients' one, when they speak TLS."""
    if not tls(ctx):
        return []
    return [*(server_certificate(ctx, db) for db in DATABASES), client_certificate(ctx)]


def client_files(ctx: CloudContext) -> dict[str, str]:
    """The clients' certificate and key (Pki.config_files' keys), for the config Secret of a client
    of the databases; none without TLS."""
    if not tls(ctx):
        return {}
    request = client_certificate(ctx)
    name, credentials = request.name, ctx.credentials
    return {f"{name}.crt": credentials[request.cert_key], f"{name}.key": credentials[request.private_key]}


def client_pki(directory: str, ca_file: str) -> Pki:
    """A client's files beside its config in `directory` (an OpenStack service's own), with the CA it
    already has at `ca_file`."""
    return Pki(f"{directory}/{CLIENT}.key", f"{directory}/{CLIENT}.crt", ca_file)


def client_config_files(ctx: CloudContext, pki: Pki, owner: str, ca_listed: bool = True) -> tuple[ConfigFile, ...]:
    """What a client's command lists to have its certificate and key (and the CA) at `pki`'s paths."""
    return pki.config_files(CLIENT, owner, ca_listed) if tls(ctx) else ()


def client_options(ctx: CloudContext, pki: Pki) -> dict[str, str]:
    """An OpenStack service's `[ovn]` options presenting the client certificate to both databases."""
    if not tls(ctx):
        return {}
    paths = {"private_key": pki.private_key, "certificate": pki.certificate, "ca_cert": pki.ca_cert}
    return {f"ovn_{db.kind}_{option}": path for db in DATABASES for option, path in paths.items()}


def server_name(ctx: CloudContext, db: Database) -> str:
    """The StatefulSet of a database; its pods are `<name>-0`, `<name>-1` …"""
    return ctx.object_name(f"ovn-{db.kind}")


def members(ctx: CloudContext, db: Database) -> list[str]:
    return [f"{server_name(ctx, db)}-{i}" for i in range(neutron_spec(ctx).ovn.replicas)]


def cluster_service(ctx: CloudContext, db: Database) -> str:
    """The headless Service under which each member has a DNS name that follows its pod."""
    return ctx.object_name(f"ovn-{db.kind}-cluster")


# OVS and OVN resolve names with libunbound, without resolv.conf's search domains: every name they
# are given is a fully qualified one.


def raft_peers(ctx: CloudContext, db: Database) -> list[str]:
    domain = ctx.service_fqdn(cluster_service(ctx, db))
    return [f"{scheme(ctx)}:{member}.{domain}:{db.raft_port}" for member in members(ctx, db)]


def connection(ctx: CloudContext, db: Database) -> str:
    """What clients connect to: every member, each through its own Service (a stable address)."""
    return ",".join(f"{scheme(ctx)}:{ctx.service_fqdn(member)}:{db.port}" for member in members(ctx, db))


def bridge_mappings(spec: NeutronSpec) -> str:
    return ",".join(f"{n.name}:{n.bridge}" for n in spec.provider_networks)


def exec_check(command: Sequence[str], *, liveness: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Probes from check commands: `liveness` when staying alive asks less than being ready."""
    probes = api.exec_probes(command)
    if liveness is not None:
        probes["livenessProbe"] = probes["livenessProbe"] | {"exec": {"command": list(liveness)}}
    return probes


def database_files(ctx: CloudContext) -> dict[str, str]:
    """The databases' start scripts: their config Secret holds nothing that renews (their certificate
    is served: database_step), so a renewed certificate rolls none of them."""
    replicas = neutron_spec(ctx).ovn.replicas
    return {
        db.start_script: ctx.render_text(
            "ovn/ovsdb-start.sh.j2",
            db=db,
            clustered=replicas > 1,
            scheme=scheme(ctx),
            pki=SERVER_PKI.options if tls(ctx) else "",
            domain=ctx.service_fqdn(cluster_service(ctx, db)),
            peers=raft_peers(ctx, db),
        )
        for db in DATABASES
    }


def database_commands() -> dict[str, KollaCommand]:
    return {
        db.component: KollaCommand(
            f"/bin/bash /etc/ovn/{db.start_script}",
            (ConfigFile(db.start_script, f"/etc/ovn/{db.start_script}", "root", "0700"),),
        )
        for db in DATABASES
    }


def northd_command(ctx: CloudContext) -> KollaCommand:
    return KollaCommand(
        " ".join(
            [
                "ovn-northd",
                f"--ovnnb-db={connection(ctx, NB)}",
                f"--ovnsb-db={connection(ctx, SB)}",
                *([CLIENT_PKI.options] if tls(ctx) else []),
                f"--pidfile={RUN_DIR}/ovn-northd.pid",
                f"--unixctl={RUN_DIR}/ovn-northd.ctl",
                "-vconsole:info",
                "-vfile:off",
            ]
        ),
        client_config_files(ctx, CLIENT_PKI, "root", ca_listed=False),
    )


def control_plane_steps(ctx: CloudContext, service: Service) -> tuple[list[dict[str, Any]], list[Step]]:
    """The config Secrets of the databases and of northd, and their steps."""
    spec = neutron_spec(ctx)
    # ovsdb-server and ovn-northd run as root in Kolla's images
    databases = api.kolla(ctx, service, NB.image, database_files(ctx), database_commands(), 0, part="ovn-databases")
    steps = [database_step(ctx, service, replace(databases, image=ctx.image(spec, db.image)), db) for db in DATABASES]
    northd_kolla = api.kolla(
        ctx, service, "ovn-northd", client_files(ctx), {"northd": northd_command(ctx)}, 0, part="ovn"
    )
    northd = api.worker_step(
        ctx,
        service,
        "northd",
        northd_kolla,
        replicas=spec.ovn.replicas,
        # active or standby (northd instances share the work through a lock in the southbound database)
        probes=api.exec_probes(["ovn-appctl", "-t", f"{RUN_DIR}/ovn-northd.ctl", "status"]),
    )
    return [databases.config.obj, northd_kolla.config.obj], [*steps, northd]


def database_step(ctx: CloudContext, service: Service, kolla: Kolla, db: Database) -> Step:
    spec = neutron_spec(ctx).ovn
    probes = exec_check(
        ["ovsdb-client", "--timeout=5", "wait", f"unix:{db.socket}", db.schema_name, "connected"],
        liveness=["ovs-appctl", "-t", db.control, "version"],
    )
    # neutron's own pods (its server and workers, northd; its chassis and metadata agents from their
    # nodes), the services that use OVN's databases directly, and the members of a Raft cluster
    # among themselves
    listeners = [
        Listener(db.component, (db.port,), Clients.SERVICE),
        Listener(db.component, (db.port,), Clients.USERS, used_as=DIRECT_USE),
    ]
    if spec.replicas > 1:
        listeners.append(Listener(db.component, (db.raft_port,), Clients.MEMBERS))
    # SERVER_PKI's files, which ovsdb-server loads again by itself once the kubelet renewed them
    # (it checks their modification times in its main loop): no reload to ask for
    served = ctx.served_certificate([server_certificate(ctx, db)] if tls(ctx) else [], TLS_DIR)
    return Step(
        f"neutron-ovn-{db.component}",
        service.name,
        ctx.render(
            "ovn/ovsdb-server.yaml.j2",
            db=db,
            name=server_name(ctx, db),
            cluster=cluster_service(ctx, db),
            # each member's own Service selects its pod by the name the StatefulSet gives it
            members={
                m: ctx.selector(service.name, db.component) | {"statefulset.kubernetes.io/pod-name": m}
                for m in members(ctx, db)
            },
            service=service.name,
            component=db.component,
            spec=spec,
            image=kolla.image,
            config=kolla.config,
            config_volume=kolla.volume(db.component),
            served=served,
            probes=probes,
            resources=service.resources(ctx.spec, db.component),
            data_dir=DATA_DIR,
        ),
        tuple(listeners),
    )


# The chassis: Open vSwitch and ovn-controller on compute and gateway nodes.


def chassis_files(ctx: CloudContext) -> dict[str, str]:
    spec = neutron_spec(ctx)
    return {
        "ovn-controller-start.sh": ctx.render_text(
            "ovn/ovn-controller-start.sh.j2",
            networks=spec.provider_networks,
            bridge_mappings=bridge_mappings(spec),
            sb_connection=connection(ctx, SB),
            pki=CLIENT_PKI.options if tls(ctx) else "",
            probe_interval_ms=PROBE_INTERVAL_MS,
            datapath_type=spec.ovn.datapath_type,
        ),
        **client_files(ctx),
    }


def chassis_commands(ctx: CloudContext) -> dict[str, KollaCommand]:
    start = ConfigFile("ovn-controller-start.sh", "/etc/ovn/ovn-controller-start.sh", "root", "0700")
    pki = client_config_files(ctx, CLIENT_PKI, "root", ca_listed=False)
    return {
        # Kolla's openvswitch-db-server image creates (or upgrades) conf.db before the command runs
        "openvswitch-db": KollaCommand(
            " ".join(
                [
                    "ovsdb-server /var/lib/openvswitch/conf.db",
                    "--remote=punix:/run/openvswitch/db.sock",
                    f"--remote=ptcp:{OVS_DB_PORT}:127.0.0.1",
                    "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
                    "--pidfile -vconsole:info -vfile:off",
                ]
            )
        ),
        "openvswitch-vswitchd": KollaCommand(
            "ovs-vswitchd unix:/run/openvswitch/db.sock --mlockall --pidfile -vconsole:info -vfile:off"
        ),
        "ovn-controller": KollaCommand("/bin/bash /etc/ovn/ovn-controller-start.sh", (start, *pki)),
    }


# host directories of a chassis pod, and where its containers see them
CHASSIS_HOST_PATHS = {
    "ovs-run": "/run/openvswitch",
    "ovs-data": "/var/lib/openvswitch",
    "ovs-config": "/etc/openvswitch",
    "ovn-run": RUN_DIR,
    "modules": "/lib/modules",
}


def _mount(name: str, read_only: bool = False) -> dict[str, Any]:
    mount: dict[str, Any] = {"name": name, "mountPath": CHASSIS_HOST_PATHS[name]}
    return mount | ({"readOnly": True} if read_only else {})


def chassis_components(ctx: CloudContext) -> list[str]:
    """One DaemonSet for compute nodes that are not gateways and one for gateway nodes: a node
    carries one Open vSwitch, whichever roles it has. Every compute node a gateway too (the same
    labels, or fewer): the gateway DaemonSet covers them all."""
    compute, gateway = ctx.spec.nodes.compute.match_labels, ctx.spec.nodes.gateway.match_labels
    compute_only = not all(compute.get(k) == v for k, v in gateway.items())
    return [*([CHASSIS] if compute_only else []), GATEWAY_CHASSIS]


def chassis_steps(ctx: CloudContext, service: Service) -> tuple[dict[str, Any], list[Step]]:
    """The chassis config Secret, and a DaemonSet per chassis_components."""
    spec = neutron_spec(ctx)
    nodes = ctx.spec.nodes
    compute: Labels = dict(nodes.compute.match_labels)
    gateway: Labels = dict(nodes.gateway.match_labels)
    kolla = api.kolla(ctx, service, "ovn-controller", chassis_files(ctx), chassis_commands(ctx), 0, part="chassis")
    images = {c: replace(kolla, image=ctx.image(spec, image)) for c, image in (
        ("openvswitch-db", "openvswitch-db-server"), ("openvswitch-vswitchd", "openvswitch-vswitchd"),
        ("ovn-controller", "ovn-controller"),
    )}  # fmt: skip
    steps = []
    if CHASSIS in chassis_components(ctx):
        affinity = node_affinity("spec.nodes.compute", [compute], [gateway])
        steps.append(chassis_step(ctx, service, images, CHASSIS, affinity, "", nodes.compute))
    affinity = node_affinity("spec.nodes.gateway", [gateway])
    steps.append(chassis_step(ctx, service, images, GATEWAY_CHASSIS, affinity, GATEWAY_CMS_OPTIONS, nodes.gateway))
    return kolla.config.obj, steps


def chassis_step(
    ctx: CloudContext,
    service: Service,
    images: Mapping[str, Kolla],
    component: str,
    affinity: dict[str, Any],
    cms_options: str,
    role: AgentNodes,
) -> Step:
    env = (
        # tunnels end at the node's own address
        {"name": "OVN_ENCAP_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "OVN_CMS_OPTIONS", "value": cms_options},
    )
    containers = [
        AgentContainer(
            "openvswitch-db", images["openvswitch-db"], "openvswitch-db",
            mounts=(_mount("ovs-run"), _mount("ovs-data"), _mount("ovs-config"), _mount("modules", True)),
            probes=api.exec_probes(["ovsdb-client", "list-dbs"]),
        ),
        AgentContainer(
            "openvswitch-vswitchd", images["openvswitch-vswitchd"], "openvswitch-vswitchd",
            mounts=(_mount("ovs-run"), _mount("ovs-config"), _mount("modules", True)),
            probes=api.exec_probes(["ovs-appctl", "version"]),
        ),
        AgentContainer(
            "ovn-controller", images["ovn-controller"], "ovn-controller",
            mounts=(_mount("ovs-run"), _mount("ovn-run")),
            env=env,
            probes=exec_check(
                ["/bin/bash", "-c", "ovn-appctl -t ovn-controller connection-status | grep -qx connected"],
                # a chassis that lost the southbound database keeps forwarding with what it has
                liveness=["ovn-appctl", "-t", "ovn-controller", "version"],
            ),
        ),
    ]  # fmt: skip
    return agent_step(
        ctx,
        service,
        ctx.object_name("neutron", component),
        component,
        containers,
        affinity=affinity,
        host_paths=CHASSIS_HOST_PATHS,
        resources={c.name: service.resources(ctx.spec, c.component) for c in containers},
        role=role,
    )


# Backups of the databases, and a restore of the northbound one.

BACKUP_UID = 65534  # the Jobs need no account of the image's: nobody, owning the backups' volume
SYNC = "ovn-db-sync"  # the component of neutron's sync Job, after a restore
BACKUPS = BackupSet(
    "neutron",
    "ovn-backup",
    "ovn-restore",
    status="ovn",
    spec_path="services.neutron.ovn",
    restore_steps=(("neutron-ovn-restore", "Restoring"), (f"neutron-{SYNC}", "Syncing")),
    stopping="neutron's server and workers",
    # what a restore stops: neutron's processes that write to the northbound database (northd keeps
    # running: it only reads it, and recomputes the southbound database from what is restored; the
    # databases and the chassis too: guests keep their networks while the logical ones are put back)
    writers=lambda spec: frozenset({"neutron"}),
    writer_components=("api", "periodic-workers", "ovn-maintenance-worker"),
)


def ovn_spec(ctx: CloudContext) -> OvnSpec:
    return neutron_spec(ctx).ovn


# the backup and restore Jobs' client files, in their config Secret's volume
BACKUP_PKI = Pki(f"{SCRIPTS_DIR}/{CLIENT}.key", f"{SCRIPTS_DIR}/{CLIENT}.crt", f"{SCRIPTS_DIR}/{CA_FILE_KEY}")


def backup_config(ctx: CloudContext) -> ConfigSecret:
    """The scripts the backup and restore Jobs run, and their client certificate."""
    files = {name: ctx.render_text(f"ovn/{name}.j2", nb=NB, sb=SB) for name in ("ovn-backup.sh", "ovn-restore.sh")}
    if tls(ctx):
        files |= client_files(ctx) | {CA_FILE_KEY: ctx.ca_certificate}
    return ctx.config_secret("neutron", files, part=BACKUPS.backup)


def _backup_objects(ctx: CloudContext, service: Service, restore: Restore | None) -> list[dict[str, Any]]:
    spec = ovn_spec(ctx)
    run = BackupRun(
        # the northbound database's image: ovsdb-client and ovsdb-tool of the OVN the cloud runs
        image=ctx.image(neutron_spec(ctx), NB.image),
        uid=BACKUP_UID,
        env=(
            {"name": "OVN_NB_DB", "value": connection(ctx, NB)},
            {"name": "OVN_SB_DB", "value": connection(ctx, SB)},
            # what the scripts hand ovsdb-client
            *([{"name": "OVN_PKI", "value": BACKUP_PKI.options}] if tls(ctx) else []),
        ),
        config=backup_config(ctx),
        resources=service.resources(ctx.spec, BACKUPS.restore if restore else BACKUPS.backup),
        object_store_resources=service.resources(ctx.spec, BACKUPS.object_store),
    )
    script = "ovn-restore.sh" if restore else "ovn-backup.sh"
    return backup_objects(
        ctx, BACKUPS, spec.backup, run, script=script, arguments=(), restore=restore, suspend=spec.restore is not None
    )


def backup_steps(ctx: CloudContext, service: Service) -> list[Step]:
    """The backups' scripts, volume and CronJob when the spec asks for backups (the scripts also for
    a restore). The volume outlives the cloud like every volume stackops makes."""
    spec = ovn_spec(ctx)
    steps = []
    if spec.backup.enabled or spec.restore is not None:
        steps.append(Step("neutron-ovn-backup-config", service.name, [backup_config(ctx).obj]))
    if spec.backup.enabled:
        # the Jobs are neutron's pods: the databases admit them as they admit neutron's server
        steps.append(Step("neutron-ovn-backup", service.name, _backup_objects(ctx, service, None)))
    return steps


def restore_step(ctx: CloudContext, service: Service) -> list[Step]:
    """The Job restoring spec.services.neutron.ovn.restore's backup into the northbound database:
    after every other step, so once neutron's writers have stopped (BackupSet.stopped_for_restore). Neutron's
    sync Job follows it (services/neutron.py)."""
    restore = ovn_spec(ctx).restore
    if restore is None:
        return []
    step = BACKUPS.restore_steps[0][0]
    return [Step(step, service.name, _backup_objects(ctx, service, restore), after_all=True)]
