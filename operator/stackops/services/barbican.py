"""Barbican: key management. Secrets (passphrases, keys, certificates) stored for the cloud's users
and for the services that encrypt with them (cinder's encrypted volumes, octavia's TLS listeners).

Components: the API (uWSGI in the Kolla barbican-api image), the worker that carries out the orders
the API queues over RabbitMQ (keys and certificates barbican generates), and the keystone listener,
which deletes a project's secrets when keystone deletes the project; a db-sync Job after its
database, its RabbitMQ user and its registration in keystone's catalog.

Secrets are kept in barbican's database, encrypted by the simple_crypto plugin: each project's
key-encryption key is itself encrypted with one master key, a Fernet key stackops generates once
into the credentials Secret and writes into barbican.conf. Losing that key loses every secret: it
is kept with the cloud's other credentials (`deletionPolicy: Retain` keeps the Secret). An HSM
(PKCS#11) or Vault instead is a matter of `config` overrides (docs/barbican.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from stackops.api.models import BarbicanSpec, OpenStackCloudSpec
from stackops.credentials import CredentialKind, CredentialSpec
from stackops.render.kolla import KollaCommand
from stackops.services import api, policy, rabbitmq
from stackops.services.base import CloudContext, Resources, Step
from stackops.services.health_checks import HealthCheck, SecretsListed
from stackops.services.images import KollaUser, OpenStackImage, OpenStackImages
from stackops.services.openstack import CatalogEntry, DatabaseUpgrade, MainConfig, OpenStackService

# barbican's processes and its crypto plugin read their config from oslo.config's default places
# (the plugin parses a config of its own at import, `barbican-manage db upgrade` ignores
# --config-file for its database URL): the file must be /etc/barbican/barbican.conf
CONFIG = MainConfig("barbican.conf", "/etc/barbican")
DB_SYNC = "barbican-manage db upgrade"
# the simple_crypto plugin's master key: a Fernet key, 32 random bytes in URL-safe base64
KEK_KEY = "barbican-simple-crypto-kek"
# the topic keystone sends its notifications to for barbican's listener alone (keystone.py)
NOTIFICATIONS_TOPIC = "barbican_notifications"
PORT = 9311


class Barbican(OpenStackService[BarbicanSpec]):
    name = "barbican"
    spec_path = "services.barbican"
    depends_on = ("keystone", "rabbitmq")
    # after the core services, as in kolla-ansible's order: those that store keys in it (cinder,
    # nova) work against either release's API
    upgrade_after = ("heat",)
    port = PORT
    openstack_images = OpenStackImages(
        KollaUser("barbican", 42403),
        tuple(OpenStackImage(f"barbican-{c}") for c in ("api", "worker", "keystone-listener")),
    )
    main_config = CONFIG
    databases = ("barbican",)
    messaging = True
    catalog = (CatalogEntry("key-manager", "Barbican key manager service"),)
    notifications_from: ClassVar[Mapping[str, str]] = {"keystone": NOTIFICATIONS_TOPIC}
    # barbican's schema migrations run before the new release's API and workers
    database_upgrade = DatabaseUpgrade(
        check=f"barbican-status --config-file {CONFIG.dest} upgrade check", expand={"db-sync": DB_SYNC}
    )
    config_files: ClassVar[dict[str, tuple[str, ...]]] = {
        "barbican.conf": (
            "barbican.common.config", "barbican.plugin.crypto", "barbican.plugin.crypto.simple",
            "barbican.plugin.secret_store", "keystonemiddleware.auth_token", "oslo.db", "oslo.log",
            "oslo.messaging", "oslo.middleware", "oslo.policy",
        ),
    }  # fmt: skip
    components: ClassVar[dict[str, Resources]] = {
        "api": Resources(cpu="25m", memory="192Mi"),
        "worker": Resources(cpu="10m", memory="128Mi"),
        "keystone-listener": Resources(cpu="10m", memory="128Mi"),
        "db-sync": Resources(cpu="25m", memory="192Mi"),
    }

    def own_credentials(self, spec: OpenStackCloudSpec) -> list[CredentialSpec]:
        return [CredentialSpec(KEK_KEY, CredentialKind.FERNET_KEY)]

    def health_checks(self, ctx: CloudContext) -> list[HealthCheck]:
        return [SecretsListed()]

    def config(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        return {
            "DEFAULT": {
                "debug": False,
                "transport_url": self.transport_url(ctx),
                # the base of the secret and container references barbican hands out
                "host_href": self.catalog_urls(ctx)["public"],
            },
            "database": self.oslo_db(ctx),
            "keystone_authtoken": self.authtoken(ctx),
            # the API hands orders to the workers over RabbitMQ instead of working them out itself
            "queue": {"enable": True},
            "keystone_notifications": {"enable": True, "topic": NOTIFICATIONS_TOPIC},
            "secretstore": {"enabled_secretstore_plugins": "store_crypto"},
            "crypto": {"enabled_crypto_plugins": "simple_crypto"},
            "simple_crypto_plugin": {"kek": ctx.credentials[KEK_KEY]},
            "oslo_middleware": {"enable_proxy_headers_parsing": True},
            "oslo_policy": policy.oslo_policy(ctx, self),
            **rabbitmq.oslo_messaging(ctx, self.ca_file),
        }

    def commands(self, ctx: CloudContext) -> dict[str, KollaCommand]:
        return {
            "api": self.uwsgi_command(ctx),
            "worker": self.command(f"barbican-worker --config-file {CONFIG.dest}"),
            "keystone-listener": self.command(f"barbican-keystone-listener --config-file {CONFIG.dest}"),
            "db-sync": self.command(DB_SYNC),
        }

    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = self.settings(ctx)
        # barbican.wsgi.api since barbican 21; 2025.1 has only the deprecated app.wsgi script
        wsgi = api.wsgi_file(ctx.spec.release, "barbican/wsgi/api.py", "barbican/api/app.wsgi")
        files = {**self.main_files(ctx), api.uwsgi_file(self.name): self.uwsgi_config(ctx, "barbican-api", PORT, wsgi)}
        kolla = self.kolla(ctx, files, self.commands(ctx))
        worker = self.in_image(ctx, kolla, "barbican-worker")
        listener = self.in_image(ctx, kolla, "barbican-keystone-listener")
        return [
            *self.preamble(ctx, kolla),
            api.job_step(ctx, self, "db-sync", kolla),
            api.api_step(ctx, self, kolla, workload=spec, port=PORT, probe_path="/healthcheck"),
            api.worker_step(
                ctx, self, "worker", worker, replicas=spec.replicas, probes=rabbitmq.probes("barbican-worker")
            ),
            # listeners share the topic: each notification reaches one of them
            api.worker_step(
                ctx, self, "keystone-listener", listener, replicas=spec.replicas,
                probes=rabbitmq.probes("barbican-keystone-listener"),
            ),
        ]  # fmt: skip


SERVICE = Barbican()
