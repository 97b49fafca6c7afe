"""Time from `kubectl apply` of the example cloud to Ready, and the API requests the operator made,
on the local control plane with 2, 100 and 1000 fake compute nodes.

Prints a table; asserts nothing. Run: `make bench-converge` (builds the control plane on first use).
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path

import yaml
from kubernetes import client
from tests.support.operator import OperatorProcess

from stackops.api.models import GROUP, PLURAL, VERSION
from stackops.devcluster.binaries import ensure_binaries
from stackops.devcluster.cluster import LocalCluster
from stackops.devcluster.install import (
    create_volumes,
    ensure_namespace,
    grant_operator_rbac,
    install_crds,
    wait_for,
)

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "openstack"


def ready(custom: client.CustomObjectsApi, name: str) -> bool:
    obj = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    conditions = (obj.get("status") or {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def measure(compute_nodes: int, workdir: Path) -> dict[str, float | int]:
    started = time.monotonic()
    cluster = LocalCluster()
    cluster.start(control_plane_nodes=1, compute_nodes=compute_nodes)
    try:
        cluster_seconds = time.monotonic() - started
        install_crds(cluster.api)
        grant_operator_rbac(cluster.api)
        ensure_namespace(cluster.api, NAMESPACE)
        create_volumes(cluster.api, 4)
        operator = OperatorProcess(
            cluster.kubeconfig_for("stackops-operator"), workdir / f"operator-{compute_nodes}.log", 18090
        ).start("-n", NAMESPACE)
        try:
            # wait for the operator to be up (its Lease) before the clock starts
            coordination = client.CoordinationV1Api(cluster.api)
            wait_for(lambda: bool(coordination.list_namespaced_lease("default").items), "operator lease")
            body = yaml.safe_load((ROOT / "examples" / "minimal.yaml").read_text())
            since = cluster.audit_line_count()
            applied = time.monotonic()
            custom = client.CustomObjectsApi(cluster.api)
            custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
            wait_for(lambda: ready(custom, body["metadata"]["name"]), "Ready", timeout=600, interval=0.2)
            converge_seconds = time.monotonic() - applied
            time.sleep(1)  # the audit line of the last request lands just after it
            events = [
                e for e in cluster.audit_events(since_line=since) if e.get("objectRef", {}).get("resource") != "leases"
            ]
        finally:
            operator.stop()
    finally:
        cluster.stop()
    verbs = collections.Counter(e["verb"] for e in events)
    return {
        "nodes": compute_nodes,
        "cluster_s": cluster_seconds,
        "ready_s": converge_seconds,
        "requests": len(events),
        "writes": sum(verbs[v] for v in ("create", "update", "patch", "delete")),
        "reads": sum(verbs[v] for v in ("get", "list", "watch")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, nargs="+", default=[2, 100, 1000])
    args = parser.parse_args()
    ensure_binaries()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.nodes:
            rows.append(measure(count, Path(tmp)))
            print(f"measured {count} nodes", flush=True)
    print()
    columns = ("compute nodes", "cluster up (s)", "apply->Ready (s)", "requests", "writes", "reads")
    widths = (13, 15, 17, 9, 7, 6)
    print(" ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)))
    for row in rows:
        print(
            f"{row['nodes']:>13} {row['cluster_s']:>15.1f} {row['ready_s']:>17.1f} "
            f"{row['requests']:>9} {row['writes']:>7} {row['reads']:>6}"
        )


if __name__ == "__main__":
    main()
