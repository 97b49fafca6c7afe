"""Placement: the inventory of resources (vCPU, memory, disk …) that nova schedules against.

Components: the API (uWSGI in the Kolla placement-api image) and a db-sync Job, after its
database and its registration in keystone's catalog.
"""

from __future__ import annotations

from typing import Any, ClassVar

from stackops.api.models import ServiceSpec
from stackops.services import api, policy
from stackops.services.base import CloudContext, Resources, Step
from stackops.services.health_checks import HealthCheck, ResourceProviders
from stackops.services.images import KollaUser, OpenStackImage, OpenStackImages
from stackops.services.openstack import CatalogEntry, DatabaseUpgrade, MainConfig, OpenStackService

CONFIG = MainConfig("placement.conf", "/etc/placement")
MANAGE = f"placement-manage --config-file {CONFIG.dest} db"


class Placement(OpenStackService[ServiceSpec]):
    name = "placement"
    spec_path = "services.placement"
    depends_on = ("keystone",)
    port = 8778
    openstack_images = OpenStackImages(KollaUser("placement", 42482), (OpenStackImage("placement-api"),))
    main_config = CONFIG
    databases = ("placement",)
    catalog = (CatalogEntry("placement", "Placement API"),)
    # Placement's schema only grows (`db sync` before the new API); its online data migrations run
    # once the whole cloud is on the new release.
    database_upgrade = DatabaseUpgrade(
        check=f"placement-status --config-file {CONFIG.dest} upgrade check",
        expand={"db-sync": f"{MANAGE} sync"},
        online={"db-online-migrations": f"{MANAGE} online_data_migrations"},
    )
    config_files: ClassVar[dict[str, tuple[str, ...]]] = {
        "placement.conf": (
            "placement.conf", "keystonemiddleware.auth_token", "oslo.log", "oslo.middleware", "oslo.policy",
            "osprofiler",
        ),
    }  # fmt: skip
    components: ClassVar[dict[str, Resources]] = {
        "api": Resources(cpu="25m", memory="256Mi"),
        "db-sync": Resources(cpu="25m", memory="256Mi"),
    }

    def health_checks(self, ctx: CloudContext) -> list[HealthCheck]:
        return [ResourceProviders()]

    def config(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        return {
            "DEFAULT": {"debug": False},
            "api": {"auth_strategy": "keystone"},
            "placement_database": self.oslo_db(ctx),
            "keystone_authtoken": self.authtoken(ctx),
            "oslo_middleware": {"enable_proxy_headers_parsing": True},
            "oslo_policy": policy.oslo_policy(ctx, self),
        }

    def steps(self, ctx: CloudContext) -> list[Step]:
        commands = {"api": self.uwsgi_command(ctx), "db-sync": self.command(f"{MANAGE} sync")}
        files = {
            **self.main_files(ctx),
            api.uwsgi_file(self.name): self.uwsgi_config(ctx, "placement-api", self.port, "placement/wsgi/api.py"),
        }
        kolla = self.kolla(ctx, files, commands)
        return [
            *self.preamble(ctx, kolla),
            api.job_step(ctx, self, "db-sync", kolla),
            api.api_step(ctx, self, kolla, workload=self.settings(ctx), port=self.port, probe_path="/"),
        ]


SERVICE = Placement()
