"""`stackops demo up|down`: a cloud on one machine, from nothing, with live progress.

up (the default: a real cloud): build or reuse the Kubernetes binaries, start a dev cluster with a
real node, build and load the images the cloud runs, install the operator with its Helm chart (a pod
on the node), apply the cloud, show each service's progress until it is Ready, then use it as a
person would (token, catalog, an image, a flavor, a network, a volume type, a stack, the dashboard)
and print how to reach it. `--kwok`: the quick way, with fake nodes that run nothing (the operator
as a local process), for trying the operator's logic and for scale. down: remove it all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from stackops.api.models import GROUP, PLURAL, VERSION
from stackops.cache import cache_root
from stackops.devcluster import processes
from stackops.devcluster.errors import DevClusterError

NAMESPACE = "openstack"
STATE = "demo.json"
READY_TIMEOUT = 600.0
# A real cloud's services really start, db-syncs and migrations really run: on 2 cores, minutes.
REAL_READY_TIMEOUT = 3600.0
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


def up(cloud_file: Path | None = None, workdir: Path | None = None, compute_nodes: int = 2, kwok: bool = False) -> int:
    if not kwok:
        return up_real(cloud_file, workdir)
    from kubernetes import client

    from stackops.devcluster import cli as cluster_cli
    from stackops.devcluster.cluster import free_ports
    from stackops.devcluster.install import (
        claimed_volumes,
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
    create_volumes(api, claimed_volumes(body))

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
    status = follow(custom, name, READY_TIMEOUT)
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


def up_real(cloud_file: Path | None, workdir: Path | None) -> int:
    """The cloud on a real node, used from the host once Ready."""
    from kubernetes import client

    from stackops.devcluster import cli as cluster_cli
    from stackops.devcluster import hostnet, realcloud

    workdir = (workdir or default_workdir()).expanduser().resolve()
    if (workdir / STATE).exists():
        raise DevClusterError(f"a demo is already running in {workdir}; remove it first: stackops demo down")
    body = realcloud.for_real_node(_load_cloud(cloud_file))
    name = body["metadata"]["name"]
    names = realcloud.image_names(body)
    began = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = cluster_cli.up(None, 0, workdir / "cluster", control_plane_nodes=0, real_node=True)
    (workdir / STATE).write_text(json.dumps({"real_node": True, "kubeconfig": str(cluster.kubeconfig)}))
    print(
        f"building (when their inputs changed) and loading {len(names)} images: {' '.join(names)}; "
        "then the operator with its Helm chart (charts/stackops)",
        flush=True,
    )
    realcloud.install(cluster, body, NAMESPACE, realcloud.progress_printer("  images: "))
    custom = client.CustomObjectsApi(cluster.api)
    custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
    print(f"applied OpenStackCloud {NAMESPACE}/{name}; waiting for it to be Ready", flush=True)
    status = follow(custom, name, REAL_READY_TIMEOUT)
    if status.get("phase") != "Ready":
        raise DevClusterError(
            f"cloud {name} not Ready after {REAL_READY_TIMEOUT:.0f}s; "
            f"see: kubectl --kubeconfig {cluster.kubeconfig} get pods -A"
        )
    print(f"cloud {name} Ready {time.monotonic() - began:.0f}s after the start; using it from the host:", flush=True)
    clouds = workdir / "clouds.yaml"
    ok = realcloud.smoke(cluster.kubeconfig, NAMESPACE, name, clouds)
    print("python-openstackclient (its own virtualenv in the cache) ...", flush=True)
    openstack = realcloud.openstack_client()
    use = [*realcloud.host_command([str(openstack), "--os-cloud", name]), "catalog", "list"]
    listed = subprocess.run(use, env={**os.environ, "OS_CLIENT_CONFIG_FILE": str(clouds)}, check=False)
    ok = ok and listed.returncode == 0
    print()
    print(f"cloud {name} is Ready on a real node (release {status.get('release')}). Use it:")
    print(f"  export KUBECONFIG={cluster.kubeconfig} OS_CLIENT_CONFIG_FILE={clouds}")
    print(f"  ip netns exec {hostnet.NETNS} {openstack} --os-cloud {name} image list")
    print(f"  stackops status -n {NAMESPACE} {name}")
    print("  make demo-down                                     # remove everything")
    return 0 if ok else 1


def follow(custom: Any, name: str, timeout: float) -> dict[str, Any]:
    """Show the cloud's per-service progress until it is Ready (or the time is up)."""
    from rich.console import Console
    from rich.live import Live

    from stackops.status_view import cloud_table

    deadline = time.monotonic() + timeout
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
        if "operator" in state:  # the kwok demo's operator is a local process
            operator = processes.Process.from_dict(state["operator"])
            processes.stop(operator, str(workdir))
            print("operator stopped")
        state_file.unlink()
    if (workdir / "cluster").exists():
        cluster_cli.down(workdir=workdir / "cluster")
    elif not state_file.exists():
        print(f"no demo in {workdir}")
    for leftover in ("operator.log", "clouds.yaml"):
        (workdir / leftover).unlink(missing_ok=True)
    return 0


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser("demo", help="a cloud on a local control plane, with live progress")
    commands = demo.add_subparsers(dest="demo", required=True, metavar="COMMAND")
    start = commands.add_parser(
        "up", help="a real node, the images, the operator (Helm), a cloud; follow it to Ready and use it"
    )
    start.add_argument("-f", "--file", type=Path, help="OpenStackCloud to apply (default: a minimal one)")
    start.add_argument(
        "--kwok", action="store_true", help="fake (kwok) nodes instead: quick, but no pod runs (operator logic, scale)"
    )
    start.add_argument("--compute-nodes", type=int, default=2, help="kwok compute nodes (with --kwok)")
    start.add_argument("--workdir", type=Path)
    start.set_defaults(func=lambda a: up(a.file, a.workdir, a.compute_nodes, a.kwok))
    stop = commands.add_parser("down", help="remove the demo: operator, cluster and their files")
    stop.add_argument("--workdir", type=Path)
    stop.set_defaults(func=lambda a: down(a.workdir))
