"""Aodh: alarms on telemetry. Its threshold alarms watch gnocchi's aggregates
(`gnocchi_resources_threshold`, `gnocchi_aggregation_by_resources_threshold` …): when one crosses its
threshold, the alarm changes state and its actions are carried out (a webhook: a Heat autoscaling
policy's URL, say).

Components: the API (uWSGI in the Kolla aodh-api image, `alarming` in the catalog), the evaluator,
which asks gnocchi for each alarm's aggregates every evaluation interval as aodh's own keystone user,
the notifier, which carries out the actions of the alarms the evaluator changed (it hands them over
RabbitMQ), and the listener, which evaluates event alarms on the events sent to its topic; a db-sync
Job after its database, its RabbitMQ user and its registration in keystone's catalog.
"""

from __future__ import annotations

from typing import Any, ClassVar

from stackops.api.models import AodhSpec
from stackops.render.kolla import KollaCommand
from stackops.services import api, policy, rabbitmq
from stackops.services.base import CloudContext, Resources, Step
from stackops.services.health_checks import AlarmsListed, HealthCheck
from stackops.services.images import KollaUser, OpenStackImage, OpenStackImages
from stackops.services.openstack import CatalogEntry, DatabaseUpgrade, MainConfig, OpenStackService

# aodh's API reads its config from oslo.config's default places (its WSGI module passes no file)
CONFIG = MainConfig("aodh.conf", "/etc/aodh")
DB_SYNC = f"aodh-dbsync --config-file {CONFIG.dest}"
PORT = 8042
WORKERS = ("evaluator", "notifier", "listener")


class Aodh(OpenStackService[AodhSpec]):
    name = "aodh"
    spec_path = "services.aodh"
    # gnocchi holds what its threshold alarms are evaluated on
    depends_on = ("keystone", "rabbitmq", "gnocchi")
    upgrade_after = ("gnocchi",)
    port = PORT
    openstack_images = OpenStackImages(
        KollaUser("aodh", 42402), tuple(OpenStackImage(f"aodh-{c}") for c in ("api", *WORKERS))
    )
    main_config = CONFIG
    databases = ("aodh",)
    messaging = True
    catalog = (CatalogEntry("alarming", "Aodh alarming service"),)
    database_upgrade = DatabaseUpgrade(
        check=f"aodh-status --config-file {CONFIG.dest} upgrade check", expand={"db-sync": DB_SYNC}
    )
    config_files: ClassVar[dict[str, tuple[str, ...]]] = {
        "aodh.conf": (
            "aodh", "aodh-auth", "keystonemiddleware.auth_token", "oslo.db", "oslo.log", "oslo.messaging",
            "oslo.middleware.healthcheck", "oslo.middleware.http_proxy_to_wsgi", "oslo.policy",
        ),
    }  # fmt: skip
    components: ClassVar[dict[str, Resources]] = {
        "api": Resources(cpu="25m", memory="192Mi"),
        "evaluator": Resources(cpu="10m", memory="128Mi"),
        "notifier": Resources(cpu="10m", memory="128Mi"),
        "listener": Resources(cpu="10m", memory="128Mi"),
        "db-sync": Resources(cpu="25m", memory="192Mi"),
    }

    def health_checks(self, ctx: CloudContext) -> list[HealthCheck]:
        return [AlarmsListed()]

    def notifier_ca(self, ctx: CloudContext) -> dict[str, str]:
        """Alarm actions call URLs over https: heat's signal URLs among them, which are the cloud's
        own endpoints; with internal TLS they are verified with the cloud's CA (one bundle for all
        actions: an https action outside the cloud needs its CA added to that file)."""
        return {"rest_notifier_ca_bundle_certificate_path": self.ca_file} if ctx.internal_tls else {}

    def config(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        # aodh's policy_file defaults to the one in its package: the overrides name theirs
        overrides = {"policy_file": f"{CONFIG.directory}/{policy.POLICY_FILE}"} if self.settings(ctx).policy else {}
        return {
            "DEFAULT": {"debug": False, "transport_url": self.transport_url(ctx), **self.notifier_ca(ctx)},
            "database": self.oslo_db(ctx),
            "keystone_authtoken": self.authtoken(ctx),
            # how the evaluator reaches gnocchi: aodh's user, the internal endpoints of the region
            "service_credentials": {
                **self.service_auth(ctx),
                "interface": "internal",
                "region_name": ctx.spec.region,
            },
            "oslo_middleware": {"enable_proxy_headers_parsing": True},
            "oslo_policy": policy.oslo_policy(ctx, self) | overrides,
            **rabbitmq.oslo_messaging(ctx, self.ca_file),
        }

    def commands(self, ctx: CloudContext) -> dict[str, KollaCommand]:
        workers = {c: self.command(f"aodh-{c} --config-file {CONFIG.dest}") for c in WORKERS}
        return {"api": self.uwsgi_command(ctx), **workers, "db-sync": self.command(DB_SYNC)}

    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = self.settings(ctx)
        wsgi = api.wsgi_file(ctx.spec.release, "aodh/wsgi/api.py", "aodh/api/app.wsgi")
        files = {**self.main_files(ctx), api.uwsgi_file(self.name): self.uwsgi_config(ctx, "aodh-api", PORT, wsgi)}
        kolla = self.kolla(ctx, files, self.commands(ctx))
        # the notifier and the listener hold their connection to RabbitMQ; the evaluator opens one to
        # hand an alarm's change over, and is probed by nothing but its process. One evaluator: two
        # would each evaluate every alarm, unless [coordination] backend_url partitions them
        probes = {"notifier": rabbitmq.probes("aodh-notifier"), "listener": rabbitmq.probes("aodh-listener")}
        replicas = {"evaluator": 1}
        workers = [
            api.worker_step(
                ctx, self, c, self.in_image(ctx, kolla, f"aodh-{c}"),
                replicas=replicas.get(c, spec.replicas), probes=probes.get(c),
            )
            for c in WORKERS
        ]  # fmt: skip
        return [
            *self.preamble(ctx, kolla),
            api.job_step(ctx, self, "db-sync", kolla),
            api.api_step(ctx, self, kolla, workload=spec, port=PORT, probe_path="/healthcheck"),
            *workers,
        ]


SERVICE = Aodh()
