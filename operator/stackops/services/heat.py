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

from stackops.api.models import OpenStackCloudSpec, ServiceSpec
from stackops.credentials import CredentialSpec
from stackops.render.kolla import KollaCommand
from stackops.services import api, identity, memcached, policy, rabbitmq
from stackops.services.base import CloudContext, Resources, Step
from stackops.services.images import KollaUser, OpenStackImage, OpenStackImages
from stackops.services.openstack import CatalogEntry, DatabaseUpgrade, MainConfig, OpenStackService

CFN_PORT = 8000
CONFIG = MainConfig("heat.conf", "/etc/heat")
DB_SYNC = f"heat-manage --config-file {CONFIG.dest} db_sync"
DOMAIN_ADMIN_PASSWORD_KEY = "heat-domain-admin-password"
# encrypts the credentials heat keeps in its database; 32 characters make an AES-256 key
AUTH_ENCRYPTION_KEY = "heat-auth-encryption-key"
STACK_DOMAIN = "heat"
STACK_DOMAIN_ADMIN = "heat_domain_admin"
STACK_OWNER_ROLE = "heat_stack_owner"
STACK_USER_ROLE = "heat_stack_user"
ENGINE_WORKERS = 2


# The CloudFormation-compatible API, public as `heat-cfn.<domain>` (the endpoint overrides are the
# native API's): its own component, port and catalog entry.
CFN = CatalogEntry(
    "cloudformation", "Heat CloudFormation-compatible API", path="/v1", component="api-cfn", port=CFN_PORT,
    name="heat-cfn",
)  # fmt: skip


def cfn_base_urls(ctx: CloudContext) -> dict[str, str]:
    """The CloudFormation API's URLs without the API version: what instances call back."""
    return SERVICE.catalog_urls(ctx, replace(CFN, path=""))


class Heat(OpenStackService[ServiceSpec]):
    name = "heat"
    keystone_pair = False  # its user is the trustee of users' trusts (services/openstack.py)
    spec_path = "services.heat"
    depends_on = ("keystone", "rabbitmq")
    upgrade_after = ("horizon",)  # the order of OpenStack's upgrade guides
    port = 8004
    openstack_images = OpenStackImages(
        KollaUser("heat", 42418),
        (OpenStackImage("heat-api"), OpenStackImage("heat-api-cfn"), OpenStackImage("heat-engine")),
    )
    main_config = CONFIG
    databases = ("heat",)
    messaging = True
    catalog = (
        # keystone puts the token's project into the native API's path
        CatalogEntry("orchestration", "Heat orchestration service", path="/v1/%(project_id)s"),
        CFN,
    )  # fmt: skip
    # Heat upgrades rolling since Pike: `db_sync` with the new code while the old engines run, then
    # APIs and engines roll.
    database_upgrade = DatabaseUpgrade(
        check=f"heat-status --config-file {CONFIG.dest} upgrade check", expand={"db-sync": DB_SYNC}
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
    }

    def own_credentials(self, spec: OpenStackCloudSpec) -> list[CredentialSpec]:
        return [CredentialSpec(DOMAIN_ADMIN_PASSWORD_KEY), CredentialSpec(AUTH_ENCRYPTION_KEY)]

    def config(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        cfn = cfn_base_urls(ctx)["public"]  # what instances call back
        identity_urls = identity.identity_urls(ctx)
        return {
            "DEFAULT": {
                "debug": False,
                "transport_url": self.transport_url(ctx),
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
            "database": self.oslo_db(ctx),
            "keystone_authtoken": self.authtoken(ctx),
            # the user heat acts as when it uses the trusts users delegate to it
            "trustee": {
                "auth_type": "password",
                "auth_url": identity_urls["internal"],
                "user_domain_id": "default",
                "username": self.keystone_user(ctx),
                "password": ctx.credentials[self.keystone_password_key],
            },
            # every client plugin's session verifies the endpoints with the cloud's CA
            "clients": {"endpoint_type": "internalURL", "ca_file": self.ca_file},
            "clients_keystone": {"auth_uri": identity_urls["internal"], "ca_file": self.ca_file},
            "ec2authtoken": {"auth_uri": identity.auth_url(ctx), "cafile": self.ca_file},
            "cache": memcached.oslo_cache(ctx, self.ca_file),
            "oslo_concurrency": {"lock_path": "/var/lib/heat/tmp"},
            "oslo_middleware": {"enable_proxy_headers_parsing": True},
            "oslo_policy": policy.oslo_policy(ctx, self),
            **rabbitmq.oslo_messaging(ctx, self.ca_file),
        }

    def commands(self, ctx: CloudContext) -> dict[str, KollaCommand]:
        return {
            "api": self.uwsgi_command(ctx),
            CFN.component: self.uwsgi_command(ctx, CFN.component),
            "engine": self.command(f"heat-engine --config-file {CONFIG.dest}"),
            "db-sync": self.command(DB_SYNC),
        }

    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = self.settings(ctx)
        files = {
            **self.main_files(ctx),
            api.uwsgi_file(self.name): self.uwsgi_config(ctx, "heat-api", self.port, "heat/wsgi/api.py"),
            api.uwsgi_file(self.name, CFN.component): self.uwsgi_config(
                ctx, "heat-api-cfn", CFN_PORT, "heat/wsgi/cfn.py"
            ),
        }
        kolla = self.kolla(ctx, files, self.commands(ctx))
        cfn = self.in_image(ctx, kolla, "heat-api-cfn")
        engine = self.in_image(ctx, kolla, "heat-engine")
        return [
            *self.preamble(ctx, kolla),
            self.stack_domain_step(ctx),
            api.job_step(ctx, self, "db-sync", kolla),
            api.api_step(ctx, self, kolla, workload=spec, port=self.port, probe_path="/healthcheck"),
            api.api_step(
                ctx, self, cfn, workload=spec, port=CFN_PORT, probe_path="/healthcheck", component=CFN.component,
                public_name=CFN.name,
            ),
            api.worker_step(
                ctx, self, "engine", engine, replicas=spec.replicas,
                probes=rabbitmq.probes("heat-engine"),
            ),
        ]  # fmt: skip

    def stack_domain_step(self, ctx: CloudContext) -> Step:
        """A Job from the stackops image: the `heat` domain, its admin and the roles heat expects."""
        args = [
            f"--region={ctx.spec.region}",
            f"--domain={STACK_DOMAIN}",
            f"--description=Projects and users {self.name} creates for stacks",
            f"--user={STACK_DOMAIN_ADMIN}",
            *(f"--role={role}" for role in (STACK_OWNER_ROLE, STACK_USER_ROLE)),
        ]
        password = ("STACKOPS_DOMAIN_ADMIN_PASSWORD", DOMAIN_ADMIN_PASSWORD_KEY)
        resources = self.resources(ctx.spec, "stack-domain")
        objects = identity.admin_job(ctx, self.name, "stack-domain", "create-domain-admin", args, resources, password)
        return Step("heat-stack-domain", self.name, objects)

    def keystone_users(self) -> tuple[identity.KeystoneUser, ...]:
        """Beside its service user, the admin of its stack domain."""
        return (*super().keystone_users(), identity.KeystoneUser(STACK_DOMAIN_ADMIN, STACK_DOMAIN))


SERVICE = Heat()
