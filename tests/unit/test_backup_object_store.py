"""Backups to an object store, the pure part: the backup pod's upload and the restore pod's download
as rendered, what the spec refuses and how it says so, what the status and `stackops status` show of
an upload, and the one way each backup set names its restore and stops workloads for it (the real
uploads, to swift's S3 API: tests/real/test_backup_object_store.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from stackops.api.validation import InvalidCloud
from stackops.jobs.object_store import Bucket, ObjectStoreJobError, upload
from stackops.kube.backups import backups, manifest
from stackops.plan import BACKUP_SETS, plan, problems
from stackops.reconcile.status import restores
from stackops.services import mariadb, ovn
from stackops.status_view import database_line
from tests.conftest import cloud
from tests.support.kube import FakeKube
from tests.support.rendered import backup_pod, container_of, secret_files
from tests.unit.test_database_backup import REPORT, backup_job
from tests.unit.test_database_backup import backup_pod as finished_pod

NAME = "20261206T023000Z"
STORE = {
    "endpoint": "https://s3.example.com/",
    "bucket": "cloud-backups",
    "region": "eu-west-1",
    "secretRef": {"name": "s3-keys"},
}


def database(backup: dict[str, Any], restore: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"infrastructure": {"database": {"backup": backup, **({"restore": restore} if restore else {})}}}


def test_the_backup_pod_uploads_what_its_backup_container_wrote() -> None:
    store = {**STORE, "caSecretRef": {"name": "s3-ca"}, "retention": 30}
    rendered = plan(cloud(database({"enabled": True, "retention": 3, "objectStore": store})))
    pod = backup_pod(rendered, "CronJob", "mariadb", "backup")
    # the backup first (an init container: the upload runs once it succeeded), then the upload
    assert [c["name"] for c in pod["initContainers"]] == ["backup"]
    assert [c["name"] for c in pod["containers"]] == ["backup-upload"]
    upload = container_of(pod, "backup-upload")
    assert upload["image"].startswith("quay.io/stackops/stackops:")
    assert upload["command"] == ["stackops", "job", "backup-upload"]
    assert upload["args"] == [
        "/backups",
        "--endpoint=https://s3.example.com",  # without the trailing slash
        "--bucket=cloud-backups",
        "--region=eu-west-1",
        "--prefix=openstack/demo/database",
        "--addressing-style=Path",
        "--retention=30",  # the bucket's own; the volume keeps 3
    ]
    assert container_of(pod, "backup")["command"][3] == "3"
    assert {"name": "backups", "mountPath": "/backups", "readOnly": True} in upload["volumeMounts"]
    # the keys and the CA as files from the Secrets the spec names, never as values
    assert secret_files(pod, "backup-upload") == {
        "STACKOPS_S3_ACCESS_KEY_ID": {"name": "s3-keys", "key": "accessKeyId"},
        "STACKOPS_S3_SECRET_ACCESS_KEY": {"name": "s3-keys", "key": "secretAccessKey"},
        "STACKOPS_S3_CA_BUNDLE": {"name": "s3-ca", "key": "ca.crt"},
    }
    assert all(v["name"].endswith("_FILE") for v in upload["env"])
    assert upload["securityContext"]["readOnlyRootFilesystem"] and pod["securityContext"]["runAsUser"] == 42434
    # without an object store: the one container, as before
    plain = backup_pod(plan(cloud(database({"enabled": True}))), "CronJob", "mariadb", "backup")
    assert "initContainers" not in plain and [c["name"] for c in plain["containers"]] == ["backup"]


def test_ovn_backups_go_to_a_prefix_of_their_own() -> None:
    ovn_store: dict[str, Any] = {"services": {"neutron": {"ovn": {"backup": {"enabled": True, "objectStore": STORE}}}}}
    pod = backup_pod(plan(cloud(ovn_store)), "CronJob", "neutron", "ovn-backup")
    assert "--prefix=openstack/demo/ovn" in container_of(pod, "backup-upload")["args"]
    prefixed = copy.deepcopy(ovn_store)
    prefixed["services"]["neutron"]["ovn"]["backup"]["objectStore"]["prefix"] = "old-cloud/ovn"
    pod = backup_pod(plan(cloud(prefixed)), "CronJob", "neutron", "ovn-backup")
    assert "--prefix=old-cloud/ovn" in container_of(pod, "backup-upload")["args"]


def test_a_restore_from_the_object_store_downloads_into_a_volume_of_its_own_first() -> None:
    rendered = plan(cloud(database({"objectStore": STORE}, {"backup": NAME, "source": "ObjectStore"})))
    pod = backup_pod(rendered, "Job", "mariadb", "restore")
    download = container_of(pod, "backup-download")
    assert [c["name"] for c in pod["initContainers"]] == ["backup-download"]
    assert download["args"][:2] == ["/backups", NAME] and "--bucket=cloud-backups" in download["args"]
    assert [c["name"] for c in pod["containers"]] == ["restore"]
    # the backups' volume is the pod's own: no PVC needed (a new cloud restoring a lost one's backup)
    assert {"name": "backups", "emptyDir": {}} in pod["volumes"]
    assert not [
        o for o in rendered.objects() if o["kind"] == "PersistentVolumeClaim" and "backups" in o["metadata"]["name"]
    ]
    # from the volume (the default), with an object store configured: the volume, no download
    from_volume = plan(cloud(database({"enabled": True, "objectStore": STORE}, {"backup": NAME})))
    pod = backup_pod(from_volume, "Job", "mariadb", "restore")
    assert "initContainers" not in pod
    assert {"name": "backups", "persistentVolumeClaim": {"claimName": "demo-mariadb-backups"}} in pod["volumes"]


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ({"endpoint": "s3.example.com"}, "endpoint: 's3.example.com' is not an http(s) URL of an S3 endpoint"),
        ({"endpoint": "https://s3.example.com?x=1"}, "endpoint: 'https://s3.example.com?x=1' is not an http(s) URL"),
        ({"bucket": "Backups"}, "bucket: 'Backups' is not an S3 bucket name"),
        ({"bucket": "ab"}, "bucket: 'ab' is not an S3 bucket name"),
        ({"prefix": "/openstack/"}, "prefix: '/openstack/' is not a key prefix"),
        ({"prefix": "a/../b"}, "prefix: 'a/../b' is not a key prefix"),
        ({"retention": 0}, "retention: Input should be greater than or equal to 1"),
        ({"addressingStyle": "path"}, "addressingStyle: Input should be 'Path' or 'VirtualHosted'"),
        ({"secretRef": None}, "secretRef"),
        ({"region": ""}, "region: String should have at least 1 character"),
    ],
)
def test_bad_object_store_settings_are_refused_naming_the_field(store: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidCloud) as caught:
        cloud(database({"enabled": True, "objectStore": {**STORE, **store}}))
    field = "spec.infrastructure.database.backup.objectStore"
    assert any(p.startswith(f"{field}.{message}") for p in caught.value.problems), caught.value


def test_a_restore_from_an_object_store_that_is_not_there_is_refused_naming_both_fields() -> None:
    asked = cloud(database({"enabled": True}, {"backup": NAME, "source": "ObjectStore"}))
    assert [(p.field, str(p)) for p in problems(asked.spec)] == [
        (
            "spec.infrastructure.database.restore.source",
            "spec.infrastructure.database.restore.source: ObjectStore needs "
            "spec.infrastructure.database.backup.objectStore: the bucket to take it from",
        )
    ]
    ovn_asked = cloud({"services": {"neutron": {"ovn": {"restore": {"backup": NAME, "source": "ObjectStore"}}}}})
    assert [p.field for p in problems(ovn_asked.spec)] == ["spec.services.neutron.ovn.restore.source"]


def test_the_status_says_where_the_last_backup_went() -> None:
    uploaded = "https://s3.example.com/cloud-backups/openstack/demo/database/20261206T023000Z.sql.gz"
    assert manifest(json.dumps({**REPORT, "uploaded": uploaded})) == {
        **{k: REPORT[k] for k in ("name", "time", "size", "sha256")},
        "uploaded": uploaded,
    }
    kube = FakeKube()
    job = backup_job("demo-mariadb-backup-1", "2026-12-06T02:30:00Z", "Complete")
    kube.objects[("Pod", "openstack", "p")] = finished_pod(
        job["metadata"]["name"], json.dumps({**REPORT, "uploaded": uploaded})
    )
    found = backups(kube, "openstack", {("Job", job["metadata"]["name"]): job})
    assert found is not None and found.last is not None and found.last["uploaded"] == uploaded
    line = database_line({"backup": {"last": NAME, "lastSize": 1234, "lastUploaded": uploaded}})
    assert line == f"database: last backup {NAME} (1234 bytes); uploaded to {uploaded}"


def test_every_backup_set_names_its_restore_and_stops_its_writers_one_way() -> None:
    assert [(s.status, s.restore_field) for s in BACKUP_SETS] == [
        ("database", "spec.infrastructure.database.restore"),
        ("ovn", "spec.services.neutron.ovn.restore"),
    ]
    both = cloud(
        {
            **database({"enabled": True}, {"backup": NAME}),
            "services": {"neutron": {"ovn": {"backup": {"enabled": True}, "restore": {"backup": "20261207T023000Z"}}}},
        }
    )
    assert restores(both) == {"database": NAME, "ovn": "20261207T023000Z"}
    assert restores(cloud({})) == {}
    ovn_only = cloud({"services": {"neutron": {"ovn": {"backup": {"enabled": True}, "restore": {"backup": NAME}}}}})
    steps = plan(ovn_only).steps
    replicas = {
        (o["metadata"]["name"]): o["spec"]["replicas"] for s in steps for o in s.objects if o["kind"] == "Deployment"
    }
    # OVN's restore stops neutron's writers only; the database's stops every user of the databases
    assert replicas["demo-neutron-api"] == 0 and replicas["demo-neutron-northd"] == 1
    assert replicas["demo-keystone-api"] == 1
    assert mariadb.BACKUPS.writers(both.spec) >= {"keystone", "nova", "neutron"} and ovn.BACKUPS.writer_components


class Store:
    """An S3 bucket in memory, with the calls the upload and download make (the real ones, against
    swift's S3 API: tests/real/test_backup_object_store.py)."""

    def __init__(self, objects: dict[str, bytes] | None = None) -> None:
        self.objects = dict(objects or {})
        self.puts: list[str] = []

    def get_paginator(self, _: str) -> Any:
        store = self

        class Pages:
            def paginate(self, Bucket: str, Prefix: str) -> list[dict[str, Any]]:
                return [{"Contents": [{"Key": k} for k in sorted(store.objects) if k.startswith(Prefix)]}]

        return Pages()

    def upload_file(self, path: str, bucket: str, key: str) -> None:
        self.objects[key] = Path(path).read_bytes()
        self.puts.append(key)

    def head_object(self, Bucket: str, Key: str) -> dict[str, int]:
        return {"ContentLength": len(self.objects[Key])}

    def delete_object(self, Bucket: str, Key: str) -> None:
        del self.objects[Key]


def on_volume(directory: Path, *names: str) -> None:
    directory.mkdir(exist_ok=True)
    for name in names:
        (directory / f"{name}.sql.gz").write_bytes(name.encode())
        (directory / f"{name}.json").write_text(json.dumps({"name": name, "size": len(name)}))


def test_an_upload_sends_only_what_the_bucket_keeps_and_removes_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    days = [f"2026120{d}T023000Z" for d in range(1, 6)]
    store = Store(
        {
            **{f"p/{d}.{ext}": d.encode() for d in days[:2] for ext in ("sql.gz", "json")},
            "p/20261203T023000Z.sql.gz": b"cut short",  # an upload that never got its manifest
            "p/notes.txt": b"the user's",  # no backup's: left alone
            "q/20261201T023000Z.json": b"{}",  # another prefix
        }
    )
    monkeypatch.setattr(Bucket, "client", lambda self: store)
    on_volume(tmp_path, *days[2:])
    bucket = Bucket("https://s3.example.com", "b", "r", "p", "key", "secret")
    changed, newest = upload(bucket, tmp_path, 2)
    # the newest two of both: the volume's last two, the third never uploaded only to be removed
    assert store.puts == [f"p/{d}.{ext}" for d in days[3:] for ext in ("sql.gz", "json")]
    assert sorted(store.objects) == sorted(
        [*(f"p/{d}.{ext}" for d in days[3:] for ext in ("json", "sql.gz")), "p/notes.txt", "q/20261201T023000Z.json"]
    )
    assert changed[-3:] == [f"{d} removed from the bucket (retention 2)" for d in days[:3]]
    assert newest == {"name": days[4], "size": 16, "uploaded": f"https://s3.example.com/b/p/{days[4]}.sql.gz"}
    # again: nothing to send, nothing to remove
    store.puts.clear()
    assert upload(bucket, tmp_path, 2)[0] == [] and store.puts == []


def test_an_upload_the_bucket_holds_short_of_fails_before_its_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store()
    monkeypatch.setattr(Bucket, "client", lambda self: store)
    on_volume(tmp_path, NAME)
    (tmp_path / f"{NAME}.json").write_text(json.dumps({"name": NAME, "size": 999}))
    with pytest.raises(ObjectStoreJobError, match="the bucket holds 16 bytes, not 999"):
        upload(Bucket("https://s3.example.com", "b", "r", "p", "k", "s"), tmp_path, 2)
    assert f"p/{NAME}.json" not in store.objects  # so the backup does not count there
    assert Bucket("https://s3.example.com", "b", "r", "p", "k", "s", path_style=False).url("x") == (
        "https://b.s3.example.com/p/x"
    )


def test_the_upload_job_names_the_keys_it_was_not_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stackops.cli import main

    for name in ("STACKOPS_S3_ACCESS_KEY_ID", "STACKOPS_S3_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    (tmp_path / "key").write_text("AKIA\n")
    monkeypatch.setenv("STACKOPS_S3_ACCESS_KEY_ID_FILE", str(tmp_path / "key"))
    args = ["--endpoint=https://s3.example.com", "--bucket=b", "--region=r", "--prefix=p", "--retention=2"]
    assert main(["job", "backup-upload", str(tmp_path), *args]) == 2
    assert capsys.readouterr().err == (
        "environment: neither STACKOPS_S3_SECRET_ACCESS_KEY nor STACKOPS_S3_SECRET_ACCESS_KEY_FILE is set\n"
    )


def test_a_failed_upload_is_the_backups_failure_an_event_and_a_degraded_reason() -> None:
    from stackops.api.models import BackupStatus, DatabaseStatus
    from stackops.health.workloads import workload_problems
    from stackops.reconcile.transitions import backup_transitions

    refused = "backup-upload: https://s3.example.com bucket b: An error occurred (AccessDenied) when calling ..."
    kube = FakeKube()
    job = backup_job("demo-mariadb-backup-1", "2026-12-06T02:30:00Z", "Failed")
    pod = finished_pod(job["metadata"]["name"], refused)  # the upload container's last log line
    pod["status"]["phase"] = "Failed"
    kube.objects[("Pod", "openstack", "p")] = pod
    found = backups(kube, "openstack", {("Job", job["metadata"]["name"]): job})
    assert found is not None and found.failure.endswith(f"failed: {refused}")
    after = DatabaseStatus(backup=BackupStatus(failed=found.failure))
    (event,) = backup_transitions(None, after)
    assert (event.type, event.reason, event.message) == ("Warning", "BackupFailed", found.failure)
    assert workload_problems([], [job]) == {
        "mariadb": [f"job {job['metadata']['name']} failed: the {job['metadata']['name']} failed"]
    }
