"""A Galera cluster of the rendered MariaDB members, put through outages for real (tests/support/galera.py
runs three members in namespaces of their own, each a pod's worth: the rendered files at the pod's paths).

Proves, with the rendered start script deciding alone and the members speaking TLS among themselves
(replication, IST and SST with the cloud's certificates; a client with another CA's certificate or none
is refused on the Galera port, and a member rendered without TLS cannot join): a new cluster forms (its
first member founds it); a member killed while the others run comes back by joining them (IST), never
founding a cluster; after every member is killed (one earlier, so its position is behind; the other two
at once, under writes), they agree on the member with the highest seqno, only that one founds the
cluster and it copies its data aside first; every commit that returned OK is on every member afterwards
and the cluster has its three members again. And when one member never comes back, the others wait for
it until an administrator's file (docs/operations.md) tells one of them to found the cluster. And a
cluster made without Galera's TLS, rendered anew with it, moves to TLS when its members restart together
(one restarted alone cannot join the others).
"""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stackops.certificates import CertificateRequest, issued
from stackops.credentials import Credentials
from stackops.plan import plan
from stackops.services.base import CloudContext
from stackops.services.mariadb import (
    FORCE_BOOTSTRAP_FILE,
    MARIADB,
    RECOVERY_DIR,
    ROOT_PASSWORD_KEY,
    galera_peers,
)
from tests.conftest import ROOT, cloud
from tests.support.mariadb import lay_out_server_config
from tests.support.rendered import cloud_credentials, renewed, secret_data, serial

FOUNDS = "this member has the highest seqno and founds the cluster"


def run_lab(root: Path, scenario: str) -> dict[str, Any]:
    """A scenario of tests/support/galera.py run on the members of a rendered three-member cluster: its
    report. `root` gets the rendered config (etc/mysql), the same cloud's without internal TLS with the
    same credentials (plain/mysql) and a certificate of another CA (other-ca)."""
    demo = cloud({"infrastructure": {"database": {"replicas": 3}}})
    credentials = Credentials(cloud_credentials(demo))
    root.chmod(0o755)
    ctx = CloudContext(demo.metadata.name, demo.metadata.namespace, demo.spec, credentials)
    config = secret_data(plan(demo, credentials), "demo-mariadb-config")
    lay_out_server_config(config, MARIADB.tls_files(ctx), root / "etc" / "mysql")
    plain = cloud({"infrastructure": {"database": {"replicas": 3}}, "internalTLS": {"enabled": False}})
    lay_out_server_config(secret_data(plan(plain, credentials), "demo-mariadb-config"), {}, root / "plain" / "mysql")
    other = issued({}, [CertificateRequest("other", ("demo-mariadb-3.demo-mariadb-cluster.openstack.svc",))],
                   "another CA", datetime.datetime.now(datetime.UTC))  # fmt: skip
    (root / "other-ca").mkdir()
    (root / "other-ca" / "client.crt").write_text(other["tls-other.crt"])
    (root / "other-ca" / "client.key").write_text(other["tls-other.key"])
    # the certificate as the operator renews it, which the outage scenario swaps in
    (certificate,) = MARIADB.certificates(ctx)
    renewed_credentials = renewed(credentials, certificate, demo)
    (root / "renewed").mkdir()
    for name, content in MARIADB.tls_files(CloudContext("demo", "openstack", demo.spec, renewed_credentials)).items():
        (root / "renewed" / name).write_text(content)
    request = {"peers": galera_peers(ctx), "password": credentials[ROOT_PASSWORD_KEY], "scenario": scenario}
    (root / "request.json").write_text(json.dumps(request))
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
    data["serials"] = {"issued": serial(credentials[certificate.cert_key])}
    data["serials"]["renewed"] = serial(renewed_credentials[certificate.cert_key])
    print(json.dumps({k: v for k, v in data.items() if k not in ("logs", "rows", "committed", "intruder")}))
    assert "error" not in data, data["error"] + json.dumps(data["logs"], indent=1)[-6000:]
    return data


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_lab(tmp_path_factory.mktemp("galera"), "outage")


@pytest.fixture(scope="module")
def migration(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_lab(tmp_path_factory.mktemp("galera-migration"), "migration")


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


SST_TLS = "cert='/etc/mysql/tls/server.crt', key='/etc/mysql/tls/server.key', ca='/etc/mysql/tls/ca.crt'"


def test_members_copy_state_to_each_other_over_tls_verifying_the_clouds_ca(report: dict[str, Any]) -> None:
    logs = run_of(report, "new")
    # the founder gave each new member a whole copy (SST: mariabackup through socat's TLS) ...
    assert logs["demo-mariadb-0"].count(f"Encrypting with {SST_TLS}") == 2, logs["demo-mariadb-0"][-3000:]
    for joiner in ("demo-mariadb-1", "demo-mariadb-2"):
        log = logs[joiner]
        assert "MODE='VERIFY_CA', encrypt='3'" in log and f"Decrypting with {SST_TLS}" in log, log[-3000:]
        assert "socat -u openssl-listen:4444" in log and "mariabackup SST completed on joiner" in log
        assert "IST receiver using ssl" in log
    # ... a member back after a loss got what it missed by IST, over TLS too
    assert "IST receiver using ssl" in run_of(report, "rejoin")["demo-mariadb-2"]
    # Galera's own connections among the members: ssl:// only, in every start of every member
    for name, runs in report["logs"].items():
        if name != "demo-mariadb-3":
            assert all("ssl://10.213.0." in log and "tcp://" not in log for log in runs), name


def test_the_galera_port_admits_only_clients_with_a_certificate_of_the_clouds_ca(report: dict[str, Any]) -> None:
    probes: dict[str, str] = report["galera port"]
    print(json.dumps(probes, indent=1))
    # it serves TLS with the member's certificate, which the cloud's CA verifies
    assert probes["member certificate"].startswith("accepted TLSv1.3 "), probes
    assert "*.demo-mariadb-cluster.openstack.svc" in probes["member certificate"].split()
    assert probes["another CA's certificate"].startswith("refused: "), probes
    assert "unknown ca" in probes["another CA's certificate"], probes
    assert probes["no certificate"].startswith("refused: "), probes
    # plaintext gets nothing back: the member takes the bytes for the start of a TLS record and waits
    assert probes["plaintext"] == "no answer in 5s", probes


def test_a_renewed_certificate_reaches_every_member_without_a_restart(report: dict[str, Any]) -> None:
    """Until their probes ran the members served the certificate issued first; after, the renewed
    one on Galera's port (socket.ssl_reload) and on MariaDB's (FLUSH SSL), the same servers in one
    cluster of three."""
    renewal, serials = report["renewal"], report["serials"]
    print(json.dumps(renewal), serials)
    assert all(
        ports == {"galera": serials["issued"], "mysql": serials["issued"]} for ports in renewal["before"].values()
    )
    assert all(renewal["ready"].values())
    assert all(
        ports == {"galera": serials["renewed"], "mysql": serials["renewed"]} for ports in renewal["after"].values()
    )
    assert renewal["sizes"] == {f"demo-mariadb-{i}": 3 for i in range(3)} and renewal["same servers"]


def test_a_member_rendered_without_tls_cannot_join(report: dict[str, Any]) -> None:
    intruder = report["intruder"]
    log = intruder["log"]
    print("\n".join(line for line in log.splitlines() if "ERROR" in line or "galera:" in line)[-3000:])
    assert f"galera: {peer(0)} runs: joining it" in log
    assert intruder["exit code"] not in (None, 0), log[-3000:]
    assert "failed to reach primary view" in log, log[-3000:]
    assert intruder["sizes"] == {f"demo-mariadb-{i}": 3 for i in range(3)}


def test_a_plaintext_cluster_moves_to_tls_by_restarting_its_members_together(migration: dict[str, Any]) -> None:
    """A cluster made by a stackops without Galera's TLS, its members rendered anew with it."""
    rolled = run_of(migration, "first rolled")["demo-mariadb-2"]
    print("\n".join(line for line in rolled.splitlines() if "ERROR" in line or "galera:" in line))
    # rolled alone (as a StatefulSet rolls), the member cannot join the plaintext ones, which serve on
    assert migration["first rolled exit"] not in (None, 0) and "failed to reach primary view" in rolled
    assert migration["sizes while rolling"] == {"demo-mariadb-0": 2, "demo-mariadb-1": 2}
    # restarted together, the members agree on a founder and form the cluster again, over TLS
    logs = run_of(migration, "all rolled")
    assert [name for name, log in logs.items() if FOUNDS in log] == ["demo-mariadb-0"], logs
    assert all("ssl://10.213.0." in log and "tcp://" not in log for log in logs.values())
    assert migration["sizes"] == {f"demo-mariadb-{i}": 3 for i in range(3)}
    assert migration["rows"] == {f"demo-mariadb-{i}": migration["written"] for i in range(3)}
