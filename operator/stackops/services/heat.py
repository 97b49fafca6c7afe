"""Heat: orchestration. Stacks of OpenStack resources from templates.

Components: the native API (orchestration) and the CloudFormation-compatible API (cloudformation,
which instances also call back for metadata and wait conditions), both under uWSGI in their Kolla
images, and the engine that does the work; Jobs for the database, the RabbitMQ user, one catalog
registration per API (the same heat user), heat's own keystone domain, and db-sync.

Heat creates keystone users and projects for the stacks it runs (the users instances authenticate as);
it keeps them in a domain of their own, administered by a user of that domain. A Job from the stackops
image creates both, and the roles heat's policies name, the way it registers services.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

from stackops.api.models import EndpointOverrides, OpenStackCloudSpec, ServiceSpec
from stackops.credentials import CredentialSpec
from stackops.render.ini import render_ini
from stackops.render.kolla import ConfigFile, KollaCommand
from stackops.services import api, keystone, mariadb, memcached, policy, rabbitmq
from stackops.services.base import CloudContext, Resources, Service, Step
from stackops.services.endpoints import service_urls
from stackops.services.images import KollaUser, OpenStackImage, OpenStackImages
from stackops.services.upgrades import ServiceUpgrade

API_PORT = 8004
CFN_PORT = 8000
CONFIG_DIR = "/etc/heat"
CONFIG_FILE = f"{CONFIG_DIR}/heat.conf"
USER = KollaUser("heat", 42418)  # the heat user of Kolla images
DATABASE_PASSWORD_KEY = "heat-database-password"
KEYSTONE_PASSWORD_KEY = "heat-keystone-password"
MESSAGING_PASSWORD_KEY = "heat-messaging-password"
DOMAIN_ADMIN_PASSWORD_KEY = "heat-domain-admin-password"
# encrypts the credentials heat keeps in its database; 32 characters make an AES-256 key
AUTH_ENCRYPTION_KEY = "heat-auth-encryption-key"
STACK_DOMAIN = "heat"
STACK_DOMAIN_ADMIN = "heat_domain_admin"
STACK_OWNER_ROLE = "heat_stack_owner"
STACK_USER_ROLE = "heat_stack_user"
ENGINE_WORKERS = 2


def heat_spec(ctx: CloudContext) -> ServiceSpec:
    return ctx.spec.services.heat


def urls(ctx: CloudContext) -> dict[str, str]:
    """Catalog URLs of the native API; keystone puts the token's project into the path."""
    base = service_urls(ctx, heat_spec(ctx).endpoints, "heat", API_PORT)
    return {interface: f"{url}/v1/%(project_id)s" for interface, url in base.items()}


def cfn_base_urls(ctx: CloudContext) -> dict[str, str]:
    """The CloudFormation API, public as `heat-cfn.<domain>` (the endpoint overrides are the native API's)."""
    return service_urls(ctx, EndpointOverrides(), "heat", CFN_PORT, "api-cfn", "heat-cfn")


def cfn_urls(ctx: CloudContext) -> dict[str, str]:
    return {interface: f"{url}/v1" for interface, url in cfn_base_urls(ctx).items()}


class Heat(Service):
    name = "heat"
    spec_path = "services.heat"
    depends_on = ("keystone", "rabbitmq")
    upgrade_after = ("horizon",)  # the order of OpenStack's upgrade guides
    openstack_images = OpenStackImages(
        USER, (OpenStackImage("heat-api"), OpenStackImage("heat-api-cfn"), OpenStackImage("heat-engine"))
    )
    config_files: ClassVar[dict[str, tuple[str, ...]]] = {
        "heat.conf": (
            "heat.api.aws.ec2token", "heat.common.cache", "heat.common.config", "heat.common.context",
            "heat.common.crypt", "heat.common.wsgi", "heat.engine.clients",
            "heat.engine.clients.os.keystone.heat_keystoneclient", "heat.engine.hot.functions",
            "heat.engine.notification", "heat.engine.resources", "keystonemiddleware.auth_token", "oslo.cache",
            "oslo.concurrency", "oslo.db", "oslo.log", "oslo.messaging", "oslo.middleware", "oslo.policy",
        ),
    }  # fmt: skip
    components: ClassVar[dict[str, Resources]] = {
        "api": Resources(cpu="25m", memory="256Mi"),
        "api-cfn": Resources(cpu="10m", memory="192Mi"),
        "engine": Resources(cpu="25m", memory="384Mi"),
        "db-sync": Resources(cpu="25m", memory="256Mi"),
        "stack-domain": Resources(cpu="10m", memory="128Mi"),
        "upgrade-check": Resources(cpu="25m", memory="256Mi"),
    }

    def credentials(self, spec: OpenStackCloudSpec) -> list[CredentialSpec]:
        return [
            CredentialSpec(DATABASE_PASSWORD_KEY),
            CredentialSpec(KEYSTONE_PASSWORD_KEY),
            CredentialSpec(MESSAGING_PASSWORD_KEY),
            CredentialSpec(DOMAIN_ADMIN_PASSWORD_KEY),
            CredentialSpec(AUTH_ENCRYPTION_KEY),
        ]

    def endpoints(self, ctx: CloudContext) -> dict[str, str]:
        return {"orchestration": urls(ctx)["public"], "cloudformation": cfn_urls(ctx)["public"]}

    def config(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        cfn = cfn_base_urls(ctx)["public"]  # what instances call back
        identity = keystone.identity_urls(ctx)
        return {
            "DEFAULT": {
                "debug": False,
                "transport_url": rabbitmq.transport_url(ctx, "heat", MESSAGING_PASSWORD_KEY),
                "region_name_for_services": ctx.spec.region,
                "heat_metadata_server_url": cfn,
                "heat_waitcondition_server_url": f"{cfn}/v1/waitcondition",
                "stack_user_domain_name": STACK_DOMAIN,
                "stack_domain_admin": STACK_DOMAIN_ADMIN,
                "stack_domain_admin_password": ctx.credentials[DOMAIN_ADMIN_PASSWORD_KEY],
                "heat_stack_user_role": STACK_USER_ROLE,
                "auth_encryption_key": ctx.credentials[AUTH_ENCRYPTION_KEY],
                # instances reach keystone at its public endpoint
                "server_keystone_endpoint_type": "public",
                # heat's default is one engine per CPU of the node, whatever the pod was given
                "num_engine_workers": ENGINE_WORKERS,
            },
            "database": mariadb.oslo_db(ctx, "heat", "heat", DATABASE_PASSWORD_KEY),
            "keystone_authtoken": keystone.authtoken(ctx, self.name, KEYSTONE_PASSWORD_KEY),
            # the user heat acts as when it uses the trusts users delegate to it
            "trustee": {
                "auth_type": "password",
                "auth_url": identity["internal"],
                "user_domain_id": "default",
                "username": "heat",
                "password": ctx.credentials[KEYSTONE_PASSWORD_KEY],
            },
            "clients": {"endpoint_type": "internalURL"},
            "clients_keystone": {"auth_uri": identity["internal"]},
            "ec2authtoken": {"auth_uri": keystone.auth_url(ctx)},
            "cache": {
                "enabled": True,
                "backend": "oslo_cache.memcache_pool",
                "memcache_servers": memcached.servers(ctx),
            },
            "oslo_concurrency": {"lock_path": "/var/lib/heat/tmp"},
            "oslo_middleware": {"enable_proxy_headers_parsing": True},
            "oslo_policy": policy.oslo_policy(ctx, self),
            **rabbitmq.oslo_messaging(ctx),
        }

    def upgrade(self, ctx: CloudContext) -> ServiceUpgrade:
        """Heat upgrades rolling since Pike: `db_sync` with the new code while the old engines run,
        then APIs and engines roll."""
        conf = ConfigFile("heat.conf", CONFIG_FILE, "heat", "0600")
        return ServiceUpgrade(
            image="heat-api",
            uid=USER.uid,
            files={"heat.conf": self.heat_conf(ctx)},
            check=KollaCommand(f"heat-status --config-file {CONFIG_FILE} upgrade check", (conf,)),
            expand={"db-sync": self.commands()["db-sync"]},
        )

    def heat_conf(self, ctx: CloudContext) -> str:
        return render_ini(self.config(ctx), heat_spec(ctx).config)

    def commands(self) -> dict[str, KollaCommand]:
        conf = ConfigFile("heat.conf", CONFIG_FILE, "heat", "0600")
        return {
            "api": api.uwsgi_command(self.name, "heat", CONFIG_DIR, conf),
            "api-cfn": api.uwsgi_command(self.name, "heat", CONFIG_DIR, conf, component="api-cfn"),
            "engine": KollaCommand(f"heat-engine --config-file {CONFIG_FILE}", (conf,)),
            "db-sync": KollaCommand(f"heat-manage --config-file {CONFIG_FILE} db_sync", (conf,)),
        }

    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = heat_spec(ctx)
        files = {
            "heat.conf": self.heat_conf(ctx),
            api.uwsgi_file(self.name): api.uwsgi_config(ctx, "heat-api", API_PORT, "heat/wsgi/api.py"),
            api.uwsgi_file(self.name, "api-cfn"): api.uwsgi_config(ctx, "heat-api-cfn", CFN_PORT, "heat/wsgi/cfn.py"),
        }
        kolla = api.kolla(ctx, self, "heat-api", files, self.commands(), USER.uid)
        cfn = replace(kolla, image=ctx.image(spec, "heat-api-cfn"))
        engine = replace(kolla, image=ctx.image(spec, "heat-engine"))
        return [
            Step("heat-config", self.name, [kolla.config.obj]),
            mariadb.database_step(ctx, self, ["heat"], "heat", DATABASE_PASSWORD_KEY),
            rabbitmq.user_step(ctx, self, "heat", MESSAGING_PASSWORD_KEY),
            keystone.registration_step(
                ctx, self, "orchestration", "Heat orchestration service", urls(ctx), KEYSTONE_PASSWORD_KEY
            ),
            keystone.registration_step(
                ctx, self, "cloudformation", "Heat CloudFormation-compatible API", cfn_urls(ctx),
                KEYSTONE_PASSWORD_KEY, catalog_name="heat-cfn",
            ),
            self.stack_domain_step(ctx),
            api.job_step(ctx, self, "db-sync", kolla),
            api.api_step(ctx, self, kolla, workload=spec, port=API_PORT, probe_path="/healthcheck"),
            api.api_step(
                ctx, self, cfn, workload=spec, port=CFN_PORT, probe_path="/healthcheck", component="api-cfn",
                public_name="heat-cfn",
            ),
            api.worker_step(
                ctx, self, "engine", engine, replicas=spec.replicas,
                probes=rabbitmq.probes("heat-engine"),
            ),
        ]  # fmt: skip

    def stack_domain_step(self, ctx: CloudContext) -> Step:
        """A Job from the stackops image: the `heat` domain, its admin and the roles heat expects."""
        return Step(
            "heat-stack-domain",
            self.name,
            ctx.render(
                "heat/stack-domain-job.yaml.j2",
                service=self.name,
                component="stack-domain",
                domain=STACK_DOMAIN,
                user=STACK_DOMAIN_ADMIN,
                roles=[STACK_OWNER_ROLE, STACK_USER_ROLE],
                password_key=DOMAIN_ADMIN_PASSWORD_KEY,
                auth_url=keystone.auth_url(ctx),
                admin_user=keystone.ADMIN_USER,
                admin_project=keystone.ADMIN_PROJECT,
                admin_password_key=keystone.ADMIN_PASSWORD_KEY,
                resources=self.resources(ctx.spec, "stack-domain"),
            ),
        )


SERVICE = Heat()
