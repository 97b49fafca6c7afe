"""The cloud `make demo` deploys, on the real node: how long each phase takes and how much memory it uses.

Brings up a dev cluster with a real node, builds (when changed) and loads the images, installs the
operator with its Helm chart, applies examples/minimal.yaml, waits for Ready, then prints the
phases' times and the memory in use: every pod's containers (resident memory of the pod cgroups, per
service), the node's daemons and the control plane's processes (resident set of each). Asserts
nothing. Run: `make bench-real-cloud` (needs root; one real node per machine).
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path

import yaml
from kubernetes import client

from stackops.api.models import GROUP, PLURAL, VERSION
from stackops.devcluster import LocalCluster, ensure_binaries, realcloud

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "openstack"
MEMORY_CGROUP = Path("/sys/fs/cgroup/memory/kubepods")


def _rss_bytes(stat: Path) -> int:
    """Resident memory of a cgroup (v1 memory.stat: anonymous and mapped file pages, not page cache)."""
    values = dict(line.split() for line in stat.read_text().splitlines())
    return int(values.get("total_rss", 0)) + int(values.get("total_mapped_file", 0))


def pod_memory(core: client.CoreV1Api) -> dict[str, int]:
    """Resident bytes per service (the pod's app.kubernetes.io/name label), from the pods' cgroups."""
    by_uid = {p.metadata.uid: (p.metadata.labels or {}).get("app.kubernetes.io/name", p.metadata.name)
              for p in core.list_pod_for_all_namespaces().items}  # fmt: skip
    found: dict[str, int] = collections.defaultdict(int)
    for stat in MEMORY_CGROUP.glob("**/pod*/memory.stat"):
        uid = stat.parent.name.removeprefix("pod").replace("_", "-")
        found[by_uid.get(uid, "(gone)")] += _rss_bytes(stat)
    return dict(found)


def process_memory(cluster: LocalCluster) -> dict[str, int]:
    found = {}
    for proc in cluster.state.processes:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except OSError:
            continue
        kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        found[proc.name] = kib * 1024
    return found


def wait_ready(custom: client.CustomObjectsApi, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
        status = obj.get("status") or {}
        if status.get("observedGeneration") == obj["metadata"]["generation"] and status.get("phase") == "Ready":
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"not Ready after {timeout:.0f}s: {status.get('conditions')}")
        time.sleep(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-f", "--file", type=Path, default=ROOT / "examples" / "minimal.yaml")
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args()
    body = realcloud.for_real_node(yaml.safe_load(args.file.read_text()))
    times: dict[str, float] = {}
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="stackops-bench-") as tmp:
        cluster = LocalCluster(Path(tmp) / "cluster", binaries=ensure_binaries(real_node=True), real_node=True)
        cluster.start(control_plane_nodes=0, compute_nodes=0)
        try:
            times["cluster up"] = time.monotonic() - began
            times |= realcloud.install(cluster, body, NAMESPACE, print)
            api = cluster.api
            custom = client.CustomObjectsApi(api)
            mark = time.monotonic()
            custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
            wait_ready(custom, body["metadata"]["name"], args.timeout)
            times["apply -> Ready"] = time.monotonic() - mark
            time.sleep(30)  # let the services settle after their start
            pods = pod_memory(client.CoreV1Api(api))
            daemons = process_memory(cluster)
        finally:
            cluster.stop()
    print()
    print(f"{'phase':<34} {'seconds':>8}")
    for phase, seconds in times.items():
        print(f"{phase:<34} {seconds:>8.1f}")
    print()
    print(f"{'memory (resident)':<34} {'MiB':>8}")
    for name, size in sorted(pods.items(), key=lambda item: -item[1]):
        print(f"{'pods: ' + name:<34} {size / 2**20:>8.0f}")
    for name, size in sorted(daemons.items(), key=lambda item: -item[1]):
        print(f"{'process: ' + name:<34} {size / 2**20:>8.0f}")
    total_pods, total_processes = sum(pods.values()), sum(daemons.values())
    print(f"{'all pods':<34} {total_pods / 2**20:>8.0f}")
    print(f"{'all processes (control plane, node)':<34} {total_processes / 2**20:>8.0f}")
    print(f"{'total':<34} {(total_pods + total_processes) / 2**20:>8.0f}")


if __name__ == "__main__":
    main()
