"""OVN's backups and the restore of its northbound database, the pure part: what is rendered, what
the spec refuses and how it says so, and the restore's phases and Events as the operator's status
shows them (the real backup, restore and neutron's sync: tests/real/test_ovn_backup.py)."""

from __future__ import annotations

from typing import Any

import pytest

from stackops.api.validation import InvalidCloud
from stackops.kube.backups import Backups
from stackops.kube.engine import Outcome, StepState
from stackops.plan import plan
from stackops.reconcile.status import backup_status
from stackops.reconcile.transitions import backup_transitions
from stackops.services import ovn
from stackops.status_view import database_line
from tests.conftest import cloud
from tests.support.rendered import find, secret_data

NAME = "20261206T023000Z"


def ovn_spec(settings: dict[str, Any]) -> dict[str, Any]:
    return {"services": {"neutron": {"ovn": {"replicas": 3, **settings}}}}


def test_no_ovn_backup_objects_unless_asked_for() -> None:
    names = {o["metadata"]["name"] for o in plan(cloud(ovn_spec({}))).objects()}
    assert not {"demo-neutron-ovn-backup", "demo-neutron-ovn-backups", "demo-neutron-ovn-backup-config"} & names


def test_the_ovn_backup_cronjob_snapshots_both_databases_onto_its_volume() -> None:
    rendered = plan(cloud(ovn_spec({"backup": {"enabled": True, "schedule": "0 */6 * * *", "retention": 4}})))
    cron = find(rendered, "CronJob", "neutron", "ovn-backup")
    assert cron["spec"]["schedule"] == "0 */6 * * *" and cron["spec"]["suspend"] is False
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["/bin/bash", "/etc/stackops/ovn-backup.sh", "/backups", "4"]
    env = {v["name"]: v["value"] for v in container["env"]}
    assert env["OVN_NB_DB"] == ovn_connection("nb", 6641) and env["OVN_SB_DB"] == ovn_connection("sb", 6642)
    # the client certificate, from the Jobs' config Secret (OVN's TLS is mutual)
    pki = "/etc/stackops/ovn-client.key --certificate=/etc/stackops/ovn-client.crt --ca-cert=/etc/stackops/ca.crt"
    assert env["OVN_PKI"] == f"--private-key={pki}"
    assert (
        container["image"].endswith("/ovn-nb-db-server:2026.1-ubuntu-noble") or "ovn-nb-db-server" in container["image"]
    )
    assert (
        pod["securityContext"]["runAsUser"] == ovn.BACKUP_UID and container["securityContext"]["readOnlyRootFilesystem"]
    )
    claim = find(rendered, "PersistentVolumeClaim", "neutron", "ovn-backup")
    assert claim["metadata"]["name"] == "demo-neutron-ovn-backups"
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    files = secret_data(rendered, "demo-neutron-ovn-backup-config")
    script = files["ovn-backup.sh"]
    assert 'ovsdb-client "${pki[@]}" --no-leader-only --timeout=120 backup "${OVN_NB_DB}" OVN_Northbound' in script
    assert set(files) >= {"ovn-client.crt", "ovn-client.key", "ca.crt"}
    assert 'backup "${OVN_SB_DB}" OVN_Southbound' in script and "keep() {" in script
    assert (
        plan(cloud(ovn_spec({"backup": {"enabled": True}}))).objects()
        == plan(cloud(ovn_spec({"backup": {"enabled": True}}))).objects()
    ), "rendered the same every time"


def ovn_connection(kind: str, port: int) -> str:
    return ",".join(f"ssl:demo-ovn-{kind}-{i}.openstack.svc.cluster.local:{port}" for i in range(3))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"backup": {"schedule": "0 24 * * *"}}, "backup.schedule: hour '24': values go from 0 to 23"),
        ({"backup": {"retention": 0}}, "backup.retention: Input should be greater than or equal to 1"),
        ({"backup": {"storage": {"size": "big"}}}, "backup.storage.size"),
        ({"restore": {"backup": "yesterday"}}, "restore.backup: 'yesterday' is not a backup's name"),
        ({"restore": {}}, "restore.backup: required field is missing"),
    ],
)
def test_bad_ovn_backup_settings_are_refused_naming_the_field(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidCloud) as caught:
        cloud(ovn_spec(settings))
    assert any(p.startswith(f"spec.services.neutron.ovn.{message}") for p in caught.value.problems), caught.value


def test_a_restore_stops_neutrons_writers_then_restores_then_syncs() -> None:
    rendered = plan(cloud(ovn_spec({"backup": {"enabled": True}, "restore": {"backup": NAME}})))
    replicas = {
        o["metadata"]["name"]: o["spec"]["replicas"]
        for o in rendered.objects()
        if o["kind"] in ("Deployment", "StatefulSet") and o["metadata"]["labels"]["app.kubernetes.io/name"] == "neutron"
    }
    assert replicas["demo-neutron-api"] == 0 and replicas["demo-neutron-ovn-maintenance-worker"] == 0
    assert replicas["demo-neutron-periodic-workers"] == 0
    # the databases and northd run on (northd recomputes the southbound database from the restored one)
    assert replicas["demo-ovn-nb"] == 3 and replicas["demo-neutron-northd"] == 3
    assert find(rendered, "Deployment", "keystone", "api")["spec"]["replicas"] == 1
    assert find(rendered, "CronJob", "neutron", "ovn-backup")["spec"]["suspend"] is True
    restore, sync = rendered.steps[-2:]
    assert (restore.name, sync.name) == ("neutron-ovn-restore", "neutron-ovn-db-sync")
    assert restore.after_all and sync.after_all
    (job,) = restore.objects
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][1:] == [
        "/etc/stackops/ovn-restore.sh", "/backups", NAME,
    ]  # fmt: skip
    (sync_job,) = sync.objects
    env = {v["name"]: v.get("value") for v in sync_job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["OVN_RESTORED_BACKUP"] == NAME
    command = secret_data(rendered, "demo-neutron-config")["neutron-ovn-db-sync.json"]
    assert "ovn-remotes.sh neutron-ovn-db-sync-util --config-file /etc/neutron/neutron.conf" in command
    assert "--ovn-neutron_sync_mode repair" in command
    # another restore is another pair of Jobs; no restore, no sync command (neutron's pods keep their config)
    other = plan(cloud(ovn_spec({"restore": {"backup": "20261207T023000Z"}})))
    assert {o["metadata"]["name"] for s in other.steps[-2:] for o in s.objects}.isdisjoint(
        {job["metadata"]["name"], sync_job["metadata"]["name"]}
    )
    running = plan(cloud(ovn_spec({})))
    assert "neutron-ovn-db-sync.json" not in secret_data(running, "demo-neutron-config")
    assert (
        find(running, "Deployment", "neutron", "api")["spec"]["template"]
        == find(plan(cloud(ovn_spec({"backup": {"enabled": True}}))), "Deployment", "neutron", "api")["spec"][
            "template"
        ]
    ), "backups alone change nothing of neutron's pods"


def steps(restore: str, sync: str) -> Outcome:
    return Outcome([StepState("neutron-ovn-restore", "neutron", restore, "job running"),
                    StepState("neutron-ovn-db-sync", "neutron", sync, "sync running")])  # fmt: skip


@pytest.mark.parametrize(
    ("restore", "sync", "phase"),
    [
        ("Pending", "Pending", "StoppingServices"),
        ("Waiting", "Pending", "Restoring"),
        ("Ready", "Pending", "Syncing"),
        ("Ready", "Waiting", "Syncing"),
        ("Ready", "Failed", "Failed"),
        ("Ready", "Ready", "Restored"),
    ],
)
def test_an_ovn_restore_shows_its_phase_in_status_ovn(restore: str, sync: str, phase: str) -> None:
    status = backup_status(None, steps(restore, sync), NAME, ovn.BACKUPS)
    assert status is not None and status.restore is not None
    assert (status.restore.backup, status.restore.phase) == (NAME, phase)
    if phase == "StoppingServices":
        assert status.restore.message == "waiting for neutron's server and workers to stop"
    if phase == "Restored":
        assert "until spec.services.neutron.ovn.restore is removed" in status.restore.message


def test_the_last_ovn_backup_and_its_events() -> None:
    outcome = steps("Ready", "Ready")
    last: dict[str, str | int] = {"name": NAME, "time": "2026-12-06T02:30:00Z", "size": 11105, "sha256": "ab" * 32}
    outcome.backups = {"ovn": Backups(last, "job demo-neutron-ovn-backup-2 failed")}
    status = backup_status(None, outcome, None, ovn.BACKUPS)
    assert status is not None and status.backup is not None and status.restore is None
    assert (status.backup.last, status.backup.last_size) == (NAME, 11105)
    assert [t.reason for t in backup_transitions(None, status, "Ovn")] == ["OvnBackupFailed"]
    restoring = backup_status(status, steps("Ready", "Waiting"), NAME, ovn.BACKUPS)
    assert [t.reason for t in backup_transitions(status, restoring, "Ovn")] == ["OvnRestoreSyncing"]
    assert restoring is not None and restoring.backup == status.backup, "the last backup stays while none ran"
    assert database_line(status.model_dump(by_alias=True), "ovn").startswith(f"ovn: last backup {NAME} (11105 bytes)")
