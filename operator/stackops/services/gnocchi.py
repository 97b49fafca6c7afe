"""Gnocchi: the metric store of telemetry. Ceilometer publishes its samples there, aodh evaluates
its threshold alarms on the aggregates, users read them (`metric` in the catalog).

Components: the API (uWSGI in the Kolla gnocchi-api image), which writes the measures it receives
into the incoming storage, and metricd, which aggregates them by each metric's archive policy into
the storage; the index (resources, metrics, archive policies) is in gnocchi's MariaDB database.
Both storages are the file driver on one PVC by default, so metricd runs beside the API in its pod
(a ReadWriteOnce volume is mounted on one node); Swift or Ceph instead are `config` overrides
([storage] and [incoming] driver and credentials, docs/telemetry.md). `gnocchi-upgrade` creates the
index's schema, the storage's layout and the default archive policies, with the volume mounted.

Gnocchi is versioned on its own (releases.py says which version each release installs) and has no
`gnocchi-status`: its upgrade is `gnocchi-upgrade` on the index alone (the file storage's layout is
the same from 4.6 to 4.7, and the running API holds the volume).
"""

from __future__ import annotations

from typing import Any, ClassVar

from stackops.api.models import GnocchiSpec
from stackops.render.kolla import Permission
from stackops.services import api, policy
from stackops.services.base import CloudContext, Resources, Step
from stackops.services.health_checks import HealthCheck, MetricsBacklog
from stackops.services.images import KollaUser, OpenStackImage, OpenStackImages
from stackops.services.openstack import CatalogEntry, DatabaseUpgrade, MainConfig, OpenStackService

CONFIG = MainConfig("gnocchi.conf", "/etc/gnocchi")
PORT = 8041
STORAGE_DIR = "/var/lib/gnocchi"
# the index only: the storage's layout is kept across gnocchi's versions, and its volume is the API's
UPGRADE = "gnocchi-upgrade --skip-storage --skip-incoming --skip-archive-policies-creation"


class Gnocchi(OpenStackService[GnocchiSpec]):
    name = "gnocchi"
    spec_path = "services.gnocchi"
    depends_on = ("keystone",)
    upgrade_after = ("heat",)
    port = PORT
    openstack_images = OpenStackImages(
        KollaUser("gnocchi", 42416), tuple(OpenStackImage(f"gnocchi-{c}") for c in ("api", "metricd"))
    )
    main_config = CONFIG
    databases = ("gnocchi",)
    catalog = (CatalogEntry("metric", "Gnocchi metric service"),)
    database_upgrade = DatabaseUpgrade(check=None, expand={"db-upgrade": UPGRADE})
    config_files: ClassVar[dict[str, tuple[str, ...]]] = {
        "gnocchi.conf": ("gnocchi", "keystonemiddleware.auth_token", "oslo.middleware.healthcheck", "oslo.policy"),
    }
    components: ClassVar[dict[str, Resources]] = {
        "api": Resources(cpu="25m", memory="192Mi"),
        "metricd": Resources(cpu="25m", memory="192Mi"),
        "db-sync": Resources(cpu="25m", memory="192Mi"),
    }

    def health_checks(self, ctx: CloudContext) -> list[HealthCheck]:
        return [MetricsBacklog()]

    def config(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        return {
            "DEFAULT": {"debug": False},
            "api": {"auth_mode": "keystone"},
            "indexer": {"url": self.oslo_db(ctx)["connection"]},
            # the coordination of metricd's workers is the index's database (gnocchi's default)
            "storage": {"driver": "file", "file_basepath": STORAGE_DIR},
            # one worker a pod: more are a replica, or a `config` override
            "metricd": {"workers": 1},
            "keystone_authtoken": self.authtoken(ctx),
            "oslo_policy": policy.oslo_policy(ctx, self),
        }

    def storage(self, ctx: CloudContext) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """The PVC, and the volume and mount of it every gnocchi pod has."""
        claim = ctx.object_name(self.name, "storage")
        (pvc,) = ctx.render("gnocchi/storage-pvc.yaml.j2", name=claim, storage=self.settings(ctx).storage)
        volume = {"name": "storage", "persistentVolumeClaim": {"claimName": claim}}
        return pvc, volume, {"name": "storage", "mountPath": STORAGE_DIR}

    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = self.settings(ctx)
        storage = [Permission(STORAGE_DIR, "gnocchi:gnocchi", recurse=True)]
        commands = {
            "api": self.uwsgi_command(ctx, permissions=storage),
            "metricd": self.command(f"gnocchi-metricd --config-file {CONFIG.dest}", permissions=storage),
            "db-sync": self.command(f"gnocchi-upgrade --config-file {CONFIG.dest}", permissions=storage),
        }
        # gnocchi.rest.wsgi: in every 4.x package (4.7's gnocchi.wsgi.api is the same application)
        files = {
            **self.main_files(ctx),
            api.uwsgi_file(self.name): self.uwsgi_config(ctx, "gnocchi-api", PORT, "gnocchi/rest/wsgi.py"),
        }
        kolla = self.kolla(ctx, files, commands)
        pvc, volume, mount = self.storage(ctx)
        metricd = api.sidecar(ctx, self, "metricd", self.in_image(ctx, kolla, "gnocchi-metricd"), mounts=[mount])
        return [
            *self.preamble(ctx, kolla, pvc),
            api.job_step(ctx, self, "db-sync", kolla, extra_volumes=[volume], extra_mounts=[mount]),
            api.api_step(
                ctx, self, kolla, workload=spec, port=PORT, probe_path="/healthcheck",
                extra_volumes=[volume], extra_mounts=[mount], sidecars=[metricd],
            ),
        ]  # fmt: skip


SERVICE = Gnocchi()
