"""OVN as stackops renders it, run for real: Debian's ovsdb-server, ovn-northd and ovn-controller run the
commands and scripts of the rendered containers (Kolla's config.json), with the rendered files.

Everything runs in a private network namespace on loopback, each container in a mount and UTS
namespace of its own (tests/support/sandbox.py) where the cloud's Service names resolve as cluster DNS
would: member i of a database at 127.0.0.<i+1>.

Proves: the databases start standalone, or found and join a Raft cluster by DNS names; their probes
pass; northd turns a northbound logical switch into a southbound datapath; a compute and a gateway
chassis register with the southbound database carrying the node's address, the bridge mappings of
the spec and (the gateway only) enable-chassis-as-gw, with the provider bridges and interfaces in
Open vSwitch; neutron's wrapper hands its processes the databases' addresses; and a Raft member
whose volume was lost (the first, which founded the cluster, or another) joins the cluster again with
the data, its old server id kicked, so the cluster counts its members as before.
"""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stackops.certificates import CertificateRequest, issued
from stackops.credentials import Credentials
from stackops.plan import Plan, certificate_requests, plan
from stackops.services import ovn
from stackops.services.base import CloudContext
from tests.conftest import cloud
from tests.support.https import SERVED_SERIAL
from tests.support.ovn import (
    addresses,
    client_pki,
    data_dir,
    etc_ovn,
    host_names,
    member_ips,
    probe,
    start_databases,
    start_member,
    start_northd,
    wait_member,
)
from tests.support.rendered import Secrets, cloud_credentials, find, kolla_run, renewed, serial
from tests.support.sandbox import Sandbox, eventually

NETWORK = "127.0.0"  # the sandbox's own loopback: pods at 127.0.0.1, .2, .3


def rendered_cloud(neutron: dict[str, Any]) -> tuple[Plan, Secrets]:
    """A cloud with neutron's `neutron` settings, rendered with its credentials and certificates, and
    its credentials Secret (where the databases' certificates are served from)."""
    demo = cloud({"services": {"neutron": neutron}})
    credentials = Credentials(cloud_credentials(demo))
    return plan(demo, credentials), {"demo-credentials": credentials.values()}


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Callable[[Plan], Sandbox]]:
    made: list[Sandbox] = []

    def make(rendered: Plan) -> Sandbox:
        made.append(Sandbox(tmp_path, host_names(rendered, NETWORK)))
        return made[-1]

    yield make
    for box in made:
        box.close()


@pytest.mark.parametrize("replicas", [1, 3])
def test_databases_and_northd_from_the_rendered_scripts(
    replicas: int, sandbox: Callable[[Plan], Sandbox], tmp_path: Path
) -> None:
    rendered, secrets = rendered_cloud({"ovn": {"replicas": replicas}})
    box = sandbox(rendered)
    pki = client_pki(rendered, tmp_path / "client")
    start_databases(box, rendered, tmp_path, NETWORK, secrets)
    for db in ovn.DATABASES:
        status = box.inside(f"demo-ovn-{db.kind}-0", ["ovs-appctl", "-t", db.control, "cluster/status", db.schema_name])
        if replicas == 1:  # a standalone database has no cluster to report
            assert status.returncode != 0
        else:
            assert status.returncode == 0, status.stderr
            servers = [line for line in status.stdout.splitlines() if f".demo-ovn-{db.kind}-cluster." in line]
            assert "Role: leader" in status.stdout or "Role: follower" in status.stdout
            assert len([s for s in servers if "(self)" not in s]) >= replicas - 1, status.stdout
            # the members talk Raft over TLS
            assert all("ssl:" in s and "tcp:" not in s for s in servers), status.stdout
    start_northd(box, rendered, tmp_path)
    # northd, connected by the rendered names, turns a northbound switch into a southbound datapath
    nb = box.network(["ovn-nbctl", *pki, f"--db={addresses(rendered, ovn.NB, NETWORK)}", "ls-add", "sw0"])
    assert nb.returncode == 0, nb.stderr

    def datapath_for_sw0() -> bool:
        sb = addresses(rendered, ovn.SB, NETWORK)
        found = box.network(
            ["ovn-sbctl", *pki, f"--db={sb}", "--bare", "--columns=external_ids", "list", "Datapath_Binding"]
        )
        return "name=sw0" in found.stdout

    eventually(datapath_for_sw0, lambda: f"northd to translate sw0: {box.log('northd')}")


def chassis(box: Sandbox, rendered: Plan, root: Path, component: str, host: str, host_ip: str) -> dict[str, Any]:
    """Run one chassis of DaemonSet `component`: Open vSwitch's database and the ovn-controller
    container (no vswitchd: there is no kernel datapath here); return its southbound Chassis row."""
    daemonset = find(rendered, "DaemonSet", "neutron", component)
    pki = client_pki(rendered, root / "client")
    state = root / host
    conf_db = state / "ovs-data" / "conf.db"
    conf_db.parent.mkdir(parents=True)
    # Kolla's openvswitch-db-server image creates conf.db before its command runs
    created = subprocess.run(["ovsdb-tool", "create", str(conf_db), "/usr/share/openvswitch/vswitch.ovsschema"],
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert created.returncode == 0, created.stderr
    binds = {
        "/run/openvswitch": state / "ovs-run",
        "/run/ovn": state / "ovn-run",
        "/var/lib/openvswitch": state / "ovs-data",
        "/etc/openvswitch": state / "ovs-config",
    }
    fields = {"status.hostIP": host_ip}
    for container in ("openvswitch-db", "ovn-controller"):
        run = kolla_run(rendered, daemonset, state / container, {}, container, fields)
        box.start(f"{host}-{container}", run.argv, run.env, binds | etc_ovn(run), hostname=host)
    connected = probe(daemonset, "ovn-controller", "readinessProbe")
    eventually(
        lambda: box.inside(f"{host}-ovn-controller", connected).returncode == 0,
        lambda: f"{host} connected: {box.log(f'{host}-ovn-controller')}",
    )
    for container in ("openvswitch-db", "ovn-controller"):
        alive = box.inside(f"{host}-{container}", probe(daemonset, container, "livenessProbe"))
        assert alive.returncode == 0, alive.stderr
    bridges = box.inside(f"{host}-ovn-controller", ["ovs-vsctl", "list-br"]).stdout.split()
    ports = {b: box.inside(f"{host}-ovn-controller", ["ovs-vsctl", "list-ports", b]).stdout.split() for b in bridges}
    sb = box.network(
        ["ovn-sbctl", *pki, f"--db={addresses(rendered, ovn.SB, NETWORK)}", "--format=json", "list", "Chassis"]
    )
    table = json.loads(sb.stdout)
    rows = [dict(zip(table["headings"], row, strict=True)) for row in table["data"]]
    row = next(r for r in rows if r["hostname"] == host)
    encaps = box.network(
        ["ovn-sbctl", *pki, f"--db={addresses(rendered, ovn.SB, NETWORK)}", "--bare", "--columns=ip", "list", "Encap"]
    )
    for container in ("ovn-controller", "openvswitch-db"):
        box.stop(f"{host}-{container}")  # one chassis at a time: both would want 127.0.0.1:6640
    return {
        "other_config": dict(row["other_config"][1]),
        "encap_ips": encaps.stdout.split(),
        "bridges": bridges,
        "ports": ports,
    }


def test_compute_and_gateway_chassis_register_with_their_roles(
    sandbox: Callable[[Plan], Sandbox], tmp_path: Path
) -> None:
    networks = [
        {"name": "physnet1", "bridge": "br-ex", "interface": "eth1"},
        {"name": "physnet2", "bridge": "br-vlan", "interface": "bond1"},
    ]
    rendered, secrets = rendered_cloud({"ovn": {"replicas": 3}, "providerNetworks": networks})
    box = sandbox(rendered)
    start_databases(box, rendered, tmp_path, NETWORK, secrets)
    compute = chassis(box, rendered, tmp_path, "ovn-controller", "compute-0", "127.0.1.1")
    gateway = chassis(box, rendered, tmp_path, "ovn-controller-gateway", "gateway-0", "127.0.1.2")
    for row in (compute, gateway):
        assert row["other_config"]["ovn-bridge-mappings"] == "physnet1:br-ex,physnet2:br-vlan"
        assert {"br-ex", "br-vlan", "br-int"} <= set(row["bridges"])
        assert row["ports"]["br-ex"] == ["eth1"] and row["ports"]["br-vlan"] == ["bond1"]
    assert compute["other_config"]["ovn-cms-options"] == ""  # ovn-controller reports the option, empty
    assert gateway["other_config"]["ovn-cms-options"] == "enable-chassis-as-gw"
    assert {"127.0.1.1", "127.0.1.2"} <= set(gateway["encap_ips"])


def test_neutron_processes_get_the_databases_addresses(sandbox: Callable[[Plan], Sandbox], tmp_path: Path) -> None:
    rendered, _ = rendered_cloud({"ovn": {"replicas": 3}})
    box = sandbox(rendered)
    for workload in (
        find(rendered, "Deployment", "neutron", "api"),
        find(rendered, "DaemonSet", "neutron", "metadata-agent"),
    ):
        component = workload["metadata"]["labels"]["app.kubernetes.io/component"]
        run = kolla_run(rendered, workload, tmp_path / component, {})
        # the rendered command is `bash ovn-remotes.sh <neutron process>`: run it with `env` instead
        wrapper = run.argv[: run.argv.index(str(run.files["/etc/neutron/ovn-remotes.sh"])) + 1]
        box.start(component, [*wrapper, "env"], run.env, {})
        popen = box.processes[component].popen
        assert popen is not None and popen.wait(timeout=30) == 0, box.log(component)
        env = dict(line.split("=", 1) for line in box.log(component).splitlines() if "=" in line)
        assert env["OS_OVN__OVN_NB_CONNECTION"] == addresses(rendered, ovn.NB, NETWORK)
        assert env["OS_OVN__OVN_SB_CONNECTION"] == addresses(rendered, ovn.SB, NETWORK)


def cluster_servers(box: Sandbox, member: str, db: ovn.Database) -> list[str]:
    """The servers of the cluster as `member` lists them (cluster/status), one line each."""
    status = box.inside(member, ["ovs-appctl", "-t", db.control, "cluster/status", db.schema_name])
    assert status.returncode == 0, status.stderr
    listed = status.stdout.split("Servers:", 1)[1]
    return [line.strip() for line in listed.splitlines() if line.strip()]


@pytest.mark.parametrize("lost", [0, 2])
def test_a_raft_member_that_lost_its_volume_joins_again(
    lost: int, sandbox: Callable[[Plan], Sandbox], tmp_path: Path
) -> None:
    rendered, secrets = rendered_cloud({"ovn": {"replicas": 3}})
    box = sandbox(rendered)
    pki = client_pki(rendered, tmp_path / "client")
    start_databases(box, rendered, tmp_path, NETWORK, secrets)
    db = ovn.NB
    nb = addresses(rendered, db, NETWORK)
    made = box.network(["ovn-nbctl", *pki, f"--db={nb}", "ls-add", "before-the-loss"])
    assert made.returncode == 0, made.stderr
    ips = member_ips(rendered, db, NETWORK)
    member, ip = list(ips.items())[lost]
    old_id = box.inside(member, ["ovs-appctl", "-t", db.control, "cluster/sid", db.schema_name]).stdout.strip()
    box.stop(member)
    volume = data_dir(tmp_path, member)
    assert (volume / db.db_file.rsplit("/", 1)[1]).exists()
    shutil.rmtree(volume)  # a new, empty volume in its place
    volume.mkdir()
    # the two others keep a majority: the database takes writes while the member is gone (once they
    # elected a leader, when it was the leader; the client tries a member that is gone first at times)
    eventually(
        lambda: (
            box.network(["ovn-nbctl", *pki, f"--db={nb}", "--may-exist", "ls-add", "while-it-was-gone"]).returncode == 0
        ),
        lambda: "a write to the two members left",
    )

    start_member(box, rendered, tmp_path, db, member, ip, secrets)
    wait_member(box, rendered, db, member, ip)
    new_id = box.inside(member, ["ovs-appctl", "-t", db.control, "cluster/sid", db.schema_name]).stdout.strip()
    assert new_id and new_id != old_id, "a new volume is a new server"

    def three_servers_everywhere() -> bool:
        return all(len(cluster_servers(box, m, db)) == 3 for m in ips)

    eventually(three_servers_everywhere, lambda: f"the old server id kicked: {box.log(member)}")
    servers = cluster_servers(box, member, db)
    assert not any(line.startswith(old_id[:4] + " ") for line in servers), servers
    assert len({line.split(" at ", 1)[1].split(")")[0] for line in servers}) == 3, "one server per member"
    # it serves what the cluster held before and after the loss, itself, and a write through it lands
    own = f"ssl:{ip}:{db.port}"
    listed = box.network(["ovn-nbctl", *pki, "--no-leader-only", f"--db={own}", "ls-list"]).stdout
    assert "(before-the-loss)" in listed and "(while-it-was-gone)" in listed, listed
    assert "removing server" in box.log(member)
    own_write = box.network(["ovn-nbctl", *pki, "--no-leader-only", f"--db={own}", "ls-add", "through-it"])
    assert own_write.returncode == 0, own_write.stderr  # a follower forwards a write to the leader
    status = box.inside(member, ["ovs-appctl", "-t", db.control, "cluster/status", db.schema_name]).stdout
    assert "Status: cluster member" in status


TLS_CLIENT = """
import json, socket, ssl, sys
host, port, server_name, ca, cert, key = sys.argv[1:7]
context = ssl.create_default_context(cafile=ca)  # verifies the chain and the name asked for
if cert:
    context.load_cert_chain(cert, key)
try:
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            tls.sendall(json.dumps({"method": "list_dbs", "params": [], "id": 0}).encode())
            print(tls.recv(65536).decode() or "closed")
except (OSError, ssl.SSLError) as error:
    print(f"refused: {error}")
"""


def test_the_databases_speak_tls_only_and_admit_only_clients_with_the_clouds_certificate(
    sandbox: Callable[[Plan], Sandbox], tmp_path: Path
) -> None:
    rendered, secrets = rendered_cloud({"ovn": {"replicas": 3}})
    box = sandbox(rendered)
    pki = client_pki(rendered, tmp_path / "client")
    start_databases(box, rendered, tmp_path, NETWORK, secrets)
    ip, name = "127.0.0.1", "demo-ovn-nb-0.openstack.svc.cluster.local"  # member 0, by its Service's name
    key, cert, ca = (str(tmp_path / "client" / f) for f in ("ovn-client.key", "ovn-client.crt", "ca.crt"))

    def client(*args: str) -> str:
        return box.network([sys.executable, "-c", TLS_CLIENT, ip, "6641", *args]).stdout.strip()

    # a client verifying the server's certificate and name against the cloud's CA, presenting the
    # clients' certificate: the database answers
    assert sorted(json.loads(client(name, ca, cert, key))["result"]) == ["OVN_Northbound", "_Server"]
    # the same without a certificate of its own: the server ends the handshake
    assert not client(name, ca, "", "").startswith("{"), "served a client without a certificate"
    # a certificate of another CA: refused too
    other = issued({}, [CertificateRequest("other", ("other",))], "another CA", datetime.datetime.now(datetime.UTC))
    for file, value in (("other.crt", other["tls-other.crt"]), ("other.key", other["tls-other.key"])):
        (tmp_path / file).write_text(value)
    refused = client(name, ca, str(tmp_path / "other.crt"), str(tmp_path / "other.key"))
    assert not refused.startswith("{"), "served a client of another CA"
    # plaintext: no answer from the TLS listener, and OVN's own client gives up
    plain = box.network(["ovsdb-client", "--timeout=5", "list-dbs", f"tcp:{ip}:6641"])
    assert plain.returncode != 0 and "OVN_Northbound" not in plain.stdout
    # OVN's own client with the certificate: served
    listed = box.network(["ovsdb-client", *pki, "--timeout=10", "list-dbs", f"ssl:{ip}:6641"])
    assert listed.returncode == 0 and "OVN_Northbound" in listed.stdout, listed.stderr
    print(f"without a certificate: {client(name, ca, '', '')}; another CA's: {refused}; plaintext: {plain.stderr}")


def test_a_database_loads_its_renewed_certificate_by_itself(sandbox: Callable[[Plan], Sandbox], tmp_path: Path) -> None:
    """One member of each database (no Raft to roll through): the kubelet swaps the renewed files
    into its volume, and ovsdb-server, which checks its files' times in its main loop, serves the
    new certificate to the next clients, verified by the Service's name, from the same process."""
    rendered, secrets = rendered_cloud({"ovn": {"replicas": 1}})
    box = sandbox(rendered)
    client_pki(rendered, tmp_path / "client")
    key, cert, ca = (str(tmp_path / "client" / f) for f in ("ovn-client.key", "ovn-client.crt", "ca.crt"))
    ((member, ip),) = member_ips(rendered, ovn.NB, NETWORK).items()
    run = start_member(box, rendered, tmp_path, ovn.NB, member, ip, secrets)
    wait_member(box, rendered, ovn.NB, member, ip)
    name = f"{member}.openstack.svc.cluster.local"

    def served() -> str:
        args = [sys.executable, "-c", SERVED_SERIAL, ip, str(ovn.NB.port), name, ca, cert, key]
        return box.network(args).stdout.strip()

    demo = cloud({"services": {"neutron": {"ovn": {"replicas": 1}}}})
    credentials = Credentials(secrets["demo-credentials"])
    request = next(r for r in certificate_requests(demo) if r.name == "ovn-nb")
    assert served() == serial(credentials[request.cert_key])
    server = set(box.listeners(member, ip, ovn.NB.port))
    new = renewed(credentials, request, demo)
    ctx = CloudContext("demo", "openstack", demo.spec, new)
    run.volumes[ovn.TLS_DIR].update(ctx.served_files([request]))
    eventually(lambda: served() == serial(new[request.cert_key]), lambda: f"the renewed certificate: {box.log(member)}")
    assert set(box.listeners(member, ip, ovn.NB.port)) == server  # the same ovsdb-server
    listed = box.network(["ovn-nbctl", *client_pki(rendered, tmp_path / "client"), f"--db=ssl:{ip}:6641", "ls-list"])
    assert listed.returncode == 0, listed.stderr
