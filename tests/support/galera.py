"""A Galera cluster of rendered MariaDB members on one machine, and the outage tests/real puts it through.

Each member is what a pod of the StatefulSet is: the rendered my.cnf, mariadb-start.sh and
mariadb-probe.sh at /etc/mysql, its own volume at /var/lib/mysql and its own /tmp, run as the mysql user with the
environment the pod gets (POD_NAME, POD_IP, DB_ROOT_PASSWORD_FILE), in a network and mount namespace of its
own. So the rendered files run unchanged: the same ports on every member, the peers' names from the
rendered config resolved by an /etc/hosts the members see. The members' namespaces hang off a bridge
in a network namespace of the whole lab (`python -m tests.support.galera` runs inside `unshare --net
--mount`), which has no way out: nothing reaches the machine's own network.

The scenario (`outage`) writes the JSON report the test judges: the logs of every start of every
member, what mariadbd itself recovers as each member's position after the outage (the oracle), the
commits that returned OK and the rows each member holds afterwards, the cluster sizes, and what lies
in each member's recovery directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
from cryptography import x509

from stackops.services.mariadb import FORCE_BOOTSTRAP_FILE, GALERA_PORTS, RECOVERY_DIR

SUBNET = "10.213.0"
BRIDGE = "galera0"
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
PORT = 3306
TABLE = "stackops_lab.writes"


@dataclass
class Member:
    """One pod's worth: its namespaces (held by a sleeping process), its volume and its server's runs."""

    ordinal: int
    pod_name: str
    address: str
    volume: Path
    holder: subprocess.Popen[bytes]
    server: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.holder.pid


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=30)


class Lab:
    """The members of one rendered Galera cluster, in the lab's private network namespace (see above)."""

    def __init__(self, root: Path, peers: list[str], password: str, configs: list[Path] | None = None) -> None:
        self.root = root
        self.peers = peers
        self.password = password
        # each member's /etc/mysql comes from <config>/mysql: root/etc for all unless given one each
        self.configs = configs or [root / "etc"] * len(peers)
        self.members: list[Member] = []
        self.others: list[Member] = []  # pods that are no members of the cluster (an intruder)

    def setup(self) -> None:
        _run("ip", "link", "set", "lo", "up")
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
        _run("ip", "addr", "add", f"{SUBNET}.254/24", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        hosts = self.root / "hosts"
        hosts.write_text(
            "127.0.0.1 localhost\n" + "".join(f"{SUBNET}.{i + 1} {peer}\n" for i, peer in enumerate(self.peers))
        )
        self.members = [self.pod(ordinal, peer.split(".")[0], self.configs[ordinal]) for ordinal, peer in
                        enumerate(self.peers)]  # fmt: skip

    def pod(self, ordinal: int, name: str, etc: Path) -> Member:
        """A member's namespaces, volume and address, with `etc`/mysql as its /etc/mysql."""
        # the root password as the pod's Secret file gives it (the start script and probe read it)
        password_file = etc / "mysql" / "root-password"
        if not password_file.exists():
            password_file.write_text(self.password)
            password_file.chmod(0o400)
            shutil.chown(password_file, "mysql", "mysql")
        volume = self.root / f"member-{ordinal}" / "mysql"
        volume.mkdir(parents=True)
        shutil.chown(volume, "mysql", "mysql")
        mounts = (
            f"mount --bind {etc / 'mysql'} /etc/mysql && mount --bind {volume} /var/lib/mysql && "
            "mount -t tmpfs -o mode=0755 tmpfs /run/mysqld && chown mysql:mysql /run/mysqld && "
            f"mount --bind {self.root / 'hosts'} /etc/hosts && mount -t tmpfs -o mode=1777 tmpfs /tmp && "
            "echo ready && exec sleep infinity"
        )
        holder = subprocess.Popen(["unshare", "--net", "--mount", "--", "bash", "-c", mounts], stdout=subprocess.PIPE)
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"ready"
        member = Member(ordinal, name, f"{SUBNET}.{ordinal + 1}", volume, holder)
        _run("ip", "link", "add", f"m{ordinal}", "type", "veth", "peer", "name", "eth0", "netns", str(member.pid))
        _run("ip", "link", "set", f"m{ordinal}", "master", BRIDGE, "up")
        inside = ("nsenter", "-t", str(member.pid), "-n")
        _run(*inside, "ip", "link", "set", "lo", "up")
        _run(*inside, "ip", "addr", "add", f"{member.address}/24", "dev", "eth0")
        _run(*inside, "ip", "link", "set", "eth0", "up")
        return member

    def _as_pod(self, member: Member, *command: str) -> list[str]:
        """A command as the pod's container runs it: in its namespaces, as mysql, with the pod's environment."""
        return [
            *("nsenter", "-t", str(member.pid), "-n", "-m", "--"),
            *("setpriv", "--reuid=mysql", "--regid=mysql", "--init-groups", "--"),
            *("env", "-i", f"PATH={PATH}", "DB_ROOT_PASSWORD_FILE=/etc/mysql/root-password"),
            *(f"POD_NAME={member.pod_name}", f"POD_IP={member.address}"),
            *command,
        ]

    def start(self, member: Member) -> int:
        """Run the rendered start script, as the container's command would (kolla_start execs it); the
        number of this start, its log's index in the report."""
        run = len(member.logs)
        log = member.volume.parent / f"start-{run}.log"
        member.logs.append(log)
        with open(log, "wb") as out:
            member.server = subprocess.Popen(
                self._as_pod(member, "bash", "/etc/mysql/mariadb-start.sh"),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return run

    def wait_log(self, member: Member, text: str, timeout: float) -> None:
        start = time.monotonic()
        while text not in member.logs[-1].read_text():
            assert time.monotonic() - start < timeout, f"{member.pod_name} never logged {text!r}"
            time.sleep(0.5)

    def copies(self, member: Member) -> list[str]:
        """The safety copies in the member's volume (each a copy of a data directory, grastate.dat and all)."""
        found = member.volume.glob(f"{RECOVERY_DIR}/*/grastate.dat")
        return sorted(str(p.parent.relative_to(member.volume)) for p in found)

    def kill(self, *members: Member) -> None:
        """SIGKILL the members' servers (and whatever their start scripts run) one right after the other."""
        self._signal(members, signal.SIGKILL, 30)

    def terminate(self, *members: Member) -> None:
        """SIGTERM the members' servers, as the kubelet stops a deleted pod: they shut down cleanly."""
        self._signal(members, signal.SIGTERM, 120)

    def _signal(self, members: tuple[Member, ...], signum: signal.Signals, timeout: float) -> None:
        for member in members:
            assert member.server is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(member.server.pid, signum)
        for member in members:
            assert member.server is not None
            member.server.wait(timeout=timeout)
            member.server = None

    def stop(self) -> None:
        for member in self.members + self.others:
            if member.server is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(member.server.pid, signal.SIGTERM)
        for member in self.members + self.others:
            if member.server is not None:
                try:
                    member.server.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(member.server.pid, signal.SIGKILL)
                    member.server.wait()
                member.server = None
            member.holder.kill()
            member.holder.wait()

    def ready(self, member: Member) -> bool:
        """The rendered readiness probe: the member answers and is Synced."""
        probe = self._as_pod(member, "bash", "/etc/mysql/mariadb-probe.sh")
        return subprocess.run(probe, capture_output=True, timeout=30, check=False).returncode == 0

    def wait_ready(self, members: list[Member], timeout: float) -> float:
        """Seconds until every member is ready; raises with the members' last log lines otherwise."""
        start = time.monotonic()
        waiting = list(members)
        while waiting:
            waiting = [m for m in waiting if not self.ready(m)]
            for member in waiting:
                if member.server is not None and member.server.poll() is not None:
                    raise AssertionError(f"{member.pod_name} exited: {member.logs[-1].read_text()[-3000:]}")
            if waiting and time.monotonic() - start > timeout:
                tails = "\n".join(f"--- {m.pod_name}\n{m.logs[-1].read_text()[-3000:]}" for m in waiting)
                raise AssertionError(f"not ready after {timeout}s: {tails}")
            if waiting:
                time.sleep(1)
        return round(time.monotonic() - start, 1)

    def wait_size(self, member: Member, size: int, timeout: float) -> float:
        """Seconds until the member sees a cluster of `size` members."""
        start = time.monotonic()
        while int(self.status(member, "wsrep_cluster_size")) != size:
            assert time.monotonic() - start < timeout, f"{member.pod_name}: no cluster of {size} after {timeout}s"
            time.sleep(0.2)
        return round(time.monotonic() - start, 1)

    def connect(self, member: Member) -> pymysql.connections.Connection:
        return pymysql.connect(
            host=member.address,
            port=PORT,
            user="root",
            password=self.password,
            connect_timeout=3,
            read_timeout=10,
            write_timeout=10,
        )

    def query(self, member: Member, sql: str) -> list[tuple[Any, ...]]:
        with contextlib.closing(self.connect(member)) as conn, conn.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())

    def status(self, member: Member, variable: str) -> str:
        return str(self.query(member, f"SHOW STATUS LIKE '{variable}'")[0][1])

    def recovered_position(self, member: Member) -> str:
        """What mariadbd itself recovers from a copy of the member's volume: the oracle of its position."""
        copy = self.root / f"oracle-{member.ordinal}"
        shutil.copytree(member.volume, copy, symlinks=True)
        shutil.chown(copy, "mysql", "mysql")
        log = self.root / f"oracle-{member.ordinal}.log"
        subprocess.run(
            [
                "mariadbd",
                f"--defaults-file={self.root / 'etc' / 'mysql' / 'my.cnf'}",
                "--user=root",
                f"--datadir={copy}",
                f"--socket={self.root}/oracle.sock",
                # outside the members' namespaces the certificate's path is not there; no client comes
                "--skip-ssl",
                "--require-secure-transport=OFF",
                "--wsrep-recover",
                f"--log-error={log}",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        line = next(x for x in reversed(log.read_text().splitlines()) if "WSREP: Recovered position:" in x)
        shutil.rmtree(copy)
        return line.split("WSREP: Recovered position:", 1)[1].strip().split(",")[0]


def tls_handshake(address: str, port: int, ca: Path, pki: tuple[Path, Path] | None) -> str:
    """What a TLS client verifying the server against `ca`, with `pki` (certificate, key) or none, is
    told by a member's port: `accepted <version> <server's names>` or why it was refused. With TLS 1.3
    the server judges the client's certificate after the client has finished, so it reads once."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # the chain only, as the members verify each other
    context.load_verify_locations(ca)
    if pki is not None:
        context.load_cert_chain(*pki)
    try:
        with socket.create_connection((address, port), timeout=5) as raw, context.wrap_socket(raw) as tls:
            served = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True) or b"")
            alternative = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = alternative.get_values_for_type(x509.DNSName)
            tls.settimeout(3)
            with contextlib.suppress(TimeoutError):
                tls.recv(1)
            return f"accepted {tls.version()} {' '.join(names)}"
    except (ssl.SSLError, OSError) as error:
        return f"refused: {error}"


def galera_serial(address: str, port: int, ca: Path, pki: tuple[Path, Path]) -> str:
    """The serial of the certificate a member's Galera port serves, its chain verified against `ca`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # the chain only, as the members verify each other
    context.load_verify_locations(ca)
    context.load_cert_chain(*pki)
    with socket.create_connection((address, port), timeout=5) as raw, context.wrap_socket(raw) as tls:
        digits = format(x509.load_der_x509_certificate(tls.getpeercert(binary_form=True) or b"").serial_number, "X")
        return digits.zfill(len(digits) + len(digits) % 2)  # as OpenSSL prints it: whole bytes


def mysql_serial(address: str, ca: Path) -> str:
    """The serial of the certificate a member's MariaDB port serves to its clients, verified against `ca`."""
    served = subprocess.run(
        ["openssl", "s_client", "-starttls", "mysql", "-connect", f"{address}:{PORT}", "-CAfile", str(ca),
         "-verify_return_error"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    printed = subprocess.run(
        ["openssl", "x509", "-noout", "-serial"], input=served.stdout, capture_output=True, timeout=30, check=False
    )
    return printed.stdout.decode().strip().removeprefix("serial=") or f"none: {served.stderr.decode()[-300:]}"


def renewal(lab: Lab, galera_port: int) -> dict[str, Any]:
    """The members' certificate renewed in their volume (lab.root/renewed's files swapped in, as the
    kubelet updates a Secret's), then each member's readiness probe once: what each serves before and
    after on Galera's port and MariaDB's, whether each probe passed, the cluster's size, and whether
    the servers are the same processes."""
    tls, renewed = lab.root / "etc" / "mysql" / "tls", lab.root / "renewed"
    pki = (tls / "server.crt", tls / "server.key")

    def served() -> dict[str, dict[str, str]]:
        return {
            m.pod_name: {
                "galera": galera_serial(m.address, galera_port, tls / "ca.crt", pki),
                "mysql": mysql_serial(m.address, tls / "ca.crt"),
            }
            for m in lab.members
        }

    servers = {m.pod_name: m.server.pid if m.server else None for m in lab.members}
    before = served()
    for name in ("server.key", "server.crt"):
        staged = tls / f".{name}.new"
        shutil.copy2(renewed / name, staged)
        shutil.chown(staged, "mysql", "mysql")
        os.replace(staged, tls / name)
    ready = {m.pod_name: lab.ready(m) for m in lab.members}
    return {
        "before": before,
        "ready": ready,
        "after": served(),
        "sizes": {m.pod_name: int(lab.status(m, "wsrep_cluster_size")) for m in lab.members},
        "same servers": servers == {m.pod_name: m.server.pid if m.server else None for m in lab.members}
        and all(m.server is not None and m.server.poll() is None for m in lab.members),
    }


def plaintext_answer(address: str, port: int) -> str:
    """What a member's port answers a client that speaks no TLS: its bytes, that it closed, or nothing."""
    try:
        with socket.create_connection((address, port), timeout=5) as raw:
            raw.sendall(b"plaintext galera?\r\n\r\n")
            raw.settimeout(5)
            answer = raw.recv(64)
            return f"answered {answer!r}" if answer else "closed"
    except TimeoutError:
        return "no answer in 5s"
    except OSError as error:
        return f"refused: {error}"


def tls_probes(lab: Lab, member: Member, galera_port: int) -> dict[str, str]:
    """A member's Galera port asked by clients with the cloud's certificate, another CA's, none, and
    without TLS (lab.root holds the member certificate's copy and another CA's certificate)."""
    tls = lab.root / "etc" / "mysql" / "tls"
    ca = tls / "ca.crt"
    other = (lab.root / "other-ca" / "client.crt", lab.root / "other-ca" / "client.key")
    return {
        "member certificate": tls_handshake(member.address, galera_port, ca, (tls / "server.crt", tls / "server.key")),
        "another CA's certificate": tls_handshake(member.address, galera_port, ca, other),
        "no certificate": tls_handshake(member.address, galera_port, ca, None),
        "plaintext": plaintext_answer(member.address, galera_port),
    }


def intrude(lab: Lab, timeout: float) -> dict[str, Any]:
    """A fourth pod of the same cloud rendered without internal TLS (root/plain/mysql: plaintext
    Galera, the same cluster name and peers) starts its rendered script while the members run: how its
    server ended, its log, and what the cluster's size is afterwards."""
    intruder = lab.pod(len(lab.members), "demo-mariadb-3", lab.root / "plain")
    lab.others.append(intruder)
    lab.start(intruder)
    assert intruder.server is not None
    try:
        code: int | None = intruder.server.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        code = None
    return {
        "exit code": code,
        "log": intruder.logs[-1].read_text(),
        "sizes": {m.pod_name: int(lab.status(m, "wsrep_cluster_size")) for m in lab.members},
    }


class Writer(threading.Thread):
    """Commits numbered rows, round robin over the members, and records which commits returned OK."""

    def __init__(self, lab: Lab) -> None:
        super().__init__(daemon=True)
        self.lab = lab
        self.committed: list[int] = []
        self.failed: list[int] = []
        self.halt = threading.Event()

    def run(self) -> None:
        connections: dict[int, pymysql.connections.Connection | None] = {}
        resting: dict[int, float] = {}
        number = 0
        while not self.halt.is_set():
            for member in self.lab.members:
                if self.halt.is_set() or resting.get(member.ordinal, 0) > time.monotonic():
                    continue
                number += 1
                try:
                    conn = connections.get(member.ordinal) or self.lab.connect(member)
                    connections[member.ordinal] = conn
                    with conn.cursor() as cursor:
                        cursor.execute(f"INSERT INTO {TABLE} (id, member) VALUES (%s, %s)", (number, member.ordinal))
                    conn.commit()
                    self.committed.append(number)
                except pymysql.MySQLError:
                    self.failed.append(number)
                    old = connections.pop(member.ordinal, None)
                    if old is not None:
                        with contextlib.suppress(Exception):
                            old.close()
                    resting[member.ordinal] = time.monotonic() + 0.5
            time.sleep(0.005)


def outage(root: Path, peers: list[str], password: str) -> dict[str, Any]:
    """A new cluster; one member killed and started again while the others run; every member killed (one
    earlier, the other two at the same moment, under writes) and all started again together; every member
    killed again and one never coming back, until an administrator tells a member to found the cluster."""
    lab = Lab(root, peers, password)
    report: dict[str, Any] = {"timings": {}, "runs": {}}
    runs = report["runs"]
    try:
        lab.setup()
        first, second, third = lab.members
        runs["new"] = {m.pod_name: lab.start(m) for m in lab.members}
        report["timings"]["new cluster ready"] = lab.wait_ready(lab.members, 300)
        lab.query(first, "CREATE DATABASE stackops_lab")
        lab.query(first, f"CREATE TABLE {TABLE} (id INT PRIMARY KEY, member INT) ENGINE=InnoDB")
        # the members speak TLS among themselves only: a client of the Galera ports needs a certificate
        # of the cloud's CA, and a member rendered without TLS cannot join
        report["galera port"] = tls_probes(lab, first, GALERA_PORTS["galera"])
        # a renewed certificate reaches every member without a restart: their probes have them load it
        report["renewal"] = renewal(lab, GALERA_PORTS["galera"])
        report["intruder"] = intrude(lab, 300)
        writer = Writer(lab)
        writer.start()
        time.sleep(3)

        # a minority lost: the others keep the cluster, the member comes back by itself
        lab.kill(third)
        time.sleep(2)
        runs["rejoin"] = {third.pod_name: lab.start(third)}
        report["timings"]["lost member back"] = lab.wait_ready([third], 300)
        report["size after rejoin"] = int(lab.status(first, "wsrep_cluster_size"))
        time.sleep(2)

        # everything lost: the first member earlier (it misses what the other two commit after), then the rest
        lab.kill(first)
        # the other two carry on once they have evicted it: let them commit more than it has
        report["timings"]["first member evicted"] = lab.wait_size(second, 2, 60)
        committed = len(writer.committed)
        while len(writer.committed) < committed + 200:
            time.sleep(0.1)
        lab.kill(second, third)
        writer.halt.set()
        writer.join(timeout=30)
        report["oracle"] = {m.pod_name: lab.recovered_position(m) for m in lab.members}
        runs["recovery"] = {m.pod_name: lab.start(m) for m in lab.members}
        report["timings"]["recovered cluster ready"] = lab.wait_ready(lab.members, 600)
        report["sizes"] = {m.pod_name: int(lab.status(m, "wsrep_cluster_size")) for m in lab.members}
        report["state uuids"] = {m.pod_name: lab.status(m, "wsrep_cluster_state_uuid") for m in lab.members}
        report["committed"] = writer.committed
        report["failed"] = len(writer.failed)
        report["rows"] = {m.pod_name: [r[0] for r in lab.query(m, f"SELECT id FROM {TABLE}")] for m in lab.members}
        report["databases"] = {m.pod_name: [r[0] for r in lab.query(m, "SHOW DATABASES")] for m in lab.members}
        report["copies after recovery"] = {m.pod_name: lab.copies(m) for m in lab.members}

        # everything lost again, and a member never comes back: the others wait for its position until
        # the administrator's file tells one to found the cluster (the last founder: it has a copy to replace)
        chosen = next(m for m in lab.members if lab.copies(m))
        absent = next(m for m in reversed(lab.members) if m is not chosen)
        present = [m for m in lab.members if m is not absent]
        report["forced"], report["absent"] = chosen.pod_name, absent.pod_name
        lab.kill(*lab.members)
        runs["forced"] = {m.pod_name: lab.start(m) for m in present}
        for member in present:
            lab.wait_log(member, f"waiting for the positions of {peers[absent.ordinal]}", 120)
        force = chosen.volume / FORCE_BOOTSTRAP_FILE
        force.touch()
        shutil.chown(force, "mysql", "mysql")
        report["timings"]["forced cluster ready"] = lab.wait_ready(present, 300)
        report["size when forced"] = int(lab.status(chosen, "wsrep_cluster_size"))
        report["force file left"] = force.exists()
        runs["late"] = {absent.pod_name: lab.start(absent)}
        report["timings"]["late member back"] = lab.wait_ready([absent], 300)
        report["size with the late member"] = int(lab.status(chosen, "wsrep_cluster_size"))
        report["rows at the end"] = {
            m.pod_name: lab.query(m, f"SELECT COUNT(*) FROM {TABLE}")[0][0] for m in lab.members
        }
        report["copies at the end"] = {m.pod_name: lab.copies(m) for m in lab.members}
    except Exception:
        report["error"] = traceback.format_exc()
    finally:
        lab.stop()
        report["logs"] = {m.pod_name: [log.read_text() for log in m.logs] for m in lab.members + lab.others}
    return report


def render_anew(config: Path, rendering: Path) -> None:
    """A pod's config files replaced by another rendering's (as a rolled pod gets its new Secret)."""
    for file in (config / "mysql").iterdir():
        if file.name != "root-password":
            shutil.rmtree(file) if file.is_dir() else file.unlink()
    subprocess.run(["cp", "-a", f"{rendering / 'mysql'}/.", str(config / "mysql")], check=True, timeout=30)


def migration(root: Path, peers: list[str], password: str) -> dict[str, Any]:
    """A cluster made without Galera's TLS (root/plain) whose members are then rendered with it
    (root/etc): the last member alone first, as a StatefulSet rolls, then all of them restarted together."""
    configs = [root / f"pod-{i}" for i in range(len(peers))]
    for config in configs:
        subprocess.run(["cp", "-a", str(root / "plain"), str(config)], check=True, timeout=30)
    lab = Lab(root, peers, password, configs)
    report: dict[str, Any] = {"timings": {}, "runs": {}}
    runs = report["runs"]
    try:
        lab.setup()
        first, *others, last = lab.members
        runs["plaintext"] = {m.pod_name: lab.start(m) for m in lab.members}
        report["timings"]["plaintext cluster ready"] = lab.wait_ready(lab.members, 300)
        lab.query(first, "CREATE DATABASE stackops_lab")
        lab.query(first, f"CREATE TABLE {TABLE} (id INT PRIMARY KEY, member INT) ENGINE=InnoDB")
        with contextlib.closing(lab.connect(first)) as conn, conn.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {TABLE} (id, member) VALUES (%s, 0)", list(range(1, 101)))
            conn.commit()
        report["written"] = 100

        lab.terminate(last)
        render_anew(configs[last.ordinal], root / "etc")
        runs["first rolled"] = {last.pod_name: lab.start(last)}
        assert last.server is not None
        try:
            report["first rolled exit"] = last.server.wait(timeout=300)
        except subprocess.TimeoutExpired:
            report["first rolled exit"] = None
            lab.kill(last)
        last.server = None
        report["sizes while rolling"] = {m.pod_name: int(lab.status(m, "wsrep_cluster_size")) for m in [first, *others]}

        lab.terminate(first, *others)
        for config in configs:
            render_anew(config, root / "etc")
        runs["all rolled"] = {m.pod_name: lab.start(m) for m in lab.members}
        report["timings"]["cluster with TLS ready"] = lab.wait_ready(lab.members, 600)
        report["sizes"] = {m.pod_name: int(lab.status(m, "wsrep_cluster_size")) for m in lab.members}
        report["rows"] = {m.pod_name: lab.query(m, f"SELECT COUNT(*) FROM {TABLE}")[0][0] for m in lab.members}
    except Exception:
        report["error"] = traceback.format_exc()
    finally:
        lab.stop()
        report["logs"] = {m.pod_name: [log.read_text() for log in m.logs] for m in lab.members}
    return report


def main() -> None:
    root = Path(sys.argv[1])
    request = json.loads((root / "request.json").read_text())
    scenario = {"outage": outage, "migration": migration}[request["scenario"]]
    report = scenario(root, request["peers"], request["password"])
    (root / "report.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
