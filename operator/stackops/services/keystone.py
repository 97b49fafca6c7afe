"""Keystone: identity, tokens and the service catalog.

Components: the API (Apache + mod_wsgi in the Kolla image), a db-sync Job and a bootstrap Job that
creates the admin user, the region and keystone's own catalog entries. Fernet and credential keys live
in the credentials Secret; the operator rotates the fernet keys (stackops.credentials.rotate_fernet),
and pods see the new keys without a restart because the key Secret is mounted directly.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from stackops.api.models import KeystoneSpec, OpenStackCloudSpec, SecurityCompliance
from stackops.credentials import PASSWORD_SHAPE, SAMPLE_PASSWORDS, CredentialSpec, KeyRotation, fernet_specs
from stackops.render.ini import render_ini
from stackops.render.kolla import ConfigFile, KollaCommand, Permission
from stackops.services import api, mariadb, memcached, policy
from stackops.services.base import CloudContext, RenderError, Resources, Service, Step
from stackops.services.endpoints import service_urls
from stackops.services.images import KollaUser, OpenStackImage, OpenStackImages
from stackops.services.upgrades import ServiceUpgrade

PORT = 5000
CONFIG_FILE = "/etc/keystone/keystone.conf"
FERNET_KEYS_DIR = "/etc/keystone/fernet-keys"
CREDENTIAL_KEYS_DIR = "/etc/keystone/credential-keys"
USER = KollaUser("keystone", 42425)  # the keystone user and group of Kolla images

DATABASE_PASSWORD_KEY = "keystone-database-password"
ADMIN_PASSWORD_KEY = "keystone-admin-password"
FERNET_KEY_PREFIX = "keystone-fernet-"
CREDENTIAL_KEY_PREFIX = "keystone-credential-"
AUTHTOKEN_CACHE_KEY = "authtoken-cache-key"  # every service's [keystone_authtoken] cache
ADMIN_USER = "admin"
ADMIN_PROJECT = "admin"


def keystone_spec(ctx: CloudContext) -> KeystoneSpec:
    return ctx.spec.services.keystone


def identity_urls(ctx: CloudContext) -> dict[str, str]:
    """Catalog URLs of the identity service (unversioned, as keystone recommends)."""
    return service_urls(ctx, keystone_spec(ctx).endpoints, "keystone", PORT)


def auth_url(ctx: CloudContext, interface: str = "internal") -> str:
    return identity_urls(ctx)[interface] + "/v3"


def authtoken(ctx: CloudContext, user: str, password_key: str) -> dict[str, Any]:
    """The [keystone_authtoken] section every API service validates tokens with."""
    identity = identity_urls(ctx)
    return {
        "www_authenticate_uri": identity["public"],
        "auth_url": identity["internal"],
        "auth_type": "password",
        "project_domain_id": "default",
        "user_domain_id": "default",
        "project_name": "service",
        "username": user,
        "password": ctx.credentials[password_key],
        "region_name": ctx.spec.region,
        "interface": "internal",
        "memcached_servers": memcached.servers(ctx),
        # validated tokens cached in memcached are encrypted and authenticated with a key only the
        # services hold: whoever reaches memcached cannot read them or plant a token of their own
        "memcache_security_strategy": "ENCRYPT",
        "memcache_secret_key": ctx.credentials[AUTHTOKEN_CACHE_KEY],
        "service_token_roles_required": True,
    }


def key_repositories(ctx: CloudContext) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The fernet and credential key repositories as (volumes, mounts), straight from their Secrets:
    a rotation reaches running pods."""
    keys = {"fernet-keys": FERNET_KEYS_DIR, "credential-keys": CREDENTIAL_KEYS_DIR}
    volumes = [
        {"name": n, "secret": {"secretName": ctx.object_name(f"keystone-{n}"), "defaultMode": 0o440}} for n in keys
    ]
    return volumes, [{"name": n, "mountPath": path, "readOnly": True} for n, path in keys.items()]


def security_compliance(rules: SecurityCompliance) -> dict[str, Any]:
    """[security_compliance] as the spec sets it; what it leaves unset keeps keystone's default."""
    options: dict[str, Any] = {
        "lockout_failure_attempts": rules.lockout_failure_attempts,
        "lockout_duration": rules.lockout_duration_seconds if rules.lockout_failure_attempts else None,
        "password_expires_days": rules.password_expires_days,
        "unique_last_password_count": rules.unique_last_password_count,
        "minimum_password_age": rules.minimum_password_age_days,
        # oslo.config substitutes $name in values: $$ keeps a regex's anchors and dollars as written
        "password_regex": rules.password_regex.replace("$", "$$") if rules.password_regex else None,
        "password_regex_description": rules.password_regex_description,
        "change_password_upon_first_use": rules.change_password_upon_first_use or None,
        "disable_user_account_days_inactive": rules.disable_user_account_days_inactive,
    }
    return {key: value for key, value in options.items() if value is not None}


def registration_step(
    ctx: CloudContext,
    service: Service,
    service_type: str,
    description: str,
    urls: dict[str, str],
    password_key: str,
    catalog_name: str | None = None,
) -> Step:
    """A Job from the stackops image that registers `service` with keystone: its user (named after
    the service) with the admin and service roles, its catalog entry and public/internal endpoints.

    A service with a second catalog entry (heat's cloudformation API) registers it under its own
    `catalog_name`, with a Job of its own and the same user."""
    component = f"registration-{catalog_name}" if catalog_name else "registration"
    return Step(
        f"{service.name}-{component}",
        service.name,
        ctx.render(
            "keystone/registration-job.yaml.j2",
            service=service.name,
            component=component,
            catalog_name=catalog_name or service.name,
            service_type=service_type,
            description=description,
            urls=urls,
            user=service.name,
            password_key=password_key,
            auth_url=auth_url(ctx),
            admin_user=ADMIN_USER,
            admin_project=ADMIN_PROJECT,
            admin_password_key=ADMIN_PASSWORD_KEY,
            resources=SERVICE.resources(ctx.spec, "registration"),
        ),
    )


class Keystone(Service):
    name = "keystone"
    spec_path = "services.keystone"
    depends_on = ("mariadb", "memcached")
    openstack_images = OpenStackImages(USER, (OpenStackImage("keystone"),))
    config_files: ClassVar[dict[str, tuple[str, ...]]] = {
        "keystone.conf": (
            "keystone", "oslo.cache", "oslo.db", "oslo.log", "oslo.messaging", "oslo.middleware", "oslo.policy",
            "osprofiler",
        ),
    }  # fmt: skip
    components: ClassVar[dict[str, Resources]] = {
        "api": Resources(cpu="25m", memory="256Mi"),
        "db-sync": Resources(cpu="25m", memory="256Mi"),
        "bootstrap": Resources(cpu="25m", memory="256Mi"),
        "registration": Resources(cpu="10m", memory="128Mi"),
        "upgrade-check": Resources(cpu="25m", memory="256Mi"),
        "db-expand": Resources(cpu="25m", memory="256Mi"),
        "db-migrate": Resources(cpu="25m", memory="256Mi"),
        "db-contract": Resources(cpu="25m", memory="256Mi"),
    }

    def problems(self, spec: OpenStackCloudSpec) -> list[RenderError]:
        found = super().problems(spec)
        regex = spec.services.keystone.security_compliance.password_regex
        rejected = [p for p in SAMPLE_PASSWORDS if regex and not re.match(regex, p)]
        if rejected:
            found.append(
                RenderError(
                    "spec.services.keystone.securityCompliance.passwordRegex",
                    f"refuses passwords stackops generates for the cloud's own users (e.g. {rejected[0]!r}): "
                    f"they are {PASSWORD_SHAPE}",
                )
            )
        return found

    def credentials(self, spec: OpenStackCloudSpec) -> list[CredentialSpec]:
        return [
            CredentialSpec(DATABASE_PASSWORD_KEY),
            CredentialSpec(ADMIN_PASSWORD_KEY),
            CredentialSpec(AUTHTOKEN_CACHE_KEY),
            *fernet_specs(FERNET_KEY_PREFIX),
            *fernet_specs(CREDENTIAL_KEY_PREFIX),
        ]

    def key_rotations(self, spec: OpenStackCloudSpec) -> list[KeyRotation]:
        # Credential keys are not rotated: that needs `keystone-manage credential_migrate` in between.
        fernet = spec.services.keystone.fernet
        return [KeyRotation(FERNET_KEY_PREFIX, fernet.rotation_hours, fernet.max_active_keys)]

    def config(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        spec = keystone_spec(ctx)
        return {
            "DEFAULT": {"debug": False, "use_stderr": True},
            "database": mariadb.oslo_db(ctx, "keystone", "keystone", DATABASE_PASSWORD_KEY),
            "token": {"provider": "fernet", "expiration": 86400},
            "fernet_tokens": {
                "key_repository": FERNET_KEYS_DIR,
                "max_active_keys": spec.fernet.max_active_keys,
            },
            "fernet_receipts": {
                "key_repository": FERNET_KEYS_DIR,
                "max_active_keys": spec.fernet.max_active_keys,
            },
            "credential": {"key_repository": CREDENTIAL_KEYS_DIR},
            "cache": {
                "enabled": True,
                "backend": "oslo_cache.memcache_pool",
                "memcache_servers": memcached.servers(ctx),
            },
            "oslo_middleware": {"enable_proxy_headers_parsing": True},
            "oslo_policy": policy.oslo_policy(ctx, self),
            "security_compliance": security_compliance(spec.security_compliance),
        }

    def commands(self, ctx: CloudContext) -> dict[str, KollaCommand]:
        """What each keystone container runs: the API, and the two Jobs."""
        conf = ConfigFile("keystone.conf", CONFIG_FILE, "keystone", "0600")
        keys = (
            Permission(FERNET_KEYS_DIR, "keystone:keystone"),
            Permission(CREDENTIAL_KEYS_DIR, "keystone:keystone"),
        )
        manage = f"keystone-manage --config-file {CONFIG_FILE}"
        urls = identity_urls(ctx)
        bootstrap = " ".join(
            [
                f"{manage} bootstrap",
                f"--bootstrap-username {ADMIN_USER}",
                f"--bootstrap-project-name {ADMIN_PROJECT}",
                "--bootstrap-role-name admin",
                "--bootstrap-service-name keystone",
                f"--bootstrap-region-id {ctx.spec.region}",
                f"--bootstrap-admin-url {urls['internal']}",
                f"--bootstrap-internal-url {urls['internal']}",
                f"--bootstrap-public-url {urls['public']}",
            ]
        )
        return {
            "api": api.uwsgi_command(self.name, "keystone", "/etc/keystone", conf, permissions=keys),
            "db-sync": KollaCommand(f"{manage} db_sync", (conf,)),
            "bootstrap": KollaCommand(bootstrap, (conf,)),
        }

    def endpoints(self, ctx: CloudContext) -> dict[str, str]:
        return {"identity": auth_url(ctx, "public")}

    def keystone_conf(self, ctx: CloudContext) -> str:
        return render_ini(self.config(ctx), keystone_spec(ctx).config)

    def upgrade(self, ctx: CloudContext) -> ServiceUpgrade:
        """Keystone's rolling upgrade: expand, migrate, the new release's API, contract. (`--migrate`
        has been a no-op since keystone's migrations moved to alembic; it stays, as documented.)"""
        conf = ConfigFile("keystone.conf", CONFIG_FILE, "keystone", "0600")
        db_sync = f"keystone-manage --config-file {CONFIG_FILE} db_sync"
        # keystone-status starts keystone's token and receipt providers before it reads its config
        # file: they look for keys at the default repository, which is where these are mounted
        volumes, mounts = key_repositories(ctx)
        return ServiceUpgrade(
            image="keystone",
            uid=USER.uid,
            volumes=tuple(volumes),
            mounts=tuple(mounts),
            files={"keystone.conf": self.keystone_conf(ctx)},
            check=KollaCommand(f"keystone-status --config-file {CONFIG_FILE} upgrade check", (conf,)),
            expand={
                "db-expand": KollaCommand(f"{db_sync} --expand", (conf,)),
                "db-migrate": KollaCommand(f"{db_sync} --migrate", (conf,)),
            },
            contract={"db-contract": KollaCommand(f"{db_sync} --contract", (conf,))},
        )

    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = keystone_spec(ctx)
        commands = self.commands(ctx)
        files = {
            "keystone.conf": self.keystone_conf(ctx),
            api.uwsgi_file(self.name): api.uwsgi_config(ctx, "keystone-public", PORT, "keystone/wsgi/api.py"),
        }
        kolla = api.kolla(ctx, self, "keystone", files, commands, USER.uid)
        config = kolla.config
        volumes, mounts = key_repositories(ctx)
        # the admin password comes from OS_BOOTSTRAP_PASSWORD, never from the command line
        bootstrap_password = ctx.secret_env("OS_BOOTSTRAP_PASSWORD", ADMIN_PASSWORD_KEY)
        return [
            Step("keystone-config", self.name, [config.obj, *ctx.render("keystone/keys.yaml.j2")]),
            mariadb.database_step(ctx, self, ["keystone"], "keystone", DATABASE_PASSWORD_KEY),
            api.job_step(ctx, self, "db-sync", kolla),
            # bootstrap starts keystone's token provider, which refuses to run without its key repository
            api.job_step(ctx, self, "bootstrap", kolla, [bootstrap_password], volumes, mounts),
            api.api_step(
                ctx,
                self,
                kolla,
                workload=spec,
                port=PORT,
                probe_path="/v3",
                extra_volumes=volumes,
                extra_mounts=mounts,
            ),
        ]


SERVICE = Keystone()
