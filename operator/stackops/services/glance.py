"""Glance: the image service. Images live on a PVC by default, or in Ceph RBD.

Components: the API (uWSGI serving glance's WSGI module in the Kolla glance-api image) and a db-sync
Job, after its database and its registration in keystone's catalog.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from stackops.api.models import GlanceBackend, GlanceSpec, GlanceStore, OpenStackCloudSpec
from stackops.render.kolla import ConfigFile, KollaCommand, Permission
from stackops.services import api, ceph, policy
from stackops.services.base import CloudContext, Resources, Step
from stackops.services.endpoints import api_scheme
from stackops.services.images import KollaUser, OpenStackImage, OpenStackImages
from stackops.services.openstack import CatalogEntry, DatabaseUpgrade, MainConfig, OpenStackService

PORT = 9292
CONFIG = MainConfig("glance-api.conf", "/etc/glance")
MANAGE = f"glance-manage --config-file {CONFIG.dest}"
DATA_DIR = "/var/lib/glance"  # the default store's volume, with the staging and tasks stores
IMAGES_DIR = f"{DATA_DIR}/images"
STORES_DIR = "/var/lib/glance-stores"  # further file stores, a volume each
CACHE_DIR = "/var/lib/glance-cache"
CACHE_LOOP = "glance-cache-loop.sh"


def all_stores(spec: GlanceSpec) -> list[tuple[str, GlanceBackend]]:
    """Every store by its id in glance, the default (`backend`) first."""
    return [(spec.backend.driver, spec.backend), *((s.name, s) for s in spec.stores)]


def store_dir(store_id: str) -> str:
    return f"{STORES_DIR}/{store_id}"


def ceph_cluster(store_id: str, default: str) -> str:
    """The name a store's Ceph cluster is known by in /etc/ceph: the default store's is `ceph`
    (its keyring where librados looks first); a further store's ceph.conf names its keyring."""
    return "ceph" if store_id == default else store_id


def bracketed(values: Sequence[object]) -> str:
    """A list as glance's import options take it: in brackets (their ListOpts have bounds=True, and
    read a plain comma-separated value as an error when first used, a 500 on image create)."""
    return "[" + ", ".join(str(v) for v in values) + "]"


def worker_url_env(ctx: CloudContext) -> tuple[dict[str, Any], ...]:
    """oslo.config reads [DEFAULT] worker_self_reference_url from here: each API pod is its own
    worker with its own cache, known by its own address, which only the pod's environment knows.
    With internal TLS it is https, which the API's certificate does not name (by IP): a request
    another replica proxies to the worker that staged an image fails verification
    (docs/security.md, Not yet)."""
    return (
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "OS_DEFAULT__WORKER_SELF_REFERENCE_URL", "value": f"{api_scheme(ctx)}://$(POD_IP):{PORT}"},
    )


class Glance(OpenStackService[GlanceSpec]):
    name = "glance"
    spec_path = "services.glance"
    depends_on = ("keystone",)
    upgrade_after = ("placement",)  # the order of OpenStack's upgrade guides
    port = PORT
    openstack_images = OpenStackImages(KollaUser("glance", 42415), (OpenStackImage("glance-api"),))
    main_config = CONFIG
    databases = ("glance",)
    catalog = (CatalogEntry("image", "Glance image service"),)
    # Glance's rolling upgrade (zero-downtime database upgrades): expand, migrate, the new API, contract.
    database_upgrade = DatabaseUpgrade(
        check=f"glance-status --config-file {CONFIG.dest} upgrade check",
        expand={"db-expand": f"{MANAGE} db expand", "db-migrate": f"{MANAGE} db migrate"},
        contract={"db-contract": f"{MANAGE} db contract"},
    )
    config_files: ClassVar[dict[str, tuple[str, ...]]] = {
        "glance-api.conf": (
            "glance", "glance.api", "glance.multi_store", "keystonemiddleware.auth_token", "oslo.db", "oslo.log",
            "oslo.messaging", "oslo.middleware", "oslo.policy",
        ),
    }  # fmt: skip
    components: ClassVar[dict[str, Resources]] = {
        "api": Resources(cpu="25m", memory="384Mi"),
        "db-sync": Resources(cpu="25m", memory="256Mi"),
        "metadefs": Resources(cpu="25m", memory="256Mi"),
        "cache-pruner": Resources(cpu="10m", memory="128Mi"),
    }

    def config_sections_like(self, spec: OpenStackCloudSpec) -> dict[str, str]:
        # a further store's section takes the options of its driver's
        return {store.name: store.driver for store in spec.services.glance.stores}

    def stores(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        """The multi-store settings: every store's section, `enabled_backends` and the default."""
        spec = self.settings(ctx)
        sections: dict[str, dict[str, Any]] = {}
        backends = []
        default = spec.backend.driver
        for store_id, store in all_stores(spec):
            section: dict[str, Any]
            if store.type == "rbd":
                assert store.rbd is not None
                section = {
                    "rbd_store_pool": store.rbd.pool,
                    "rbd_store_user": store.rbd.user,
                    "rbd_store_ceph_conf": ceph.conf_path(ceph_cluster(store_id, default)),
                }
            else:
                section = {"filesystem_store_datadir": IMAGES_DIR if store_id == default else store_dir(store_id)}
            if isinstance(store, GlanceStore) and store.description:
                section["store_description"] = store.description
            sections[store_id] = section
            backends.append(f"{store_id}:{store.driver}")
        return {
            **sections,
            "DEFAULT": {"enabled_backends": backends},
            "glance_store": {"default_backend": default},
        }

    def imports(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        """The import methods users may call, and what web-download may fetch."""
        spec = self.settings(ctx)
        sections: dict[str, dict[str, Any]] = {"DEFAULT": {"enabled_import_methods": bracketed(spec.import_methods)}}
        if "web-download" in spec.import_methods:
            # the fields are named as glance's [import_filtering_opts] options are
            lists = spec.web_download.model_dump()
            sections["import_filtering_opts"] = {key: bracketed(value) for key, value in lists.items() if value}
        return sections

    def cache(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        """The image cache, when enabled: on each API pod's own disk, pruned by a sidecar."""
        cache = self.settings(ctx).image_cache
        if not cache.enabled:
            return {}
        return {
            "DEFAULT": {
                "image_cache_dir": CACHE_DIR,
                "image_cache_max_size": cache.max_size_gib * 2**30,
                "image_cache_stall_time": cache.stall_time_seconds,
                # pods are told apart by their own URL, from their environment (worker_url_env)
            }
        }

    def config(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        stores, imports, cache = self.stores(ctx), self.imports(ctx), self.cache(ctx)
        return {
            **stores,
            **imports,
            "DEFAULT": {"debug": False, **stores["DEFAULT"], **imports["DEFAULT"], **cache.get("DEFAULT", {})},
            "database": self.oslo_db(ctx),
            "keystone_authtoken": self.authtoken(ctx),
            # glance's reserved stores (staging, tasks) default to /var/lib/glance/{staging,tasks_work_dir}:
            # on the images volume, where uploads are staged before they reach the store
            "paste_deploy": {"flavor": "keystone+cachemanagement" if cache else "keystone"},
            "oslo_middleware": {"enable_proxy_headers_parsing": True},
            "oslo_policy": policy.oslo_policy(ctx, self),
            # its notifications (images uploaded, deleted …), to ceilometer when it meters them
            **self.notifications(ctx),
        }

    def commands(self, ctx: CloudContext) -> dict[str, KollaCommand]:
        data = [Permission(DATA_DIR, "glance:glance", recurse=True)]
        if any(s.type == "pvc" for s in self.settings(ctx).stores):
            data.append(Permission(STORES_DIR, "glance:glance", recurse=True))
        commands = {
            "api": self.uwsgi_command(ctx, permissions=data),
            "db-sync": self.command(f"{MANAGE} db_sync"),
            # the metadata definitions catalog (Horizon's metadata editors) from the files the image
            # ships in metadata_source_path: new ones added, changed ones updated, the operator's own
            # kept; its Job runs again with every release (its image is in its name's hash)
            "metadefs": self.command(f"{MANAGE} db load_metadefs --merge --prefer_new"),
        }
        if self.settings(ctx).image_cache.enabled:
            loop = ConfigFile(CACHE_LOOP, f"{CONFIG.directory}/{CACHE_LOOP}", "glance", "0500")
            cache = Permission(CACHE_DIR, "glance:glance", recurse=True)
            commands["cache-pruner"] = self.command(f"sh {loop.dest}", loop, permissions=(cache,))
        return commands

    def files(self, ctx: CloudContext) -> dict[str, str]:
        files = {
            **self.main_files(ctx),
            # image uploads stream through the API: generous timeouts
            api.uwsgi_file(self.name): self.uwsgi_config(
                ctx, "glance-api", PORT, "glance/wsgi/api.py", socket_timeout=600
            ),
        }
        cache = self.settings(ctx).image_cache
        if cache.enabled:
            files[CACHE_LOOP] = ctx.render_text(
                "glance/cache-loop.sh.j2", config=CONFIG.dest, interval=cache.prune_interval_seconds
            )
        return files

    def volumes(self, ctx: CloudContext) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """The stores' claims, and the volumes and mounts of the API pod (stores, Ceph, cache)."""
        spec = self.settings(ctx)
        claims: list[dict[str, Any]] = []
        volumes: list[dict[str, Any]] = []
        mounts: list[dict[str, Any]] = []
        default = spec.backend.driver
        if spec.backend.type == "pvc":
            claim = ctx.object_name("glance-images")
            claims += ctx.render("glance/images-pvc.yaml.j2", name=claim, backend=spec.backend, component="images")
            volumes.append({"name": "images", "persistentVolumeClaim": {"claimName": claim}})
            mounts.append({"name": "images", "mountPath": DATA_DIR})
        for store in spec.stores:
            if store.type == "pvc":
                claim = ctx.object_name("glance-store", store.name)
                claims += ctx.render("glance/images-pvc.yaml.j2", name=claim, backend=store, component="store")
                volumes.append({"name": f"store-{store.name}", "persistentVolumeClaim": {"claimName": claim}})
                mounts.append({"name": f"store-{store.name}", "mountPath": store_dir(store.name)})
        stores = all_stores(spec)
        sources = [ceph.items(ceph_cluster(i, default), s.rbd) for i, s in stores if s.type == "rbd" and s.rbd]
        ceph_volumes, ceph_mounts = ceph.volume(sources)
        if spec.image_cache.enabled:
            volumes.append({"name": "cache", "emptyDir": {}})
            mounts.append({"name": "cache", "mountPath": CACHE_DIR})
        return claims, volumes + ceph_volumes, mounts + ceph_mounts

    def steps(self, ctx: CloudContext) -> list[Step]:
        spec = self.settings(ctx)
        kolla = self.kolla(ctx, self.files(ctx), self.commands(ctx))
        claims, volumes, mounts = self.volumes(ctx)
        env: tuple[dict[str, Any], ...] = ()
        sidecars = []
        if spec.image_cache.enabled:
            env = worker_url_env(ctx)
            # the API's volumes: the pruner reads the same cache and, for the cache's records, the same stores
            sidecars.append(api.sidecar(ctx, self, "cache-pruner", kolla, mounts=mounts, env=env))
        return [
            *self.preamble(ctx, kolla, *claims),
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
                env=env,
                sidecars=sidecars,
            ),
        ]


SERVICE = Glance()
