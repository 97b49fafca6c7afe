"""Glance: the image service. Images live on a PVC by default, or in Ceph RBD.

Components: the API (uWSGI serving glance's WSGI module in the Kolla glance-api image) and a db-sync
Job, after its database and its registration in keystone's catalog.
"""

from __future__ import annotations

from typing import Any, ClassVar

from stackops.api.models import GlanceSpec, OpenStackCloudSpec
from stackops.credentials import CredentialSpec
from stackops.render.ini import render_ini
from stackops.render.kolla import ConfigFile, KollaCommand, Permission
from stackops.services import api, keystone, mariadb, policy
from stackops.services.base import CloudContext, Resources, Service, Step
from stackops.services.endpoints import service_urls
from stackops.upgrade.declare import ServiceUpgrade

PORT = 9292
CONFIG_DIR = "/etc/glance"
IMAGES_DIR = "/var/lib/glance/images"
GLANCE_UID = 42415  # the glance user of Kolla images
DATABASE_PASSWORD_KEY = "glance-database-password"
KEYSTONE_PASSWORD_KEY = "glance-keystone-password"


def glance_spec(ctx: CloudContext) -> GlanceSpec:
    return ctx.spec.services.glance


def urls(ctx: CloudContext) -> dict[str, str]:
    return service_urls(ctx, glance_spec(ctx).endpoints, "glance", PORT)


class Glance(Service):
    name = "glance"
    spec_path = "services.glance"
    depends_on = ("keystone",)
    images = ("glance-api",)
    config_files: ClassVar[dict[str, tuple[str, ...]]] = {
        "glance-api.conf": (
            "glance.api", "glance.multi_store", "keystonemiddleware.auth_token", "oslo.db", "oslo.log",
            "oslo.middleware", "oslo.policy",
        ),
    }  # fmt: skip
    components: ClassVar[dict[str, Resources]] = {
        "api": Resources(cpu="100m", memory="384Mi"),
        "db-sync": Resources(cpu="100m", memory="256Mi"),
        "metadefs": Resources(cpu="100m", memory="256Mi"),
        "upgrade-check": Resources(cpu="100m", memory="256Mi"),
        "db-expand": Resources(cpu="100m", memory="256Mi"),
        "db-migrate": Resources(cpu="100m", memory="256Mi"),
        "db-contract": Resources(cpu="100m", memory="256Mi"),
    }

    def credentials(self, spec: OpenStackCloudSpec) -> list[CredentialSpec]:
        return [CredentialSpec(DATABASE_PASSWORD_KEY), CredentialSpec(KEYSTONE_PASSWORD_KEY)]

    def endpoints(self, ctx: CloudContext) -> dict[str, str]:
        return {"image": urls(ctx)["public"]}

    def store(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        backend = glance_spec(ctx).backend
        if backend.type == "rbd":
            assert backend.rbd is not None
            return {
                "DEFAULT": {"enabled_backends": "rbd:rbd"},
                "glance_store": {"default_backend": "rbd"},
                "rbd": {
                    "rbd_store_pool": backend.rbd.pool,
                    "rbd_store_user": backend.rbd.user,
                    "rbd_store_ceph_conf": "/etc/ceph/ceph.conf",
                },
            }
        return {
            "DEFAULT": {"enabled_backends": "file:file"},
            "glance_store": {"default_backend": "file"},
            "file": {"filesystem_store_datadir": IMAGES_DIR},
        }

    def config(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        store = self.store(ctx)
        return {
            **store,
            "DEFAULT": {"debug": False, **store["DEFAULT"]},
            "database": mariadb.oslo_db(ctx, "glance", "glance", DATABASE_PASSWORD_KEY),
            "keystone_authtoken": keystone.authtoken(ctx, self.name, KEYSTONE_PASSWORD_KEY),
            # glance's reserved stores (staging, tasks) default to /var/lib/glance/{staging,tasks_work_dir}:
            # on the images volume, where uploads are staged before they reach the store
            "paste_deploy": {"flavor": "keystone"},
            "oslo_middleware": {"enable_proxy_headers_parsing": True},
            "oslo_policy": policy.oslo_policy(ctx, self),
        }

    def glance_conf(self, ctx: CloudContext) -> str:
        return render_ini(self.config(ctx), glance_spec(ctx).config)

    def upgrade(self, ctx: CloudContext) -> ServiceUpgrade:
        """Glance's rolling upgrade (zero-downtime database upgrades): expand, migrate, the new API,
        contract."""
        conf = ConfigFile("glance-api.conf", f"{CONFIG_DIR}/glance-api.conf", "glance", "0600")
        manage = f"glance-manage --config-file {CONFIG_DIR}/glance-api.conf db"
        return ServiceUpgrade(
            image="glance-api",
            uid=GLANCE_UID,
            files={"glance-api.conf": self.glance_conf(ctx)},
            check=KollaCommand(f"glance-status --config-file {CONFIG_DIR}/glance-api.conf upgrade check", (conf,)),
            expand={
                "db-expand": KollaCommand(f"{manage} expand", (conf,)),
                "db-migrate": KollaCommand(f"{manage} migrate", (conf,)),
            },
            contract={"db-contract": KollaCommand(f"{manage} contract", (conf,))},
        )

    def commands(self) -> dict[str, KollaCommand]:
        conf = ConfigFile("glance-api.conf", f"{CONFIG_DIR}/glance-api.conf", "glance", "0600")
        data = Permission("/var/lib/glance", "glance:glance", recurse=True)
        return {
            "api": api.uwsgi_command(self.name, "glance", CONFIG_DIR, conf, permissions=(data,)),
            "db-sync": KollaCommand(f"glance-manage --config-file {CONFIG_DIR}/glance-api.conf db_sync", (conf,)),
            # the metadata definitions catalog (Horizon's metadata editors) from the files the image
            # ships in metadata_source_path: new ones added, changed ones updated, the operator's own
            # kept; its Job runs again with every release (its image is in its name's hash)
            "metadefs": KollaCommand(
                f"glance-manage --config-file {CONFIG_DIR}/glance-api.conf db load_metadefs --merge --prefer_new",
                (conf,),
            ),
        }

    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = glance_spec(ctx)
        commands = self.commands()
        files = {
            "glance-api.conf": self.glance_conf(ctx),
            # image uploads stream through the API: generous timeouts
            api.uwsgi_file(self.name): api.uwsgi_config(
                ctx, "glance-api", PORT, "glance/wsgi/api.py", socket_timeout=600
            ),
        }
        kolla = api.kolla(ctx, self, "glance-api", files, commands, GLANCE_UID)
        config = kolla.config
        volumes: list[dict[str, Any]] = []
        mounts: list[dict[str, Any]] = []
        storage: list[dict[str, Any]] = []
        if spec.backend.type == "pvc":
            claim = ctx.object_name("glance-images")
            storage = ctx.render("glance/images-pvc.yaml.j2", name=claim, backend=spec.backend)
            volumes = [{"name": "images", "persistentVolumeClaim": {"claimName": claim}}]
            mounts = [{"name": "images", "mountPath": "/var/lib/glance"}]
        return [
            Step("glance-config", self.name, [config.obj, *storage]),
            mariadb.database_step(ctx, self, ["glance"], "glance", DATABASE_PASSWORD_KEY),
            keystone.registration_step(ctx, self, "image", "Glance image service", urls(ctx), KEYSTONE_PASSWORD_KEY),
            api.job_step(ctx, self, "db-sync", kolla),
            api.job_step(ctx, self, "metadefs", kolla),
            api.api_step(
                ctx,
                self,
                kolla,
                workload=spec,
                port=PORT,
                probe_path="/healthcheck",
                extra_volumes=volumes,
                extra_mounts=mounts,
            ),
        ]


SERVICE = Glance()
