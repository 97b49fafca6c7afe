"""Keystone: identity, tokens and the service catalog.

Components: the API (uWSGI in the Kolla image), a db-sync Job and a bootstrap Job that
creates the admin user, the region and keystone's own catalog entries. Fernet and credential keys live
in the credentials Secret; the operator rotates the fernet keys (stackops.credentials.rotate_fernet),
and pods see the new keys without a restart because the key Secret is mounted directly. A credential
rotation rotates the credential keys too, and `keystone-manage credential_migrate` re-encrypts the
stored credentials with the new primary key once every API pod has it (docs/security.md, "Rotation").
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, ClassVar

from stackops import services
from stackops.api.models import KeystoneSpec, OpenStackCloudSpec, SecurityCompliance
from stackops.credentials import (
    PASSWORD_SHAPE,
    SAMPLE_PASSWORDS,
    CredentialSpec,
    KeyRotation,
    RotationPhase,
    fernet_specs,
)
from stackops.render.kolla import KollaCommand, Permission
from stackops.services import api, memcached, policy
from stackops.services.base import CloudContext, RenderError, Resources, Step
from stackops.services.identity import (
    ADMIN_PASSWORD_KEY,
    ADMIN_PROJECT,
    ADMIN_USER,
    AUTHTOKEN_CACHE_KEY,
    BOOTSTRAP,
    BOOTSTRAP_PASSWORD_ENV,
    DEREGISTRATION,
    PORT,
    REGISTRATION,
    SERVICE_TYPE,
    auth_url,
    deregistration_step,
    identity_urls,
)
from stackops.services.images import KollaUser, OpenStackImage, OpenStackImages
from stackops.services.openstack import REGISTRATION_JOB, DatabaseUpgrade, MainConfig, OpenStackService
from stackops.services.upgrades import ServiceUpgrade

CONFIG = MainConfig("keystone.conf", "/etc/keystone")
MANAGE = f"keystone-manage --config-file {CONFIG.dest}"
DB_SYNC = f"{MANAGE} db_sync"
FERNET_KEYS_DIR = "/etc/keystone/fernet-keys"
CREDENTIAL_KEYS_DIR = "/etc/keystone/credential-keys"
FERNET_KEY_PREFIX = "keystone-fernet-"
CREDENTIAL_KEY_PREFIX = "keystone-credential-"
CREDENTIAL_MIGRATE = "credential-migrate"  # the component of a rotation's migration Job


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


class Keystone(OpenStackService[KeystoneSpec]):
    """Keystone has no catalog registration Job: its bootstrap Job registers it."""

    name = "keystone"
    spec_path = "services.keystone"
    depends_on = ("mariadb", "memcached")
    port = PORT
    apis = ("api",)  # its catalog entry is made by its bootstrap Job, not declared
    openstack_images = OpenStackImages(KollaUser("keystone", 42425), (OpenStackImage("keystone"),))
    main_config = CONFIG
    databases = ("keystone",)
    # Keystone's rolling upgrade: expand, migrate, the new release's API, contract. (`--migrate` has
    # been a no-op since keystone's migrations moved to alembic; it stays, as documented.)
    database_upgrade = DatabaseUpgrade(
        check=f"keystone-status --config-file {CONFIG.dest} upgrade check",
        expand={"db-expand": f"{DB_SYNC} --expand", "db-migrate": f"{DB_SYNC} --migrate"},
        contract={"db-contract": f"{DB_SYNC} --contract"},
    )
    config_files: ClassVar[dict[str, tuple[str, ...]]] = {
        "keystone.conf": (
            "keystone", "oslo.cache", "oslo.db", "oslo.log", "oslo.messaging", "oslo.middleware", "oslo.policy",
            "osprofiler",
        ),
    }  # fmt: skip
    components: ClassVar[dict[str, Resources]] = {
        "api": Resources(cpu="25m", memory="256Mi"),
        "db-sync": Resources(cpu="25m", memory="256Mi"),
        BOOTSTRAP: Resources(cpu="25m", memory="256Mi"),
        # every service's registration Job, where the service does not size its own
        REGISTRATION: REGISTRATION_JOB,
        DEREGISTRATION: REGISTRATION_JOB,
        CREDENTIAL_MIGRATE: Resources(cpu="25m", memory="256Mi"),
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

    def own_credentials(self, spec: OpenStackCloudSpec) -> list[CredentialSpec]:
        return [
            # one account: the bootstrap Job switches it (docs/security.md, "Rotation")
            CredentialSpec(ADMIN_PASSWORD_KEY, rotates=True),
            CredentialSpec(AUTHTOKEN_CACHE_KEY),
            *fernet_specs(FERNET_KEY_PREFIX),
            *fernet_specs(CREDENTIAL_KEY_PREFIX),
        ]

    def key_rotations(self, spec: OpenStackCloudSpec) -> list[KeyRotation]:
        # Credential keys are not rotated on a schedule: that needs `keystone-manage
        # credential_migrate` in between, which a credential rotation runs (migrated_keys).
        fernet = spec.services.keystone.fernet
        return [KeyRotation(FERNET_KEY_PREFIX, fernet.rotation_hours, fernet.max_active_keys)]

    def migrated_keys(self, spec: OpenStackCloudSpec) -> list[str]:
        return [CREDENTIAL_KEY_PREFIX]

    def credential_migration(self, ctx: CloudContext) -> Step | None:
        """While a credential rotation revokes (every API pod rolled, so reading the rotated key
        repository): the Job re-encrypting keystone's stored credentials with the new primary key,
        after which the old keys can go. Its config is a Secret of its own, so that the API's does
        not change and roll for it."""
        if ctx.credentials.rotation.phase is not RotationPhase.REVOKING:
            return None
        # the user and group are required by its parser, though only the rotate commands use them;
        # the key repository is a read-only Secret volume, which migrating only reads
        user = self.user.name
        line = f"{MANAGE} credential_migrate --keystone-user {user} --keystone-group {user}"
        command = {CREDENTIAL_MIGRATE: self.command(line)}
        first = self.openstack_images.images[0]
        kolla = api.kolla(ctx, self, first.name, self.main_files(ctx), command, self.user.uid, part="rotation")
        volumes, mounts = key_repositories(ctx)
        job = api.job_step(ctx, self, CREDENTIAL_MIGRATE, kolla, (), volumes, mounts)
        return Step(job.name, self.name, [kolla.config.obj, *job.objects])

    def config(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        spec = self.settings(ctx)
        # keystone's notifications go to barbican's listener alone (ceilometer meters no keystone event)
        notifications = self.notifications(ctx)
        # the basic format's payload names the resource (`resource_info`), which listeners read
        basic = {"notification_format": "basic"} if notifications else {}
        return {
            "DEFAULT": {"debug": False, "use_stderr": True, **basic},
            "database": self.oslo_db(ctx),
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
            "cache": memcached.oslo_cache(ctx, self.ca_file),
            "oslo_middleware": {"enable_proxy_headers_parsing": True},
            "oslo_policy": policy.oslo_policy(ctx, self),
            "security_compliance": security_compliance(spec.security_compliance),
            **notifications,
        }

    def commands(self, ctx: CloudContext) -> dict[str, KollaCommand]:
        """What each keystone container runs: the API, and the two Jobs."""
        keys = (
            Permission(FERNET_KEYS_DIR, "keystone:keystone"),
            Permission(CREDENTIAL_KEYS_DIR, "keystone:keystone"),
        )
        urls = identity_urls(ctx)
        bootstrap = " ".join(
            [
                f"{MANAGE} bootstrap",
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
            "api": self.uwsgi_command(ctx, permissions=keys),
            "db-sync": self.command(DB_SYNC),
            BOOTSTRAP: self.command(bootstrap),
        }

    def endpoints(self, ctx: CloudContext) -> dict[str, str]:
        return {SERVICE_TYPE: auth_url(ctx, "public")}

    def upgrade(self, ctx: CloudContext) -> ServiceUpgrade | None:
        """keystone-status starts keystone's token and receipt providers before it reads its config
        file: they look for keys at the default repository, which is where these are mounted."""
        declared = super().upgrade(ctx)
        assert declared is not None
        volumes, mounts = key_repositories(ctx)
        return replace(declared, volumes=tuple(volumes), mounts=tuple(mounts))

    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = self.settings(ctx)
        files = {
            **self.main_files(ctx),
            api.uwsgi_file(self.name): self.uwsgi_config(ctx, "keystone-public", PORT, "keystone/wsgi/api.py"),
        }
        kolla = self.kolla(ctx, files, self.commands(ctx))
        volumes, mounts = key_repositories(ctx)
        # the admin password comes from OS_BOOTSTRAP_PASSWORD, never from the command line; a
        # rotation's new one once configs switch to new values: the Job runs again and sets it
        password_key = ctx.credentials.live_key(ADMIN_PASSWORD_KEY)
        bootstrap_password = ctx.secret_env(BOOTSTRAP_PASSWORD_ENV, password_key)
        steps = [
            *self.preamble(ctx, kolla, *ctx.render("keystone/keys.yaml.j2")),
            api.job_step(ctx, self, "db-sync", kolla),
            # bootstrap starts keystone's token provider, which refuses to run without its key repository
            api.job_step(ctx, self, BOOTSTRAP, kolla, [bootstrap_password], volumes, mounts),
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
        migration = self.credential_migration(ctx)
        if migration is not None:
            steps.append(migration)
        # once the API serves: what disabled services registered leaves the catalog
        retired = [s for s in services.all_services() if isinstance(s, OpenStackService) and not s.enabled(ctx.spec)]
        entries = [entry for s in retired for entry in s.catalog_names()]
        cleanup = deregistration_step(ctx, self, entries, [user for s in retired for user in s.keystone_users()])
        return steps if cleanup is None else [*steps, cleanup]


SERVICE = Keystone()
