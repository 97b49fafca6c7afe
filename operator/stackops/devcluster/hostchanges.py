"""What a real node changes on the machine outside its own directories, and how `down` undoes it.

The kubelet writes three kernel sysctls, makes its root directory a shared mount, creates
cgroups under `/kubepods` in every hierarchy (and the node's libvirt its guests' under
`/machine`) and symlinks under /var/log/containers; containerd
and its shims use /run/containerd; the CNI plugins keep pod network namespaces under /run/netns
and a cache under /var/lib/cni. Before the node starts, `snapshot()` records the machine as it
was (in a file of its own, so a second `up` after a crash can still undo a node whose workdir
is gone); `restore()` puts it back; `leftovers()` lists what is still changed (a test asserts
it is empty after `down`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Written by the kubelet at start (kernel tunables it insists on); global, not per namespace.
KERNEL_SYSCTLS = ("kernel.panic", "kernel.panic_on_oops", "vm.overcommit_memory")
CGROUP_ROOT = Path("/sys/fs/cgroup")
POD_CGROUP = "kubepods"
GUEST_CGROUP = "machine"  # libvirt's partition: QEMU processes of guests live outside their pod's cgroup
NETNS_DIR = Path("/run/netns")
# Paths the node's components create outside its directories when they are missing.
CREATED_PATHS = (
    Path("/run/stackops-node-ns"),
    Path("/run/containerd"),
    Path("/var/lib/cni"),
    Path("/var/log/containers"),
    Path("/var/log/pods"),
    Path("/etc/netns"),
    # `ip netns add` makes it a mount point of its own the first time it is used on a machine
    NETNS_DIR,
)
RECORD = Path("/run/stackops-node.json")


@dataclass
class Snapshot:
    sysctls: dict[str, str]
    existing_paths: list[str]
    existing_netns: list[str]
    roots: list[str] = field(default_factory=list)  # the node's own directories (mounts under them go)
    apiserver_port: int | None = None
    # guest cgroups that were the machine's before the node (a libvirt of its own): never touched;
    # None in a record of an older stackops, which did not look: then no guest cgroup is touched
    existing_guest_cgroups: list[str] | None = None

    def save(self) -> None:
        RECORD.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls) -> Snapshot | None:
        try:
            return cls(**json.loads(RECORD.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def snapshot(roots: Iterable[Path], apiserver_port: int) -> Snapshot:
    return Snapshot(
        sysctls={key: _sysctl_path(key).read_text().strip() for key in KERNEL_SYSCTLS},
        existing_paths=[str(p) for p in CREATED_PATHS if p.exists()],
        existing_netns=sorted(p.name for p in NETNS_DIR.iterdir()) if NETNS_DIR.is_dir() else [],
        roots=[str(r) for r in roots],
        apiserver_port=apiserver_port,
        existing_guest_cgroups=[str(c) for c in cgroups_below(GUEST_CGROUP)],
    )


def mounts_under(roots: Iterable[str | Path]) -> list[str]:
    """Mount points at or below any of `roots`, deepest first (the order to unmount them)."""
    prefixes = [str(Path(r)) for r in roots]
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == p or point.startswith(p + "/") for p in prefixes):
            found.append(point)
    return sorted(set(found), key=lambda p: (-p.count("/"), p))


def cgroups_below(name: str) -> list[Path]:
    """Every cgroup directory at or below /`name`, in every hierarchy, deepest first."""
    found: list[Path] = []
    if not CGROUP_ROOT.is_dir():
        return found
    for hierarchy in CGROUP_ROOT.iterdir():
        top = hierarchy / name
        if top.is_dir():
            found += [Path(d) for d, _, _ in os.walk(top)]
    return sorted(found, key=lambda p: -len(p.parts))


def pod_cgroups() -> list[Path]:
    return cgroups_below(POD_CGROUP)


def node_cgroups(record: Snapshot | None) -> list[Path]:
    """The node's cgroups, deepest first: its pods', and those its libvirt made for guests (known
    only with the record of what the machine had before; a guest the machine's own libvirt starts
    while a node runs would count as the node's: one libvirt per machine, as one real node)."""
    known = record.existing_guest_cgroups if record else None
    guests = [c for c in cgroups_below(GUEST_CGROUP) if known is not None and str(c) not in known]
    return sorted([*pod_cgroups(), *guests], key=lambda p: -len(p.parts))


def kill_pod_processes(record: Snapshot | None = None, timeout: float = 10.0) -> None:
    """SIGKILL every process in the node's cgroups (containers, guests; the shims are stopped
    separately); `record` defaults to the one `up` saved."""
    record = record or Snapshot.load()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = set()
        for cgroup in node_cgroups(record):
            with contextlib.suppress(OSError):
                pids |= {int(p) for p in (cgroup / "cgroup.procs").read_text().split()}
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def restore(record: Snapshot) -> list[str]:
    """Undo the node's changes; returns what could not be undone (empty when all went)."""
    problems: list[str] = []
    kill_pod_processes(record)
    for point in mounts_under(record.roots):
        _umount(point, problems)
    for entry in sorted(NETNS_DIR.iterdir()) if NETNS_DIR.is_dir() else []:
        if entry.name.startswith("cni-") and entry.name not in record.existing_netns:
            _umount(str(entry), problems)
            with contextlib.suppress(OSError):
                entry.unlink()
    for cgroup in node_cgroups(record):
        try:
            cgroup.rmdir()
        except OSError as error:
            problems.append(f"cgroup {cgroup}: {error.strerror}")
    for key, value in record.sysctls.items():
        try:
            _sysctl_path(key).write_text(value)
        except OSError as error:
            problems.append(f"sysctl {key}={value}: {error.strerror}")
    for path in CREATED_PATHS:
        if path != NETNS_DIR and str(path) not in record.existing_paths and path.exists():
            subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False)
    return problems


def remove_netns_dir(record: Snapshot) -> list[str]:
    """/run/netns, when the node's network namespace made it (a mount point of its own), once the
    namespace is gone; left alone while it holds namespaces of others made since."""
    problems: list[str] = []
    if str(NETNS_DIR) in record.existing_paths or not NETNS_DIR.is_dir() or any(NETNS_DIR.iterdir()):
        return problems
    for point in mounts_under([NETNS_DIR]):
        _umount(point, problems)
    with contextlib.suppress(OSError):
        NETNS_DIR.rmdir()
    return problems


def _umount(point: str, problems: list[str]) -> None:
    result = subprocess.run(["umount", "--lazy", point], capture_output=True, text=True, check=False)
    if result.returncode != 0 and point in mounts_under([point]):
        problems.append(f"mount {point}: {result.stderr.strip()}")


def leftovers(record: Snapshot) -> list[str]:
    """What is still changed compared with `record`: mounts, pod netns, cgroups, sysctls, paths."""
    found = [f"mount {m}" for m in mounts_under(record.roots)]
    if NETNS_DIR.is_dir():
        found += [
            f"netns {e.name}"
            for e in NETNS_DIR.iterdir()
            if e.name not in record.existing_netns and (e.name.startswith("cni-") or e.name == "stackops-node")
        ]
    found += [f"cgroup {c}" for c in node_cgroups(record)]
    for key, value in record.sysctls.items():
        now = _sysctl_path(key).read_text().strip()
        if now != value:
            found.append(f"sysctl {key}={now} (was {value})")
    found += [
        f"path {p}"
        for p in CREATED_PATHS
        if str(p) not in record.existing_paths and p.exists() and not (p == NETNS_DIR and any(p.iterdir()))
    ]
    return found
