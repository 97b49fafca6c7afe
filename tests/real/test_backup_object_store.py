"""MariaDB backups to an object store for real: the session's swift (2.37, its s3api with EC2
credentials from keystone) as the S3 endpoint. Keystone projects written through keystone; the
rendered backup CronJob's pod run as the kubelet runs it: its backup container (mariadb-dump from
Debian onto the volume), then its upload container (`stackops job backup-upload`, boto3, the S3
keys given as files); a second backup with the bucket's retention at 1 replaces the first there,
swift listing only it, at its size. Then the projects deleted, the volume
lost, and the rendered restore Job's pod run: its download container, then the restore script on
what it downloaded; the projects are back and keystone answers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from stackops.api.models import DatabaseRestore, ObjectStore, OpenStackCloud, SecretRef
from stackops.kube.backups import manifest
from stackops.plan import Plan, plan
from tests.real.deployment import STACKOPS, Deployment
from tests.real.test_database_backup import assert_projects_back, delete_projects, make_projects
from tests.real.test_swift import ec2_credentials
from tests.support.commands import run
from tests.support.rendered import backup_command, backup_pod, container_env, job_env

PROJECTS = [f"offsite-proof-{i}" for i in range(3)]
BUCKET = "stackops-backups"
KEYS = "s3-keys"  # the Secret the user names, with the EC2 credentials


def with_object_store(deployed: Deployment, swift: str, restore: str | None = None) -> OpenStackCloud:
    spec = deployed.cloud.spec.model_copy(deep=True)
    backup = spec.infrastructure.database.backup
    backup.enabled, backup.retention = True, 2
    backup.object_store = ObjectStore(
        endpoint=swift, bucket=BUCKET, region=spec.region, secret_ref=SecretRef(name=KEYS), retention=1
    )
    spec.infrastructure.database.restore = DatabaseRestore(backup=restore, source="ObjectStore") if restore else None
    return deployed.cloud.model_copy(update={"spec": spec})


def run_container(
    cloud_plan: Plan, deployed: Deployment, kind: str, component: str, container: str, root: Path
) -> tuple[Any, float]:
    """One container of the backup or restore pod, as the rendered object says: a script of the
    config Secret, or `stackops job` with its Secret values as files; its termination message a
    file under `root`."""
    argv, spec = backup_command(cloud_plan, kind, "mariadb", component, root, container)
    if argv[0] == "stackops":
        pod = backup_pod(cloud_plan, kind, "mariadb", component)
        argv, env = [STACKOPS, *argv[1:]], job_env(pod, deployed.secrets, root / "files", container)
    else:
        env = container_env(spec, deployed.secrets) | {"RESTORE_WAIT_SECONDS": "3"}
    started = time.monotonic()
    result = run(argv, env | {"TERMINATION_LOG": str(root / f"{container}.termination-log")})
    took = time.monotonic() - started
    assert result.returncode == 0, f"{container}: {result.stdout[-2000:]}{result.stderr[-3000:]}"
    print(f"{container}: {took:.1f} s\n{result.stdout}")
    return result, took


@pytest.fixture()
def s3_keys(swift: str, deployed: Deployment) -> Any:
    """EC2 credentials of the admin made in keystone, in the Secret the spec names; the bucket made."""
    conn = deployed.connect()
    access, secret, credential = ec2_credentials(conn)
    deployed.secrets[KEYS] = {"accessKeyId": access, "secretAccessKey": secret}
    conn.object_store.create_container(name=BUCKET)
    yield conn
    conn.identity.delete_credential(credential)


def sizes(conn: Any) -> dict[str, int]:
    """The bucket's objects and their sizes, as swift lists them (its own API, not S3's)."""
    return {o.name: o._bytes for o in conn.object_store.objects(BUCKET)}


def backup(cloud_plan: Plan, deployed: Deployment, root: Path) -> dict[str, Any]:
    """The backup pod: its backup container, then its upload container; the upload's report."""
    run_container(cloud_plan, deployed, "CronJob", "backup", "backup", root)
    run_container(cloud_plan, deployed, "CronJob", "backup", "backup-upload", root)
    reported = manifest((root / "backup-upload.termination-log").read_text())
    assert reported is not None, "the upload container's termination message is the manifest the operator reads"
    return reported


def test_a_backup_in_swift_restores_keystone_projects_into_a_cloud_that_lost_its_volume(
    keystone: str, swift: str, s3_keys: Any, deployed: Deployment, tmp_path: Path
) -> None:
    conn = s3_keys
    make_projects(conn, PROJECTS)

    backing_up = plan(with_object_store(deployed, swift), deployed.credentials)
    prefix = f"{deployed.cloud.metadata.namespace}/{deployed.cloud.metadata.name}/database"
    first = backup(backing_up, deployed, tmp_path)
    name = str(first["name"])
    assert first["uploaded"] == f"{swift}/{BUCKET}/{prefix}/{name}.sql.gz"
    assert first["size"] == (tmp_path / "backups" / f"{name}.sql.gz").stat().st_size > 0

    time.sleep(1)  # backups are named by the second they began
    second = backup(backing_up, deployed, tmp_path)
    newest = str(second["name"])
    assert newest > name
    listed = sizes(conn)
    # the bucket keeps one (its retention: the first went), the volume two (its own)
    assert set(listed) == {f"{prefix}/{newest}.sql.gz", f"{prefix}/{newest}.json"}
    assert listed[f"{prefix}/{newest}.sql.gz"] == second["size"] > 0
    assert (tmp_path / "backups" / f"{name}.json").exists()

    delete_projects(conn, PROJECTS)

    restoring = plan(with_object_store(deployed, swift, restore=newest), deployed.credentials)
    restore_root = tmp_path / "restore"  # a pod of its own: an empty volume, nothing of the backups'
    restore_root.mkdir()
    run_container(restoring, deployed, "Job", "restore", "backup-download", restore_root)
    assert (restore_root / "backups" / f"{newest}.sql.gz").stat().st_size == second["size"]
    result, _ = run_container(restoring, deployed, "Job", "restore", "restore", restore_root)
    assert f"restore: {newest} restored" in result.stdout

    assert_projects_back(deployed, PROJECTS)


def test_a_restore_from_the_bucket_names_what_is_there_when_the_backup_is_not(
    keystone: str, swift: str, s3_keys: Any, deployed: Deployment, tmp_path: Path
) -> None:
    missing = plan(with_object_store(deployed, swift, restore="20000101T000000Z"), deployed.credentials)
    argv, _ = backup_command(missing, "Job", "mariadb", "restore", tmp_path, "backup-download")
    pod = backup_pod(missing, "Job", "mariadb", "restore")
    result = run([STACKOPS, *argv[1:]], job_env(pod, deployed.secrets, tmp_path / "files", "backup-download"))
    assert result.returncode == 1
    assert f"no backup 20000101T000000Z in {swift}/{BUCKET}/" in result.stderr
    assert not list((tmp_path / "backups").iterdir())  # nothing downloaded, nothing to restore


def test_an_upload_the_bucket_refuses_fails_the_backup_job_naming_the_endpoint(
    keystone: str, swift: str, s3_keys: Any, deployed: Deployment, tmp_path: Path
) -> None:
    """What becomes the Job's failure, the BackupFailed Event and the Degraded reason."""
    backing_up = plan(with_object_store(deployed, swift), deployed.credentials)
    argv, _ = backup_command(backing_up, "CronJob", "mariadb", "backup", tmp_path, "backup-upload")
    (tmp_path / "backups" / "20000101T000000Z.sql.gz").write_bytes(b"x")
    (tmp_path / "backups" / "20000101T000000Z.json").write_text('{"name":"20000101T000000Z","size":1}')
    wrong = {**deployed.secrets, KEYS: {**deployed.secrets[KEYS], "secretAccessKey": "not-the-secret"}}
    pod = backup_pod(backing_up, "CronJob", "mariadb", "backup")
    result = run([STACKOPS, *argv[1:]], job_env(pod, wrong, tmp_path / "files", "backup-upload"))
    assert result.returncode == 1
    assert f"backup-upload: {swift} bucket {BUCKET}: An error occurred (SignatureDoesNotMatch)" in result.stderr
