"""RabbitMQ: the message queue nova, neutron, cinder and heat talk over (oslo.messaging).

A StatefulSet whose pods find each other through Kubernetes (the k8s peer discovery plugin and the
headless Service's stable names), with a volume per pod. Each service gets its own user and vhost,
created by a Job from the stackops image through the management API, and quorum queues (replicated,
they survive the loss of a pod). With `external` set, stackops runs no server and only creates users
and vhosts on the one given.

Its administrator (ADMIN_USER, the account the user Jobs log in with) is a pair too, of its own
(CredentialSpec.own_pair): a credential rotation gives the new password to the other account, which
the Jobs switch to, then removes the first (admin_password_step). The server's config names the
administrator only for a node's first boot (DEFAULT_USER_CONF), so the server never rolls for it;
its probes speak Erlang distribution (the cookie), not the management API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from stackops import certificates
from stackops.api.models import MessagingSpec, OpenStackCloudSpec
from stackops.credentials import Credentials, CredentialSpec
from stackops.render.kolla import ConfigFile, KollaCommand, Permission
from stackops.services.api import exec_probes
from stackops.services.base import (
    CA_FILE_KEY,
    Clients,
    CloudContext,
    Listener,
    Resources,
    ServedCertificate,
    Service,
    Step,
    served_paths,
)
from stackops.services.images import DebianImage, KollaUser

AMQP_PORT = 5672
MANAGEMENT_PORT = 15672
PROMETHEUS_PORT = 15692  # rabbitmq_prometheus' metrics
CLUSTER_PORTS = {"epmd": 4369, "dist": 25672}
USER = KollaUser("rabbitmq", 42439, "/var/lib/rabbitmq")  # the rabbitmq user of Kolla images
ADMIN_USER = "stackops"
ADMIN_PASSWORD_KEY = "rabbitmq-admin-password"
ERLANG_COOKIE_KEY = "rabbitmq-erlang-cookie"
PLUGINS = ("rabbitmq_management", "rabbitmq_peer_discovery_k8s", "rabbitmq_prometheus")
USER_JOB = "messaging"  # the component of every service's user Job (user_step)
# the server's certificate, key and the cloud's CA (a ServedCertificate: rabbitmq.conf names them)
TLS_DIR = "/etc/rabbitmq/tls"
TLS_FILES = served_paths(TLS_DIR)
# Erlang's TLS caches the files it read (its PEM cache): cleared, the next handshakes (AMQP, the
# management API, the distribution) read the renewed ones
TLS_RELOAD = "timeout 8 rabbitmqctl -q eval 'ssl:clear_pem_cache().' >/dev/null"
READINESS = ("rabbitmq-diagnostics", "-q", "check_port_connectivity")
# The administrator a node creates when it boots on an empty database (default_user, default_pass):
# a file of its own, read from the directory the server reads beside rabbitmq.conf, and out of the
# config's hash, so that a rotation of the password changes it without rolling the server.
DEFAULT_USER_CONF = "default-user.conf"
CONF_D = "/etc/rabbitmq/conf.d"
# Erlang's distribution over TLS: the options of its TLS, and the environment file that hands the
# server and the command line tools (rabbitmqctl, the probes' rabbitmq-diagnostics) the flags
DIST_TLS_FILE = "/etc/rabbitmq/inter_node_tls.config"
ENV_FILE = "/etc/rabbitmq/rabbitmq-env.conf"


@dataclass(frozen=True)
class Broker:
    """Where services reach RabbitMQ, and which Secret keys hold an administrator."""

    host: str
    port: int
    management_port: int
    admin_secret: str
    admin_user_key: str | None  # None: the user is admin_user
    admin_password_key: str
    tls: bool = False  # AMQP and the management API over TLS, verified against the cloud's CA
    admin_user: str = ADMIN_USER  # the administrator of the server stackops runs: the account in use


def admin_account(credentials: Credentials) -> str:
    """The administrator the Jobs log in as, of the server stackops runs: ADMIN_USER or its twin,
    a pair of its own (CredentialSpec.own_pair)."""
    return credentials.account(ADMIN_USER, ADMIN_PASSWORD_KEY)


def messaging_spec(ctx: CloudContext) -> MessagingSpec:
    return ctx.spec.infrastructure.messaging


def broker(ctx: CloudContext) -> Broker:
    external = messaging_spec(ctx).external
    if external is not None:
        return Broker(
            external.host, external.port, external.management_port, external.secret_ref.name, "username", "password"
        )
    host = ctx.service_host(ctx.object_name("rabbitmq"))
    # during a rotation of the admin password, the account and password of the phase (the new ones
    # from rolling on: admin_password_step grants them first)
    credentials = ctx.credentials
    password_key = credentials.live_key(ADMIN_PASSWORD_KEY)
    return Broker(
        host, AMQP_PORT, MANAGEMENT_PORT, ctx.credentials_secret, None, password_key, ctx.internal_tls,
        admin_account(credentials),
    )  # fmt: skip


def transport_url(ctx: CloudContext, service: str, password_key: str) -> str:
    """oslo.messaging's transport_url: the service's own user (the account of its pair in use) on
    its own vhost."""
    b = broker(ctx)
    user = ctx.credentials.account(service)
    return f"rabbit://{user}:{ctx.credentials[password_key]}@{b.host}:{b.port}/{service}"


def oslo_messaging(ctx: CloudContext, ca_file: str) -> dict[str, dict[str, Any]]:
    """[oslo_messaging_rabbit] and notification settings every messaging service shares; `ca_file`:
    where the service's containers have the cloud's CA, which verifies the broker's TLS."""
    tls = {"ssl": True, "ssl_ca_file": ca_file} if broker(ctx).tls else {}
    return {
        "oslo_messaging_rabbit": {
            # replicated queues: losing one RabbitMQ pod loses no message and no queue
            "rabbit_quorum_queue": True,
            "rabbit_transient_quorum_queue": True,
            "use_queue_manager": False,
            "heartbeat_timeout_threshold": 60,
            **tls,
        },
        "oslo_messaging_notifications": {"driver": "noop"},
    }


def member_hosts(ctx: CloudContext) -> list[str]:
    """Each member's host name, under the headless cluster Service: its Erlang node is rabbit@<it>."""
    headless = ctx.service_host(ctx.object_name("rabbitmq-cluster"))
    return [f"{ctx.object_name('rabbitmq')}-{i}.{headless}" for i in range(messaging_spec(ctx).replicas)]


def probes(process: str) -> dict[str, dict[str, Any]]:
    """A worker is alive while its process holds a connection to RabbitMQ (Kolla's healthcheck_port)."""
    return exec_probes(["healthcheck_port", process, str(AMQP_PORT)])


def user_step(ctx: CloudContext, service: Service, vhost: str, password_key: str) -> Step:
    """A Job from the stackops image that creates the service's RabbitMQ user and vhost, idempotently.

    RabbitMQ takes one password per user: a credential rotation gives the new one to the other
    account of the service's pair, on the same vhost, and removes the old account once the configs
    have rolled to the new one (docs/security.md, "Rotation")."""
    return messaging_job(ctx, service.name, "create-messaging-user", vhost, password_key, None, [f"--vhost={vhost}"])


def admin_password_step(ctx: CloudContext) -> Step | None:
    """During a rotation of the administrator's password, a Job that gives the new one to the other
    account of its pair (an administrator too), as the account in use (granting); that the Jobs
    switch to from rolling on (`broker`), and which removes the first (revoking). None outside a
    rotation, and for an external broker, whose administrator is the user's Secret."""
    if messaging_spec(ctx).external is not None or not ctx.credentials.rotating(ADMIN_PASSWORD_KEY):
        return None
    key = ADMIN_PASSWORD_KEY
    return messaging_job(ctx, RABBITMQ.name, "create-messaging-admin", ADMIN_USER, key, key, [])


def messaging_job(
    ctx: CloudContext, service: str, job: str, pair: str, password_key: str, own_key: str | None, args: list[str]
) -> Step:
    """The `USER_JOB` Job of `service`: `stackops job <job>` through the management API as the
    broker's administrator, for the account of `pair` (`own_key`: an own pair's) the phase grants
    (`password_key`'s value), removing the one it retires."""
    mq = broker(ctx)
    retired = ctx.credentials.retired_account(pair, own_key)
    command = [f"--host={mq.host}", f"--management-port={mq.management_port}"]
    command += [f"--user={ctx.credentials.granted_account(pair, own_key)}", *args]
    command += [f"--remove-user={retired}"] if retired else []
    return Step(
        f"{service}-{USER_JOB}",
        service,
        ctx.stackops_job(
            service,
            USER_JOB,
            job,
            command,
            RABBITMQ.resources(ctx.spec, "user-job"),
            env={} if mq.admin_user_key else {"STACKOPS_MQ_ADMIN_USER": mq.admin_user},
            secrets={
                **({"STACKOPS_MQ_ADMIN_USER": (mq.admin_secret, mq.admin_user_key)} if mq.admin_user_key else {}),
                "STACKOPS_MQ_ADMIN_PASSWORD": (mq.admin_secret, mq.admin_password_key),
                "STACKOPS_MQ_PASSWORD": (None, ctx.credentials.secret_key(password_key)),
                # the management API's certificate is verified against the cloud's CA, by its name
                **({"STACKOPS_MQ_CA": (None, certificates.CA_CERT_KEY)} if mq.tls else {}),
            },
        ),
    )


class RabbitMQ(Service):
    name = "rabbitmq"
    spec_path = "infrastructure.messaging"
    served_tls_dir = TLS_DIR
    debian_images = (DebianImage("rabbitmq", ("rabbitmq-server", "procps"), USER),)
    components: ClassVar[dict[str, Resources]] = {
        "server": Resources(cpu="50m", memory="512Mi", memory_limit="1Gi"),
        "user-job": Resources(cpu="10m", memory="64Mi"),
    }

    def enabled(self, spec: OpenStackCloudSpec) -> bool:
        return True  # always part of a cloud; `external` replaces the server

    def credentials(self, spec: OpenStackCloudSpec) -> list[CredentialSpec]:
        if spec.infrastructure.messaging.external:
            return []
        # the cookie does not rotate: every node and the CLI must change it at once (docs/security.md)
        admin = CredentialSpec(ADMIN_PASSWORD_KEY, rotates=True, own_pair=True)
        return [admin, CredentialSpec(ERLANG_COOKIE_KEY)]

    def certificates(self, ctx: CloudContext) -> list[certificates.CertificateRequest]:
        """Its Service's names, and each member's host name (its Erlang node's: the members and the
        command line tools check it, exactly, when they talk Erlang's distribution over TLS)."""
        if not broker(ctx).tls:
            return []
        domain = ctx.spec.endpoints.cluster_domain
        names = certificates.service_names(ctx.object_name("rabbitmq"), ctx.namespace, domain)
        return [certificates.CertificateRequest(self.name, (*names, *member_hosts(ctx)))]

    def readiness(self, served: ServedCertificate | None) -> list[str]:
        """Its ports answer; with TLS, after the server loaded a renewed certificate."""
        if served is None:
            return list(READINESS)
        return served.probe(TLS_RELOAD, f"exec {' '.join(READINESS)}")

    def listener_settings(self, ctx: CloudContext) -> dict[str, Any]:
        """AMQP and the management API: over TLS on their usual ports, with no plaintext listener,
        when the cloud's internal TLS is on (clients do not present certificates of their own)."""
        if not self.certificates(ctx):
            return {"listeners.tcp.default": AMQP_PORT, "management.tcp.port": MANAGEMENT_PORT}
        files = {"cacertfile": TLS_FILES[CA_FILE_KEY], "certfile": TLS_FILES["server.crt"]}
        files["keyfile"] = TLS_FILES["server.key"]
        settings: dict[str, Any] = {"listeners.tcp": "none", "listeners.ssl.default": AMQP_PORT}
        settings |= {f"ssl_options.{key}": path for key, path in files.items()}
        settings |= {"ssl_options.verify": "verify_none", "ssl_options.fail_if_no_peer_cert": "false"}
        settings["management.ssl.port"] = MANAGEMENT_PORT
        settings |= {f"management.ssl.{key}": path for key, path in files.items()}
        return settings

    def distribution_files(self, ctx: CloudContext) -> dict[str, str]:
        """Erlang's distribution (the members among themselves, and the command line tools with their
        node) over TLS with the server's certificate, when it serves TLS: each side presents its
        certificate and verifies the other's against the cloud's CA, and a client the server's host
        name (member_hosts) in it."""
        if not self.certificates(ctx):
            return {}
        files = f'{{cacertfile, "{TLS_FILES[CA_FILE_KEY]}"}}, {{certfile, "{TLS_FILES["server.crt"]}"}}, '
        files += f'{{keyfile, "{TLS_FILES["server.key"]}"}}, {{verify, verify_peer}}, {{secure_renegotiate, true}}'
        options = f"[{{server, [{files}, {{fail_if_no_peer_cert, true}}]}},\n {{client, [{files}]}}].\n"
        flags = f"-proto_dist inet_tls -ssl_dist_optfile {DIST_TLS_FILE}"
        env = f'SERVER_ADDITIONAL_ERL_ARGS="{flags}"\nCTL_ERL_ARGS="{flags}"\n'
        return {"inter_node_tls.config": options, "rabbitmq-env.conf": env}

    def rabbitmq_conf(self, ctx: CloudContext) -> str:
        headless = ctx.object_name("rabbitmq-cluster")
        settings: dict[str, Any] = {
            **self.listener_settings(ctx),
            "loopback_users.guest": "false",
            "cluster_formation.peer_discovery_backend": "k8s",
            "cluster_formation.k8s.host": "kubernetes.default.svc",
            "cluster_formation.k8s.address_type": "hostname",
            "cluster_formation.k8s.service_name": headless,
            "cluster_formation.k8s.hostname_suffix": f".{ctx.service_host(headless)}",
            "cluster_formation.node_cleanup.only_log_warning": "true",
            # a minority partition pauses rather than diverging
            "cluster_partition_handling": "pause_minority",
            "queue_master_locator": "min-masters",
            "vm_memory_high_watermark.relative": 0.6,
            "disk_free_limit.absolute": "100MB",
        }
        return conf_lines(settings)

    def default_user_conf(self, ctx: CloudContext) -> str:
        """The administrator a node creates on an empty database (a new cluster's first node; a node
        joining takes the users of the others): the account and password the Jobs use now."""
        credentials = ctx.credentials
        return conf_lines(
            {
                "default_user": admin_account(credentials),
                "default_pass": credentials[ADMIN_PASSWORD_KEY],
                "default_user_tags.administrator": "true",
            }
        )

    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = messaging_spec(ctx)
        if spec.external is not None:
            return []
        served = self.served_certificate(ctx)
        command = KollaCommand(
            command="/usr/sbin/rabbitmq-server",
            files=(
                ConfigFile("rabbitmq.conf", "/etc/rabbitmq/rabbitmq.conf", "rabbitmq", "0600"),
                ConfigFile(DEFAULT_USER_CONF, f"{CONF_D}/{DEFAULT_USER_CONF}", "rabbitmq", "0600"),
                ConfigFile("enabled_plugins", "/etc/rabbitmq/enabled_plugins", "rabbitmq", "0600"),
                ConfigFile("erlang.cookie", "/var/lib/rabbitmq/.erlang.cookie", "rabbitmq", "0400"),
                *(
                    ConfigFile(key, f"/etc/rabbitmq/{key}", "rabbitmq", "0600")
                    for key in sorted(self.distribution_files(ctx))
                ),
            ),
            permissions=(Permission("/var/lib/rabbitmq", "rabbitmq:rabbitmq", recurse=True),),
        )
        config = ctx.config_secret(
            self.name,
            {
                "rabbitmq.conf": self.rabbitmq_conf(ctx),
                "enabled_plugins": f"[{','.join(PLUGINS)}].\n",
                "erlang.cookie": ctx.credentials[ERLANG_COOKIE_KEY],
                "rabbitmq-server.json": command.to_json(),
                **self.distribution_files(ctx),
            },
            first_boot={DEFAULT_USER_CONF: self.default_user_conf(ctx)},
        )
        # AMQP for the services that talk over it; the management API for the user Jobs only; the
        # cluster's members among themselves; metrics for the monitoring namespace
        listeners = [
            Listener("server", (AMQP_PORT,), Clients.USERS),
            Listener("server", (MANAGEMENT_PORT,), Clients.JOBS, jobs=USER_JOB),
            Listener("server", (PROMETHEUS_PORT,), Clients.MONITORING),
        ]
        if spec.replicas > 1:
            listeners.append(Listener("server", tuple(CLUSTER_PORTS.values()), Clients.MEMBERS))
        return [
            Step("rabbitmq-config", self.name, [config.obj]),
            Step(
                "rabbitmq-server",
                self.name,
                ctx.render(
                    "rabbitmq/server.yaml.j2",
                    spec=spec,
                    image=ctx.image(spec, "rabbitmq"),
                    config=config,
                    config_volume=config.volume("config", "rabbitmq-server.json", command),
                    resources=self.resources(ctx.spec, "server"),
                    amqp_port=AMQP_PORT,
                    management_port=MANAGEMENT_PORT,
                    cluster_ports=CLUSTER_PORTS,
                    served=served,
                    readiness=self.readiness(served),
                    uid=USER.uid,
                ),
                tuple(listeners),
            ),
            *([rotation] if (rotation := admin_password_step(ctx)) else []),
        ]


def conf_lines(settings: dict[str, Any]) -> str:
    """rabbitmq.conf's format: `key = value`, a line each."""
    return "".join(f"{key} = {value}\n" for key, value in settings.items())


RABBITMQ = RabbitMQ()
SERVICE = RABBITMQ
