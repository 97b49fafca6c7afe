"""OVN's backups for real: networks made through neutron 28 from PyPI on the OVN of the session (Debian's
ovsdb-server and northd from their rendered scripts), the rendered backup CronJob's command (its
script from the rendered Secret, its environment) run against the northbound and southbound
databases, a second network made after the backup, the northbound database lost (its member's
volume wiped, the member started again by its rendered script: an empty database), the rendered
restore Job's command run, then neutron's rendered OVN sync Job (neutron-ovn-db-sync-util in repair
mode, with neutron's rendered config): both networks' logical switches are back, and neutron works."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from stackops.api.models import OpenStackCloud, OvnRestore
from stackops.kube.backups import manifest
from stackops.plan import Plan, plan
from stackops.services import ovn
from stackops.services.backups import SCRIPTS_DIR
from tests.real.deployment import Deployment
from tests.support.commands import run
from tests.support.ovn import ctl, data_dir, member_ips, start_member, wait_member
from tests.support.rendered import Secrets, backup_command, container_env, find
from tests.support.sandbox import Sandbox


def with_ovn(deployed: Deployment, restore: str | None = None) -> OpenStackCloud:
    spec = deployed.cloud.spec.model_copy(deep=True)
    spec.services.neutron.ovn.backup.enabled = True
    spec.services.neutron.ovn.backup.retention = 2
    spec.services.neutron.ovn.restore = OvnRestore(backup=restore) if restore else None
    return deployed.cloud.model_copy(update={"spec": spec})


def run_rendered(
    cloud_plan: Plan, box: Sandbox, kind: str, component: str, root: Path
) -> tuple[subprocess.CompletedProcess[str], float]:
    """The container's command as the rendered object says (backup_command), in the sandbox where
    the cloud's names resolve; the termination message a file."""
    command, container = backup_command(cloud_plan, kind, "neutron", component, root)
    argv, env = box.command(command, {})
    # the client certificate (OVN_PKI) where backup_command put the scripts' volume
    container_vars = {k: v.replace(SCRIPTS_DIR, str(root / "scripts")) for k, v in container_env(container, {}).items()}
    env |= container_vars | {"TERMINATION_LOG": str(root / "termination-log")}
    started = time.monotonic()
    result = run(argv, env)
    return result, time.monotonic() - started


def switches(box: Sandbox, cloud_plan: Plan, network: str) -> str:
    listed = ctl(box, cloud_plan, network, ovn.NB, "ls-list")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


def lose_the_northbound_database(box: Sandbox, cloud_plan: Plan, network: str, secrets: Secrets) -> None:
    """Its member stopped, its volume replaced by an empty one, and started again as its pod would be
    (wait_member: the new server, not another, is what listens on the member's address)."""
    ((member, ip),) = member_ips(cloud_plan, ovn.NB, network).items()
    box.stop(member)
    shutil.rmtree(data_dir(box.root, member))
    data_dir(box.root, member).mkdir()
    start_member(box, cloud_plan, box.root, ovn.NB, member, ip, secrets)
    wait_member(box, cloud_plan, ovn.NB, member, ip)


def test_a_lost_northbound_database_comes_back_from_a_backup_and_neutrons_sync(
    neutron: str,
    deployed: Deployment,
    ovn_control_plane: Sandbox,
    ovn_network: str,
    neutron_bin: Path,
    tmp_path: Path,
) -> None:
    box = ovn_control_plane
    conn = deployed.connect()
    before = conn.network.create_network(name="before-the-backup")
    conn.network.create_subnet(network_id=before.id, ip_version=4, cidr="10.1.0.0/24")

    backing_up = plan(with_ovn(deployed), deployed.credentials)
    cron = find(backing_up, "CronJob", "neutron", "ovn-backup")
    assert cron["spec"]["schedule"] == "30 2 * * *" and cron["spec"]["suspend"] is False
    result, took = run_rendered(backing_up, box, "CronJob", "ovn-backup", tmp_path)
    assert result.returncode == 0, result.stderr
    print(f"backup: {took:.1f} s\n{result.stdout}")
    reported = manifest((tmp_path / "termination-log").read_text())
    assert reported is not None, "the pod's termination message is the manifest the operator reads"
    name = str(reported["name"])
    archive = tmp_path / "backups" / f"{name}.tar.gz"
    assert reported["size"] == archive.stat().st_size > 0
    listed = subprocess.run(["tar", "-tzf", str(archive)], capture_output=True, text=True, check=True)
    assert sorted(listed.stdout.split()) == ["nb.db", "sb.db"]

    after = conn.network.create_network(name="after-the-backup")
    conn.network.create_subnet(network_id=after.id, ip_version=4, cidr="10.2.0.0/24")
    assert f"neutron-{after.id}" in switches(box, backing_up, ovn_network)

    lose_the_northbound_database(box, backing_up, ovn_network, deployed.secrets)
    assert f"neutron-{before.id}" not in switches(box, backing_up, ovn_network), "an empty database"

    restoring = plan(with_ovn(deployed, restore=name), deployed.credentials)
    # what the operator does before the Jobs run: neutron's writers stopped, northd on, backups suspended
    assert find(restoring, "Deployment", "neutron", "api")["spec"]["replicas"] == 0
    assert find(restoring, "Deployment", "neutron", "ovn-maintenance-worker")["spec"]["replicas"] == 0
    assert find(restoring, "Deployment", "neutron", "northd")["spec"]["replicas"] == 1
    assert find(restoring, "CronJob", "neutron", "ovn-backup")["spec"]["suspend"] is True
    assert [(s.name, s.after_all) for s in restoring.steps[-2:]] == [
        ("neutron-ovn-restore", True),
        ("neutron-ovn-db-sync", True),
    ]
    result, took = run_rendered(restoring, box, "Job", "ovn-restore", tmp_path)
    assert result.returncode == 0, result.stderr
    print(f"restore: {took:.1f} s\n{result.stdout}")
    restored = switches(box, restoring, ovn_network)
    assert f"neutron-{before.id}" in restored and f"neutron-{after.id}" not in restored, restored

    # neutron's OVN sync, as its rendered Job runs it: through the wrapper that resolves the databases
    with deployed.using(restoring):
        sync = deployed.kolla("Job", "neutron", "ovn-db-sync")
    argv, env = box.command(sync.argv, {})
    argv = [*deployed.container_paths(sync, "neutron-ovn-db-sync"), *argv]  # OVN's client certificate in /etc
    started = time.monotonic()
    result = run(argv, {**env, **sync.env}, neutron_bin)
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    print(f"sync: {took:.1f} s")
    synced = switches(box, restoring, ovn_network)
    assert f"neutron-{before.id}" in synced and f"neutron-{after.id}" in synced, synced
    dhcp = ctl(box, restoring, ovn_network, ovn.NB, "--bare", "--columns=cidr", "list", "DHCP_Options")
    assert "10.2.0.0/24" in dhcp.stdout.split(), dhcp.stdout

    # neutron (its server ran on: here nothing stops it) works on the restored database
    third = conn.network.create_network(name="after-the-restore")
    try:
        assert f"neutron-{third.id}" in switches(box, restoring, ovn_network)
    finally:
        for network in (third, after, before):
            conn.network.delete_network(network)
    left = switches(box, restoring, ovn_network)
    assert not any(f"neutron-{n.id}" in left for n in (before, after, third)), left


def test_a_restore_refuses_a_backup_that_is_not_there_or_was_changed(
    neutron: str, deployed: Deployment, ovn_control_plane: Sandbox, tmp_path: Path
) -> None:
    result, _ = run_rendered(plan(with_ovn(deployed), deployed.credentials), ovn_control_plane, "CronJob",
                             "ovn-backup", tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    reported = manifest((tmp_path / "termination-log").read_text())
    assert reported is not None, "the backup wrote no manifest to its termination log"
    name = str(reported["name"])
    missing = plan(with_ovn(deployed, restore="20000101T000000Z"), deployed.credentials)
    result, _ = run_rendered(missing, ovn_control_plane, "Job", "ovn-restore", tmp_path)
    assert result.returncode == 2
    assert f"no backup 20000101T000000Z in the backups' volume (there: {name}" in result.stderr
    archive = tmp_path / "backups" / f"{name}.tar.gz"
    archive.write_bytes(archive.read_bytes() + b"\0")
    changed = plan(with_ovn(deployed, restore=name), deployed.credentials)
    result, _ = run_rendered(changed, ovn_control_plane, "Job", "ovn-restore", tmp_path)
    assert result.returncode == 2 and "does not match its manifest's checksum" in result.stderr
