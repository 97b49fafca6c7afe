"""The real node's own view of the machine's files: a private mount namespace its daemons and pods share.

A cloud's host agents use host paths (/var/lib/openvswitch, /run/ovn, /var/lib/nova, /etc/openvswitch,
/run/netns, ...). On this machine those must not be the machine's own: Open vSwitch may be installed
here with its own database, and `down` must leave the machine as it found it. So the node gets a mount
namespace where /run is a fresh tmpfs, /var/lib and /var/log are directories of the node's own, and
/etc and /usr/lib are overlays whose changes land in the node's directory. /usr/lib is one because a
node's host agents mount /lib/modules, which this machine (no loadable modules) lacks: containerd
creates a missing host path, and it must do so in the node's view only. Mounts made in it (every container's
rootfs, every volume) never reach the machine's mount table, and vanish with the namespace.

The namespace is kept by a bind mount of its nsfs file under MOUNT_DIR; `enter()` prefixes a command
with nsenter into it and the node's network namespace. Host mounts propagate in (slave), so the
cluster's workdir and the cache stay visible, as long as they are not under a path made private.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from stackops.devcluster import hostnet
from stackops.devcluster.errors import DevClusterError

MOUNT_DIR = Path("/run/stackops-node-ns")
MOUNT_NS = MOUNT_DIR / "mnt"
# Paths the node sees as its own; the directories that back them live in the node's directory.
PRIVATE_DIRS = ("/var/lib", "/var/log")
TMPFS = "/run"
OVERLAYS = ("/etc", "/usr/lib")
# Host paths a node's agents mount that must exist (made in the overlays' upper layers when missing).
NODE_PATHS = ("/lib/modules",)
PRIVATE = (*PRIVATE_DIRS, TMPFS, *OVERLAYS)


def _run(argv: Sequence[str]) -> None:
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DevClusterError(f"{' '.join(argv)}: exit {result.returncode}: {result.stderr.strip()}")


def hidden(path: Path) -> str | None:
    """The private path that would hide `path` from the node, if any."""
    resolved = str(path.resolve())
    return next((p for p in PRIVATE if resolved == p or resolved.startswith(p + "/")), None)


def exists() -> bool:
    return MOUNT_NS.exists() and any(
        line.split()[4] == str(MOUNT_NS) for line in Path("/proc/self/mountinfo").read_text().splitlines()
    )


def create(node_root: Path, run_dirs: Sequence[Path]) -> None:
    """Make the namespace: `node_root` backs /var/lib, /var/log and /etc's changes; `run_dirs` are
    made on its /run (where containerd keeps its socket and state)."""
    if exists():
        raise DevClusterError(f"{MOUNT_NS} exists: a real node is up, or a crashed one left it")
    MOUNT_DIR.mkdir(mode=0o700, exist_ok=True)
    # unshare can keep a namespace only on a private mount
    _run(["mount", "--bind", str(MOUNT_DIR), str(MOUNT_DIR)])
    _run(["mount", "--make-private", str(MOUNT_DIR)])
    MOUNT_NS.touch()
    _run(["unshare", f"--mount={MOUNT_NS}", "--propagation", "slave", "true"])
    backing = node_root / "host"
    # The machine's mounts under the paths the node covers (e.g. `ip netns`'s /run/netns) would stay
    # in the namespace's mount table beneath the cover, and containerd judges a host path by the first
    # mount it finds there: they leave the node's view (lazily, in this namespace only: it is a slave).
    covered = "|".join(f"{path}/" for path in PRIVATE)
    script = [f"findmnt -rno TARGET | grep -E '^({covered})' | sort -r | xargs -r -n1 umount -l"]
    script.append(f"mount -t tmpfs -o mode=0755 stackops-node-run {TMPFS}")
    for path in PRIVATE_DIRS:
        own = backing / path.strip("/").replace("/", "-")
        own.mkdir(parents=True, exist_ok=True)
        script.append(f"mount --bind {own} {path}")
    for path in OVERLAYS:
        layer = path.strip("/").replace("/", "-")
        upper, work = backing / f"{layer}-upper", backing / f"{layer}-work"
        upper.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        options = f"lowerdir={path},upperdir={upper},workdir={work}"
        script.append(f"mount -t overlay stackops-node-{layer} -o {options} {path}")
    # host agents mount these with Bidirectional propagation (network namespaces, instance disks):
    # containerd requires their mounts to be shared; the peers are the node's namespace and its containers
    script += [f"mount --make-rshared {path}" for path in (TMPFS, *PRIVATE_DIRS)]
    script += [f"mkdir -p -m 0700 {d}" for d in run_dirs]
    script.append(f"mkdir -p /run/netns /run/lock {' '.join(NODE_PATHS)}")
    _run(["nsenter", f"--mount={MOUNT_NS}", "--", "sh", "-euc", " && ".join(script)])


def enter(argv: Sequence[str]) -> list[str]:
    """`argv` run inside the node: its mount namespace and its network namespace."""
    return ["nsenter", f"--mount={MOUNT_NS}", f"--net={hostnet.netns_path()}", "--", *argv]


def processes_inside() -> list[int]:
    """Processes in the node's mount namespace (daemons, shims, containers)."""
    try:
        inode = os.stat(MOUNT_NS).st_ino
    except OSError:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(entry / "ns" / "mnt").st_ino == inode:
                    found.append(int(entry.name))
    return found


def delete(timeout: float = 10.0) -> list[str]:
    """Kill what still runs inside, then release the namespace (its mounts go with it)."""
    problems: list[str] = []
    deadline = time.monotonic() + timeout
    while (pids := processes_inside()) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    if processes_inside():
        problems.append(f"processes still in the node's mount namespace: {processes_inside()}")
    for point in (MOUNT_NS, MOUNT_DIR):
        if any(line.split()[4] == str(point) for line in Path("/proc/self/mountinfo").read_text().splitlines()):
            result = subprocess.run(["umount", str(point)], capture_output=True, text=True, check=False)
            if result.returncode != 0:
                problems.append(f"mount {point}: {result.stderr.strip()}")
    if not problems and MOUNT_DIR.exists():
        with contextlib.suppress(OSError):
            MOUNT_NS.unlink()
            MOUNT_DIR.rmdir()
    return problems
