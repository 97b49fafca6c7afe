"""`stackops dev cluster up|down|status`: a detached local cluster for development.

`up` returns while the processes keep running; what `down` and `status` need (pids, ports,
tokens) is in `<workdir>/cluster.json`. Problems the user can fix raise DevClusterError,
which the stackops CLI prints one line per problem with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from stackops.cache import cache_root
from stackops.devcluster import processes
from stackops.devcluster.binaries import ensure_binaries
from stackops.devcluster.errors import DevClusterError
from stackops.devcluster.identities import CONTEXT, write_private
from stackops.devcluster.state import STATE_FILE

if TYPE_CHECKING:
    from stackops.devcluster.cluster import LocalCluster

# stackops.devcluster.cluster (and with it the kubernetes client) is imported inside the
# commands, so registering them costs the `stackops` CLI nothing.


def default_workdir() -> Path:
    return cache_root() / "dev-cluster"


def _workdir_flag(workdir: Path) -> str:
    """` --workdir X` for hints, unless X is the default."""
    return "" if workdir == default_workdir().expanduser().resolve() else f" --workdir {workdir}"


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _ours(kubeconfig: Path) -> dict[str, Any] | None:
    """The parsed kubeconfig if it is one `up` wrote (its context is ours), else None."""
    try:
        data = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if isinstance(data, dict) and data.get("current-context") == CONTEXT:
        return data
    return None


def _workdir_of(kubeconfig: Path) -> Path:
    """The workdir of the cluster a kubeconfig from `up` is for: its CA is <workdir>/pki/apiserver.crt."""
    data = _ours(kubeconfig)
    if data is None:
        raise DevClusterError(f"{kubeconfig}: not a kubeconfig written by `stackops dev cluster up`")
    try:
        ca = Path(data["clusters"][0]["cluster"]["certificate-authority"])
    except (KeyError, IndexError, TypeError):
        raise DevClusterError(f"{kubeconfig}: has no certificate-authority file to find the cluster by") from None
    return ca.parent.parent


def _dead(cluster: LocalCluster) -> tuple[list[str], list[str]]:
    marker = str(cluster.workdir)
    alive = [p.name for p in cluster.state.processes if processes.ours(p.pid, marker)]
    dead = [p.name for p in cluster.state.processes if p.name not in alive]
    return alive, dead


def up(
    kubeconfig: Path | None = None,
    compute_nodes: int = 2,
    workdir: Path | None = None,
    *,
    control_plane_nodes: int = 1,
    progress: Callable[[str], None] = _err,
    real_node: bool = False,
) -> LocalCluster:
    """Start a detached cluster in `workdir`; return once the API answers and nodes are Ready.

    `real_node`: a real node (kubelet, containerd, kube-proxy, CoreDNS) labelled for the control
    plane and compute, beside the kwok nodes asked for."""
    from stackops.devcluster.cluster import LocalCluster

    if compute_nodes < 0 or control_plane_nodes < 0:
        raise DevClusterError("--compute-nodes: must be 0 or more")
    workdir = (workdir or default_workdir()).expanduser().resolve()
    if (workdir / STATE_FILE).exists():
        previous = LocalCluster.attach(workdir)
        alive, dead = _dead(previous)
        if alive:
            how = "is running" if not dead else f"is partly running (exited: {', '.join(dead)})"
            raise DevClusterError(
                f"a dev cluster {how} in {workdir} (API {previous.server}); "
                f"stop it first: stackops dev cluster down{_workdir_flag(workdir)}"
            )
        progress(f"removing the remains of a stopped dev cluster in {workdir}")
        previous.stop(remove=True)
    elif workdir.exists() and any(workdir.iterdir()):
        raise DevClusterError(f"--workdir {workdir}: not empty and not a dev cluster; choose an empty directory")
    target = kubeconfig.expanduser().resolve() if kubeconfig else workdir / "kubeconfig"
    if kubeconfig and target.exists() and _ours(target) is None:
        raise DevClusterError(f"--kubeconfig {target}: exists and is not a dev cluster kubeconfig; not overwriting it")

    binaries = ensure_binaries(progress=progress, real_node=real_node)
    progress(f"starting a dev cluster{' with a real node' if real_node else ''} in {workdir} ...")
    cluster = LocalCluster(workdir, keep=False, binaries=binaries, real_node=real_node)
    cluster.start(control_plane_nodes, compute_nodes, detached=True)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_private(target, cluster.kubeconfig.read_text(encoding="utf-8"))
    except OSError as error:
        cluster.stop(remove=True)
        raise DevClusterError(f"--kubeconfig {target}: cannot write: {error.strerror}") from None
    cluster.state.exported_kubeconfig = target
    cluster.state.save()
    count = control_plane_nodes + compute_nodes + (1 if real_node else 0)
    print(f"dev cluster up in {cluster.startup_seconds:.1f}s: API {cluster.server}, {count} nodes Ready")
    print(f"kubeconfig: {target}")
    print(f"  export KUBECONFIG={target}")
    print(f"stop it with: stackops dev cluster down{_workdir_flag(workdir)}")
    return cluster


def down(kubeconfig: Path | None = None, workdir: Path | None = None) -> None:
    """Stop the cluster (found by `workdir`, or by a kubeconfig `up` wrote) and delete its files."""
    from stackops.devcluster.cluster import LocalCluster

    if workdir is None:
        workdir = _workdir_of(kubeconfig.expanduser().resolve()) if kubeconfig else default_workdir()
    workdir = workdir.expanduser().resolve()
    if not (workdir / STATE_FILE).exists():
        raise DevClusterError(f"no dev cluster in {workdir} (no {STATE_FILE})")
    cluster = LocalCluster.attach(workdir)
    exported = cluster.state.exported_kubeconfig
    cluster.stop(remove=True)
    # Only delete the exported kubeconfig if it still is ours (the user may have replaced it).
    if exported is not None and exported.exists() and _ours(exported) is not None:
        exported.unlink()
    print(f"dev cluster in {workdir} stopped and removed")


def status(workdir: Path | None = None) -> bool:
    """Print whether the cluster runs, its API URL, nodes and their readiness; True if it runs."""
    from kubernetes import client

    from stackops.devcluster import nodes
    from stackops.devcluster.cluster import LocalCluster

    workdir = (workdir or default_workdir()).expanduser().resolve()
    if not (workdir / STATE_FILE).exists():
        print(f"no dev cluster in {workdir}")
        return False
    cluster = LocalCluster.attach(workdir)
    alive, dead = _dead(cluster)
    running = not dead
    print(f"dev cluster in {workdir}: {'running' if running else 'NOT running'}")
    if dead:
        print(f"  exited: {', '.join(dead)}" + (f"; still running: {', '.join(alive)}" if alive else ""))
    print(f"API: {cluster.server}")
    print(f"kubeconfig: {cluster.state.exported_kubeconfig or cluster.kubeconfig}")
    if "kube-apiserver" not in alive:
        return False
    api = cluster.api_client()
    try:
        version = client.VersionApi(api).get_code(_request_timeout=5).git_version
        found = client.CoreV1Api(api).list_node(_request_timeout=5).items
    except Exception as error:  # any failure here is a status to report, not a crash
        print(f"API not answering: {error}")
        return False
    finally:
        api.close()
    print(f"version: {version}")
    print(f"nodes: {len(found)}")
    for node in sorted(found, key=lambda n: n.metadata.name):
        roles = [k.removeprefix("stackops.dev/") for k in (node.metadata.labels or {}) if k.startswith("stackops.dev/")]
        ready = "Ready" if nodes.is_ready(node) else "NotReady"
        print(f"  {node.metadata.name:<20} {ready:<9} {','.join(roles)}")
    return running


def _cmd_up(args: argparse.Namespace) -> int:
    if args.real_node:
        # the real node is the control plane and compute: kwok nodes only when asked for
        compute = 0 if args.compute_nodes is None else args.compute_nodes
        up(args.kubeconfig, compute, args.workdir, control_plane_nodes=0, real_node=True)
    else:
        up(args.kubeconfig, 2 if args.compute_nodes is None else args.compute_nodes, args.workdir)
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    down(args.kubeconfig, args.workdir)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    return 0 if status(args.workdir) else 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `cluster up|down|status` to a subparsers object (the lead wires it under `stackops dev`).

    Each command sets `func(args) -> int`; DevClusterError means a user error (exit 2).
    """
    cluster = subparsers.add_parser(
        "cluster", help="a local Kubernetes control plane with fake (kwok) nodes, for development"
    )
    commands = cluster.add_subparsers(dest="cluster_command", required=True, metavar="COMMAND")
    workdir_help = f"where the cluster keeps its files (default: {default_workdir()})"

    start = commands.add_parser("up", help="start the cluster and return once its nodes are Ready")
    start.add_argument("--kubeconfig", type=Path, help="write the admin kubeconfig here (default: WORKDIR/kubeconfig)")
    start.add_argument("--compute-nodes", type=int, help="fake compute nodes (default: 2; 0 with --real-node)")
    start.add_argument(
        "--real-node",
        action="store_true",
        help="run a real node (kubelet, containerd, kube-proxy, kube-router's firewall, CoreDNS) in its own "
        "network namespace, labelled for the control plane and compute",
    )
    start.add_argument("--workdir", type=Path, help=workdir_help)
    start.set_defaults(func=_cmd_up)

    stop = commands.add_parser("down", help="stop the cluster and delete its files")
    stop.add_argument("--kubeconfig", type=Path, help="find the cluster by a kubeconfig `up` wrote")
    stop.add_argument("--workdir", type=Path, help=workdir_help)
    stop.set_defaults(func=_cmd_down)

    show = commands.add_parser("status", help="is it running; API URL; nodes and their readiness")
    show.add_argument("--workdir", type=Path, help=workdir_help)
    show.set_defaults(func=_cmd_status)
