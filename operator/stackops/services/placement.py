"""Placement: the inventory of resources (vCPU, memory, disk …) that nova schedules against.

Components: the API (Apache + mod_wsgi in the Kolla placement-api image) and a db-sync Job, after its
database and its registration in keystone's catalog.
"""

from __future__ import annotations

from typing import Any, ClassVar

from stackops.api.models import OpenStackCloudSpec, ServiceSpec
from stackops.credentials import CredentialSpec
from stackops.render.ini import render_ini
from stackops.render.kolla import ConfigFile, KollaCommand
from stackops.services import api, keystone, mariadb, policy
from stackops.services.base import CloudContext, Resources, Service, Step
from stackops.services.endpoints import service_urls
from stackops.services.health_checks import HealthCheck, ResourceProviders
from stackops.services.images import KollaUser, OpenStackImage, OpenStackImages
from stackops.services.upgrades import ServiceUpgrade

PORT = 8778
CONFIG_FILE = "/etc/placement/placement.conf"
USER = KollaUser("placement", 42482)  # the placement user of Kolla images
DATABASE_PASSWORD_KEY = "placement-database-password"
KEYSTONE_PASSWORD_KEY = "placement-keystone-password"


def placement_spec(ctx: CloudContext) -> ServiceSpec:
    return ctx.spec.services.placement


def urls(ctx: CloudContext) -> dict[str, str]:
    return service_urls(ctx, placement_spec(ctx).endpoints, "placement", PORT)


class Placement(Service):
    name = "placement"
    spec_path = "services.placement"
    depends_on = ("keystone",)
    openstack_images = OpenStackImages(USER, (OpenStackImage("placement-api"),))
    config_files: ClassVar[dict[str, tuple[str, ...]]] = {
        "placement.conf": (
            "placement.conf", "keystonemiddleware.auth_token", "oslo.log", "oslo.middleware", "oslo.policy",
            "osprofiler",
        ),
    }  # fmt: skip
    components: ClassVar[dict[str, Resources]] = {
        "api": Resources(cpu="25m", memory="256Mi"),
        "db-sync": Resources(cpu="25m", memory="256Mi"),
        "upgrade-check": Resources(cpu="25m", memory="256Mi"),
        "db-online-migrations": Resources(cpu="25m", memory="256Mi"),
    }

    def credentials(self, spec: OpenStackCloudSpec) -> list[CredentialSpec]:
        return [CredentialSpec(DATABASE_PASSWORD_KEY), CredentialSpec(KEYSTONE_PASSWORD_KEY)]

    def endpoints(self, ctx: CloudContext) -> dict[str, str]:
        return {"placement": urls(ctx)["public"]}

    def health_checks(self, ctx: CloudContext) -> list[HealthCheck]:
        return [ResourceProviders()]

    def config(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        return {
            "DEFAULT": {"debug": False},
            "api": {"auth_strategy": "keystone"},
            "placement_database": mariadb.oslo_db(ctx, "placement", "placement", DATABASE_PASSWORD_KEY),
            "keystone_authtoken": keystone.authtoken(ctx, self.name, KEYSTONE_PASSWORD_KEY),
            "oslo_middleware": {"enable_proxy_headers_parsing": True},
            "oslo_policy": policy.oslo_policy(ctx, self),
        }

    def placement_conf(self, ctx: CloudContext) -> str:
        return render_ini(self.config(ctx), placement_spec(ctx).config)

    def upgrade(self, ctx: CloudContext) -> ServiceUpgrade:
        """Placement's schema only grows (`db sync` before the new API); its online data migrations
        run once the whole cloud is on the new release."""
        conf = ConfigFile("placement.conf", CONFIG_FILE, "placement", "0600")
        manage = f"placement-manage --config-file {CONFIG_FILE} db"
        return ServiceUpgrade(
            image="placement-api",
            uid=USER.uid,
            files={"placement.conf": self.placement_conf(ctx)},
            check=KollaCommand(f"placement-status --config-file {CONFIG_FILE} upgrade check", (conf,)),
            expand={"db-sync": KollaCommand(f"{manage} sync", (conf,))},
            online={"db-online-migrations": KollaCommand(f"{manage} online_data_migrations", (conf,))},
        )

    def commands(self) -> dict[str, KollaCommand]:
        conf = ConfigFile("placement.conf", CONFIG_FILE, "placement", "0600")
        return {
            "api": api.uwsgi_command(self.name, "placement", "/etc/placement", conf),
            "db-sync": KollaCommand(f"placement-manage --config-file {CONFIG_FILE} db sync", (conf,)),
        }

    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = placement_spec(ctx)
        commands = self.commands()
        files = {
            "placement.conf": self.placement_conf(ctx),
            api.uwsgi_file(self.name): api.uwsgi_config(ctx, "placement-api", PORT, "placement/wsgi/api.py"),
        }
        kolla = api.kolla(ctx, self, "placement-api", files, commands, USER.uid)
        config = kolla.config
        return [
            Step("placement-config", self.name, [config.obj]),
            mariadb.database_step(ctx, self, ["placement"], "placement", DATABASE_PASSWORD_KEY),
            keystone.registration_step(ctx, self, "placement", "Placement API", urls(ctx), KEYSTONE_PASSWORD_KEY),
            api.job_step(ctx, self, "db-sync", kolla),
            api.api_step(ctx, self, kolla, workload=spec, port=PORT, probe_path="/"),
        ]


SERVICE = Placement()
