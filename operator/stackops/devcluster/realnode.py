"""A real Kubernetes node beside the local control plane: containerd, kubelet, kube-proxy, CoreDNS
and kube-router's firewall, which enforces NetworkPolicies.

Everything runs in the node's network namespace (stackops.devcluster.hostnet) and its mount
namespace (stackops.devcluster.nodefs), and shares the host's PIDs and cgroups, as a node's daemons
do. Pods get addresses from a CNI bridge inside that namespace; kube-proxy (iptables) gives them
Services; kube-router (its firewall only: no routing, no proxy, no CNI) turns NetworkPolicies into
iptables rules and ipsets of the namespace, so a cloud's policies hold here as on a production
cluster; CoreDNS answers `<service>.<namespace>.svc.cluster.local` from the API and nothing else
(no forwarder is even compiled in). Images come only from containerd's own store (nothing can be pulled: the namespace
has no route out), loaded there by hack/images/build.py.

The node is labelled for the control plane and for compute, so one machine runs a whole cloud.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stackops.cache import cache_root
from stackops.devcluster import hostchanges, hostnet, nodefs, nodes, processes
from stackops.devcluster.binaries import build_script
from stackops.devcluster.errors import DevClusterError

NODE_NAME = "stackops-node"
# Kubernetes users of the node's daemons (static tokens): the kubelet is a node to the Node
# authorizer, kube-proxy has the bootstrap binding of system:node-proxier, CoreDNS and kube-router
# ours below.
KUBELET_USER = f"system:node:{NODE_NAME}"
KUBE_PROXY_USER = "system:kube-proxy"
COREDNS_USER = "stackops:coredns"
KUBE_ROUTER_USER = "stackops:kube-router"
NODE_IDENTITIES: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "kubelet": (KUBELET_USER, ("system:nodes",)),
    "kube-proxy": (KUBE_PROXY_USER, ()),
    "kube-router": (KUBE_ROUTER_USER, ()),
    "coredns": (COREDNS_USER, ()),
}
# What kube-router's firewall watches (it reads, never writes).
KUBE_ROUTER_READS = {
    "": ("namespaces", "pods", "services", "nodes", "endpoints"),
    "discovery.k8s.io": ("endpointslices",),
    "networking.k8s.io": ("networkpolicies",),
}
PAUSE_IMAGE = "localhost/stackops/pause:3.10"  # hack/images/build.py builds it, as "pause"
PAUSE_IMAGE_NAME = "pause"
# Start order; `down` stops them in reverse. containerd first: the others need its socket.
PROCESSES = ("containerd", "kubelet", "kube-proxy", "coredns", "kube-router")
DAEMONS = PROCESSES[1:]
# Started once the kubelet has registered the node: kube-router looks its Node up when it starts and
# exits when there is none yet. The node counts as up once its firewall answers its health check.
AFTER_REGISTRATION = ("kube-router",)
KUBE_ROUTER_HEALTH_PORT = 20244
KUBE_ROUTER_HEALTH = f"http://{hostnet.NODE_IP}:{KUBE_ROUTER_HEALTH_PORT}/healthz"
SYSTEM_PROGRAMS = {
    "containerd": "containerd",
    "runc": "runc",
    "ctr": "containerd",
    "nsenter": "util-linux",
    "ip": "iproute2",
    "iptables": "iptables",
    "conntrack": "conntrack",
    "ipset": "ipset",  # kube-router's firewall keeps a policy's pods in ipsets
}
CNI_BIN_DIR = Path("/usr/lib/cni")
CNI_PLUGINS = ("bridge", "host-local", "portmap", "loopback")


# containerd's socket and state, on the node's own /run (stackops.devcluster.nodefs): short paths (a
# unix socket path has at most 104 bytes, and the shims' sockets live under the state directory).
RUN_DIR = Path("/run/stackops-node")


@dataclass(frozen=True)
class NodeFiles:
    """Where the node keeps its files: `root` in the cluster's workdir, `images` in the cache,
    containerd's socket and state in RUN_DIR."""

    root: Path
    images: Path  # containerd's root: images stay imported from one `up` to the next

    @property
    def containerd_socket(self) -> Path:
        return RUN_DIR / "containerd.sock"

    @property
    def containerd_state(self) -> Path:
        return RUN_DIR / "state"

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet"

    def path(self, name: str) -> Path:
        return self.root / name

    def roots(self) -> list[Path]:
        """The node's directories on the machine (no mount of the node may show there after `down`)."""
        return [self.root, self.images]

    def containerd_socket_of(self, pid: int) -> Path:
        """containerd's socket as the host reaches it: through the root of a process in the node."""
        return Path(f"/proc/{pid}/root") / self.containerd_socket.relative_to("/")


def images_root() -> Path:
    """containerd's root: kept in the cache, so images stay loaded from one `up` to the next."""
    return cache_root() / "node" / "containerd"


def missing_system_programs() -> list[str]:
    """Debian packages the node needs that are not installed (empty when all are)."""
    missing = {package for program, package in SYSTEM_PROGRAMS.items() if shutil.which(program) is None}
    if not all((CNI_BIN_DIR / plugin).is_file() for plugin in CNI_PLUGINS):
        missing.add("containernetworking-plugins")
    return sorted(missing)


def check_host() -> None:
    missing = missing_system_programs()
    if missing:
        raise DevClusterError(
            f"a real node needs these Debian packages: {' '.join(missing)} (hack/system-packages.sh installs them)"
        )
    if not Path("/proc/sys/net/bridge").exists():
        raise DevClusterError("a real node needs the br_netfilter kernel module (pods reach Services through it)")


def containerd_config(files: NodeFiles) -> str:
    """containerd 1.6's config: CRI with runc on cgroupfs, overlayfs, CNI from our directory.

    `restrict_oom_score_adj`: root here lacks CAP_SYS_RESOURCE, and without it every sandbox
    fails ("nsexec: failed to update /proc/self/oom_score_adj: Permission denied").
    """
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return "\n".join(
        [
            "version = 2",
            f'root = "{files.images}"',
            f'state = "{files.containerd_state}"',
            "[grpc]",
            f'  address = "{files.containerd_socket}"',
            '[plugins."io.containerd.internal.v1.opt"]',
            f'  path = "{files.path("containerd/opt")}"',
            f"[{cri}]",
            f'  sandbox_image = "{PAUSE_IMAGE}"',
            "  restrict_oom_score_adj = true",
            "  disable_apparmor = true",
            '  stream_server_address = "127.0.0.1"',
            "  enable_unprivileged_ports = false",
            f"[{cri}.containerd]",
            '  snapshotter = "overlayfs"',
            '  default_runtime_name = "runc"',
            f"[{cri}.containerd.runtimes.runc]",
            '  runtime_type = "io.containerd.runc.v2"',
            f"[{cri}.containerd.runtimes.runc.options]",
            "  SystemdCgroup = false",
            f'  Root = "{files.path("containerd/runc")}"',
            f"[{cri}.cni]",
            f'  bin_dir = "{CNI_BIN_DIR}"',
            f'  conf_dir = "{files.path("cni")}"',
            "",
        ]
    )


def cni_config(files: NodeFiles) -> dict[str, Any]:
    """A bridge with host-local addresses from the pod range; no masquerade (nothing leaves)."""
    return {
        "cniVersion": "0.4.0",
        "name": "stackops",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": hostnet.POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(files.path("cni-ipam")),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(files: NodeFiles, client_ca: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": hostnet.NODE_IP,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        # Only the API server (x509) or tokens it vouches for, and only what it authorizes.
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(client_ca)},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",  # cgroup v1 and no systemd here
        "containerRuntimeEndpoint": f"unix://{files.containerd_socket}",
        "clusterDNS": [hostnet.DNS_IP],
        "clusterDomain": hostnet.CLUSTER_DOMAIN,
        # Pods never see the machine's resolver: `dnsPolicy: Default` gets cluster DNS too.
        "resolvConf": str(files.path("resolv.conf")),
        "podLogsDir": str(files.path("pod-logs")),
        "failSwapOn": False,
        # Images cannot be pulled again once removed: never collect them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "serializeImagePulls": False,
        "maxPods": 110,
        "registerNode": True,
        "logging": {"format": "text"},
    }


def kube_proxy_config(kubeconfig: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "clusterCIDR": hostnet.POD_CIDR,
        "hostnameOverride": NODE_NAME,
        "bindAddress": hostnet.NODE_IP,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "nodePortAddresses": [f"{hostnet.NODE_IP}/32"],
        # Host-wide conntrack limits are not kube-proxy's to change on this machine.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }


def corefile(kubeconfig: Path) -> str:
    """The cluster zone from the API; every other name is answered NXDOMAIN right here."""
    zone = hostnet.CLUSTER_DOMAIN
    return "\n".join(
        [
            f"{zone}:53 in-addr.arpa:53 ip6.arpa:53 {{",
            "    errors",
            f"    kubernetes {zone} in-addr.arpa ip6.arpa {{",
            f"        kubeconfig {kubeconfig} stackops-dev",
            "        pods insecure",
            "        fallthrough in-addr.arpa ip6.arpa",
            "    }",
            "    cache 30",
            "    loadbalance",
            "}",
            ".:53 {",
            "    errors",
            "    template ANY ANY {",
            "        rcode NXDOMAIN",
            "    }",
            "}",
            "",
        ]
    )


def write_files(files: NodeFiles, kubeconfigs: Mapping[str, Path], client_ca: Path) -> None:
    for directory in ("containerd", "cni", "cni-ipam", "pod-logs", "kubelet"):
        files.path(directory).mkdir(parents=True, exist_ok=True)
    files.images.mkdir(parents=True, exist_ok=True)
    files.path("containerd.toml").write_text(containerd_config(files), encoding="utf-8")
    files.path("cni/10-stackops.conflist").write_text(json.dumps(cni_config(files), indent=2), encoding="utf-8")
    files.path("resolv.conf").write_text(
        f"nameserver {hostnet.DNS_IP}\nsearch svc.{hostnet.CLUSTER_DOMAIN} {hostnet.CLUSTER_DOMAIN}\n", encoding="utf-8"
    )
    files.path("kubelet.yaml").write_text(yaml.safe_dump(kubelet_config(files, client_ca)), encoding="utf-8")
    files.path("kube-proxy.yaml").write_text(
        yaml.safe_dump(kube_proxy_config(kubeconfigs["kube-proxy"])), encoding="utf-8"
    )
    files.path("Corefile").write_text(corefile(kubeconfigs["coredns"]), encoding="utf-8")


# A unix socket's path has at most 107 bytes; the kubelet binds `<root-dir>/pod-resources/<10 digits>`
# and exits when it cannot ("bind: invalid argument").
SOCKET_PATH_MAX = 107
KUBELET_SOCKET_SUFFIX = len("/pod-resources/1234567890")


def check_paths(files: NodeFiles) -> None:
    """The node's directories must be visible inside it (not under a path it sees as its own), and
    short enough for the sockets the kubelet makes under its own."""
    for path in (files.root, files.images):
        private = nodefs.hidden(path)
        if private:
            raise DevClusterError(f"{path}: under {private}, which the real node sees as its own; choose another place")
    longest = len(str(files.kubelet_root).encode()) + KUBELET_SOCKET_SUFFIX
    if longest > SOCKET_PATH_MAX:
        raise DevClusterError(
            f"{files.root}: too long a path for a real node's working directory (the kubelet's sockets under it "
            f"would be {longest} bytes, a unix socket's path holds {SOCKET_PATH_MAX}); choose a shorter one"
        )


def command_line(
    name: str, files: NodeFiles, binaries: Mapping[str, Path], kubeconfigs: Mapping[str, Path]
) -> list[str]:
    """The command line of one node process, run in the node's network namespace."""
    if name == "containerd":
        argv = ["containerd", "--config", str(files.path("containerd.toml")), "--log-level", "warn"]
    elif name == "kubelet":
        labels = ",".join(f"{k}=true" for k in (nodes.CONTROL_PLANE_LABEL, nodes.COMPUTE_LABEL))
        argv = [
            str(binaries["kubelet"]),
            f"--config={files.path('kubelet.yaml')}",
            f"--kubeconfig={kubeconfigs['kubelet']}",
            f"--root-dir={files.kubelet_root}",
            f"--cert-dir={files.kubelet_root / 'pki'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={hostnet.NODE_IP}",
            f"--node-labels={labels}",
            "--v=1",
        ]
    elif name == "kube-proxy":
        argv = [str(binaries["kube-proxy"]), f"--config={files.path('kube-proxy.yaml')}", "--v=1"]
    elif name == "kube-router":
        argv = [
            str(binaries["kube-router"]),
            f"--kubeconfig={kubeconfigs['kube-router']}",
            f"--hostname-override={NODE_NAME}",
            "--run-firewall=true",
            # the bridge CNI routes pods and kube-proxy gives Services: kube-router only filters
            "--run-router=false",
            "--run-service-proxy=false",
            "--enable-cni=false",
            "--enable-ipv6=false",
            f"--service-cluster-ip-range={hostnet.SERVICE_CIDR}",
            "--metrics-port=0",
            f"--health-port={KUBE_ROUTER_HEALTH_PORT}",
            "--v=1",
        ]
    elif name == "coredns":
        argv = [str(binaries["coredns"]), "-conf", str(files.path("Corefile"))]
    else:
        raise ValueError(name)
    return nodefs.enter(argv)


def cluster_objects() -> list[dict[str, Any]]:
    """What the node needs in the API before its daemons start: RBAC for the API server's calls
    to the kubelet, for CoreDNS and for kube-router, and the kube-dns Service with CoreDNS as its
    endpoint."""
    from stackops.devcluster.pki import APISERVER_KUBELET_CLIENT

    rbac = "rbac.authorization.k8s.io/v1"
    return [
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "stackops:apiserver-kubelet-client"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:kubelet-api-admin",
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": APISERVER_KUBELET_CLIENT}],
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": {"name": "stackops:coredns"},
            "rules": [
                {"apiGroups": [""], "resources": ["services", "namespaces"], "verbs": ["list", "watch"]},
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
            ],
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "stackops:coredns"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "stackops:coredns"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": COREDNS_USER}],
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": {"name": KUBE_ROUTER_USER},
            "rules": [
                {"apiGroups": [group], "resources": list(resources), "verbs": ["get", "list", "watch"]}
                for group, resources in KUBE_ROUTER_READS.items()
            ],
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": KUBE_ROUTER_USER},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": KUBE_ROUTER_USER},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": KUBE_ROUTER_USER}],
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
            "spec": {
                "clusterIP": hostnet.DNS_IP,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                ],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
            "subsets": [
                {
                    "addresses": [{"ip": hostnet.NODE_IP}],
                    "ports": [
                        {"name": "dns", "port": 53, "protocol": "UDP"},
                        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                    ],
                }
            ],
        },
    ]


def apply_objects(api: Any, objects: Sequence[dict[str, Any]]) -> None:
    """Create `objects`, leaving any that already exist as they are."""
    from kubernetes import utils

    for obj in objects:
        try:
            utils.create_from_dict(api, obj)
        except utils.FailToCreateError as error:
            if any(getattr(e, "status", None) != 409 for e in error.api_exceptions):
                raise


def load_images(names: Sequence[str], files: NodeFiles, progress: Callable[[str], None]) -> None:
    """Build `names` when their inputs changed and load them into the node's containerd, with
    hack/images/build.py of this source checkout (a cold build of every image takes minutes)."""
    script = build_script()
    if script is None:
        raise DevClusterError("loading images into a real node needs a stackops source checkout (hack/images)")
    builder = script.parent.parent / "images" / "build.py"
    argv = [sys.executable, str(builder), "--containerd", str(files.containerd_socket)]
    argv += ["--containerd-mount-ns", str(nodefs.MOUNT_NS), *names]
    last: deque[str] = deque(maxlen=30)
    with subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as run:
        assert run.stdout is not None
        for line in run.stdout:
            last.append(line.rstrip("\n"))
            progress(last[-1])
    if run.returncode != 0:
        raise DevClusterError("\n".join([f"building or loading images failed ({' '.join(names)}):", *last]))


def undo_host_changes() -> list[str]:
    """Put the machine back as the record of the node's `up` says it was; what could not be undone."""
    problems = nodefs.delete()
    record = hostchanges.Snapshot.load()
    if record is None:
        hostnet.delete(None)
        return problems
    problems += hostchanges.restore(record)
    try:
        hostnet.delete(record.apiserver_port)
    except hostnet.NetError as error:
        problems += error.problems
    problems += hostchanges.remove_netns_dir(record)
    problems += [p for p in hostchanges.leftovers(record) if p not in problems]
    if not problems:
        hostchanges.RECORD.unlink(missing_ok=True)
    return problems


def recover_crashed() -> list[str]:
    """Stop what a crashed real node left running and undo its changes (nothing when none crashed)."""
    record = hostchanges.Snapshot.load()
    if record is None:
        problems = nodefs.delete()
        if hostnet.exists():
            hostnet.delete(None)
        return problems
    running = _still_running(record.roots[0])
    if running:
        raise DevClusterError(
            f"a real node is running (its directory {record.roots[0]}, processes {running[:5]}): one per machine; "
            "stop it first with stackops dev cluster down"
        )
    # the daemons mention the node's directory in the crashed cluster's workdir, the shims RUN_DIR
    for marker in (record.roots[0], str(RUN_DIR)):
        stop_mentioning(marker)
    return undo_host_changes()


def _still_running(marker: str, grace: float = 5.0) -> list[int]:
    """Processes mentioning `marker` that stay alive for `grace` seconds.

    A daemon killed a moment ago may still be exiting (a large process takes a while to tear down):
    that is a crash to recover from, not a running node.
    """
    deadline = time.monotonic() + grace
    while (running := processes.processes_mentioning(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return running


def stop_mentioning(marker: str) -> None:
    for pid in processes.processes_mentioning(marker):
        processes.stop(processes.Process("leftover", [], Path("/dev/null"), pid), marker, timeout=2.0)
