"""`stackops demo up|down`: a cloud on a local control plane, from nothing, with live progress.

up: build or reuse the control-plane binaries, start a dev cluster, install the CRD and the
operator's RBAC, run the operator in the background as its own least-privileged identity, apply
the example cloud and show each service's progress until the cloud is Ready. down: remove it all.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from stackops.api.models import GROUP, PLURAL, VERSION
from stackops.devcluster import processes
from stackops.devcluster.binaries import cache_root
from stackops.devcluster.errors import DevClusterError

NAMESPACE = "openstack"
STATE = "demo.json"
READY_TIMEOUT = 600.0
MINIMAL_CLOUD = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "OpenStackCloud",
    "metadata": {"name": "demo", "namespace": NAMESPACE},
    "spec": {"release": "2026.1"},
}


def default_workdir() -> Path:
    return cache_root() / "demo"


def _load_cloud(path: Path | None) -> dict[str, Any]:
    if path is None:
        return dict(MINIMAL_CLOUD)
    try:
        body = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise DevClusterError(f"--file {path}: cannot read a cloud from it: {error}") from None
    if not isinstance(body, dict):
        raise DevClusterError(f"--file {path}: not an OpenStackCloud")
    body.setdefault("metadata", {})["namespace"] = NAMESPACE
    return body


def up(cloud_file: Path | None = None, workdir: Path | None = None, compute_nodes: int = 2) -> int:
    from kubernetes import client

    from stackops.devcluster import cli as cluster_cli
    from stackops.devcluster.cluster import free_ports
    from stackops.devcluster.install import (
        create_volumes,
        ensure_namespace,
        grant_operator_rbac,
        install_crds,
    )

    workdir = (workdir or default_workdir()).expanduser().resolve()
    if (workdir / STATE).exists():
        raise DevClusterError(f"a demo is already running in {workdir}; remove it first: stackops demo down")
    body = _load_cloud(cloud_file)
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = cluster_cli.up(None, compute_nodes, workdir / "cluster")
    api = cluster.api
    print("installing the OpenStackCloud CRD and the operator's RBAC ...", flush=True)
    install_crds(api)
    grant_operator_rbac(api)
    ensure_namespace(api, NAMESPACE)
    create_volumes(api, 8)

    log = workdir / "operator.log"
    health_port, metrics_port = free_ports(2)  # distinct ports, held together
    # the kubeconfig path (inside workdir) in the command line lets `down` recognise the process
    command = [
        sys.executable,
        "-m",
        "stackops.cli",
        "operator",
        "-n",
        NAMESPACE,
        "--health-port",
        str(health_port),
        "--metrics-port",
        str(metrics_port),
        "--no-openstack-checks",  # kwok runs no OpenStack behind the pods
    ]
    command += ["--kubeconfig", str(cluster.kubeconfig_for("stackops-operator"))]
    operator = processes.spawn("stackops-operator", command, log, die_with_parent=False)
    state = {"operator": operator.as_dict(), "kubeconfig": str(cluster.kubeconfig)}
    (workdir / STATE).write_text(json.dumps(state))
    print(f"operator running (pid {operator.pid}, log {log})", flush=True)

    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
    name = body["metadata"]["name"]
    print(f"applied OpenStackCloud {NAMESPACE}/{name}; waiting for it to be Ready", flush=True)
    status = follow(custom, name)
    kubeconfig = cluster.state.exported_kubeconfig or cluster.kubeconfig
    if status.get("phase") != "Ready":
        raise DevClusterError(f"cloud {name} not Ready after {READY_TIMEOUT:.0f}s; see {log}")
    print()
    print(f"cloud {name} is Ready (release {status.get('release')}). Try:")
    print(f"  export KUBECONFIG={kubeconfig}")
    print(f"  kubectl get openstackclouds -n {NAMESPACE}")
    print(f"  kubectl get deployments,statefulsets,jobs,pods -n {NAMESPACE}")
    print(f"  kubectl edit openstackcloud {name} -n {NAMESPACE}   # e.g. services.keystone.replicas: 2")
    print("  make demo-down                                     # remove everything")
    return 0


def follow(custom: Any, name: str) -> dict[str, Any]:
    """Show the cloud's per-service progress until it is Ready (or the time is up)."""
    from rich.console import Console
    from rich.live import Live

    from stackops.status_view import cloud_table

    deadline = time.monotonic() + READY_TIMEOUT
    started = time.monotonic()
    obj = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    with Live(cloud_table(obj, 0), console=Console(), refresh_per_second=4) as live:
        while time.monotonic() < deadline:
            obj = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
            live.update(cloud_table(obj, time.monotonic() - started))
            status = obj.get("status") or {}
            current = status.get("observedGeneration") == obj["metadata"]["generation"]
            if current and status.get("phase") == "Ready":
                break
            time.sleep(0.5)
    return dict(obj.get("status") or {})


def down(workdir: Path | None = None) -> int:
    from stackops.devcluster import cli as cluster_cli

    workdir = (workdir or default_workdir()).expanduser().resolve()
    state_file = workdir / STATE
    if state_file.exists():
        state = json.loads(state_file.read_text())
        operator = processes.Process.from_dict(state["operator"])
        processes.stop(operator, str(workdir))
        state_file.unlink()
        print("operator stopped")
    if (workdir / "cluster").exists():
        cluster_cli.down(workdir=workdir / "cluster")
    elif not state_file.exists():
        print(f"no demo in {workdir}")
    (workdir / "operator.log").unlink(missing_ok=True)
    return 0


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser("demo", help="a cloud on a local control plane, with live progress")
    commands = demo.add_subparsers(dest="demo", required=True, metavar="COMMAND")
    start = commands.add_parser("up", help="start a local cluster and the operator, apply a cloud, follow it")
    start.add_argument("-f", "--file", type=Path, help="OpenStackCloud to apply (default: a minimal one)")
    start.add_argument("--compute-nodes", type=int, default=2)
    start.add_argument("--workdir", type=Path)
    start.set_defaults(func=lambda a: up(a.file, a.workdir, a.compute_nodes))
    stop = commands.add_parser("down", help="remove the demo: operator, cluster and their files")
    stop.add_argument("--workdir", type=Path)
    stop.set_defaults(func=lambda a: down(a.workdir))
