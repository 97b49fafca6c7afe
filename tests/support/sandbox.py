"""Containers without a container runtime: processes in their own mount and UTS namespaces.

Each process started in a Sandbox sees its own /run, its volumes at the paths a pod mounts them, and
an /etc/hosts that resolves the cloud's Service names as cluster DNS would; no name server is
reachable, so names resolve through that file only. With `private_network` the processes share a
network namespace of their own (loopback only, so addresses and ports can be those the pods use);
without it they use the host's, and reach servers the tests run there (MariaDB, keystone …).

Needs root (or CAP_SYS_ADMIN) and util-linux's unshare and nsenter.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from stackops.devcluster import processes

NAMESPACE_SETUP = r"""
set -euo pipefail
mount --bind "$HOSTS" /etc/hosts
mount --bind "$RESOLV_CONF" /etc/resolv.conf
mount -t tmpfs tmpfs /run
mkdir -p /run/ovn /run/openvswitch
for bind in $BINDS; do
    mkdir -p "${bind#*=}"  # the mount point, as a container runtime makes it
    mount --bind "${bind%%=*}" "${bind#*=}"
done
[ -z "${UTS_NAME:-}" ] || hostname "$UTS_NAME"
exec "$@"
"""


def eventually(check: Callable[[], bool], what: Callable[[], str], timeout: float = 60) -> None:
    """Wait for `check`; on timeout, fail with `what()` (e.g. a log as it is then)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what()}"
        time.sleep(0.3)


class Sandbox:
    def __init__(self, root: Path, hosts: dict[str, str], private_network: bool = True) -> None:
        self.root = root
        self.hosts = root / "hosts"
        self.hosts.write_text("127.0.0.1 localhost\n" + "".join(f"{ip} {name}\n" for name, ip in hosts.items()))
        self.resolv_conf = root / "resolv.conf"
        self.resolv_conf.write_text("")
        self.processes: dict[str, processes.Process] = {}
        self.holder: subprocess.Popen[bytes] | None = None
        self.enter_network: list[str] = []
        if private_network:
            self.holder = subprocess.Popen(
                ["unshare", "--net", "bash", "-c", "ip link set lo up && exec sleep infinity"]
            )
            self.enter_network = ["nsenter", f"--net=/proc/{self.holder.pid}/ns/net"]
            eventually(
                lambda: "UP" in self.network(["ip", "-o", "link", "show", "lo"]).stdout, lambda: "loopback to come up"
            )

    def network(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        """Run `argv` in the sandbox's network (a client that needs no names)."""
        return subprocess.run([*self.enter_network, *argv], capture_output=True, text=True, check=False)

    def command(self, argv: list[str], binds: dict[str, Path], hostname: str = "") -> tuple[list[str], dict[str, str]]:
        """argv and environment (PATH aside) that run `argv` in a sandboxed process, with `binds`
        (container path -> directory here) mounted: for servers another helper starts."""
        for source in binds.values():
            source.mkdir(parents=True, exist_ok=True)
        env = {
            "HOSTS": str(self.hosts),
            "RESOLV_CONF": str(self.resolv_conf),
            "BINDS": " ".join(f"{source}={target}" for target, source in binds.items()),
            "UTS_NAME": hostname,
        }
        return [*self.enter_network, "unshare", "--mount", "--uts", "bash", "-c", NAMESPACE_SETUP, "--", *argv], env

    def start(
        self, name: str, argv: list[str], env: dict[str, str], binds: dict[str, Path], *, hostname: str = ""
    ) -> processes.Process:
        """Start `argv` in a sandboxed process `name`, logging to <name>.log, in a process group of
        its own: stopping it stops what it started."""
        command, sandbox_env = self.command(argv, binds, hostname)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **sandbox_env, **env}
        log = self.root / f"{name}.log"
        self.processes[name] = processes.spawn(name, command, log, die_with_parent=True, env=env, cwd=self.root)
        return self.processes[name]

    def inside(self, name: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
        """Run `argv` as a probe would: in the namespaces of process `name`, with a /tmp of the
        process's own that lasts from one probe to the next, as a container's does (its server sees
        the machine's /tmp, where the sandbox's files are)."""
        pid = self.processes[name].pid
        own_tmp = self.root / f"{name}.tmp"
        own_tmp.mkdir(exist_ok=True)
        own_tmp.chmod(0o1777)
        private = ["unshare", "--mount", "sh", "-c", 'mount --bind "$0" /tmp && exec "$@"', str(own_tmp)]
        return subprocess.run(
            ["nsenter", f"--target={pid}", "--mount", "--net", "--uts", *private, *argv],
            capture_output=True,
            text=True,
            check=False,
        )

    def listeners(self, name: str, ip: str, port: int) -> dict[int, bool]:
        """The processes holding the TCP socket that listens on ip:port where process `name` runs
        (its network namespace), each with whether it is `name` or what `name` started; empty while
        nothing listens there. A server whose address another process holds (a server of another
        session, one not stopped) starts all the same and logs the failed bind only: its probes over
        its unix socket pass while clients of ip:port talk to the other."""
        pid = self.processes[name].pid
        wanted = f"{socket.inet_aton(ip)[::-1].hex().upper()}:{port:04X}"
        inodes = set()
        for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1] == wanted and fields[3] == "0A":  # TCP_LISTEN
                inodes.add(f"socket:[{fields[9]}]")
        holders: dict[int, bool] = {}
        for entry in Path("/proc").iterdir() if inodes else ():
            if not entry.name.isdigit():
                continue
            try:
                fds = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
                ours = os.getpgid(int(entry.name)) == pid
            except OSError:
                continue  # gone meanwhile
            if inodes.intersection(fds):
                holders[int(entry.name)] = ours
        return holders

    def stop(self, name: str) -> None:
        processes.stop(self.processes.pop(name), str(self.root), timeout=15)

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text()[-3000:]

    def close(self) -> None:
        for name in list(self.processes):
            self.stop(name)
        if self.holder is not None:
            self.holder.kill()
            self.holder.wait()
