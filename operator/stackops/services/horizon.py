"""Horizon: the web dashboard.

One Deployment of the Kolla horizon image (uWSGI serving the Django app and its static files) behind a
Service and the cloud's public endpoint `horizon.<domain>`. Its settings are a rendered
local_settings.py: stackops' defaults (keystone's internal endpoint, sessions in the cloud's MariaDB,
the secret key from the credentials Secret) with the user's `settings` on top, every value written as
a Python literal in sorted order, so the same spec always gives the same file.

Sessions hold the user's keystone tokens, so they live in a database of horizon's own (Django's
database session backend), which only horizon's account reads, not in the memcached every service
reaches without authentication, where anyone could read a token or plant a session
(docs/security.md). A Job creates the session table before the dashboard starts (`db-sync`, and the
same command before an upgrade rolls it). Horizon's cache, which no longer holds sessions, is each
process's own memory: horizon needs no memcached.
"""

from __future__ import annotations

import pprint
from typing import Any, ClassVar
from urllib.parse import urlsplit

from stackops.api.models import HorizonSpec, OpenStackCloudSpec
from stackops.credentials import CredentialSpec
from stackops.render.kolla import ConfigFile, KollaCommand
from stackops.services import api, identity, mariadb
from stackops.services.base import CA_FILE_KEY, CloudContext, Resources, Service, Step
from stackops.services.endpoints import public_host, service_urls
from stackops.services.images import KollaUser, OpenStackImage, OpenStackImages
from stackops.services.upgrades import ServiceUpgrade

PORT = 8080
COMPONENT = "dashboard"
CONFIG_DIR = "/etc/openstack-dashboard"
# the image links openstack_dashboard/local/local_settings.py to this file
LOCAL_SETTINGS = f"{CONFIG_DIR}/local_settings.py"
USER = KollaUser("horizon", 42420)  # the horizon user of Kolla images
SECRET_KEY_KEY = "horizon-secret-key"
DATABASE = "horizon"  # the database and its account
DATABASE_PASSWORD_KEY = "horizon-database-password"
DB_SYNC = "db-sync"
# Django's session table, created by the same command at every release: the only table horizon's
# database holds (the extend start, which collects static files, is the dashboard's, not the Job's)
MIGRATE_SESSIONS = "django-admin migrate sessions --noinput --settings openstack_dashboard.settings"
JOB_ENV = ({"name": "KOLLA_SKIP_EXTEND_START", "value": "true"},)
SETTINGS_FILE = ConfigFile("local_settings.py", LOCAL_SETTINGS, "horizon", "0600")
CA_FILE = ConfigFile(CA_FILE_KEY, f"{CONFIG_DIR}/{CA_FILE_KEY}", "horizon", "0644")


def horizon_spec(ctx: CloudContext) -> HorizonSpec:
    return ctx.spec.services.horizon


def urls(ctx: CloudContext) -> dict[str, str]:
    return service_urls(ctx, horizon_spec(ctx).endpoints, "horizon", PORT, COMPONENT, "horizon")


def python_literal(value: Any) -> str:
    """A JSON value as Python source: dicts sorted by key, so equal values give equal text."""
    return pprint.pformat(value, width=100, sort_dicts=True)


def database(ctx: CloudContext) -> dict[str, Any]:
    """Django's connection to horizon's database, as its account (a connection per request:
    Django's default, so a restarted server or a rotated password needs nothing of the dashboard).
    With the server's TLS, PyMySQL verifies its certificate and name against the cloud's CA (given
    no CA, it would still upgrade to TLS, but verify nothing)."""
    db = mariadb.server(ctx)
    connection = {
        "ENGINE": "django.db.backends.mysql",
        "NAME": DATABASE,
        "USER": DATABASE,
        "PASSWORD": ctx.credentials[DATABASE_PASSWORD_KEY],
        "HOST": db.host,
        "PORT": db.port,
    }
    if db.tls:
        connection["OPTIONS"] = {"ssl": {"ca": CA_FILE.dest}}
    return connection


class Horizon(Service):
    name = "horizon"
    spec_path = "services.horizon"
    depends_on = ("keystone",)
    upgrade_after = ("nova",)  # the order of OpenStack's upgrade guides
    openstack_images = OpenStackImages(USER, (OpenStackImage("horizon"),))
    apis = (COMPONENT,)
    components: ClassVar[dict[str, Resources]] = {
        # collects and compresses its static files when it starts
        COMPONENT: Resources(cpu="25m", memory="512Mi"),
        DB_SYNC: Resources(cpu="25m", memory="256Mi"),
    }

    def credentials(self, spec: OpenStackCloudSpec) -> list[CredentialSpec]:
        # its database password rotates like every service's (docs/security.md, "Rotation")
        return [CredentialSpec(SECRET_KEY_KEY), CredentialSpec(DATABASE_PASSWORD_KEY, rotates=True)]

    def uses(self, spec: OpenStackCloudSpec) -> frozenset[str]:
        return super().uses(spec) | {mariadb.MARIADB.name}

    def endpoints(self, ctx: CloudContext) -> dict[str, str]:
        return {"dashboard": urls(ctx)["public"] + "/"}

    def default_settings(self, ctx: CloudContext) -> dict[str, Any]:
        spec = ctx.spec
        settings: dict[str, Any] = {
            "DEBUG": False,
            # requests come through the Service and the public endpoint, under any name
            "ALLOWED_HOSTS": ["*"],
            "SECRET_KEY": ctx.credentials[SECRET_KEY_KEY],
            "WEBROOT": "/",
            "OPENSTACK_KEYSTONE_URL": identity.auth_url(ctx, "internal"),
            "OPENSTACK_ENDPOINT_TYPE": "internalURL",
            # the cloud's CA, which verifies the internal endpoints' certificates (internal TLS)
            "OPENSTACK_SSL_CACERT": CA_FILE.dest,
            "OPENSTACK_KEYSTONE_DEFAULT_DOMAIN": "Default",
            # not `cached_db`: with a cache per process, another replica would read a stale session
            "SESSION_ENGINE": "django.contrib.sessions.backends.db",
            "DATABASES": {"default": database(ctx)},
            # what horizon caches besides sessions (a user's last session, for
            # SIMULTANEOUS_SESSIONS) stays in each process; horizon's own default is a memcached
            "CACHES": {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
            # the static files are compressed once when the container starts
            "COMPRESS_OFFLINE": True,
            "TIME_ZONE": "UTC",
            "OPENSTACK_CINDER_FEATURES": {
                "enable_backup": spec.services.cinder.enabled and spec.services.cinder.backup.enabled
            },
        }
        if public_host(ctx, "horizon"):
            public = urls(ctx)["public"]
            split = urlsplit(public)
            settings["CSRF_TRUSTED_ORIGINS"] = [f"{split.scheme}://{split.netloc}"]
            if split.scheme == "https":
                # TLS ends at the ingress: the forwarded scheme tells Django the request was secure
                settings |= {
                    "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
                    "CSRF_COOKIE_SECURE": True,
                    "SESSION_COOKIE_SECURE": True,
                }
        return settings

    def local_settings(self, ctx: CloudContext) -> str:
        settings = self.default_settings(ctx) | horizon_spec(ctx).settings
        literals = {name: python_literal(settings[name]) for name in sorted(settings)}
        return ctx.render_text("horizon/local_settings.py.j2", settings=literals)

    def upgrade(self, ctx: CloudContext) -> ServiceUpgrade | None:
        """The session table as the new release's Django makes it, before the dashboard rolls."""
        return ServiceUpgrade(
            image="horizon",
            uid=USER.uid,
            files={SETTINGS_FILE.source: self.local_settings(ctx)},
            expand={DB_SYNC: KollaCommand(MIGRATE_SESSIONS, (SETTINGS_FILE, CA_FILE))},
            env=JOB_ENV,
        )

    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = horizon_spec(ctx)
        commands = {
            COMPONENT: api.uwsgi_command(
                self.name,
                "horizon",
                CONFIG_DIR,
                SETTINGS_FILE,
                CA_FILE,
                component=COMPONENT,
                tls=api.server_tls(ctx, CONFIG_DIR),
            ),
            DB_SYNC: KollaCommand(MIGRATE_SESSIONS, (SETTINGS_FILE, CA_FILE)),
        }
        files = {
            "local_settings.py": self.local_settings(ctx),
            api.uwsgi_file(self.name, COMPONENT): api.uwsgi_config(
                ctx,
                "horizon",
                PORT,
                "openstack_dashboard/wsgi.py",
                static="static",
                user="horizon",
                tls=api.server_tls(ctx, CONFIG_DIR),
            ),
        }
        kolla = api.kolla(ctx, self, "horizon", files, commands, USER.uid)
        return [
            Step("horizon-config", self.name, [kolla.config.obj]),
            mariadb.database_step(ctx, self, [DATABASE], DATABASE, DATABASE_PASSWORD_KEY),
            api.job_step(ctx, self, DB_SYNC, kolla, env=JOB_ENV),
            api.api_step(
                ctx, self, kolla, workload=spec, port=PORT, probe_path="/auth/login/", component=COMPONENT,
                public_name="horizon",
            ),
        ]  # fmt: skip


SERVICE = Horizon()
