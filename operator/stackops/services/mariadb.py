"""MariaDB: the SQL database under every OpenStack service.

One server by default; with replicas >= 3 a Galera cluster. A member joins the members that run; when
none runs (a new cluster, or after all went down at once) the members tell each other their last
committed position and the one with the highest founds the cluster, after copying its data aside
(mariadb-start.sh.j2; docs/operations.md). With `external` set, stackops runs no server and only
creates databases and users on the one given.

Backups (`backup`, on either): a CronJob dumps the cloud's databases onto a volume of their own
(templates/mariadb/backup.sh.j2 says how and why so); `restore` stops every workload that uses the
databases, then restores a backup with a Job that runs once everything before it is ready.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from stackops import certificates, services
from stackops.api.models import DatabaseSpec, OpenStackCloudSpec, OsloConfig, Restore
from stackops.credentials import NEXT_PREFIX, CredentialSpec
from stackops.render.ini import render_ini
from stackops.render.kolla import ConfigFile, KollaCommand, Permission
from stackops.services.backups import SCRIPTS_DIR, BackupRun, BackupSet, backup_objects
from stackops.services.base import (
    CA_FILE_KEY,
    Clients,
    CloudContext,
    ConfigSecret,
    Listener,
    Resources,
    Service,
    Step,
    served_paths,
)
from stackops.services.images import DebianImage, KollaUser

PORT = 3306
USER = KollaUser("mysql", 42434, "/var/lib/mysql")  # the mysql user of Kolla images
ROOT_PASSWORD_KEY = "mariadb-root-password"
# recovery: where a member serves its last committed position to its peers while no member runs
GALERA_PORTS = {"galera": 4567, "ist": 4568, "sst": 4444, "recovery": 4569}
DATADIR = USER.home
# the server's certificate, key and the CA (a ServedCertificate: my.cnf names them)
TLS_DIR = "/etc/mysql/tls"
TLS_FILES = served_paths(TLS_DIR)
# what has the server load a renewed certificate, which the probe runs (ServedCertificate): FLUSH SSL
# for its clients' connections, and Galera's provider for its members' (replication and IST)
TLS_RELOAD = 'query "FLUSH SSL" >/dev/null'
GALERA_TLS_RELOAD = f"{TLS_RELOAD} && query \"SET GLOBAL wsrep_provider_options='socket.ssl_reload=1'\" >/dev/null"
# Galera among its members, with the server's certificate: replication and IST (the provider's
# sockets) and SST (wsrep_sst_mariabackup streams through socat; encrypt=3 is TLS with a certificate
# and key). Each side verifies the other's certificate against the CA, not its name: the members dial
# each other's pod addresses, which no certificate names (VERIFY_CA; Galera checks no name at all).
GALERA_TLS = {
    "socket.ssl": "YES",
    "socket.ssl_cert": TLS_FILES["server.crt"],
    "socket.ssl_key": TLS_FILES["server.key"],
    "socket.ssl_ca": TLS_FILES[CA_FILE_KEY],
}
SST_TLS = {
    "encrypt": 3,
    "ssl-mode": "VERIFY_CA",
    "tcert": TLS_FILES["server.crt"],
    "tkey": TLS_FILES["server.key"],
    "tca": TLS_FILES[CA_FILE_KEY],
}
# The copy of a member's data made before it founds a cluster from it: inside the volume, which is the
# data directory, so hidden from the server (ignore-db-dirs) lest it show as a database.
RECOVERY_DIR = ".stackops-recovery"
# A file an administrator creates in a waiting member's data directory to have it found the cluster
# when not every member can tell its position (docs/operations.md).
FORCE_BOOTSTRAP_FILE = "stackops-force-bootstrap"


@dataclass(frozen=True)
class DatabaseServer:
    """Where services reach the database, and which Secret keys hold an account that may create databases."""

    host: str
    port: int
    admin_secret: str
    admin_user_key: str | None  # None: the user is root
    admin_password_key: str
    tls: bool = False  # clients verify its certificate against the cloud's CA


def database_spec(ctx: CloudContext) -> DatabaseSpec:
    return ctx.spec.infrastructure.database


def provider_options(ours: dict[str, str], config: OsloConfig) -> tuple[str, OsloConfig]:
    """Galera's `wsrep_provider_options` (`name=value; …`): ours, with the user's own
    (`config.mysqld.wsrep_provider_options`) on top option by option, so that tuning Galera keeps
    what stackops sets; and the user's config without that option, now merged."""
    mysqld = dict(config.get("mysqld") or {})
    given = str(mysqld.pop("wsrep_provider_options", None) or "")
    options = dict(ours)
    for item in filter(None, (part.strip() for part in given.split(";"))):
        name, _, value = item.partition("=")
        options[name.strip()] = value.strip()
    return "; ".join(f"{name}={value}" for name, value in options.items()), {**config, "mysqld": mysqld}


def galera_peers(ctx: CloudContext) -> list[str]:
    """Each member's stable name (index: its ordinal), through the headless cluster Service."""
    cluster = ctx.service_host(ctx.object_name("mariadb-cluster"))
    return [f"{ctx.object_name('mariadb')}-{i}.{cluster}" for i in range(database_spec(ctx).replicas)]


def server(ctx: CloudContext) -> DatabaseServer:
    external = database_spec(ctx).external
    if external is not None:
        return DatabaseServer(external.host, external.port, external.secret_ref.name, "username", "password")
    host = ctx.service_host(ctx.object_name("mariadb"))
    # what the Jobs and backups log in with: during a rotation of root's password, the one the
    # server accepts from the phase on (root_password_step)
    root_key = ctx.credentials.live_key(ROOT_PASSWORD_KEY)
    return DatabaseServer(host, PORT, ctx.credentials_secret, None, root_key, ctx.internal_tls)


def connection_url(ctx: CloudContext, database: str, user: str, password_key: str, ca_file: str) -> str:
    """SQLAlchemy URL for oslo.db, as written into a service's config file; `ca_file`: where the
    service's containers have the cloud's CA."""
    db = server(ctx)
    password = ctx.credentials[password_key]
    # PyMySQL verifies the server's certificate and its name when given a CA (ssl_ca)
    tls = f"&ssl_ca={ca_file}" if db.tls else ""
    return f"mysql+pymysql://{user}:{password}@{db.host}:{db.port}/{database}?charset=utf8{tls}"


def oslo_db(ctx: CloudContext, database: str, user: str, password_key: str, ca_file: str) -> dict[str, Any]:
    """An oslo.db section: where the service's database is, and pools sized for many API processes."""
    return {
        "connection": connection_url(ctx, database, user, password_key, ca_file),
        "max_retries": -1,
        # Every API process holds a pool; small pools keep MariaDB's connection count in check.
        "max_pool_size": 5,
        "max_overflow": 10,
        "connection_recycle_time": 600,
    }


def admin_ca(db: DatabaseServer) -> dict[str, tuple[str | None, str]]:
    """For a database Job's secret files: the cloud's CA, with which it verifies the server's
    certificate and name, when the server speaks TLS."""
    return {"STACKOPS_DB_CA": (None, certificates.CA_CERT_KEY)} if db.tls else {}


def database_step(ctx: CloudContext, service: Service, databases: list[str], user: str, password_key: str) -> Step:
    """A Job from the stackops image that creates a service's databases and its account, idempotently.

    During a credential rotation it sets the new password, and until the configs have rolled to it
    the account accepts the old one too (MariaDB's authentication methods joined by OR): one account
    whose password switches in order (docs/security.md, "Rotation")."""
    db = server(ctx)
    old_password_key = ctx.credentials.retiring_key(password_key)
    return Step(
        f"{service.name}-database",
        service.name,
        ctx.stackops_job(
            service.name,
            "database",
            "create-database",
            [f"--host={db.host}", f"--port={db.port}", *(f"--database={d}" for d in databases), f"--user={user}"],
            MARIADB.resources(ctx.spec, "database-job"),
            env={} if db.admin_user_key else {"STACKOPS_DB_ADMIN_USER": "root"},
            secrets={
                **({"STACKOPS_DB_ADMIN_USER": (db.admin_secret, db.admin_user_key)} if db.admin_user_key else {}),
                "STACKOPS_DB_ADMIN_PASSWORD": (db.admin_secret, db.admin_password_key),
                "STACKOPS_DB_PASSWORD": (None, ctx.credentials.secret_key(password_key)),
                **({"STACKOPS_DB_OLD_PASSWORD": (None, old_password_key)} if old_password_key else {}),
                **admin_ca(db),
            },
        ),
    )


class MariaDB(Service):
    name = "mariadb"
    spec_path = "infrastructure.database"
    served_tls_dir = TLS_DIR
    debian_images = (DebianImage("mariadb-server", ("mariadb-server", "mariadb-backup", "galera-4", "procps"), USER),)
    components: ClassVar[dict[str, Resources]] = {
        "server": Resources(cpu="100m", memory="512Mi"),
        "database-job": Resources(cpu="10m", memory="64Mi"),
        "backup": Resources(cpu="50m", memory="128Mi"),
        "restore": Resources(cpu="100m", memory="256Mi"),
        "backup-object-store": Resources(cpu="10m", memory="128Mi"),  # the upload or download (boto3)
    }

    def credentials(self, spec: OpenStackCloudSpec) -> list[CredentialSpec]:
        # an external server's admin is the user's own Secret: theirs to rotate
        return [] if spec.infrastructure.database.external else [CredentialSpec(ROOT_PASSWORD_KEY, rotates=True)]

    def certificates(self, ctx: CloudContext) -> list[certificates.CertificateRequest]:
        """Its Service's names, and each Galera member's through the headless cluster Service."""
        if not server(ctx).tls:
            return []
        domain = ctx.spec.endpoints.cluster_domain
        names = certificates.service_names(ctx.object_name("mariadb"), ctx.namespace, domain)
        members = certificates.pod_names(ctx.object_name("mariadb-cluster"), ctx.namespace, domain)
        return [certificates.CertificateRequest(self.name, (*names, *members))]

    def my_cnf(self, ctx: CloudContext) -> str:
        spec = database_spec(ctx)
        mysqld: dict[str, Any] = {
            "datadir": DATADIR,
            "bind-address": "0.0.0.0",
            "port": PORT,
            "character-set-server": "utf8",
            "collation-server": "utf8_general_ci",
            "skip-name-resolve": 1,
            # OpenStack services keep pools open on every worker; a small default exhausts the server.
            "max_connections": 2000,
            "max_allowed_packet": "64M",
            "innodb_buffer_pool_size": "256M",
            "default_storage_engine": "InnoDB",
        }
        if self.certificates(ctx):
            mysqld |= {
                "ssl_cert": TLS_FILES["server.crt"],
                "ssl_key": TLS_FILES["server.key"],
                "ssl_ca": TLS_FILES[CA_FILE_KEY],
                # a client that does not speak TLS is refused (the local socket is exempt: the start
                # script and the probe use it)
                "require_secure_transport": "ON",
            }
        sections: dict[str, dict[str, Any]] = {"mysqld": mysqld, "client": {"port": PORT}}
        config = spec.config
        if spec.replicas > 1:
            peers = ",".join(galera_peers(ctx))
            mysqld |= {
                "wsrep_on": "ON",
                "wsrep_provider": "/usr/lib/galera/libgalera_smm.so",
                "wsrep_cluster_name": ctx.object_name("mariadb"),
                "wsrep_cluster_address": f"gcomm://{peers}",
                "wsrep_sst_method": "mariabackup",
                "wsrep_sst_auth": f"root:{ctx.credentials[ROOT_PASSWORD_KEY]}",
                "binlog_format": "ROW",
                "innodb_autoinc_lock_mode": 2,
                "ignore-db-dirs": RECOVERY_DIR,
            }
            if self.certificates(ctx):
                mysqld["wsrep_provider_options"], config = provider_options(GALERA_TLS, config)
                sections["sst"] = SST_TLS
        return render_ini(sections, config)

    def start_script(self, ctx: CloudContext) -> str:
        return ctx.render_text(
            "mariadb/mariadb-start.sh.j2",
            galera=database_spec(ctx).replicas > 1,
            datadir=DATADIR,
            peers=galera_peers(ctx),
            galera_port=GALERA_PORTS["galera"],
            recovery_port=GALERA_PORTS["recovery"],
            recovery_dir=RECOVERY_DIR,
            force_bootstrap=FORCE_BOOTSTRAP_FILE,
        )

    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = database_spec(ctx)
        server = [] if spec.external is not None else self.server_steps(ctx)
        return [*server, *backup_steps(ctx)]

    def closing_steps(self, ctx: CloudContext) -> list[Step]:
        return restore_steps(ctx)

    def server_steps(self, ctx: CloudContext) -> list[Step]:
        spec = database_spec(ctx)
        served = self.served_certificate(ctx)
        galera = spec.replicas > 1
        reload = served.reload_when_renewed(GALERA_TLS_RELOAD if galera else TLS_RELOAD) if served else ""
        server_command = KollaCommand(
            command="/bin/bash /etc/mysql/mariadb-start.sh",
            files=(
                ConfigFile("my.cnf", "/etc/mysql/my.cnf", "mysql", "0600"),
                ConfigFile("mariadb-start.sh", "/etc/mysql/mariadb-start.sh", "mysql", "0700"),
                ConfigFile("mariadb-probe.sh", "/etc/mysql/mariadb-probe.sh", "mysql", "0700"),
            ),
            permissions=(Permission(DATADIR, "mysql:mysql", recurse=True),),
        )
        config = ctx.config_secret(
            self.name,
            {
                "my.cnf": self.my_cnf(ctx),
                "mariadb-start.sh": self.start_script(ctx),
                "mariadb-probe.sh": ctx.render_text("mariadb/mariadb-probe.sh.j2", galera=galera, tls_reload=reload),
                "mariadb-server.json": server_command.to_json(),
            },
        )
        # the services with databases, and their database Jobs; Galera's members among themselves
        listeners = [Listener("server", (PORT,), Clients.USERS)]
        if spec.replicas > 1:
            listeners.append(Listener("server", tuple(GALERA_PORTS.values()), Clients.MEMBERS))
        rotation = root_password_step(ctx)
        # its own Jobs: backup, restore, root's password during a rotation
        if spec.backup.enabled or spec.restore is not None or rotation:
            listeners.append(Listener("server", (PORT,), Clients.SERVICE))
        return [
            Step("mariadb-config", self.name, [config.obj]),
            Step(
                "mariadb-server",
                self.name,
                ctx.render(
                    "mariadb/server.yaml.j2",
                    spec=spec,
                    image=ctx.image(spec, "mariadb-server"),
                    config=config,
                    config_volume=config.volume("config", "mariadb-server.json", server_command),
                    resources=self.resources(ctx.spec, "server"),
                    # the probe tries a rotation's new password first, the live one after: the pod
                    # never rolls for a rotation, the kubelet updates the files in place
                    root_password=ctx.secret_files(
                        {"DB_ROOT_PASSWORD": (None, ROOT_PASSWORD_KEY)},
                        optional={"DB_ROOT_PASSWORD_NEXT": (None, f"{NEXT_PREFIX}{ROOT_PASSWORD_KEY}")},
                    ),
                    port=PORT,
                    galera_ports=GALERA_PORTS,
                    served=served,
                    uid=USER.uid,
                ),
                tuple(listeners),
            ),
            *([rotation] if rotation else []),
        ]


def root_password_step(ctx: CloudContext) -> Step | None:
    """During a rotation of root's password, a Job that has root accept it: beside the old one while
    anything may still use that (granting, rolling), alone once nothing does (revoking). Root is one
    account (root@'%', and root@localhost with it), switched in order like every service's database
    account: the Jobs and backups log in with the password the phase says (`server`), and so does
    the server's probe, which tries the new one first. None outside a rotation."""
    credentials = ctx.credentials
    if not credentials.rotating(ROOT_PASSWORD_KEY):
        return None
    db = server(ctx)
    old_key = credentials.retiring_key(ROOT_PASSWORD_KEY)
    objects = ctx.stackops_job(
        MARIADB.name,
        "root-password",
        "set-database-password",
        [f"--host={db.host}", f"--port={db.port}", "--user=root", "--account-host=%", "--account-host=localhost"],
        MARIADB.resources(ctx.spec, "database-job"),
        env={"STACKOPS_DB_ADMIN_USER": "root"},
        secrets={
            "STACKOPS_DB_ADMIN_PASSWORD": (None, db.admin_password_key),
            "STACKOPS_DB_PASSWORD": (None, credentials.secret_key(ROOT_PASSWORD_KEY)),
            **({"STACKOPS_DB_OLD_PASSWORD": (None, old_key)} if old_key else {}),
            **admin_ca(db),
        },
    )
    return Step("mariadb-root-password", MARIADB.name, objects)


MARIADB = MariaDB()
SERVICE = MARIADB

# the backup CronJob's Jobs (component backup) and the restore Job (restore)


def database_users(spec: OpenStackCloudSpec) -> frozenset[str]:
    """The enabled services that use the databases: what a restore stops."""
    return frozenset(s.name for s in services.all_services() if s.enabled(spec) and MARIADB.name in s.uses(spec))


BACKUPS = BackupSet(
    MARIADB.name,
    "backup",
    "restore",
    status="database",
    spec_path=MARIADB.spec_path,
    restore_steps=(("mariadb-restore", "Restoring"),),
    stopping="the workloads that use the databases",
    writers=database_users,
)


def cloud_databases() -> list[str]:
    """Every database a service of stackops may own, whether enabled or not: a disabled service
    keeps its database, which backups keep too (the backup skips those that do not exist)."""
    return sorted({db for service in services.all_services() for db in getattr(service, "databases", ())})


def _backup_objects(ctx: CloudContext, restore: Restore | None) -> list[dict[str, Any]]:
    spec = database_spec(ctx)
    db = server(ctx)
    user = (
        ctx.secret_env("MARIADB_USER", db.admin_user_key, db.admin_secret)
        if db.admin_user_key
        else {"name": "MARIADB_USER", "value": "root"}
    )
    run = BackupRun(
        image=ctx.image(spec, "mariadb-server"),
        uid=USER.uid,
        env=(
            {"name": "MARIADB_HOST", "value": db.host},
            {"name": "MARIADB_PORT", "value": str(db.port)},
            user,
            ctx.secret_env("MYSQL_PWD", db.admin_password_key, db.admin_secret),
            *([{"name": "MARIADB_SSL_CA", "value": f"{SCRIPTS_DIR}/{CA_FILE_KEY}"}] if db.tls else []),
        ),
        config=backup_config(ctx),
        resources=MARIADB.resources(ctx.spec, BACKUPS.restore if restore else BACKUPS.backup),
        object_store_resources=MARIADB.resources(ctx.spec, BACKUPS.object_store),
    )
    script = "restore.sh" if restore else "backup.sh"
    return backup_objects(
        ctx, BACKUPS, spec.backup, run,
        script=script, arguments=cloud_databases(), restore=restore, suspend=spec.restore is not None,
    )  # fmt: skip


def backup_config(ctx: CloudContext) -> ConfigSecret:
    """The scripts backup and restore Jobs run."""
    files = {name: ctx.render_text(f"mariadb/{name}.j2") for name in ("backup.sh", "restore.sh")}
    if server(ctx).tls:  # beside the scripts: the CA the Jobs verify the server with
        files[CA_FILE_KEY] = ctx.ca_certificate
    return ctx.config_secret(MARIADB.name, files, part=BACKUPS.backup)


def backup_steps(ctx: CloudContext) -> list[Step]:
    """The backups' scripts, volume and CronJob, when the spec asks for backups (the scripts also
    for a restore). The volume outlives the cloud like every volume stackops makes."""
    spec = database_spec(ctx)
    steps = []
    if spec.backup.enabled or spec.restore is not None:
        steps.append(Step("mariadb-backup-config", MARIADB.name, [backup_config(ctx).obj]))
    if spec.backup.enabled:
        steps.append(Step("mariadb-backup", MARIADB.name, _backup_objects(ctx, None)))
    return steps


def restore_steps(ctx: CloudContext) -> list[Step]:
    """The Job restoring spec.infrastructure.database.restore's backup: after every other step,
    so once every workload that uses the databases has stopped (BackupSet.stopped_for_restore)."""
    restore = database_spec(ctx).restore
    if restore is None:
        return []
    ((step, _),) = BACKUPS.restore_steps
    return [Step(step, MARIADB.name, _backup_objects(ctx, restore), after_all=True)]
