"""Where a cluster's files live in its workdir, and the command line of each of its processes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from stackops.devcluster import hostnet
from stackops.devcluster.binaries import Binaries
from stackops.devcluster.nodes import KWOK_ANNOTATION

# stackops' own stages (failures on demand), after kwokctl's defaults in binaries.kwok_stages
STACKOPS_KWOK_STAGES = Path(__file__).with_name("kwok-stages.yaml")


def ca_file(workdir: Path) -> Path:
    """The apiserver's self-signed serving certificate (its CA is in the same file)."""
    return workdir / "pki" / "apiserver.crt"


def audit_log(workdir: Path) -> Path:
    return workdir / "audit.log"


def kubeconfig_path(workdir: Path, key: str) -> Path:
    return workdir / f"{key}.kubeconfig"


def kubelet_client_pki(w: Path) -> Path:
    """Where the real node's kubelet-client CA and the API server's client certificate live."""
    return w / "pki" / "kubelet-client"


def command_line(name: str, binaries: Binaries, w: Path, p: Mapping[str, int], real_node: bool = False) -> list[str]:
    """The command line of one process (flags as hack/kube/README.md found to work, plus ours).

    With a `real_node`, the API server listens on the host end of the node's link (pods reach it
    through the `kubernetes` Service, which then has a real endpoint), authorizes the kubelet as
    a node, and calls the kubelet by its InternalIP with a client certificate."""
    etcd_url = f"http://127.0.0.1:{p['etcd_client']}"
    peer_url = f"http://127.0.0.1:{p['etcd_peer']}"
    if name == "etcd":
        return [
            str(binaries.etcd),
            "--name=stackops",
            f"--data-dir={w / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=stackops={peer_url}",
            "--unsafe-no-fsync",  # a throwaway cluster: durability is not worth the latency
            "--log-level=warn",
        ]
    if name == "kube-apiserver":
        if real_node:
            pki = kubelet_client_pki(w)
            where = [
                f"--bind-address={hostnet.HOST_IP}",
                f"--advertise-address={hostnet.HOST_IP}",
                # never resolve a node's name through the machine's resolver
                "--kubelet-preferred-address-types=InternalIP",
                f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
                "--authorization-mode=Node,RBAC",
            ]
        else:
            where = [
                "--bind-address=127.0.0.1",
                # Else it advertises the host's default-route IP; 127.0.0.1 then needs the
                # endpoint reconciler off (it refuses loopback endpoints, every sync).
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",
                "--authorization-mode=RBAC",
            ]
        return [
            str(binaries.kube_apiserver),
            f"--etcd-servers={etcd_url}",
            f"--cert-dir={w / 'pki'}",
            f"--secure-port={p['apiserver']}",
            *where,
            f"--service-cluster-ip-range={hostnet.SERVICE_CIDR}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={w / 'sa.key'}",
            f"--service-account-signing-key-file={w / 'sa.key'}",
            f"--token-auth-file={w / 'tokens.csv'}",
            "--allow-privileged=true",
            f"--audit-policy-file={w / 'audit-policy.yaml'}",
            f"--audit-log-path={audit_log(w)}",
            "--audit-log-format=json",
            # Each event is written before the request completes: tests read it right after.
            "--audit-log-mode=blocking",
            # Without it, SIGTERM with clients still watching (KCM, kwok, the operator) did not
            # end the apiserver within 30 s; with it, it exits in ~1.1 s.
            "--shutdown-watch-termination-grace-period=1s",
        ]
    if name == "kube-controller-manager":
        return [
            str(binaries.kube_controller_manager),
            f"--kubeconfig={kubeconfig_path(w, 'kcm')}",
            "--bind-address=127.0.0.1",
            f"--secure-port={p['controller_manager']}",
            f"--cert-dir={w / 'pki'}",  # its self-signed serving cert, so /healthz can be verified
            # One instance, nothing to elect; with election on, an apiserver outage longer
            # than the renew deadline (10 s) makes KCM exit ("leaderelection lost").
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={w / 'sa.key'}",
            f"--root-ca-file={ca_file(w)}",
            # With the default 20 qps, fetching a token per controller SA throttled KCM's start:
            # the `default` ServiceAccount took ~4.6 s to appear; with these, ~0.05 s.
            "--kube-api-qps=200",
            "--kube-api-burst=400",
        ]
    if name == "kube-scheduler":
        return [
            str(binaries.kube_scheduler),
            f"--kubeconfig={kubeconfig_path(w, 'scheduler')}",
            "--bind-address=127.0.0.1",
            f"--secure-port={p['scheduler']}",
            f"--cert-dir={w / 'pki'}",
            "--leader-elect=false",  # as for KCM
        ]
    if name == "kwok":
        return [
            str(binaries.kwok),
            f"--kubeconfig={kubeconfig_path(w, 'kwok')}",
            f"--config={binaries.kwok_stages}",
            f"--config={STACKOPS_KWOK_STAGES}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
            # Fake addresses written into node/pod status; nothing listens on them.
            "--node-ip=10.0.2.1",
            "--cidr=10.0.1.0/24",
            "--node-lease-duration-seconds=40",
        ]
    raise ValueError(name)
