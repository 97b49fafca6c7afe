"""Backups of what a service keeps: a CronJob writes them onto a volume of their own, a Job restores
one, each running a script of the service's backup config Secret (templates/common/backup.yaml.j2;
how the volume holds backups and their manifests: templates/common/backups.sh.j2). With an object
store (`backup.objectStore`) the backup's pod also uploads it to an S3 bucket, and a restore may
download it from there first (stackops job backup-upload / backup-download: jobs/object_store.py;
docs/backups.md). MariaDB's databases and OVN's are backed up so."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from stackops.api.models import ObjectStore, OpenStackCloudSpec, Restore, ScheduledBackup
from stackops.render.naming import COMPONENT_LABEL
from stackops.services.base import CloudContext, ConfigSecret, Step

BACKUPS_DIR = "/backups"  # where the backups' volume is mounted
SCRIPTS_DIR = "/etc/stackops"  # and the backup config Secret


class Backed(Protocol):
    """The spec of what a BackupSet backs up: its backups, and a restore asked for."""

    @property
    def backup(self) -> ScheduledBackup: ...

    @property
    def restore(self) -> Restore | None: ...


@dataclass(frozen=True)
class BackupSet:
    """What one service backs up, as its objects, the spec and the cloud's status name it."""

    service: str  # the service the objects belong to
    backup: str  # the component of the backup CronJob (and its Jobs and volume)
    restore: str  # of the restore Job
    status: str  # the status field showing the backups and a restore (status.<status>)
    spec_path: str  # where the spec has its `backup` and `restore`, e.g. "infrastructure.database"
    # the steps of a restore in order, each with the phase the restore is in while it runs
    restore_steps: tuple[tuple[str, str], ...]
    stopping: str  # what a restore waits for before its first step runs, in words
    # what a restore stops: the Deployments of these services (of the spec) ...
    writers: Callable[[OpenStackCloudSpec], frozenset[str]]
    # ... of these components only (empty: all of them)
    writer_components: tuple[str, ...] = ()

    def volume(self, ctx: CloudContext) -> str:
        return ctx.object_name(self.service, f"{self.backup}s")

    @property
    def object_store(self) -> str:
        """The component (of its resources) of the container that uploads a backup or downloads one."""
        return f"{self.backup}-object-store"

    def prefix(self, ctx: CloudContext, store: ObjectStore) -> str:
        """Where in the bucket the set's backups are."""
        return store.prefix or f"{ctx.namespace}/{ctx.name}/{self.status}"

    @property
    def restore_field(self) -> str:
        """The spec field asking for a restore."""
        return f"spec.{self.spec_path}.restore"

    def settings(self, spec: OpenStackCloudSpec) -> Backed:
        node: Any = spec
        for part in self.spec_path.split("."):
            node = getattr(node, part)
        settings: Backed = node
        return settings

    def asked(self, spec: OpenStackCloudSpec) -> Restore | None:
        """The restore the spec asks for, if any."""
        return self.settings(spec).restore

    def stopped_for_restore(self, spec: OpenStackCloudSpec, steps: list[Step]) -> list[Step]:
        """`steps` with the workloads a restore stops at 0 replicas: the Deployments of the writers
        (the APIs, schedulers, conductors, engines, workers). Host agents (DaemonSets) and the
        databases keep running: guests and their networks must not stop for a restore, and what of
        them holds a database session (cinder-volume) is ended by the restore Job before it restores."""
        writers = self.writers(spec)

        def stopped(obj: dict[str, Any]) -> dict[str, Any]:
            component = (obj["metadata"].get("labels") or {}).get(COMPONENT_LABEL)
            if obj["kind"] != "Deployment" or (self.writer_components and component not in self.writer_components):
                return obj
            return {**obj, "spec": {**obj["spec"], "replicas": 0}}

        return [replace(s, objects=[stopped(o) for o in s.objects]) if s.service in writers else s for s in steps]


@dataclass(frozen=True)
class BackupRun:
    """How the backup and restore Jobs of a set run: in `image` as `uid`, with `env`."""

    image: str
    uid: int
    env: Sequence[dict[str, Any]]
    config: ConfigSecret
    resources: dict[str, Any]
    object_store_resources: dict[str, Any]  # of the container that uploads or downloads (object_store)


def backup_objects(
    ctx: CloudContext,
    backups: BackupSet,
    settings: ScheduledBackup,
    run: BackupRun,
    *,
    script: str,
    arguments: Sequence[str],
    restore: Restore | None = None,
    suspend: bool = False,
) -> list[dict[str, Any]]:
    """The backups' volume and CronJob, or (`restore`) the Job restoring a backup: each runs `script
    DIRECTORY FIRST ARGUMENTS...`, FIRST the retention for a backup, the backup's name for a restore.
    With an object store, the backup's pod uploads it once it is on the volume; a restore from the
    object store downloads it into a volume of its own pod first."""
    first = restore.backup if restore else str(settings.retention)
    from_store = restore is None or restore.source == "ObjectStore"
    store = settings.object_store if from_store else None
    return ctx.render(
        "common/backup.yaml.j2",
        service=backups.service,
        components={"backup": backups.backup, "restore": backups.restore},
        restore=restore,
        backup=settings,
        suspend=suspend,
        command=["/bin/bash", f"{SCRIPTS_DIR}/{script}", BACKUPS_DIR, first, *arguments],
        env=list(run.env),
        backups_dir=BACKUPS_DIR,
        scripts_dir=SCRIPTS_DIR,
        image=run.image,
        config=run.config,
        volume=backups.volume(ctx),
        uid=run.uid,
        resources=run.resources,
        store=_object_store(ctx, backups, settings, store, run, restore) if store else None,
    )


def _object_store(
    ctx: CloudContext,
    backups: BackupSet,
    settings: ScheduledBackup,
    store: ObjectStore,
    run: BackupRun,
    restore: Restore | None,
) -> dict[str, Any]:
    """The container of the stackops Job that uploads the backup (or downloads the one to restore):
    its job, arguments, Secret files and resources (templates/common/backup.yaml.j2)."""
    secrets: dict[str, tuple[str | None, str]] = {
        "STACKOPS_S3_ACCESS_KEY_ID": (store.secret_ref.name, "accessKeyId"),
        "STACKOPS_S3_SECRET_ACCESS_KEY": (store.secret_ref.name, "secretAccessKey"),
    }
    if store.ca_secret_ref is not None:
        secrets["STACKOPS_S3_CA_BUNDLE"] = (store.ca_secret_ref.name, "ca.crt")
    where = [
        f"--endpoint={store.endpoint}",
        f"--bucket={store.bucket}",
        f"--region={store.region}",
        f"--prefix={backups.prefix(ctx, store)}",
        f"--addressing-style={store.addressing_style}",
    ]
    if restore is not None:
        job, args = "backup-download", [BACKUPS_DIR, restore.backup, *where]
    else:
        job, args = "backup-upload", [BACKUPS_DIR, *where, f"--retention={store.retention or settings.retention}"]
    return {"job": job, "args": args, "files": ctx.secret_files(secrets), "resources": run.object_store_resources}
