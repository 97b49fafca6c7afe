"""Backups of what a service keeps: a CronJob writes them onto a volume of their own, a Job restores
one, each running a script of the service's backup config Secret (templates/common/backup.yaml.j2;
how the volume holds backups and their manifests: templates/common/backups.sh.j2). MariaDB's
databases and OVN's are backed up so."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stackops.api.models import ScheduledBackup
from stackops.services.base import CloudContext, ConfigSecret

BACKUPS_DIR = "/backups"  # where the backups' volume is mounted
SCRIPTS_DIR = "/etc/stackops"  # and the backup config Secret


@dataclass(frozen=True)
class BackupSet:
    """What one service backs up, as its objects and the cloud's status name it."""

    service: str  # the service the objects belong to
    backup: str  # the component of the backup CronJob (and its Jobs and volume)
    restore: str  # of the restore Job
    status: str  # the status field showing the backups and a restore (status.<status>)
    restore_field: str  # the spec field asking for a restore
    # the steps of a restore in order, each with the phase the restore is in while it runs
    restore_steps: tuple[tuple[str, str], ...]
    stopping: str  # what a restore waits for before its first step runs

    def volume(self, ctx: CloudContext) -> str:
        return ctx.object_name(self.service, f"{self.backup}s")


@dataclass(frozen=True)
class BackupRun:
    """How the backup and restore Jobs of a set run: in `image` as `uid`, with `env`."""

    image: str
    uid: int
    env: Sequence[dict[str, Any]]
    config: ConfigSecret
    resources: dict[str, Any]


def backup_objects(
    ctx: CloudContext,
    backups: BackupSet,
    settings: ScheduledBackup,
    run: BackupRun,
    *,
    script: str,
    arguments: Sequence[str],
    restore: str | None = None,
    suspend: bool = False,
) -> list[dict[str, Any]]:
    """The backups' volume and CronJob, or (`restore`: a backup's name) the Job restoring it: each
    runs `script DIRECTORY FIRST ARGUMENTS...`, FIRST the retention for a backup, the name for a restore."""
    first = restore if restore else str(settings.retention)
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
    )
