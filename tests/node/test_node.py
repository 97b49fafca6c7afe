"""Pods on the real node: they run, reach each other through Services by their DNS names, reach the API
server through the `kubernetes` Service, are reached from the host, and nothing leaves the machine."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from stackops.devcluster import LocalCluster, hostnet, realnode
from tests.node.conftest import finished, python_pod, ready, wait_pod

NAMESPACE = "node-test"

CLIENT = """
import socket, time, urllib.request
print("dns", socket.gethostbyname("web.node-test.svc.cluster.local"), socket.gethostbyname("web"))
for attempt in range(60):  # kube-proxy programs a new endpoint within its sync period
    try:
        print("http", urllib.request.urlopen("http://web.node-test.svc/", timeout=10).status)
        break
    except OSError:
        time.sleep(0.5)
socket.create_connection(("kubernetes.default.svc", 443), timeout=10).close()
print("api reachable")
try:
    socket.gethostbyname("example.com")
    print("outside name RESOLVED")
except OSError:
    print("outside name unknown")
try:
    socket.create_connection(("203.0.113.1", 9), timeout=10).close()
    print("outside address REACHED")
except OSError as error:
    print("outside address unreachable", error.errno)
"""


@pytest.fixture(scope="module")
def core(real_cluster: LocalCluster) -> Iterator[client.CoreV1Api]:
    api = real_cluster.api_client()
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    try:
        yield core
    finally:
        core.delete_namespace(NAMESPACE)
        api.close()


@pytest.fixture(scope="module")
def web(core: client.CoreV1Api) -> client.V1Service:
    """A Python HTTP server in a pod, behind a ClusterIP Service."""
    server = python_pod("web", "import http.server as h; h.test(h.SimpleHTTPRequestHandler, port=8080)", {"app": "web"})
    server["spec"]["containers"][0]["readinessProbe"] = {"httpGet": {"port": 8080, "path": "/"}, "periodSeconds": 1}
    core.create_namespaced_pod(NAMESPACE, server)
    service = core.create_namespaced_service(
        NAMESPACE,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    wait_pod(core, NAMESPACE, "web", ready)
    return service


def test_the_node_is_a_real_kubelet_on_containerd(real_cluster: LocalCluster, core: client.CoreV1Api) -> None:
    node = core.read_node(realnode.NODE_NAME)
    info = node.status.node_info
    assert info.kubelet_version == real_cluster.state.kube_version
    assert info.container_runtime_version.startswith("containerd://")
    assert "kwok.x-k8s.io/node" not in (node.metadata.annotations or {})
    assert [a.address for a in node.status.addresses if a.type == "InternalIP"] == [hostnet.NODE_IP]
    labels = node.metadata.labels
    assert labels["stackops.dev/control-plane"] == "true"
    assert labels["stackops.dev/compute"] == "true"


def test_pods_reach_services_by_name_and_the_api_and_nothing_outside(
    core: client.CoreV1Api, web: client.V1Service
) -> None:
    # route lookups first (no packet sent): only then may a pod try to reach an outside address
    assert hostnet.containment_problems() == []
    core.create_namespaced_pod(NAMESPACE, python_pod("client", CLIENT))
    pod = wait_pod(core, NAMESPACE, "client", finished)
    # the API server reads the log from the kubelet (by InternalIP, with its client certificate)
    log = core.read_namespaced_pod_log("client", NAMESPACE)
    assert pod.status.phase == "Succeeded", log
    lines = log.splitlines()
    assert lines[0] == f"dns {web.spec.cluster_ip} {web.spec.cluster_ip}"
    assert lines[1:4] == ["http 200", "api reachable", "outside name unknown"]
    assert lines[4].startswith("outside address unreachable"), lines[4]


def test_the_host_reaches_services_and_the_kubelet_refuses_strangers(web: client.V1Service) -> None:
    with urllib.request.urlopen(f"http://{web.spec.cluster_ip}/", timeout=10) as answer:
        assert answer.status == 200
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"https://{hostnet.NODE_IP}:10250/pods", timeout=10, context=insecure)
    assert refused.value.code == 401


def test_host_paths_of_pods_are_the_nodes_own(core: client.CoreV1Api) -> None:
    """A pod's hostPath (as Open vSwitch's and nova's agents use them) is in the node's directory,
    never the machine's own /var/lib or /run."""
    pod = python_pod(
        "host-paths", "open('/host-lib/written', 'w').write('x'); open('/host-run/written', 'w').write('x')"
    )
    pod["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "lib", "mountPath": "/host-lib"},
        {"name": "run", "mountPath": "/host-run"},
    ]
    pod["spec"]["volumes"] = [
        {"name": "lib", "hostPath": {"path": "/var/lib/stackops-node-test", "type": "DirectoryOrCreate"}},
        {"name": "run", "hostPath": {"path": "/run/stackops-node-test", "type": "DirectoryOrCreate"}},
    ]
    core.create_namespaced_pod(NAMESPACE, pod)
    assert wait_pod(core, NAMESPACE, "host-paths", finished).status.phase == "Succeeded"
    assert not Path("/var/lib/stackops-node-test").exists()
    assert not Path("/run/stackops-node-test").exists()
