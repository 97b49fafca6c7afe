"""MariaDB backups and restore, the pure part: what is rendered, what the spec refuses and how it
says so, the backup script's retention (run here with stand-ins for the MariaDB clients), the
status the operator builds from the backup Jobs, and a restore's phases through the operator's own
pass (the real dump and restore: tests/real/test_database_backup.py)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stackops.api.cron import schedule_problem
from stackops.api.validation import InvalidCloud
from stackops.health.workloads import latest_scheduled, workload_problems
from stackops.kube.backups import backups, manifest
from stackops.plan import plan
from stackops.render.templates import render_text
from stackops.status_view import database_line
from tests.conftest import cloud
from tests.support.kube import FakeKube
from tests.support.passes import SMALL, CloudPasses
from tests.support.rendered import find

BACKUP = {"infrastructure": {"database": {"backup": {"enabled": True}}}}
NAME = "20261206T023000Z"


def spec(database: dict[str, Any], services: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"infrastructure": {"database": database}, **({"services": services} if services else {})}


def test_no_backup_objects_unless_asked_for() -> None:
    kinds = {(o["kind"], o["metadata"]["name"]) for o in plan(cloud({})).objects()}
    assert ("CronJob", "demo-mariadb-backup") not in kinds
    assert ("PersistentVolumeClaim", "demo-mariadb-backups") not in kinds


def test_the_backup_cronjob_and_its_volume() -> None:
    rendered = plan(cloud(spec({"backup": {"enabled": True, "schedule": "@daily", "retention": 3,
                                           "storage": {"size": "5Gi", "storageClassName": "fast"}}})))  # fmt: skip
    cron = find(rendered, "CronJob", "mariadb", "backup")
    assert cron["spec"] | {"jobTemplate": None} == {
        "schedule": "@daily",
        "timeZone": "Etc/UTC",
        "suspend": False,
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 3600,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": None,
    }
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"][:4] == ["/bin/bash", "/etc/stackops/backup.sh", "/backups", "3"]
    assert {"keystone", "nova_api", "nova_cell0", "heat"} <= set(container["command"][4:])
    # the root password only by reference, never in the object
    env = {v["name"]: v for v in container["env"]}
    assert env["MYSQL_PWD"]["valueFrom"]["secretKeyRef"] == {"name": "demo-credentials", "key": "mariadb-root-password"}
    assert pod["securityContext"]["runAsUser"] == 42434 and container["securityContext"]["readOnlyRootFilesystem"]
    claim = find(rendered, "PersistentVolumeClaim", "mariadb", "backup")
    assert claim["metadata"]["name"] == "demo-mariadb-backups"
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi" and claim["spec"]["storageClassName"] == "fast"
    # MariaDB admits its own backup Jobs' pods
    policy = find(rendered, "NetworkPolicy", "mariadb", "server")
    sources = [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    assert any(
        p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") == "mariadb" for p in sources
    )


def test_an_external_database_is_backed_up_with_its_own_account() -> None:
    external = {"external": {"host": "db.example", "secretRef": {"name": "db-admin"}}, "backup": {"enabled": True}}
    container = find(plan(cloud(spec(external))), "CronJob", "mariadb", "backup")["spec"]["jobTemplate"]["spec"][
        "template"
    ]["spec"]["containers"][0]
    env = {v["name"]: v.get("value") or v["valueFrom"]["secretKeyRef"] for v in container["env"]}
    assert env["MARIADB_HOST"] == "db.example"
    assert env["MARIADB_USER"] == {"name": "db-admin", "key": "username"}
    assert env["MYSQL_PWD"] == {"name": "db-admin", "key": "password"}


@pytest.mark.parametrize(
    ("database", "message"),
    [
        ({"backup": {"schedule": "0 25 * * *"}}, "backup.schedule: hour '25': values go from 0 to 23"),
        ({"backup": {"schedule": "daily"}}, "backup.schedule: 'daily' has 1 fields, a cron schedule 5"),
        ({"backup": {"schedule": "@fortnightly"}}, "backup.schedule: '@fortnightly': unknown macro"),
        ({"backup": {"schedule": "*/0 * * * *"}}, "backup.schedule: minute '*/0': a step of 0 never fires"),
        ({"backup": {"schedule": "0 3 * * sun-mon"}}, None),
        ({"backup": {"retention": 0}}, "backup.retention: Input should be greater than or equal to 1"),
        ({"backup": {"storage": {"size": "lots"}}}, "backup.storage.size"),
        ({"restore": {"backup": "latest"}}, "restore.backup: 'latest' is not a backup's name"),
    ],
)
def test_bad_backup_settings_are_refused_naming_the_field(database: dict[str, Any], message: str | None) -> None:
    if message is None:
        cloud(spec(database))
        return
    with pytest.raises(InvalidCloud) as caught:
        cloud(spec(database))
    assert any(p.startswith(f"spec.infrastructure.database.{message}") for p in caught.value.problems), caught.value


@pytest.mark.parametrize(
    "schedule", ["* * * * *", "30 2 * * *", "0 */6 * * *", "0 3 1,15 * *", "0 3 * jan-mar mon-fri", "@hourly"]
)
def test_schedules_cronjobs_run_are_taken(schedule: str) -> None:
    assert schedule_problem(schedule) is None


def test_a_restore_stops_the_services_that_use_the_databases_then_restores_last() -> None:
    rendered = plan(cloud(spec({"backup": {"enabled": True}, "restore": {"backup": NAME}})))
    replicas = {
        (o["metadata"]["labels"]["app.kubernetes.io/name"], o["metadata"]["name"]): o["spec"]["replicas"]
        for o in rendered.objects()
        if o["kind"] in ("Deployment", "StatefulSet")
    }
    assert replicas[("keystone", "demo-keystone-api")] == 0 and replicas[("nova", "demo-nova-conductor")] == 0
    assert replicas[("horizon", "demo-horizon-dashboard")] == 0  # its sessions are in MariaDB too
    # the database itself, what does not use it, and the host agents (guests keep running) stay
    assert replicas[("mariadb", "demo-mariadb")] == 1 and replicas[("memcached", "demo-memcached")] == 1
    assert replicas[("neutron", "demo-ovn-nb")] == 1
    running = plan(cloud(spec({"backup": {"enabled": True}})))
    assert find(rendered, "DaemonSet", "nova", "compute") == find(running, "DaemonSet", "nova", "compute")
    last = rendered.steps[-1]
    assert last.name == "mariadb-restore" and last.after_all
    (job,) = last.objects
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][1:4] == [
        "/etc/stackops/restore.sh",
        "/backups",
        NAME,
    ]
    assert find(rendered, "CronJob", "mariadb", "backup")["spec"]["suspend"] is True


def test_a_restore_through_the_operators_pass_shows_each_phase() -> None:
    with_backups = {"release": "2026.1", **copy.deepcopy(SMALL), **BACKUP}
    c = CloudPasses(with_backups)
    c.converge()
    assert "database" not in c.status  # no backup ran yet
    c.spec = copy.deepcopy(with_backups)
    c.spec["infrastructure"]["database"]["restore"] = {"backup": NAME}
    c.reconcile()
    assert c.status["database"]["restore"]["phase"] == "StoppingServices"
    assert not [name for (kind, _, name) in c.kube.objects if kind == "Job" and "restore" in name]
    assert c.kube.objects[("Deployment", "openstack", "demo-keystone-api")]["spec"]["replicas"] == 0
    for _ in range(5):  # the APIs go down, one service after the other as they depend on each other
        c.kube.settle_only("demo-keystone", "demo-glance", "demo-placement")
        c.reconcile()
    assert [name for (kind, _, name) in c.kube.objects if kind == "Job" and "restore" in name]
    assert c.status["database"]["restore"]["phase"] == "Restoring"
    c.kube.settle()
    c.reconcile()
    assert c.status["database"]["restore"]["phase"] == "Restored"
    assert "until spec.infrastructure.database.restore is removed" in c.status["database"]["restore"]["message"]
    assert ("RestoreRestored" in c.reasons()) and ("RestoreRestoring" in c.reasons())
    # the restore removed from the spec: the services start again, the status forgets it
    c.spec = copy.deepcopy(with_backups)
    c.converge()
    assert c.kube.objects[("Deployment", "openstack", "demo-keystone-api")]["spec"]["replicas"] == 1
    assert "database" not in c.status


def backup_job(name: str, created: str, state: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": "openstack",
            "creationTimestamp": created,
            "labels": {"app.kubernetes.io/name": "mariadb", "app.kubernetes.io/component": "backup"},
            "ownerReferences": [{"kind": "CronJob", "name": "demo-mariadb-backup"}],
        },
        "status": {"conditions": [{"type": state, "status": "True", "message": f"the {name} {state.lower()}"}]},
    }


def backup_pod(job: str, message: str) -> dict[str, Any]:
    terminated = {"exitCode": 0, "message": message}
    return {
        "kind": "Pod",
        "metadata": {"name": f"{job}-x", "namespace": "openstack", "labels": {"job-name": job}},
        "status": {"phase": "Succeeded", "containerStatuses": [{"state": {"terminated": terminated}}]},
    }


REPORT = {"name": NAME, "time": "2026-12-06T02:30:00Z", "size": 1234, "sha256": "ab" * 32, "databases": ["keystone"]}


def test_the_last_backup_and_a_failure_since_as_the_status_shows_them() -> None:
    kube = FakeKube()
    ok = backup_job("demo-mariadb-backup-1", "2026-12-06T02:30:00Z", "Complete")
    failed = backup_job("demo-mariadb-backup-2", "2026-12-07T02:30:00Z", "Failed")
    kube.objects[("Pod", "openstack", "p")] = backup_pod(ok["metadata"]["name"], json.dumps(REPORT))
    live = {("Job", j["metadata"]["name"]): j for j in (ok, failed)}
    found = backups(kube, "openstack", live)
    assert found is not None and found.last == {k: REPORT[k] for k in ("name", "time", "size", "sha256")}
    assert found.failure == "job demo-mariadb-backup-2 failed: the demo-mariadb-backup-2 failed"
    # with why, as the failed pod's last log line said it
    said = backup_pod(failed["metadata"]["name"], "backup: the dump of keystone did not complete")
    said["status"]["phase"] = "Failed"
    kube.objects[("Pod", "openstack", "q")] = said
    found = backups(kube, "openstack", live)
    assert found is not None and found.failure.endswith("failed: backup: the dump of keystone did not complete")
    # the health checks hold only the newest Job of a CronJob against mariadb
    assert workload_problems([], [ok, failed]) == {
        "mariadb": ["job demo-mariadb-backup-2 failed: the demo-mariadb-backup-2 failed"]
    }
    later = backup_job("demo-mariadb-backup-3", "2026-12-08T02:30:00Z", "Complete")
    assert latest_scheduled([ok, failed, later]) == [later] and workload_problems([], [ok, failed, later]) == {}
    live[("Job", "demo-mariadb-backup-3")] = later
    found = backups(kube, "openstack", live)
    assert found is not None and found.failure == "" and found.last is not None  # the older manifest until its pod
    assert backups(kube, "openstack", {}) is None


@pytest.mark.parametrize("text", ["", "not json", "[1]", json.dumps({**REPORT, "size": "big"}), "Error: dump failed"])
def test_a_termination_message_that_is_no_manifest_is_ignored(text: str) -> None:
    assert manifest(text) is None


def fake_clients(bin_dir: Path, databases: list[str]) -> None:
    """`mariadb` and `mariadb-dump` stand-ins: the databases that exist, and a dump that completes."""
    bin_dir.mkdir()
    listed = "\\n".join(databases)
    (bin_dir / "mariadb").write_text(f'#!/bin/bash\nprintf "{listed}\\n"\n')
    (bin_dir / "mariadb-dump").write_text('#!/bin/bash\necho "-- dump of $*"\necho "-- Dump completed on now"\n')
    for tool in ("mariadb", "mariadb-dump"):
        (bin_dir / tool).chmod(0o755)


def run_backup(tmp_path: Path, retention: int, *databases: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "backup.sh"
    script.write_text(render_text("mariadb/backup.sh.j2"))
    env = {
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "MARIADB_HOST": "db",
        "MARIADB_PORT": "3306",
        "MARIADB_USER": "root",
        "TERMINATION_LOG": str(tmp_path / "termination-log"),
    }
    backups_dir = tmp_path / "backups"
    backups_dir.mkdir(exist_ok=True)
    argv = ["bash", str(script), str(backups_dir), str(retention), *databases]
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False)


def test_the_backup_script_keeps_the_newest_backups_and_only_what_exists(tmp_path: Path) -> None:
    fake_clients(tmp_path / "bin", ["information_schema", "keystone", "glance", "mysql"])
    backups_dir = tmp_path / "backups"
    backups_dir.mkdir()
    older = ["20260101T000000Z", "20260102T000000Z", "20260103T000000Z"]
    for name in older:
        (backups_dir / f"{name}.sql.gz").write_bytes(b"old")
        (backups_dir / f"{name}.json").write_text("{}")
    (backups_dir / "20250101T000000Z.sql.gz").write_bytes(b"a dump whose manifest never came")
    result = run_backup(tmp_path, 2, "glance", "keystone", "nova")
    assert result.returncode == 0, result.stderr
    report = manifest((tmp_path / "termination-log").read_text())
    assert report is not None
    new = str(report["name"])
    assert json.loads((backups_dir / f"{new}.json").read_text())["databases"] == ["glance", "keystone"]
    assert sorted(p.name for p in backups_dir.glob("*.json")) == [f"{older[-1]}.json", f"{new}.json"]
    assert not (backups_dir / f"{older[0]}.sql.gz").exists() and (backups_dir / f"{older[-1]}.sql.gz").exists()
    assert "20260101T000000Z removed (retention 2)" in result.stdout
    assert not list(backups_dir.glob(".*partial"))


def test_a_backup_of_nothing_or_an_unfinished_dump_fails(tmp_path: Path) -> None:
    fake_clients(tmp_path / "bin", ["mysql"])
    result = run_backup(tmp_path, 2, "keystone")
    assert result.returncode == 1 and "none of the cloud's databases exists" in result.stderr
    (tmp_path / "bin" / "mariadb").write_text("#!/bin/bash\necho keystone\n")
    (tmp_path / "bin" / "mariadb-dump").write_text('#!/bin/bash\necho "-- half a dump"\n')
    result = run_backup(tmp_path, 2, "keystone")
    assert result.returncode == 1 and "did not complete" in result.stderr
    assert list((tmp_path / "backups").iterdir()) == []  # nothing half written stays


def test_stackops_status_says_the_last_backup_and_a_restore() -> None:
    assert database_line({}) == ""
    database = {
        "backup": {"last": NAME, "lastSize": 5916, "failed": "job demo-mariadb-backup-2 failed"},
        "restore": {"backup": NAME, "phase": "Restoring"},
    }
    assert database_line(database) == (
        f"database: last backup {NAME} (5916 bytes); [red]backup failed[/]: job demo-mariadb-backup-2 failed; "
        f"restore of {NAME}: Restoring"
    )
