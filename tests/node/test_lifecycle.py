"""A real node's life on the machine: `down` leaves nothing behind, and an `up` after a crash works.

Runs before the session's shared real node starts (one real node per machine). The machine's state
is read before and after: processes, network namespaces, links, routes, iptables, mounts, cgroups,
the sysctls the kubelet changes, and the paths the node's components create.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from stackops.cache import cache_root
from stackops.devcluster import Binaries, LocalCluster, hostchanges, nodefs, processes, realnode
from stackops.devcluster.errors import DevClusterError
from tests.node.conftest import python_pod, ready, wait_pod


def _out(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def machine_state() -> dict[str, object]:
    return {
        "sysctls": {key: hostchanges._sysctl_path(key).read_text().strip() for key in hostchanges.KERNEL_SYSCTLS},
        "netns": sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else [],
        "links": sorted(line.split(":")[1].strip() for line in _out("ip", "-o", "link").splitlines()),
        "routes": _out("ip", "route"),
        "iptables": _out("iptables", "-w", "-S") + _out("iptables", "-w", "-t", "nat", "-S"),
        # the image builder's own mounts (buildah's storage, builds under way) are not the node's
        "mounts": sorted(
            point
            for point in (line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines())
            if not point.startswith(str(cache_root() / "images"))
        ),
        "cgroups": hostchanges.node_cgroups(hostchanges.Snapshot.load()),
        "paths": [str(p) for p in hostchanges.CREATED_PATHS if p.exists()],
        "record": hostchanges.RECORD.exists(),
        "node mount namespace": nodefs.MOUNT_DIR.exists(),
    }


def _sleeper(cluster: LocalCluster) -> None:
    api = cluster.api_client()
    try:
        core = client.CoreV1Api(api)
        core.create_namespaced_pod("default", python_pod("sleeper", "import time; time.sleep(3600)", restart="Always"))
        wait_pod(core, "default", "sleeper", lambda pod: pod.status.phase == "Running")
    finally:
        api.close()


@pytest.fixture
def short_path() -> Iterator[Path]:
    """A working directory with room for the kubelet's sockets (pytest's tmp_path grows with every
    run of the machine: 107 bytes is all a unix socket's path may have)."""
    path = Path(tempfile.mkdtemp(prefix="stackops-life-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_up_after_a_crash_and_down_leave_the_machine_as_it_was(node_binaries: Binaries, short_path: Path) -> None:
    tmp_path = short_path
    before = machine_state()
    crashed = LocalCluster(tmp_path / "crashed", binaries=node_binaries, real_node=True, keep=True, timeout=120.0)
    crashed.start(control_plane_nodes=0, compute_nodes=0, detached=True)
    crashed.load_images(["debian"])
    _sleeper(crashed)
    assert machine_state() != before
    # The crash: every daemon of the cluster killed outright; containers and their shims live on.
    for proc in crashed.state.processes:
        os.kill(proc.pid, signal.SIGKILL)
    assert processes.processes_mentioning(str(realnode.RUN_DIR))  # the shims

    again = LocalCluster(tmp_path / "again", binaries=node_binaries, real_node=True, timeout=120.0)
    again.start(control_plane_nodes=0, compute_nodes=0)
    try:
        assert not processes.processes_mentioning(str(tmp_path / "crashed"))
        _sleeper(again)
        # one real node per machine: a second one is refused and leaves the running one alone
        with pytest.raises(DevClusterError, match="a real node is running"):
            LocalCluster(tmp_path / "second", binaries=node_binaries, real_node=True).start(0, 0)
        api = again.api_client()
        try:
            assert ready(client.CoreV1Api(api).read_namespaced_pod("sleeper", "default"))
        finally:
            api.close()
    finally:
        again.stop()

    assert not processes.processes_mentioning(str(tmp_path))
    assert not (tmp_path / "again").exists()
    assert machine_state() == before
