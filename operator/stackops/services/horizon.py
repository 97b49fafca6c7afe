"""Horizon: the web dashboard.

One Deployment of the Kolla horizon image (uWSGI serving the Django app and its static files) behind a
Service and the cloud's public endpoint `horizon.<domain>`. Its settings are a rendered
local_settings.py: stackops' defaults (keystone's internal endpoint, sessions in memcached, the secret
key from the credentials Secret) with the user's `settings` on top, every value written as a Python
literal in sorted order, so the same spec always gives the same file. Sessions live in the cache, so
horizon needs no database.
"""

from __future__ import annotations

import pprint
from typing import Any, ClassVar
from urllib.parse import urlsplit

from stackops.api.models import HorizonSpec, OpenStackCloudSpec
from stackops.credentials import CredentialSpec
from stackops.render.kolla import ConfigFile
from stackops.services import api, identity, memcached
from stackops.services.base import CloudContext, Resources, Service, Step
from stackops.services.endpoints import public_host, service_urls
from stackops.services.images import KollaUser, OpenStackImage, OpenStackImages

PORT = 8080
COMPONENT = "dashboard"
CONFIG_DIR = "/etc/openstack-dashboard"
# the image links openstack_dashboard/local/local_settings.py to this file
LOCAL_SETTINGS = f"{CONFIG_DIR}/local_settings.py"
USER = KollaUser("horizon", 42420)  # the horizon user of Kolla images
SECRET_KEY_KEY = "horizon-secret-key"


def horizon_spec(ctx: CloudContext) -> HorizonSpec:
    return ctx.spec.services.horizon


def urls(ctx: CloudContext) -> dict[str, str]:
    return service_urls(ctx, horizon_spec(ctx).endpoints, "horizon", PORT, COMPONENT, "horizon")


def python_literal(value: Any) -> str:
    """A JSON value as Python source: dicts sorted by key, so equal values give equal text."""
    return pprint.pformat(value, width=100, sort_dicts=True)


class Horizon(Service):
    name = "horizon"
    spec_path = "services.horizon"
    depends_on = ("keystone", "memcached")
    upgrade_after = ("nova",)  # the order of OpenStack's upgrade guides
    openstack_images = OpenStackImages(USER, (OpenStackImage("horizon"),))
    components: ClassVar[dict[str, Resources]] = {
        # collects and compresses its static files when it starts
        COMPONENT: Resources(cpu="25m", memory="512Mi"),
    }

    def credentials(self, spec: OpenStackCloudSpec) -> list[CredentialSpec]:
        return [CredentialSpec(SECRET_KEY_KEY)]

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
            "OPENSTACK_KEYSTONE_DEFAULT_DOMAIN": "Default",
            "SESSION_ENGINE": "django.contrib.sessions.backends.cache",
            "CACHES": {
                "default": {
                    "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
                    "LOCATION": memcached.servers(ctx),
                    # a cache outage logs users out rather than taking the dashboard down
                    "OPTIONS": {"ignore_exc": True},
                }
            },
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

    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = horizon_spec(ctx)
        settings = ConfigFile("local_settings.py", LOCAL_SETTINGS, "horizon", "0600")
        commands = {COMPONENT: api.uwsgi_command(self.name, "horizon", CONFIG_DIR, settings, component=COMPONENT)}
        files = {
            "local_settings.py": self.local_settings(ctx),
            api.uwsgi_file(self.name, COMPONENT): api.uwsgi_config(
                ctx, "horizon", PORT, "openstack_dashboard/wsgi.py", static="static", user="horizon"
            ),
        }
        kolla = api.kolla(ctx, self, "horizon", files, commands, USER.uid)
        return [
            Step("horizon-config", self.name, [kolla.config.obj]),
            api.api_step(
                ctx, self, kolla, workload=spec, port=PORT, probe_path="/auth/login/", component=COMPONENT,
                public_name="horizon",
            ),
        ]  # fmt: skip


SERVICE = Horizon()
