"""MariaDB backups for real: keystone projects written through keystone 29 from PyPI, the rendered
backup CronJob's command (its script from the rendered Secret, its arguments and environment) run
against the real MariaDB with mariadb-dump from Debian, the projects deleted, the rendered restore
Job's command run, and the projects back with keystone answering."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from stackops.api.models import DatabaseRestore, OpenStackCloud
from stackops.kube.backups import manifest
from stackops.plan import Plan, plan
from tests.real.deployment import Deployment
from tests.support.commands import run
from tests.support.rendered import backup_command, container_env, find

PROJECTS = [f"backup-proof-{i}" for i in range(3)]


def with_database(deployed: Deployment, restore: str | None = None) -> OpenStackCloud:
    spec = deployed.cloud.spec.model_copy(deep=True)
    spec.infrastructure.database.backup.enabled = True
    spec.infrastructure.database.backup.retention = 2
    spec.infrastructure.database.restore = DatabaseRestore(backup=restore) if restore else None
    return deployed.cloud.model_copy(update={"spec": spec})


def make_projects(conn: Any, names: list[str]) -> None:
    for name in names:
        conn.identity.create_project(name=name, domain_id="default", description="made before the backup")


def delete_projects(conn: Any, names: list[str]) -> None:
    for name in names:
        conn.identity.delete_project(conn.identity.find_project(name, domain_id="default"))
    assert not {p.name for p in conn.identity.projects()} & set(names)


def assert_projects_back(deployed: Deployment, names: list[str]) -> None:
    """The projects as they were made, and keystone answering (its pooled sessions were ended by the
    restore: it reconnects)."""
    conn = deployed.connect()
    back = {p.name: p for p in conn.identity.projects()}
    assert set(names) <= set(back)
    assert back[names[0]].description == "made before the backup"
    assert conn.authorize()


def run_rendered(cloud_plan: Plan, deployed: Deployment, kind: str, component: str, root: Path) -> Any:
    """The container's command as the rendered object says (backup_command); the termination
    message a file."""
    argv, container = backup_command(cloud_plan, kind, "mariadb", component, root)
    env = container_env(container, deployed.secrets) | {
        "TERMINATION_LOG": str(root / "termination-log"),
        "RESTORE_WAIT_SECONDS": "3",  # keystone keeps serving here: its sessions are ended
    }
    started = time.monotonic()
    result = run(argv, env)
    return result, time.monotonic() - started


def test_a_backup_restores_keystone_projects_deleted_after_it(
    keystone: str, deployed: Deployment, tmp_path: Path
) -> None:
    conn = deployed.connect()
    make_projects(conn, PROJECTS)

    backing_up = plan(with_database(deployed), deployed.credentials)
    cron = find(backing_up, "CronJob", "mariadb", "backup")
    assert cron["spec"]["schedule"] == "30 2 * * *" and cron["spec"]["suspend"] is False
    result, took = run_rendered(backing_up, deployed, "CronJob", "backup", tmp_path)
    assert result.returncode == 0, result.stderr
    print(f"backup: {took:.1f} s\n{result.stdout}")
    reported = manifest((tmp_path / "termination-log").read_text())
    assert reported is not None, "the pod's termination message is the manifest the operator reads"
    name = str(reported["name"])
    dump = tmp_path / "backups" / f"{name}.sql.gz"
    assert reported["size"] == dump.stat().st_size > 0
    # the cloud's databases that exist here (keystone's at least), never the mysql schema
    dumped = json.loads((tmp_path / "backups" / f"{name}.json").read_text())["databases"]
    assert "keystone" in dumped and "mysql" not in dumped

    delete_projects(conn, PROJECTS)

    restoring = plan(with_database(deployed, restore=name), deployed.credentials)
    # what the operator does before the Job runs: keystone's API stopped, backups suspended
    assert find(restoring, "Deployment", "keystone", "api")["spec"]["replicas"] == 0
    assert find(restoring, "CronJob", "mariadb", "backup")["spec"]["suspend"] is True
    assert restoring.steps[-1].name == "mariadb-restore" and restoring.steps[-1].after_all
    result, took = run_rendered(restoring, deployed, "Job", "restore", tmp_path)
    assert result.returncode == 0, result.stderr
    print(f"restore: {took:.1f} s\n{result.stdout}")
    assert f"restore: {name} restored" in result.stdout

    assert_projects_back(deployed, PROJECTS)


def test_a_restore_refuses_a_backup_that_is_not_there_or_was_changed(
    keystone: str, deployed: Deployment, tmp_path: Path
) -> None:
    result, _ = run_rendered(
        plan(with_database(deployed), deployed.credentials), deployed, "CronJob", "backup", tmp_path
    )
    assert result.returncode == 0, result.stderr
    reported = manifest((tmp_path / "termination-log").read_text())
    assert reported is not None, "the backup wrote no manifest to its termination log"
    name = str(reported["name"])
    missing = plan(with_database(deployed, restore="20000101T000000Z"), deployed.credentials)
    result, _ = run_rendered(missing, deployed, "Job", "restore", tmp_path)
    assert result.returncode == 2
    assert f"no backup 20000101T000000Z in the backups' volume (there: {name}" in result.stderr
    dump = tmp_path / "backups" / f"{name}.sql.gz"
    dump.write_bytes(dump.read_bytes() + b"\0")
    changed = plan(with_database(deployed, restore=name), deployed.credentials)
    result, _ = run_rendered(changed, deployed, "Job", "restore", tmp_path)
    assert result.returncode == 2 and "does not match its manifest's checksum" in result.stderr
    assert deployed.connect().authorize()  # nothing was touched
