"""Time from `kubectl apply` of the example cloud to Ready, the API requests the operator made and
its memory, on the local control plane (kwok nodes: pods "run" without running anything).

- `--nodes 2 100 1000`: one cloud, with that many fake compute nodes (a row each);
- `--clouds 20`: that many clouds, one per namespace, applied together on 2 compute nodes, with
  the operator's CPU per cloud and its peak RSS. Not run by default (about 4 minutes for 20).

Beside the time it prints the cloud's critical path: the longest chain of steps that must run one
after the other (a service's steps in order, after the services it depends on), so the time can be
read against the chain's length. Prints figures; asserts nothing. Run: `make bench-converge`.
"""

from __future__ import annotations

import argparse
import collections
import copy
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from tests.support.operator import OperatorProcess

from stackops.api.models import GROUP, PLURAL, VERSION
from stackops.api.validation import parse_cloud
from stackops.devcluster.binaries import ensure_binaries
from stackops.devcluster.cluster import LocalCluster, free_ports
from stackops.devcluster.install import (
    claimed_volumes,
    create_volumes,
    ensure_namespace,
    grant_operator_rbac,
    install_crds,
    wait_for,
)
from stackops.plan import plan
from stackops.services import all_services

ROOT = Path(__file__).resolve().parent.parent
CLOUD = ROOT / "examples" / "minimal.yaml"
WRITE_VERBS = ("create", "update", "patch", "delete")
TICKS = os.sysconf("SC_CLK_TCK")


def critical_path(body: dict[str, Any]) -> list[str]:
    """The longest chain of steps, as step names: each service's steps run in order, after the last
    step of every service it depends on."""
    steps: dict[str, list[str]] = {}
    for step in plan(parse_cloud(body)).steps:
        steps.setdefault(step.service, []).append(step.name)
    depends_on = {s.name: s.depends_on for s in all_services()}
    chains: dict[str, list[str]] = {}
    for service, names in steps.items():  # plan order: dependencies come first
        before = max((chains[d] for d in depends_on.get(service, ()) if d in chains), key=len, default=[])
        chains[service] = [*before, *names]
    return max(chains.values(), key=len)


def ready(custom: client.CustomObjectsApi, namespace: str, name: str) -> bool:
    obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    conditions = (obj.get("status") or {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _process_figures(pid: int) -> tuple[float, float]:
    """CPU seconds and peak resident MiB of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS
    peak = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmHWM"))
    return cpu, int(peak.split()[1]) / 1024


def measure(compute_nodes: int, clouds: int, workdir: Path) -> dict[str, Any]:
    body = yaml.safe_load(CLOUD.read_text())
    namespaces = ["openstack"] if clouds == 1 else [f"cloud-{i:02d}" for i in range(clouds)]
    started = time.monotonic()
    cluster = LocalCluster()
    # a kwok node takes 110 pods, as a kubelet does; a cloud runs about 40 on control-plane nodes
    cluster.start(control_plane_nodes=1 + clouds // 3, compute_nodes=compute_nodes)
    try:
        cluster_seconds = time.monotonic() - started
        install_crds(cluster.api)
        grant_operator_rbac(cluster.api)
        for namespace in namespaces:
            ensure_namespace(cluster.api, namespace)
        create_volumes(cluster.api, claimed_volumes(body) * clouds)
        operator = OperatorProcess(
            cluster.kubeconfig_for("stackops-operator"),
            workdir / f"operator-{compute_nodes}-{clouds}.log",
            free_ports(1)[0],
        ).start(*[arg for namespace in namespaces for arg in ("-n", namespace)])
        try:
            # wait for the operator to be up (its Lease) before the clock starts
            coordination = client.CoordinationV1Api(cluster.api)
            wait_for(lambda: bool(coordination.list_namespaced_lease("default").items), "operator lease")
            assert operator.process is not None
            cpu_before, _ = _process_figures(operator.process.pid)
            since = cluster.audit_line_count()
            applied = time.monotonic()
            custom = client.CustomObjectsApi(cluster.api)
            name = body["metadata"]["name"]
            for namespace in namespaces:
                cloud = copy.deepcopy(body)
                cloud["metadata"]["namespace"] = namespace
                custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, cloud)
            wait_for(
                lambda: all(ready(custom, namespace, name) for namespace in namespaces),
                "Ready",
                timeout=1200,
                interval=0.2,
            )
            converge_seconds = time.monotonic() - applied
            cpu_after, peak_mib = _process_figures(operator.process.pid)
            time.sleep(1)  # the audit line of the last request lands just after it
            events = [
                e
                for e in cluster.audit_events(user="stackops-operator", since_line=since)
                if e.get("objectRef", {}).get("resource") != "leases"
            ]
        finally:
            operator.stop()
    finally:
        cluster.stop()
    verbs = collections.Counter(e["verb"] for e in events)
    return {
        "nodes": compute_nodes,
        "clouds": clouds,
        "cluster_s": cluster_seconds,
        "ready_s": converge_seconds,
        "requests": len(events),
        "writes": sum(verbs[v] for v in WRITE_VERBS),
        "reads": sum(verbs[v] for v in ("get", "list", "watch")),
        "cpu_per_cloud_s": (cpu_after - cpu_before) / clouds,
        "rss_mib": peak_mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="*", default=[2, 100, 1000])
    parser.add_argument("--clouds", type=int, default=0, help="clouds applied together (default 0: skip)")
    parser.add_argument("--logs", type=Path, help="keep the operator's logs here (default: thrown away)")
    args = parser.parse_args()
    ensure_binaries()
    path = critical_path(yaml.safe_load(CLOUD.read_text()))
    print(f"critical path of {CLOUD.name}: {len(path)} steps: {' > '.join(path)}", flush=True)
    runs = [(count, 1) for count in args.nodes] + ([(2, args.clouds)] if args.clouds else [])
    columns = (
        "compute nodes",
        "clouds",
        "cluster up (s)",
        "apply->Ready (s)",
        "s/step",
        "requests",
        "writes",
        "reads",
        "CPU/cloud (s)",
        "operator RSS (MiB)",
    )
    widths = (13, 6, 14, 16, 6, 8, 6, 6, 13, 18)
    print(" ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        logs = args.logs or Path(tmp)
        logs.mkdir(parents=True, exist_ok=True)
        for count, clouds in runs:  # a row as soon as it is measured: the 1000-node run is long
            row = measure(count, clouds, logs)
            print(
                f"{row['nodes']:>13} {row['clouds']:>6} {row['cluster_s']:>14.1f} {row['ready_s']:>16.1f}"
                f" {row['ready_s'] / len(path):>6.2f} {row['requests']:>8} {row['writes']:>6} {row['reads']:>6}"
                f" {row['cpu_per_cloud_s']:>13.2f} {row['rss_mib']:>18.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
