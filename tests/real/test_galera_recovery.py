"""A Galera cluster of the rendered MariaDB members, put through outages for real (tests/support/galera.py
runs three members in namespaces of their own, each a pod's worth: the rendered files at the pod's paths).

Proves, with the rendered start script deciding alone: a new cluster forms (its first member founds
it); a member killed while the others run comes back by joining them (IST), never founding a cluster;
after every member is killed (one earlier, so its position is behind; the other two at once, under
writes), they agree on the member with the highest seqno, only that one founds the cluster and it
copies its data aside first; every commit that returned OK is on every member afterwards and the
cluster has its three members again. And when one member never comes back, the others wait for it
until an administrator's file (docs/operations.md) tells one of them to found the cluster.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest

from stackops.credentials import Credentials
from stackops.plan import plan
from stackops.services.base import CloudContext
from stackops.services.mariadb import FORCE_BOOTSTRAP_FILE, RECOVERY_DIR, ROOT_PASSWORD_KEY, galera_peers
from tests.conftest import ROOT, cloud
from tests.support.mariadb import lay_out_server_config
from tests.support.rendered import cloud_credentials, secret_data

FOUNDS = "this member has the highest seqno and founds the cluster"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    demo = cloud({"infrastructure": {"database": {"replicas": 3}}})
    credentials = Credentials(cloud_credentials(demo))
    files = secret_data(plan(demo, credentials), "demo-mariadb-config")
    root = tmp_path_factory.mktemp("galera")
    root.chmod(0o755)
    etc = root / "etc" / "mysql"
    etc.mkdir(parents=True)
    lay_out_server_config(files, etc)
    ctx = CloudContext(demo.metadata.name, demo.metadata.namespace, demo.spec, credentials)
    (root / "request.json").write_text(
        json.dumps({"peers": galera_peers(ctx), "password": credentials[ROOT_PASSWORD_KEY]})
    )
    result = subprocess.run(
        ["unshare", "--net", "--mount", "--fork", sys.executable, "-m", "tests.support.galera", str(root)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    data: dict[str, Any] = json.loads((root / "report.json").read_text())
    print(json.dumps({k: v for k, v in data.items() if k not in ("logs", "rows", "committed")}))
    assert "error" not in data, data["error"] + json.dumps(data["logs"], indent=1)[-6000:]
    return data


def run_of(report: dict[str, Any], phase: str) -> dict[str, str]:
    """Each member's log of its start in a phase of the scenario."""
    return {name: report["logs"][name][index] for name, index in report["runs"][phase].items()}


def galera_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith("galera: ")]


def peer(ordinal: int) -> str:
    return f"demo-mariadb-{ordinal}.demo-mariadb-cluster.openstack.svc"


def test_a_new_cluster_is_founded_by_its_first_member(report: dict[str, Any]) -> None:
    logs = run_of(report, "new")
    founders = [name for name, log in logs.items() if FOUNDS in log]
    assert founders == ["demo-mariadb-0"], {name: galera_lines(log) for name, log in logs.items()}


def test_a_lost_member_rejoins_the_running_ones_without_founding(report: dict[str, Any]) -> None:
    rejoin = run_of(report, "rejoin")["demo-mariadb-2"]
    lines = galera_lines(rejoin)
    assert re.fullmatch(r"galera: this member's position is [0-9a-f-]+:[0-9]+", lines[0]), lines
    assert lines[1:] == [f"galera: {peer(0)} runs: joining it"], lines
    assert "--wsrep-new-cluster" not in rejoin
    # it said where its history ends, so it gets what it missed (IST) rather than a copy of everything
    assert "Running IST" in rejoin, rejoin[-3000:]
    assert report["size after rejoin"] == 3


def test_after_a_full_outage_the_member_with_the_highest_seqno_founds_the_cluster(report: dict[str, Any]) -> None:
    positions: dict[str, str] = report["oracle"]
    logs = run_of(report, "recovery")
    lines = {name: galera_lines(log) for name, log in logs.items()}
    # each member found the position mariadbd itself recovers from its volume
    for name, position in positions.items():
        assert f"galera: this member's position is {position}" in lines[name], lines
    seqnos = {name: int(position.rsplit(":", 1)[1]) for name, position in positions.items()}
    assert seqnos["demo-mariadb-0"] < max(seqnos.values()), seqnos
    expected = max(seqnos, key=lambda name: (seqnos[name], -int(name.rsplit("-", 1)[1])))
    founders = [name for name, log in logs.items() if FOUNDS in log]
    assert founders == [expected], lines
    for name in positions:
        if name != expected:
            assert lines[name][-1] == f"galera: {peer(int(expected[-1]))} runs: joining it", lines[name]
    # the copy of the founder's data, made before it founded the cluster, and nowhere else
    copies = report["copies after recovery"]
    assert len(copies[expected]) == 1 and copies[expected][0].startswith(f"{RECOVERY_DIR}/"), copies
    assert all(not copies[name] for name in copies if name != expected), copies
    assert all(f"#mysql50#{RECOVERY_DIR}" not in dbs for dbs in report["databases"].values())
    # the cluster goes on with the history it had: the same state UUID
    uuid = positions[expected].rsplit(":", 1)[0]
    assert report["state uuids"] == dict.fromkeys(positions, uuid)


def test_after_a_full_outage_every_commit_is_there_and_every_member_is_back(report: dict[str, Any]) -> None:
    committed = set(report["committed"])
    assert len(committed) > 100
    for name, rows in report["rows"].items():
        missing = committed - set(rows)
        assert not missing, f"{name} lacks {len(missing)} committed rows: {sorted(missing)[:20]}"
    assert report["sizes"] == {f"demo-mariadb-{i}": 3 for i in range(3)}


def test_a_member_that_never_comes_back_holds_recovery_until_an_administrator_chooses(report: dict[str, Any]) -> None:
    chosen, absent = report["forced"], report["absent"]
    logs = run_of(report, "forced")
    lines = {name: galera_lines(log) for name, log in logs.items()}
    assert absent not in logs
    assert all(f"galera: waiting for the positions of {peer(int(absent[-1]))}" in ls for ls in lines.values()), lines
    assert f"/var/lib/mysql/{FORCE_BOOTSTRAP_FILE} asks this member to found the cluster" in logs[chosen]
    assert [name for name, log in logs.items() if "--wsrep-new-cluster" in log] == [chosen]
    for name in logs:
        if name != chosen:
            assert lines[name][-1] == f"galera: {peer(int(chosen[-1]))} runs: joining it", lines[name]
    assert report["size when forced"] == 2 and not report["force file left"]
    # the late member joins; nothing was lost; one safety copy is kept, the newest
    assert report["size with the late member"] == 3
    assert set(report["rows at the end"].values()) == {len(report["rows"][chosen])}
    before, after = report["copies after recovery"][chosen], report["copies at the end"][chosen]
    assert len(before) == 1 and len(after) == 1 and after[0] > before[0], (before, after)
