"""`stackops operator`: run the handlers, as the one active replica among several.

Exclusivity comes from a coordination.k8s.io Lease (the kubernetes client's leader election): a
replica that is not the leader waits; a leader that cannot renew its lease stops at once and exits
non-zero, so its pod restarts as a follower instead of acting alongside a new leader.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import kopf
from kubernetes import client, config
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from stackops.health.cloud import HealthSettings
from stackops.kube.client import Kube
from stackops.reconcile.handlers import post_event  # importing it registers the handlers with kopf
from stackops.reconcile.state import OperatorState

log = logging.getLogger(__name__)

LEASE_NAME = "stackops-operator"


@dataclass(frozen=True)
class OperatorOptions:
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    leader_election: bool = True
    lease_namespace: str = "default"
    health_port: int = 8080
    identity: str = ""
    kubeconfig: str | None = None  # outside a pod; None: in-cluster, else $KUBECONFIG
    metrics_port: int = 9090  # 0: no /metrics
    health: HealthSettings = field(default_factory=HealthSettings)


def load_kube_config(kubeconfig: str | None = None) -> None:
    """The given kubeconfig, else in-cluster credentials in a pod, else $KUBECONFIG / ~/.kube/config.
    Loaded once, globally: kopf (through its login handler) and stackops use the same identity."""
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig)
        return
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()


def _lease_namespace(default: str) -> str:
    path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or default
    except OSError:
        return default


class _StandbyHealth(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # probes every few seconds are not worth a log line


def standby_health(port: int) -> ThreadingHTTPServer:
    """A follower is healthy while it waits for the lease: /healthz answers until it leads and kopf
    takes the port over, so probes never restart a standby replica."""
    server = ThreadingHTTPServer(("0.0.0.0", port), _StandbyHealth)
    threading.Thread(target=server.serve_forever, name="standby-health", daemon=True).start()
    return server


def run(options: OperatorOptions) -> int:
    load_kube_config(options.kubeconfig)
    # the election logs every renewal at INFO; only trouble is worth a line
    logging.getLogger("leaderelection").setLevel(logging.WARNING)
    stop = threading.Event()
    lease_lost = threading.Event()
    leading = threading.Event()
    # the Kubernetes client of the configuration loaded above: kopf (through its login handler) and
    # stackops' own requests act as the same identity
    state = OperatorState(Kube(client.ApiClient()), post_event=post_event, health_settings=options.health)
    if options.metrics_port:
        # every replica serves metrics, the followers too: a scrape shows which one leads
        state.metrics.serve(options.metrics_port)
    identity = options.identity or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"

    if options.leader_election:
        lock = LeaseLock(LEASE_NAME, _lease_namespace(options.lease_namespace), identity)

        def lost() -> None:
            log.error("lost the leader lease: stopping")
            lease_lost.set()
            stop.set()

        election = leaderelection.LeaderElection(
            electionconfig.Config(
                lock,
                lease_duration=15,
                renew_deadline=10,
                retry_period=2,
                onstarted_leading=leading.set,
                onstopped_leading=lost,
            )
        )
        threading.Thread(target=election.run, name="leader-election", daemon=True).start()
        log.info("%s waiting to become the leader", identity)
        standby = standby_health(options.health_port)
        try:
            while not leading.wait(1.0):
                if stop.is_set():
                    return 1
        finally:
            standby.shutdown()
            standby.server_close()  # kopf serves /healthz on the same port from here on
        log.info("%s is the leader", identity)
    state.metrics.leader.set(1)

    kopf.run(
        standalone=True,
        clusterwide=not options.namespaces,
        namespaces=list(options.namespaces),
        liveness_endpoint=f"http://0.0.0.0:{options.health_port}/healthz",
        stop_flag=stop,
        memo=kopf.Memo(state=state, stop=stop),
    )
    # kopf returns after stop_flag: a lost lease is a failure, so the pod restarts as a follower.
    return 1 if lease_lost.is_set() else 0


@kopf.on.cleanup()
def release_stop_flag(memo: kopf.Memo, **_: object) -> None:
    """Stopping for another reason (SIGTERM): kopf waits for the stop flag in a thread that Python
    joins on exit, so set it, or the process hangs until it is killed."""
    flag = memo.get("stop")
    if isinstance(flag, threading.Event):
        flag.set()
