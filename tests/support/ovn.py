"""OVN's rendered control plane run for real in a Sandbox: the databases' StatefulSet containers and
northd's Deployment container, with Debian's ovsdb-server and ovn-northd.

Member i of a database gets the address `<network>.<i+1>` (its pod IP), and the Service names of
the rendered cloud resolve as cluster DNS would resolve them. With the cloud's internal TLS the
databases speak TLS only and ask every client for a certificate: a test's own clients (ovn-nbctl,
ovn-sbctl, ovsdb-client) present the cloud's OVN client certificate (client_pki).
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

from stackops.devcluster import processes
from stackops.plan import Plan
from stackops.services import ovn
from tests.support.rendered import KollaRun, Secrets, find, kolla_run, secret_data
from tests.support.sandbox import Sandbox, eventually


def member_ips(rendered: Plan, db: ovn.Database, network: str) -> dict[str, str]:
    """Each member's pod IP, by pod name."""
    statefulset = find(rendered, "StatefulSet", "neutron", db.component)
    name = statefulset["metadata"]["name"]
    return {f"{name}-{i}": f"{network}.{i + 1}" for i in range(statefulset["spec"]["replicas"])}


def host_names(rendered: Plan, network: str, cluster_domain: str = "cluster.local") -> dict[str, str]:
    """Cluster DNS, as far as OVN uses it: members under the headless Service, and their own Services,
    by the names pods use and by the fully qualified ones OVN is given (it ignores search domains)."""
    names = {}
    for db in ovn.DATABASES:
        cluster = find(rendered, "StatefulSet", "neutron", db.component)["spec"]["serviceName"]
        for member, ip in member_ips(rendered, db, network).items():
            for name in (f"{member}.{cluster}.openstack.svc", f"{member}.openstack.svc"):
                names[name] = names[f"{name}.{cluster_domain}"] = ip
    return names


def northd_files(rendered: Plan) -> dict[str, str]:
    """The config Secret of northd: the clients' certificate (the databases have a Secret of their own)."""
    volumes = find(rendered, "Deployment", "neutron", "northd")["spec"]["template"]["spec"]["volumes"]
    (config,) = [v["secret"]["secretName"] for v in volumes if "secret" in v]
    return secret_data(rendered, config)


def speaks_tls(rendered: Plan) -> bool:
    return f"{ovn.CLIENT}.crt" in northd_files(rendered)


def addresses(rendered: Plan, db: ovn.Database, network: str) -> str:
    """The database's members by address, as a client that needs no names connects to them."""
    scheme = "ssl" if speaks_tls(rendered) else "tcp"
    return ",".join(f"{scheme}:{ip}:{db.port}" for ip in member_ips(rendered, db, network).values())


def client_pki(rendered: Plan, root: Path) -> list[str]:
    """The options of a client of the databases (ovn-nbctl, ovn-sbctl, ovsdb-client): the cloud's OVN
    client certificate and CA, written under `root`, when the databases speak TLS; none otherwise."""
    if not speaks_tls(rendered):
        return []
    files = northd_files(rendered)
    root.mkdir(parents=True, exist_ok=True)
    for key in (f"{ovn.CLIENT}.key", f"{ovn.CLIENT}.crt", "ca.crt"):
        (root / key).write_text(files[key])
        (root / key).chmod(0o600)
    pki = ovn.Pki(str(root / f"{ovn.CLIENT}.key"), str(root / f"{ovn.CLIENT}.crt"), str(root / "ca.crt"))
    return pki.options.split()


def probe(obj: dict[str, Any], container: str, kind: str) -> list[str]:
    """The exec command of a rendered probe."""
    containers = obj["spec"]["template"]["spec"]["containers"]
    command: list[str] = next(c for c in containers if c["name"] == container)[kind]["exec"]["command"]
    return command


def etc_ovn(run: KollaRun) -> dict[str, Path]:
    """/etc/ovn as the container has it: what kolla_start copied there (its scripts, a client's TLS
    files) and a server's served certificate."""
    roots = {str(path).removesuffix(dest) for dest, path in run.files.items() if dest.startswith("/etc/ovn/")}
    return {"/etc/ovn": Path(roots.pop()) / "etc" / "ovn"} if roots else {}


def ctl(box: Sandbox, rendered: Plan, network: str, db: ovn.Database, *args: str) -> subprocess.CompletedProcess[str]:
    """ovn-nbctl or ovn-sbctl (by `db`) against the database's members on `network`, presenting the
    cloud's client certificate when the databases speak TLS."""
    pki = client_pki(rendered, box.root / "client")
    return box.network([f"ovn-{db.kind}ctl", *pki, f"--db={addresses(rendered, db, network)}", *args])


def start_member(
    box: Sandbox, rendered: Plan, root: Path, db: ovn.Database, member: str, ip: str, secrets: Secrets
) -> KollaRun:
    """One member's container, as its pod `member` at `ip` runs it, with its volume under `root` and
    its certificate from `secrets` (the credentials Secret's, by name)."""
    statefulset = find(rendered, "StatefulSet", "neutron", db.component)
    fields = {"metadata.name": member, "status.podIP": ip}
    run = kolla_run(rendered, statefulset, root / member, secrets, f"ovn-{db.component}", fields)
    box.start(member, run.argv, run.env, {ovn.DATA_DIR: data_dir(root, member), **etc_ovn(run)})
    return run


def data_dir(root: Path, member: str) -> Path:
    """Where a member's volume is."""
    return root / member / "data"


def wait_member(box: Sandbox, rendered: Plan, db: ovn.Database, member: str, ip: str) -> None:
    """Until the member's readiness probe passes; then its liveness probe must too, and the member
    itself must be what listens on its address (its probes use its unix socket: they pass too when
    another server holds the address, and clients of the address would talk to that one)."""
    statefulset = find(rendered, "StatefulSet", "neutron", db.component)
    container = f"ovn-{db.component}"
    wait_ready(box, member, probe(statefulset, container, "readinessProbe"))
    alive = box.inside(member, probe(statefulset, container, "livenessProbe"))
    assert alive.returncode == 0, alive.stderr
    eventually(lambda: bool(box.listeners(member, ip, db.port)), lambda: f"{member} to listen: {box.log(member)}")
    holders = box.listeners(member, ip, db.port)
    assert any(holders.values()), (
        f"{ip}:{db.port} is not {member}'s but "
        + ", ".join(f"{pid} ({processes.cmdline(pid)[:200]})" for pid in holders)
        + f": {box.log(member)}"
    )


def start_databases(box: Sandbox, rendered: Plan, root: Path, network: str, secrets: Secrets) -> None:
    """Every member of both databases, each with its volume, until their readiness probes pass."""
    for db in ovn.DATABASES:
        for member, ip in member_ips(rendered, db, network).items():
            start_member(box, rendered, root, db, member, ip, secrets)
        for member, ip in member_ips(rendered, db, network).items():
            wait_member(box, rendered, db, member, ip)


def free_network(first: int = 96, replicas: int = 3) -> str:
    """A network `127.0.<n>` on the host's loopback, from `first` on, where no database port is taken
    at any of the members' addresses: servers of each test session, at addresses of their own."""
    ports = [port for db in ovn.DATABASES for port in (db.port, db.raft_port)]
    for n in range(first, 255):
        try:
            for i in range(1, replicas + 1):
                for port in ports:
                    with socket.socket() as probe_socket:
                        # as ovsdb-server binds: connections of a server gone (TIME_WAIT) leave it free
                        probe_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                        probe_socket.bind((f"127.0.{n}.{i}", port))
        except OSError:
            continue
        return f"127.0.{n}"
    raise RuntimeError(f"no free OVN network in 127.0.{first}-254")


def wait_ready(box: Sandbox, name: str, readiness: list[str]) -> None:
    """Until the readiness probe passes in process `name`."""
    eventually(lambda: box.inside(name, readiness).returncode == 0, lambda: f"{name}: {box.log(name)}")


def start_northd(box: Sandbox, rendered: Plan, root: Path) -> None:
    northd = find(rendered, "Deployment", "neutron", "northd")
    run = kolla_run(rendered, northd, root / "northd", {})
    box.start("northd", run.argv, run.env, etc_ovn(run))
    wait_ready(box, "northd", probe(northd, "neutron-northd", "readinessProbe"))
