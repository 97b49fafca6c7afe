"""The real node's network: its own network namespace, joined to the host by one veth pair.

Containment is the point. The node (kubelet, containerd, kube-proxy, CoreDNS and every pod,
hostNetwork pods included) lives in the namespace `stackops-node`, whose only routes are the
veth link and the Service range back to the host; it has no default route, so nothing in it
can even address the outside. The host routes the pod and Service ranges into the namespace
and never forwards anything (a FORWARD drop on the veth says so even if the host's
ip_forward is on); an INPUT guard lets the node reach the host only at the API server's port.
The API server listens on the host end of the link, so pods (the operator, RabbitMQ's peer
discovery) reach it through the `kubernetes` Service like on any cluster, and the API server
reaches the kubelet by its InternalIP, never by resolving a name.

One real node per machine: the names and addresses below are fixed, as port 10250 would be.
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from stackops.devcluster.errors import DevClusterError

NETNS = "stackops-node"
HOST_IF = "stackops-node"  # the veth's host end (<= 15 characters)
NODE_IF = "eth0"  # its end inside the namespace
LINK = ipaddress.IPv4Network("10.0.3.0/30")
HOST_IP = "10.0.3.1"  # the API server binds here
NODE_IP = "10.0.3.2"  # the node's InternalIP
POD_CIDR = "10.0.1.0/24"
# Room for a few thousand Services: the kwok clusters hold many clouds (about 20 Services each).
SERVICE_CIDR = "10.96.0.0/16"
DNS_IP = "10.96.0.10"  # the kube-dns Service
CLUSTER_DOMAIN = "cluster.local"
GUARD_CHAIN = "STACKOPS-NODE-GUARD"
# ip-netns(8) bind-mounts these files over /etc for `ip netns exec stackops-node CMD`: a person's
# commands on the host then resolve cluster names (and nothing else) through the cluster's DNS.
NETNS_ETC = Path("/etc/netns") / NETNS


class NetError(DevClusterError):
    pass


def _run(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NetError(f"{' '.join(argv)}: exit {result.returncode}: {result.stderr.strip() or result.stdout.strip()}")
    return result


def in_netns(argv: Sequence[str]) -> list[str]:
    """`argv` run in the node's network namespace only: mounts, PIDs and cgroups stay the host's,
    which the kubelet and containerd must share (`ip netns exec` would give each its own mounts)."""
    return ["nsenter", f"--net={netns_path()}", "--", *argv]


def netns_path() -> Path:
    return Path("/run/netns") / NETNS


def exists() -> bool:
    return netns_path().exists()


@dataclass(frozen=True)
class GuardRule:
    chain: str
    spec: tuple[str, ...]


def _guard_rules(apiserver_port: int) -> list[GuardRule]:
    """The host's iptables rules for the node, in order; `down` deletes exactly these."""
    accept_from_node = [
        ("-i", "lo", "-j", "RETURN"),
        ("-i", HOST_IF, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"),
        ("-i", HOST_IF, "-d", HOST_IP, "-p", "tcp", "--dport", str(apiserver_port), "-j", "RETURN"),
        ("-j", "DROP"),
    ]
    return [
        *(GuardRule(GUARD_CHAIN, spec) for spec in accept_from_node),
        GuardRule("INPUT", ("-i", HOST_IF, "-j", GUARD_CHAIN)),
        GuardRule("INPUT", ("-d", HOST_IP, "-j", GUARD_CHAIN)),
        # The host is no router for the node: nothing from or to it is ever forwarded.
        GuardRule("FORWARD", ("-i", HOST_IF, "-j", "DROP")),
        GuardRule("FORWARD", ("-o", HOST_IF, "-j", "DROP")),
    ]


def create(apiserver_port: int) -> None:
    """The namespace, the veth pair, addresses, routes, the namespace's sysctls, the host guard."""
    if exists():
        raise NetError(
            f"network namespace {NETNS} exists: a real node is up, or a crashed one left it (down removes it)"
        )
    prefix = LINK.prefixlen
    _run(["ip", "netns", "add", NETNS])
    _run(["ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NODE_IF, "netns", NETNS])
    _run(["ip", "addr", "add", f"{HOST_IP}/{prefix}", "dev", HOST_IF])
    _run(["ip", "link", "set", HOST_IF, "up"])
    node = in_netns
    _run(node(["ip", "link", "set", "lo", "up"]))
    _run(node(["ip", "addr", "add", f"{NODE_IP}/{prefix}", "dev", NODE_IF]))
    _run(node(["ip", "link", "set", NODE_IF, "up"]))
    # Locally made packets to a ClusterIP need a route before kube-proxy's OUTPUT DNAT picks the
    # pod; a ClusterIP nobody serves then goes to the host, which drops it (it never forwards).
    _run(node(["ip", "route", "add", SERVICE_CIDR, "via", HOST_IP, "dev", NODE_IF]))
    for cidr in (POD_CIDR, SERVICE_CIDR):
        _run(["ip", "route", "add", cidr, "via", NODE_IP, "dev", HOST_IF])
    # Namespaced sysctls: they end with the namespace. Pods reach Services through the bridge.
    for key, value in (
        ("net.ipv4.ip_forward", "1"),
        ("net.bridge.bridge-nf-call-iptables", "1"),
        ("net.ipv4.conf.all.rp_filter", "1"),
    ):
        _run(node(["sysctl", "-q", "-w", f"{key}={value}"]))
    NETNS_ETC.mkdir(parents=True, exist_ok=True)
    (NETNS_ETC / "resolv.conf").write_text(
        f"nameserver {DNS_IP}\nsearch svc.{CLUSTER_DOMAIN} {CLUSTER_DOMAIN}\n", encoding="utf-8"
    )
    _run(["iptables", "-w", "-N", GUARD_CHAIN])
    for rule in _guard_rules(apiserver_port):
        _run(["iptables", "-w", "-A", rule.chain, *rule.spec])
    problems = containment_problems()
    if problems:
        raise NetError("the real node's network is not contained: " + "; ".join(problems))


def delete(apiserver_port: int | None) -> None:
    """Remove the guard and the namespace (its veth, routes and iptables go with it). Idempotent."""
    if apiserver_port is not None:
        for rule in reversed(_guard_rules(apiserver_port)):
            if rule.chain != GUARD_CHAIN:
                while _run(["iptables", "-w", "-D", rule.chain, *rule.spec], check=False).returncode == 0:
                    pass
    if _run(["iptables", "-w", "-L", GUARD_CHAIN, "-n"], check=False).returncode == 0:
        # A guard whose port we do not know (state lost): unhook every jump to it, then drop it.
        for chain in ("INPUT", "FORWARD"):
            listing = _run(["iptables", "-w", "-S", chain], check=False).stdout.splitlines()
            for line in listing:
                if GUARD_CHAIN in line or f"-i {HOST_IF} " in line or f"-o {HOST_IF} " in line:
                    _run(["iptables", "-w", *line.replace("-A ", "-D ", 1).split()], check=False)
        _run(["iptables", "-w", "-F", GUARD_CHAIN], check=False)
        _run(["iptables", "-w", "-X", GUARD_CHAIN], check=False)
    if NETNS_ETC.exists():
        for entry in NETNS_ETC.iterdir():
            entry.unlink()
        NETNS_ETC.rmdir()
        if not any(NETNS_ETC.parent.iterdir()):
            NETNS_ETC.parent.rmdir()
    if exists():
        _run(["ip", "netns", "delete", NETNS])
    if _run(["ip", "link", "show", HOST_IF], check=False).returncode == 0:
        _run(["ip", "link", "delete", HOST_IF], check=False)


def containment_problems() -> list[str]:
    """What would let the node's traffic leave the machine; empty when it is contained.

    Checked by route lookups only (no packet is sent): from inside the namespace no address
    outside the link, the pod range and the Service range may have a route; on the host, the
    pod and Service ranges must go into the namespace, and the guard must be in place.
    """
    problems = []
    routes = _run(in_netns(["ip", "-4", "route", "show"])).stdout.splitlines()
    for route in routes:
        destination = route.split()[0]
        if destination == "default" or not _inside_cluster(destination):
            problems.append(f"the node namespace has a route out: {route!r}")
    for probe in ("192.0.2.1", "8.8.8.8", "1.1.1.1"):
        if _run(in_netns(["ip", "-4", "route", "get", probe]), check=False).returncode == 0:
            problems.append(f"the node namespace can route to {probe}")
    for cidr in (POD_CIDR, SERVICE_CIDR):
        address = str(ipaddress.ip_network(cidr)[5])
        found = _run(["ip", "-4", "route", "get", address], check=False).stdout
        if f"dev {HOST_IF}" not in found:
            problems.append(f"the host routes {cidr} elsewhere than into the node: {found.strip()!r}")
    rules = _run(["iptables", "-w", "-S", "FORWARD"], check=False).stdout
    if f"-A FORWARD -i {HOST_IF} -j DROP" not in rules:
        problems.append("the host's FORWARD chain does not drop the node's traffic")
    return problems


def _inside_cluster(destination: str) -> bool:
    network = ipaddress.IPv4Network(destination, strict=False)
    allowed = [LINK, ipaddress.IPv4Network(POD_CIDR), ipaddress.IPv4Network(SERVICE_CIDR)]
    return any(network.subnet_of(a) for a in allowed)
