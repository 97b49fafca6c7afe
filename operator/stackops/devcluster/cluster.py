"""A real Kubernetes control plane, with kwok fake nodes and optionally one real node, for tests and dev.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok run as local processes
on free ports, in one working directory, with the flags hack/kube/README.md found to work. With
kwok nodes alone everything listens on 127.0.0.1 and nothing dials a pod, node or Service IP.
With a real node (stackops.devcluster.realnode) the API server listens on the host end of the
node's veth link instead, and pod and Service addresses exist only inside the node's network
namespace (stackops.devcluster.hostnet), which has no route off the machine.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from kubernetes import client, config

from stackops.devcluster import audit, commands, hostchanges, hostnet, nodefs, nodes, probe, processes, realnode
from stackops.devcluster.binaries import Binaries, ensure_binaries, kube_version
from stackops.devcluster.errors import DevClusterError
from stackops.devcluster.identities import (
    OPERATOR_USER,
    Identity,
    find_identity,
    kubeconfig_text,
    make_identities,
    service_account_key_pem,
    tokens_csv,
    write_private,
)
from stackops.devcluster.pki import write_kubelet_client_pki
from stackops.devcluster.processes import Process
from stackops.devcluster.state import STATE_FILE, ClusterState

_PORTS = ("etcd_client", "etcd_peer", "apiserver", "controller_manager", "scheduler")
# The apiserver's clients in the control plane, in start order.
_CLIENTS = ("kube-controller-manager", "kube-scheduler", "kwok")


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports: all sockets are held open together so none repeats."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _stop_all(procs: dict[str, Process], marker: str, real_node: bool, timeout: float = 10.0) -> list[str]:
    """Stop every process in reverse start order; with a real node, first its daemons and every
    container, and last undo what it changed on the machine. Returns what could not be undone."""
    if real_node:
        for name in reversed(realnode.DAEMONS):
            if name in procs:
                processes.stop(procs.pop(name), marker, timeout)
        hostchanges.kill_pod_processes()
        # containerd's shims outlive it on purpose (they hold the containers): they go first
        realnode.stop_mentioning(str(realnode.RUN_DIR))
    for proc in reversed(list(procs.values())):
        processes.stop(proc, marker, timeout)
    procs.clear()
    return realnode.undo_host_changes() if real_node else []


def _emergency_stop(procs: dict[str, Process], marker: str, workdir: Path | None, state: ClusterState) -> None:
    """weakref.finalize/atexit safety net: a cluster nobody stopped still leaves no process behind."""
    problems = _stop_all(procs, marker, state.owns_node, timeout=5.0)
    # never delete through a mount a crashed node left (it could be a host directory)
    if workdir is not None and not problems and not hostchanges.mounts_under([workdir]):
        shutil.rmtree(workdir, ignore_errors=True)


class LocalCluster:
    """etcd + kube-apiserver + KCM + scheduler + kwok on 127.0.0.1, in a working directory.

    Identities (static tokens): `admin` (system:masters), `kcm`, `scheduler`, `kwok`, and
    `stackops-operator`, which is in no group and gets its permissions from RBAC the tests
    create; its requests (and only its) are written to the audit log as Metadata.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        keep: bool | None = None,
        binaries: Binaries | None = None,
        extra_users: Mapping[str, Sequence[str]] | None = None,
        audited_users: Sequence[str] = (OPERATOR_USER,),
        timeout: float = 60.0,
        real_node: bool = False,
    ) -> None:
        """`workdir` must be missing or empty (default: a new temp dir); it is deleted by stop()
        unless `keep` (default: env STACKOPS_CLUSTER_KEEP=1). `timeout` bounds each wait.
        `real_node`: also run a real node (kubelet, containerd, kube-proxy, CoreDNS) on this machine."""
        self._requested_workdir = workdir
        self.keep = keep if keep is not None else os.environ.get("STACKOPS_CLUSTER_KEEP") == "1"
        self._binaries = binaries
        self.real_node = real_node
        users = dict(extra_users or {})
        if real_node:
            users |= {user: list(groups) for user, groups in realnode.NODE_IDENTITIES.values()}
        self._identities: dict[str, Identity] = make_identities(users)
        self._audited = tuple(audited_users)
        self.timeout = timeout
        self._state: ClusterState | None = None
        # Shared with the finalizer, so it must stay the same dict object for our lifetime.
        self._procs: dict[str, Process] = {}
        self._finalizer: weakref.finalize[Any, LocalCluster] | None = None
        self._api: client.ApiClient | None = None
        self._detached = False
        self.startup_seconds: float | None = None

    # -- where things are -------------------------------------------------------------------

    @property
    def state(self) -> ClusterState:
        if self._state is None:
            raise DevClusterError("the cluster is not started")
        return self._state

    @property
    def workdir(self) -> Path:
        return self.state.workdir

    @property
    def ports(self) -> dict[str, int]:
        return dict(self.state.ports)

    @property
    def server(self) -> str:
        return self.state.server

    @property
    def node_files(self) -> realnode.NodeFiles:
        """Where the real node keeps its files (its directory in the workdir; images in the cache)."""
        return realnode.NodeFiles(self.workdir / "node", realnode.images_root())

    @property
    def ca_file(self) -> Path:
        """The apiserver's self-signed serving certificate (its CA is in the same file)."""
        return commands.ca_file(self.workdir)

    @property
    def audit_log(self) -> Path:
        return commands.audit_log(self.workdir)

    @property
    def kubeconfig(self) -> Path:
        """The admin (system:masters) kubeconfig."""
        return self.kubeconfig_for("admin")

    def log(self, name: str) -> Path:
        """Log file of one process: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok."""
        return self.workdir / f"{name}.log"

    def kubeconfig_for(self, user: str) -> Path:
        """A kubeconfig for `user` (short key like "kcm", or the username), written if missing."""
        identity = find_identity(self._identities, user)
        path = commands.kubeconfig_path(self.workdir, identity.key)
        if not path.exists():
            write_private(path, kubeconfig_text(self.server, self.ca_file, identity))
        return path

    def token_for(self, user: str) -> str:
        return find_identity(self._identities, user).token

    # -- clients ------------------------------------------------------------------------------

    def api_client(self, user: str = "admin") -> client.ApiClient:
        """A new kubernetes ApiClient authenticated as `user` (caller closes it)."""
        configuration = client.Configuration()
        # Explicitly no proxy: an HTTPS_PROXY in the environment must not see 127.0.0.1 traffic.
        configuration.proxy = None
        return config.new_client_from_config(
            config_file=str(self.kubeconfig_for(user)), client_configuration=configuration
        )

    @property
    def api(self) -> client.ApiClient:
        """The admin ApiClient this object uses itself (closed by stop())."""
        if self._api is None:
            self._api = self.api_client("admin")
        return self._api

    def _get(self, path: str, timeout: float = 3.0) -> int | None:
        return probe.get(self.server + path, token=self.token_for("admin"), cafile=self.ca_file, timeout=timeout)

    # -- start --------------------------------------------------------------------------------

    def start(self, control_plane_nodes: int = 1, compute_nodes: int = 2, *, detached: bool = False) -> LocalCluster:
        """Start everything and return once the API answers and the nodes are Ready.

        Nodes: `control-plane-<i>` labelled stackops.dev/control-plane=true and `compute-<i>`
        labelled stackops.dev/compute=true. `detached`: the processes outlive this interpreter
        (no parent-death signal, no finalizer); stop them later with `down(workdir)`.
        """
        if self._state is not None:
            raise DevClusterError(f"this cluster is already started (in {self.workdir})")
        began = time.monotonic()
        binaries = self._binaries or ensure_binaries(build=False, real_node=self.real_node)
        if self.real_node:
            realnode.check_host()
        workdir = self._prepare_workdir()
        ports = dict(zip(_PORTS, free_ports(len(_PORTS)), strict=True))
        self._state = ClusterState(
            workdir=workdir,
            kube_version=kube_version(),
            ports=ports,
            processes=[],
            identities=self._identities,
            kubeconfig=workdir / "admin.kubeconfig",
            binaries={k: str(v) for k, v in vars(binaries).items() if v is not None},
            host=hostnet.HOST_IP if self.real_node else "127.0.0.1",
            real_node=self.real_node,
        )
        self._detached = detached
        if not detached:
            self._finalizer = weakref.finalize(
                self, _emergency_stop, self._procs, str(workdir), None if self.keep else workdir, self._state
            )
        try:
            if self.real_node:
                self._prepare_host()
            self._write_files()
            self._start_processes(binaries)
            names = self._create_nodes(control_plane_nodes, compute_nodes)
            if self.real_node:
                self._start_real_node(binaries)
                names.append(realnode.NODE_NAME)
            self._wait("the default ServiceAccount (KCM's serviceaccount controller)", self._default_sa_exists)
            self.wait_nodes_ready(names)
            if self.real_node:
                self._start_node_firewall(binaries)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = self.state.startup_seconds = time.monotonic() - began
        self.state.save()
        return self

    def _prepare_workdir(self) -> Path:
        if self._requested_workdir is None:
            return Path(tempfile.mkdtemp(prefix="stackops-cluster-"))
        workdir = self._requested_workdir.expanduser().resolve()
        if workdir.exists() and any(workdir.iterdir()):
            raise DevClusterError(f"{workdir}: not empty; a cluster needs an empty or missing working directory")
        workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return workdir

    def _write_files(self) -> None:
        workdir = self.workdir
        write_private(workdir / "tokens.csv", tokens_csv(self._identities.values()))
        write_private(workdir / "sa.key", service_account_key_pem())
        (workdir / "audit-policy.yaml").write_text(audit.policy_yaml(self._audited), encoding="utf-8")
        if self.real_node:
            (workdir / "pki").mkdir(mode=0o700, exist_ok=True)
            write_kubelet_client_pki(commands.kubelet_client_pki(workdir))
        for key in self._identities:
            self.kubeconfig_for(key)

    def _spawn(self, name: str, binaries: Binaries) -> None:
        if name in realnode.PROCESSES:
            argv = realnode.command_line(name, self.node_files, binaries.node_programs(), self._node_kubeconfigs())
        else:
            argv = commands.command_line(name, binaries, self.workdir, self.state.ports, self.real_node)
        proc = processes.spawn(name, argv, self.log(name), die_with_parent=not self._detached)
        self._procs[name] = proc
        # Saved after every start, so `down` can clean up even if this process dies mid-start.
        self.state.processes = list(self._procs.values())
        self.state.save()

    def _start_processes(self, binaries: Binaries) -> None:
        p = self.state.ports
        self._spawn("etcd", binaries)
        self._wait("etcd /health", probe.answers_ok(f"http://127.0.0.1:{p['etcd_client']}/health"), "etcd")
        self._spawn("kube-apiserver", binaries)
        self._wait("kube-apiserver /readyz", self._apiserver_ready, "kube-apiserver")
        for name in _CLIENTS:
            self._spawn(name, binaries)
        self._wait_healthz()

    def _wait_healthz(self) -> None:
        """KCM's and the scheduler's /healthz, verified with the certs they wrote to --cert-dir."""
        for name, port in (
            ("kube-controller-manager", "controller_manager"),
            ("kube-scheduler", "scheduler"),
        ):
            cert = self.workdir / "pki" / f"{name}.crt"
            url = f"https://127.0.0.1:{self.state.ports[port]}/healthz"
            self._wait(f"{name} /healthz", probe.answers_ok(url, cafile=cert), name)

    def _apiserver_ready(self) -> bool:
        return self._get("/readyz") == 200

    def _default_sa_exists(self) -> bool:
        return self._get("/api/v1/namespaces/default/serviceaccounts/default") == 200

    def _wait(
        self, what: str, check: Callable[[], bool], log: str | None = None, stopped: Collection[str] = ()
    ) -> None:
        """Poll `check` until true; fail early, with log tails, if a process (other than the
        deliberately `stopped` ones) exits meanwhile."""
        deadline = time.monotonic() + self.timeout
        while not check():
            for proc in (p for p in self._procs.values() if p.name not in stopped):
                code = proc.popen.poll() if proc.popen is not None else None
                if (proc.popen is not None and code is not None) or not processes.alive(proc.pid):
                    raise DevClusterError(
                        f"{proc.name} exited (status {code}) while waiting for {what}; "
                        f"last lines of {proc.log}:\n{processes.tail(proc.log)}"
                    )
            if time.monotonic() >= deadline:
                detail = f"; last lines of {self.log(log)}:\n{processes.tail(self.log(log))}" if log else ""
                raise DevClusterError(f"timed out after {self.timeout:.0f}s waiting for {what}{detail}")
            time.sleep(0.1)

    # -- nodes --------------------------------------------------------------------------------

    def _create_nodes(self, control_plane_nodes: int, compute_nodes: int) -> list[str]:
        names = []
        for i in range(control_plane_nodes):
            names.append(f"control-plane-{i}")
            self.add_node(names[-1], {nodes.CONTROL_PLANE_LABEL: "true"}, wait=False)
        for i in range(compute_nodes):
            names.append(f"compute-{i}")
            self.add_node(names[-1], {nodes.COMPUTE_LABEL: "true"}, wait=False)
        return names

    def add_node(
        self,
        name: str,
        labels: dict[str, str] | None = None,
        cpu: str = "32",
        memory: str = "256Gi",
        pods: str = "110",
        *,
        wait: bool = True,
    ) -> None:
        """Create a kwok-managed, untainted fake Node; by default wait until it is Ready."""
        client.CoreV1Api(self.api).create_node(body=nodes.node_manifest(name, labels, cpu, memory, pods))
        if wait:
            self.wait_nodes_ready([name])

    def remove_node(self, name: str) -> None:
        """Delete a Node and wait until it is gone (its pods are then garbage-collected by KCM)."""
        core = client.CoreV1Api(self.api)
        core.delete_node(name)
        nodes.wait_deleted(core, name, self.timeout)

    def label_node(self, name: str, labels: Mapping[str, str | None]) -> None:
        """Set labels; a None value removes that label."""
        client.CoreV1Api(self.api).patch_node(
            name, {"metadata": {"labels": dict(labels)}}, _content_type="application/merge-patch+json"
        )

    def wait_nodes_ready(self, names: Iterable[str], timeout: float | None = None) -> None:
        """Wait until the nodes are Ready and rid of KCM's not-ready taint (pods can land there)."""
        nodes.wait_ready(client.CoreV1Api(self.api), names, self.timeout if timeout is None else timeout)

    # -- the real node ------------------------------------------------------------------------

    def _node_kubeconfigs(self) -> dict[str, Path]:
        return {key: self.kubeconfig_for(user) for key, (user, _) in realnode.NODE_IDENTITIES.items()}

    def _prepare_host(self) -> None:
        """Undo what a crashed real node left, record the machine as it is, then make the node's
        network (before the API server, which listens on it)."""
        for problem in realnode.recover_crashed():
            raise DevClusterError(f"a crashed real node left something that cannot be undone: {problem}")
        realnode.check_paths(self.node_files)
        record = hostchanges.snapshot(self.node_files.roots(), self.state.ports["apiserver"])
        record.save()
        # from here on, stopping this cluster undoes the node's changes to the machine (and only
        # this cluster's: a start refused because another node runs must not touch that one)
        self.state.owns_node = True
        self.state.save()
        hostnet.create(self.state.ports["apiserver"])
        nodefs.create(self.node_files.root, [realnode.RUN_DIR])

    def _start_real_node(self, binaries: Binaries) -> None:
        """RBAC and cluster DNS objects, then containerd (with the pause image loaded), kubelet,
        kube-proxy and CoreDNS, each in the node's network and mount namespaces."""
        files = self.node_files
        realnode.write_files(
            files, self._node_kubeconfigs(), commands.kubelet_client_pki(self.workdir) / "kubelet-client-ca.crt"
        )
        realnode.apply_objects(self.api, realnode.cluster_objects())
        self._spawn("containerd", binaries)
        socket = files.containerd_socket_of(self._procs["containerd"].pid)
        self._wait("containerd's socket", socket.exists, "containerd")
        self.load_images([realnode.PAUSE_IMAGE_NAME])
        for name in realnode.DAEMONS:
            if name not in realnode.AFTER_REGISTRATION:
                self._spawn(name, binaries)

    def _start_node_firewall(self, binaries: Binaries) -> None:
        """kube-router, once the node is registered; up when its health check answers (its
        NetworkPolicy controller has synced)."""
        for name in realnode.AFTER_REGISTRATION:
            self._spawn(name, binaries)
        self._wait("kube-router's health check", probe.answers_ok(realnode.KUBE_ROUTER_HEALTH), "kube-router")

    def load_images(self, names: Sequence[str], progress: Callable[[str], None] | None = None) -> None:
        """Build (when their inputs changed) and load images into the real node's containerd."""
        if not self.real_node:
            raise DevClusterError("images load into a real node; this cluster has kwok nodes only")
        realnode.load_images(names, self.node_files, progress or (lambda line: None))

    # -- audit log ----------------------------------------------------------------------------

    def audit_line_count(self) -> int:
        """Current length of the audit log; pass it as `since_line` to look only at later events."""
        return audit.line_count(self.audit_log)

    def audit_events(self, user: str | None = OPERATOR_USER, since_line: int = 0) -> list[dict[str, Any]]:
        """Parsed audit events (only audited users are logged; `user=None`: all of them)."""
        return audit.events(self.audit_log, user, since_line)

    def write_requests(self, since_line: int = 0, user: str | None = OPERATOR_USER) -> list[dict[str, Any]]:
        """Completed create/update/patch/delete/deletecollection requests of `user`."""
        return audit.writes(self.audit_events(user, since_line))

    # -- faults -------------------------------------------------------------------------------

    def restart_apiserver(self, *, restart_clients: bool = True) -> None:
        """Stop kube-apiserver and start it again on the same port and etcd; wait for /readyz.

        By default KCM, scheduler and kwok are stopped before and started after it (with kwok's
        node leases cleared). Their client-go reflectors back off exponentially on watch
        failures (0.8 s doubling to 30 s, jittered up to 2x, reset only after 2 quiet minutes):
        left running, they made pods take 2-60 s to appear or become Ready after the 2nd-6th
        restart within minutes. The operator under test still sees the whole outage;
        `restart_clients=False` restarts the apiserver alone.
        """
        clients = _CLIENTS if restart_clients else ()
        for name in reversed(clients):
            processes.stop(self._procs[name], str(self.workdir))
        self._respawn("kube-apiserver")
        self._wait("kube-apiserver /readyz after a restart", self._apiserver_ready, "kube-apiserver", clients)
        if clients:
            # A new kwok has a new lease holder identity and would wait for the old holder's node
            # leases to expire (--node-lease-duration-seconds=40) before serving those nodes again.
            client.CoordinationV1Api(self.api).delete_collection_namespaced_lease(nodes.LEASE_NAMESPACE)
        for name in clients:
            self._respawn(name)
        if clients:
            self._wait_healthz()

    def _respawn(self, name: str) -> None:
        """Stop (if still running) and start again one process, with the same arguments and log."""
        old = self._procs[name]
        processes.stop(old, str(self.workdir))
        with old.log.open("a") as f:
            f.write(f"\n==== stackops: {name} restarted ====\n")
        self._procs[name] = processes.spawn(old.name, old.args, old.log, die_with_parent=not self._detached)
        # Same key, so the start order (which stop() reverses) is kept.
        self.state.processes = list(self._procs.values())
        self.state.save()

    # -- stop ---------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True if every process of the cluster is alive."""
        marker = str(self._state.workdir) if self._state else ""
        return bool(self._procs) and all(processes.ours(p.pid, marker) for p in self._procs.values())

    def stop(self, remove: bool | None = None) -> None:
        """Stop all processes in reverse start order (SIGTERM, then SIGKILL) and, unless `keep`,
        delete the working directory. Safe to call twice."""
        if self._api is not None:
            self._api.close()
            self._api = None
        if self._state is None:
            return
        problems = _stop_all(self._procs, str(self.workdir), self.state.owns_node)
        if problems:
            # the workdir stays: deleting through a mount left behind could reach host files
            raise DevClusterError("\n".join(["the real node left these behind (down again to retry):", *problems]))
        if self._finalizer is not None:
            self._finalizer.detach()
        if (not self.keep) if remove is None else remove:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        if self._state is None:
            self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # -- detached clusters --------------------------------------------------------------------

    @classmethod
    def attach(cls, workdir: Path) -> LocalCluster:
        """The cluster a detached start left running in `workdir`, as seen from another process.

        Never stopped implicitly (no finalizer); its stop() deletes the workdir unless told
        `remove=False`. Its processes are found by pid and signalled only while their command
        line still mentions the workdir.
        """
        workdir = workdir.expanduser().resolve()
        try:
            state = ClusterState.load(workdir)
        except FileNotFoundError:
            raise DevClusterError(f"{workdir}: no cluster here (no {STATE_FILE})") from None
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DevClusterError(f"{workdir / STATE_FILE}: unreadable: {error}") from None
        cluster = cls(workdir, keep=False, real_node=state.real_node)
        cluster._state = state
        cluster._identities = state.identities
        cluster._detached = True
        cluster.startup_seconds = state.startup_seconds
        cluster._procs.update({p.name: p for p in state.processes})
        return cluster


def down(workdir: Path) -> None:
    """Stop a detached cluster and delete its working directory."""
    LocalCluster.attach(workdir).stop(remove=True)
