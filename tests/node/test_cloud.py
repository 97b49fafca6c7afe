"""The cloud `make demo` deploys (examples/minimal.yaml: every core service, its hypervisor agents
included) on the real node, deployed as a user deploys it: images built here, the operator installed
by its Helm chart and running as a pod, the cloud applied. Ready means its pods really are: probes
pass, db-syncs and bootstraps ran, registrations made catalog entries, the agents run on the node.

One deploy is shared: the operator pod is killed once in the middle of it (every Job still runs once),
then the cloud is used from the host, then a keystone config change restarts exactly keystone's pods.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.stream import stream

from stackops.api.models import GROUP, PLURAL, VERSION
from stackops.devcluster import LocalCluster, realcloud, realnode
from stackops.devcluster.install import wait_for
from stackops.services.base import CREDENTIALS_SECRET_SUFFIX
from tests.conftest import ROOT
from tests.node.conftest import finished, python_pod, wait_pod
from tests.support.guest import ADDRESS_MARKER, MARKER, METADATA_MARKER, guest_build
from tests.support.progress import printer
from tests.support.rendered import serial

NAMESPACE = "openstack"
NAME = "demo"
READY_TIMEOUT = 3600.0


@dataclass
class RealCloud:
    cluster: LocalCluster
    api: client.ApiClient
    operator_killed_during: str
    deploy_seconds: float

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def cloud(self) -> dict[str, Any]:
        return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, NAME))


def _operator_pods(core: client.CoreV1Api) -> list[Any]:
    return list(
        core.list_namespaced_pod(
            realcloud.OPERATOR_NAMESPACE, label_selector=f"app.kubernetes.io/instance={realcloud.OPERATOR_RELEASE}"
        ).items
    )


def wait_ready(custom: client.CustomObjectsApi, timeout: float, on_wait: Any = None) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, NAME)
        status = obj.get("status") or {}
        if status.get("observedGeneration") == obj["metadata"]["generation"] and status.get("phase") == "Ready":
            return dict(obj)
        if on_wait is not None:
            on_wait(status)
        if time.monotonic() > deadline:
            raise AssertionError(f"cloud not Ready after {timeout:.0f}s: {json.dumps(status, indent=1)[-3000:]}")
        time.sleep(2)


@pytest.fixture(scope="module")
def real_cloud(pytestconfig: pytest.Config, real_cluster: LocalCluster) -> Iterator[RealCloud]:
    say = printer(pytestconfig)
    body = realcloud.for_real_node(yaml.safe_load((ROOT / "examples" / "minimal.yaml").read_text()))
    times = realcloud.install(real_cluster, body, NAMESPACE, lambda line: say(f"images: {line}"))
    say(f"real cloud: {', '.join(f'{phase} in {seconds:.0f}s' for phase, seconds in times.items())}")
    api = real_cluster.api_client()
    custom = client.CustomObjectsApi(api)
    core = client.CoreV1Api(api)
    applied = time.monotonic()
    custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
    killed: list[str] = []

    def kill_operator_once(status: dict[str, Any]) -> None:
        # once the deploy is well under way (a service's Jobs are running), the operator pod dies
        waiting = next((c.get("message", "") for c in status.get("conditions", []) if c["type"] == "Progressing"), "")
        if killed or "waiting for job" not in waiting:
            return
        for pod in _operator_pods(core):
            core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace, grace_period_seconds=0)
        killed.append(waiting)
        say(f"real cloud: operator pod killed while {waiting}")

    last: list[str] = []

    def progress(status: dict[str, Any]) -> None:
        kill_operator_once(status)
        line = next((c.get("message", "") for c in status.get("conditions", []) if c["type"] == "Progressing"), "")
        if line and line != (last[-1] if last else ""):
            last.append(line)
            say(f"real cloud: {time.monotonic() - applied:.0f}s {line}")

    wait_ready(custom, READY_TIMEOUT, progress)
    seconds = time.monotonic() - applied
    say(f"real cloud: Ready {seconds:.0f}s after it was applied")
    try:
        yield RealCloud(real_cluster, api, killed[0] if killed else "", seconds)
    finally:
        api.close()


def test_the_cloud_is_ready_because_its_pods_are(real_cloud: RealCloud) -> None:
    obj = real_cloud.cloud()
    assert obj["status"]["phase"] == "Ready"
    pods = real_cloud.core.list_namespaced_pod(NAMESPACE).items
    assert pods
    assert {p.spec.node_name for p in pods} == {realnode.NODE_NAME}  # the real node: no kwok here
    for pod in pods:
        if pod.metadata.owner_references and pod.metadata.owner_references[0].kind == "Job":
            assert pod.status.phase == "Succeeded", pod.metadata.name
        else:
            assert pod.status.phase == "Running", pod.metadata.name
            assert all(c.ready for c in pod.status.container_statuses), pod.metadata.name


def test_every_job_ran_once_though_the_operator_was_killed(real_cloud: RealCloud) -> None:
    assert real_cloud.operator_killed_during, "the operator pod was never killed during the deploy"
    jobs = client.BatchV1Api(real_cloud.api).list_namespaced_job(NAMESPACE).items
    assert jobs
    for job in jobs:
        assert job.status.succeeded == 1 and not job.status.failed, job.metadata.name
        runs = real_cloud.core.list_namespaced_pod(NAMESPACE, label_selector=f"job-name={job.metadata.name}").items
        assert len(runs) == 1, f"{job.metadata.name} ran {len(runs)} times"


def test_health_comes_from_real_openstack_checks(real_cloud: RealCloud) -> None:
    deadline = time.monotonic() + 180
    while True:
        status = real_cloud.cloud()["status"]
        healthy: dict[str, Any] = next((c for c in status["conditions"] if c["type"] == "Healthy"), {})
        if healthy.get("status") == "True" or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert healthy.get("status") == "True", healthy
    operator = _operator_pods(real_cloud.core)[0]
    args = operator.spec.containers[0].args or []
    assert "--no-openstack-checks" not in args


# Tried from a pod in another namespace, as any workload of the cluster could: every port of every
# backend Service (their headless cluster Services reach the pods' own ports), and two APIs, which the
# default apiAccess (Cluster) opens to every pod of the cluster.
BACKENDS = ("mariadb", "memcached", "rabbitmq", "rabbitmq-cluster", "ovn-nb-0", "ovn-nb-cluster", "ovn-sb-0",
            "ovn-sb-cluster")  # fmt: skip
APIS = ("keystone-api", "placement-api")
OUTSIDER = "stackops-outsider"
PROBE = """
import json, socket, sys, time
targets = json.loads(sys.argv[1])

def attempt(target):
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
        return "open"
    except OSError as error:
        return type(error).__name__

# The APIs first, until they answer: a NetworkPolicy's enforcer learns of a new pod (its address in
# the sets of allowed sources) a moment after the pod starts. Then each backend once.
results = {}
deadline = time.monotonic() + 120
for target in targets["apis"]:
    while (result := attempt(target)) != "open" and time.monotonic() < deadline:
        time.sleep(1)
    results[target] = result
for target in targets["backends"]:
    results[target] = attempt(target)
print(json.dumps(results))
"""


def test_backends_are_closed_to_pods_outside_the_cloud(real_cloud: RealCloud, pytestconfig: pytest.Config) -> None:
    """The cloud's NetworkPolicies hold on the real node (kube-router's firewall enforces them):
    a pod of another namespace reaches the APIs but no database, cache, queue or OVN database."""
    say = printer(pytestconfig)
    core = real_cloud.core
    policies = client.NetworkingV1Api(real_cloud.api).list_namespaced_network_policy(NAMESPACE).items
    assert policies, "the cloud has no NetworkPolicies"
    targets: dict[str, str] = {}
    for suffix in (*BACKENDS, *APIS):
        service = core.read_namespaced_service(f"{NAME}-{suffix}", NAMESPACE)
        for port in service.spec.ports:
            targets[f"{service.metadata.name}.{NAMESPACE}.svc.cluster.local:{port.port}"] = suffix
    core.create_namespace({"metadata": {"name": OUTSIDER}})
    try:
        body = python_pod("probe", PROBE)
        apis = sorted(t for t, suffix in targets.items() if suffix in APIS)
        backends = sorted(t for t, suffix in targets.items() if suffix in BACKENDS)
        body["spec"]["containers"][0]["args"] = [json.dumps({"apis": apis, "backends": backends})]
        core.create_namespaced_pod(OUTSIDER, body)
        done = wait_pod(core, OUTSIDER, "probe", finished, timeout=300)
        log = core.read_namespaced_pod_log("probe", OUTSIDER)
        assert done.status.phase == "Succeeded", log
        results = json.loads(log.strip().splitlines()[-1])
    finally:
        core.delete_namespace(OUTSIDER, grace_period_seconds=0)
    for target, result in sorted(results.items()):
        say(f"from {OUTSIDER}: {target} {result}")
    opened = {t for t, r in results.items() if r == "open"}
    assert {t for t in targets if targets[t] in APIS} <= opened, results  # the probe reaches what it may
    assert not {t for t in opened if targets[t] in BACKENDS}, results


def in_pod(core: client.CoreV1Api, pod: str, container: str, script: str) -> str:
    """What a shell script prints in one of the cloud's containers (stderr too)."""
    out = stream(
        core.connect_get_namespaced_pod_exec, pod, NAMESPACE, container=container,
        command=["bash", "-c", script], stderr=True, stdout=True, stdin=False, tty=False,
    )  # fmt: skip
    return str(out)


def test_the_services_reach_their_backends_over_tls(real_cloud: RealCloud, pytestconfig: pytest.Config) -> None:
    """Internal TLS in the real kubelet: MariaDB refuses plaintext over TCP, so a Ready cloud means
    every service connected over TLS (and it accepted TLS sessions); every connection RabbitMQ holds
    is TLS, and so is its Erlang distribution; memcached answers over TLS only. (tests/real: a
    plaintext client and one trusting another CA refused by each; OVN's databases:
    test_a_network_is_a_logical_switch_in_the_ovn_northbound_database.)"""
    say = printer(pytestconfig)
    status = "SELECT @@require_secure_transport, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"
    status += " WHERE VARIABLE_NAME = 'Ssl_accepts'"
    mariadb = in_pod(
        real_cloud.core, f"{NAME}-mariadb-0", "mariadb",
        f'MYSQL_PWD=$(<"$DB_ROOT_PASSWORD_FILE") mysql -u root -N -B -e "{status}"',
    ).split()  # fmt: skip
    say(f"mariadb: require_secure_transport={mariadb[0]}, TLS sessions accepted: {mariadb[1]}")
    assert mariadb[0] == "1" and int(mariadb[1]) > 0, mariadb
    listed = in_pod(
        real_cloud.core, f"{NAME}-rabbitmq-0", "rabbitmq",
        "rabbitmqctl list_connections user ssl --quiet --no-table-headers",
    )  # fmt: skip
    connections = [line.split() for line in listed.splitlines() if line.strip()]
    say(f"rabbitmq: {len(connections)} connections, TLS: {sorted({c[-1] for c in connections})}")
    assert connections and all(c[-1] == "true" for c in connections), listed
    # its Erlang distribution too: the node runs inet_tls, and rabbitmqctl reached it that way
    dist = in_pod(
        real_cloud.core, f"{NAME}-rabbitmq-0", "rabbitmq", "rabbitmqctl eval 'init:get_argument(proto_dist).'"
    )
    say(f"rabbitmq distribution: {dist.strip()}")
    assert '"inet_tls"' in dist, dist
    # memcached serves TLS only: keystone's pod reaches it by its pod's name verifying the CA beside
    # keystone's config; in plaintext it gets no answer
    (keystone,) = real_cloud.core.list_namespaced_pod(
        NAMESPACE, label_selector="app.kubernetes.io/name=keystone,app.kubernetes.io/component=api"
    ).items
    script = base64.b64encode(MEMCACHED_STATS.encode()).decode()
    host = f"{NAME}-memcached-0.{NAME}-memcached.{NAMESPACE}.svc"
    stats = in_pod(real_cloud.core, keystone.metadata.name, "keystone-api",
                   f"echo {script} | base64 -d > /tmp/stats.py && python3 /tmp/stats.py {host}")  # fmt: skip
    say(f"memcached over TLS: {stats.strip()}")
    version, connections_now, plaintext = stats.split()
    assert version.startswith("TLSv1") and int(connections_now) > 0 and plaintext == "refused", stats


# stats from memcached-0 over TLS, by its pod's name, verifying the cloud's CA (the TLS version and
# memcached's current connections), then the same in plaintext ("refused": no stats)
MEMCACHED_STATS = """
import socket, ssl, sys
host = sys.argv[1]
context = ssl.create_default_context(cafile="/etc/keystone/ca.crt")
with context.wrap_socket(socket.create_connection((host, 11211), timeout=10), server_hostname=host) as s:
    s.sendall(b"stats\\r\\n")
    data = b""
    while not data.endswith(b"END\\r\\n"):
        data += s.recv(65536)
    stats = dict(line.split()[1:3] for line in data.decode().splitlines() if line.startswith("STAT "))
    version = s.version()
try:
    with socket.create_connection((host, 11211), timeout=10) as plain:
        plain.sendall(b"stats\\r\\n")
        answer = plain.recv(64)
except OSError:
    answer = b""
print(version, stats["curr_connections"], "answered" if answer.startswith(b"STAT") else "refused")
"""


def host_python(code: str, clouds: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Python with openstacksdk run from the host as a person would: in the node's network, cluster DNS."""
    import os

    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(clouds)}
    argv = realcloud.host_command([sys.executable, "-c", code, *args])
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)


# every internal endpoint of the catalog, from the host: https, its certificate verified with the
# cloud's CA (clouds.yaml's cacert) for the endpoint's name, and the same port in plaintext refused
API_TLS = """
import json, requests, openstack
conn = openstack.connect(cloud="demo")
ca = conn.config.config["cacert"]
found = []
for endpoint in conn.identity.endpoints(interface="internal"):
    url = endpoint.url
    answer = requests.get(url, verify=ca, timeout=20).status_code
    try:
        requests.get("http://" + url.split("://", 1)[1], timeout=20)
        plain = "answered"
    except requests.exceptions.RequestException as error:
        plain = "refused"
    found.append([url, answer, plain])
print(json.dumps(found))
"""


def test_every_api_serves_https_only_with_a_certificate_of_the_clouds_ca(
    real_cloud: RealCloud, pytestconfig: pytest.Config, tmp_path: Path
) -> None:
    """The catalog's internal URLs are https; each answers verified with the cloud's CA (the name
    checked), none answers plaintext; the cloud got Ready, so every service reached them (its
    registration Jobs, authtoken, nova's and neutron's clients, the metadata agent: the server's
    boot test reads its metadata through nova's metadata API over TLS)."""
    say = printer(pytestconfig)
    clouds = tmp_path / "clouds.yaml"
    realcloud.write_clouds_yaml(real_cloud.cluster.kubeconfig, NAMESPACE, NAME, clouds)
    assert clouds.with_suffix(".ca.crt").read_text().startswith("-----BEGIN CERTIFICATE-----")
    result = host_python(API_TLS, clouds)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    for url, answer, plain in found:
        say(f"{url}: HTTP {answer} over TLS, plaintext {plain}")
    assert len(found) >= 6, found
    assert all(url.startswith("https://") and answer < 500 and plain == "refused" for url, answer, plain in found)


# from neutron's API pod, a client of all four: the serial of the certificate each long-running server
# serves, verified with the cloud's CA by the name neutron's config gives (OVN's with its client
# certificate; MariaDB's through PyMySQL, as neutron's own connections)
SERVED_SERIALS = """
import configparser, json, socket, ssl, urllib.parse
import pymysql
CA = "/etc/neutron/ca.crt"
conf = configparser.ConfigParser(interpolation=None, strict=False)
conf.read(["/etc/neutron/neutron.conf", "/etc/neutron/plugins/ml2/ml2_conf.ini"])
def served(host, port, pki=None):
    context = ssl.create_default_context(cafile=CA)
    if pki:
        context.load_cert_chain(*pki)
    with context.wrap_socket(socket.create_connection((host, port), timeout=10), server_hostname=host) as tls:
        return tls.getpeercert()["serialNumber"]
found = {}
url = urllib.parse.urlsplit(conf["database"]["connection"])
db = pymysql.connect(host=url.hostname, port=url.port or 3306, user=urllib.parse.unquote(url.username),
                     password=urllib.parse.unquote(url.password), ssl={"ca": CA}, connect_timeout=10)
found["mariadb"] = db._sock.getpeercert()["serialNumber"]
db.close()
broker = urllib.parse.urlsplit(conf["DEFAULT"]["transport_url"].split(",")[0])
found["rabbitmq"] = served(broker.hostname, broker.port)
host, port = conf["keystone_authtoken"]["memcached_servers"].split(",")[0].rsplit(":", 1)
found["memcached"] = served(host, int(port))
_, host, port = conf["ovn"]["ovn_nb_connection"].split(",")[0].split(":")
found["ovn-nb"] = served(host, int(port), (conf["ovn"]["ovn_nb_certificate"], conf["ovn"]["ovn_nb_private_key"]))
print(json.dumps(found))
"""
# each of those servers' certificate in the credentials Secret, and its one pod
RENEWED = {"mariadb": "mariadb-0", "rabbitmq": "rabbitmq-0", "memcached": "memcached-0", "ovn-nb": "ovn-nb-0"}


def test_renewed_certificates_reach_the_single_servers_without_a_restart(
    real_cloud: RealCloud, pytestconfig: pytest.Config
) -> None:
    """A renewal of the one-replica servers' certificates (here forced: their keys taken out of the
    credentials Secret, which the operator's next look issues again, as it renews one 90 days before
    it expires): the kubelet brings the new files into the running pods, their probes have MariaDB,
    RabbitMQ and memcached load them, OVN's database loads them by itself; each then serves its new
    certificate, verified, to neutron's pod, and no pod was replaced or restarted."""
    say = printer(pytestconfig)
    core = real_cloud.core
    secret = f"{NAME}-{CREDENTIALS_SECRET_SUFFIX}"
    (neutron,) = core.list_namespaced_pod(
        NAMESPACE, label_selector="app.kubernetes.io/name=neutron,app.kubernetes.io/component=api"
    ).items
    script = base64.b64encode(SERVED_SERIALS.encode()).decode()

    def served() -> dict[str, str]:
        run = f"echo {script} | base64 -d > /tmp/served.py && /var/lib/kolla/venv/bin/python /tmp/served.py"
        out = in_pod(core, neutron.metadata.name, "neutron-api", run)
        found: dict[str, str] = json.loads(out.strip().splitlines()[-1])
        return found

    def issued() -> dict[str, str]:
        data = core.read_namespaced_secret(secret, NAMESPACE).data or {}
        certificates = {name: data.get(f"tls-{name}.crt") for name in RENEWED}
        return {name: serial(base64.b64decode(pem).decode()) for name, pem in certificates.items() if pem}

    def pods() -> dict[str, tuple[str, int]]:
        found = {}
        for pod in RENEWED.values():
            read = core.read_namespaced_pod(f"{NAME}-{pod}", NAMESPACE)
            found[pod] = (read.metadata.uid, sum(c.restart_count for c in read.status.container_statuses or []))
        return found

    before, old = pods(), issued()
    assert served() == old
    removed = [{"op": "remove", "path": f"/data/tls-{name}.{part}"} for name in RENEWED for part in ("crt", "key")]
    core.patch_namespaced_secret(secret, NAMESPACE, removed)
    started = time.monotonic()
    wait_for(lambda: len(issued()) == len(RENEWED), "the operator's new certificates", 300.0)
    new = issued()
    assert all(new[name] != old[name] for name in RENEWED), (old, new)
    say(f"renewal: issued {round(time.monotonic() - started)} s after the keys went")
    wait_for(lambda: served() == new, "every server serving its new certificate", 420.0)
    say(f"renewal: every server served its new certificate {round(time.monotonic() - started)} s after")
    assert pods() == before  # the same pods, never restarted
    assert real_cloud.cloud()["status"]["phase"] == "Ready"


def test_the_cloud_is_used_from_the_host(real_cloud: RealCloud, tmp_path: Path) -> None:
    clouds = tmp_path / "clouds.yaml"
    assert realcloud.smoke(real_cloud.cluster.kubeconfig, NAMESPACE, NAME, clouds)


NETWORK = """
import openstack
conn = openstack.connect(cloud="demo")
network = conn.network.create_network(name="stackops-test-ovn")
conn.network.create_subnet(network_id=network.id, ip_version=4, cidr="192.168.78.0/24")
print(network.id)
"""
DELETE_NETWORK = """
import sys, openstack
openstack.connect(cloud="demo").network.delete_network(sys.argv[1])
"""


def ovn_client(real_cloud: RealCloud, tmp_path: Path) -> list[str]:
    """The options of a client of the cloud's OVN databases: the certificate for OVN's clients and the
    CA, from the cloud's credentials Secret (the databases speak TLS only and ask for it)."""
    data = real_cloud.core.read_namespaced_secret(f"{NAME}-{CREDENTIALS_SECRET_SUFFIX}", NAMESPACE).data
    for key in ("tls-ovn-client.key", "tls-ovn-client.crt", "tls-ca.crt"):
        (tmp_path / key).write_bytes(base64.b64decode(data[key]))
        (tmp_path / key).chmod(0o600)
    return [
        f"--private-key={tmp_path / 'tls-ovn-client.key'}",
        f"--certificate={tmp_path / 'tls-ovn-client.crt'}",
        f"--ca-cert={tmp_path / 'tls-ca.crt'}",
    ]


def test_a_network_is_a_logical_switch_in_the_ovn_northbound_database(real_cloud: RealCloud, tmp_path: Path) -> None:
    clouds = tmp_path / "clouds.yaml"
    realcloud.write_clouds_yaml(real_cloud.cluster.kubeconfig, NAMESPACE, NAME, clouds)
    created = host_python(NETWORK, clouds)
    assert created.returncode == 0, created.stderr
    network = created.stdout.strip()
    try:
        # asked of the database itself, through its Service, with the host's ovn-nbctl presenting the
        # cloud's certificate for OVN's clients: the database speaks TLS only
        address = real_cloud.core.read_namespaced_service(f"{NAME}-ovn-nb-0", NAMESPACE).spec.cluster_ip
        listed = subprocess.run(
            realcloud.host_command(["ovn-nbctl", *ovn_client(real_cloud, tmp_path), f"--db=ssl:{address}:6641",
                                    "--format=csv", "list", "Logical_Switch"]),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        plaintext = subprocess.run(
            realcloud.host_command(["ovn-nbctl", "--timeout=10", f"--db=tcp:{address}:6641", "ls-list"]),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert plaintext.returncode != 0 and "neutron-" not in plaintext.stdout, "served a plaintext client"
        assert f"neutron-{network}" in listed.stdout
        assert "stackops-test-ovn" in listed.stdout  # neutron's network name, in the switch's external_ids
    finally:
        host_python(DELETE_NETWORK.replace("sys.argv[1]", repr(network)), clouds)


SERVER = """
import json, sys, time, openstack
conn = openstack.connect(cloud="demo")
disk, metadata = sys.argv[1], sys.argv[2]
image = conn.create_image("stackops-guest", filename=disk, disk_format="raw", container_format="bare", wait=True)
flavor = conn.compute.create_flavor(name="stackops-guest", ram=128, vcpus=1, disk=1)
network = conn.network.create_network(name="stackops-guest")
conn.network.create_subnet(network_id=network.id, ip_version=4, cidr="192.168.79.0/24")
result = {"image": image.id, "flavor": flavor.id, "network": network.id, "server": None}
try:
    # nova's scheduler maps a new hypervisor into its cell within a minute (host discovery): a
    # server asked for before that fails with "Host ... is not mapped to any cell", and is asked again
    deadline = time.monotonic() + 300
    while True:
        server = conn.compute.create_server(
            name="stackops-guest", image_id=image.id, flavor_id=flavor.id, networks=[{"uuid": network.id}]
        )
        result["server"] = server.id
        while server.status not in ("ACTIVE", "ERROR") and time.monotonic() < deadline + 900:
            time.sleep(3)
            server = conn.compute.get_server(server.id)
        fault = (server.fault or {}).get("message", "")
        if "not mapped to any cell" not in fault or time.monotonic() > deadline:
            break
        result["unmapped"] = result.get("unmapped", 0) + 1
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=300)
        time.sleep(10)
    server = conn.compute.wait_for_server(server, wait=900)
    result["status"] = server.status
    result["host"] = server.hypervisor_hostname
    result["instance"] = server.instance_name
    deadline = time.monotonic() + 300
    console = ""
    while metadata not in console and time.monotonic() < deadline:  # the guest's last line
        time.sleep(5)
        console = conn.compute.get_server_console_output(server)["output"]
    result["console"] = console
    (port,) = conn.network.ports(device_id=server.id)
    result["port"] = {
        "id": port.id, "status": port.status, "host": port.binding_host_id, "vif_type": port.binding_vif_type,
    }
except Exception as error:
    result["error"] = f"{type(error).__name__}: {error}"
    if result["server"]:
        result["fault"] = conn.compute.get_server(result["server"]).fault
print(json.dumps(result))
"""
DELETE_SERVER = """
import json, sys, openstack
conn = openstack.connect(cloud="demo")
made = json.loads(sys.argv[1])
server = conn.compute.find_server(made["server"]) if made["server"] else None
if server is not None:
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=300)
ports = [p.id for p in conn.network.ports(network_id=made["network"], device_owner="compute:nova")]
conn.network.delete_network(made["network"])
conn.compute.delete_flavor(made["flavor"])
conn.image.delete_image(made["image"])
print(json.dumps({"ports": ports}))
"""


def _libvirt_domains(core: client.CoreV1Api) -> list[str]:
    """The domains libvirt on the node knows, running or not (virsh in the nova-libvirt container)."""
    (pod,) = core.list_namespaced_pod(NAMESPACE, label_selector="app.kubernetes.io/component=compute").items
    listed = stream(
        core.connect_get_namespaced_pod_exec, pod.metadata.name, NAMESPACE, container="nova-libvirt",
        command=["virsh", "list", "--all", "--name"], stderr=True, stdout=True, stdin=False, tty=False,
    )  # fmt: skip
    return [line for line in str(listed).split() if line]


def test_a_server_boots_and_its_port_is_bound_and_claimed(
    real_cloud: RealCloud, tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    say = printer(pytestconfig)
    guest = guest_build.build(log=lambda line: say(f"guest: {line}"))
    clouds = tmp_path / "clouds.yaml"
    realcloud.write_clouds_yaml(real_cloud.cluster.kubeconfig, NAMESPACE, NAME, clouds)
    created = host_python(SERVER, clouds, str(guest.disk), METADATA_MARKER)
    assert created.returncode == 0, created.stderr
    made = json.loads(created.stdout)
    try:
        console = made.get("console", "")
        say(f"server: {made.get('status')} on {made.get('host')}, port {made.get('port')}")
        for line in console.splitlines():
            if line.startswith(("stackops-guest", "SeaBIOS", "SYSLINUX")):
                say(f"server console: {line}")
        assert "error" not in made, f"{made.get('error')} (fault: {made.get('fault')})"
        assert made["status"] == "ACTIVE"
        # host agents share the machine's host name (hostNetwork): nova's host, the chassis', the binding's
        assert made["host"] == socket.gethostname()
        assert MARKER in console
        # OVN's own DHCP answered the guest through the node's datapath (the userspace one here)
        assert f"{ADDRESS_MARKER} eth0 192.168.79." in console
        # nova's metadata, through the OVN metadata agent's proxy on the node, over the userspace
        # datapath's conntrack (its instance-id: the EC2-style name of the libvirt domain)
        assert f"{METADATA_MARKER} i-" in console
        port = made["port"]
        assert port["host"] == socket.gethostname() and port["vif_type"] not in ("binding_failed", "unbound")
        assert port["status"] == "ACTIVE"  # OVN reports a port up once its chassis claimed it
        sb = real_cloud.core.read_namespaced_service(f"{NAME}-ovn-sb-0", NAMESPACE).spec.cluster_ip
        binding = subprocess.run(
            realcloud.host_command(["ovn-sbctl", *ovn_client(real_cloud, tmp_path), f"--db=ssl:{sb}:6642",
                                    "--bare", "--columns=chassis", "find",
                                    "Port_Binding", f"logical_port={port['id']}"]),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert binding.returncode == 0, binding.stderr
        assert binding.stdout.strip(), "no chassis claimed the server's port in the southbound database"
        assert made["instance"] in _libvirt_domains(real_cloud.core)
    finally:
        deleted = host_python(DELETE_SERVER, clouds, json.dumps(made))
        assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout)["ports"] == []  # nova deleted the server's port with it
    assert made.get("instance") not in _libvirt_domains(real_cloud.core)


def _pods_by_component(core: client.CoreV1Api) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for pod in core.list_namespaced_pod(NAMESPACE).items:
        if pod.metadata.owner_references and pod.metadata.owner_references[0].kind == "Job":
            continue
        labels = pod.metadata.labels or {}
        key = f"{labels.get('app.kubernetes.io/name')}/{labels.get('app.kubernetes.io/component')}"
        found.setdefault(key, set()).add(pod.metadata.uid)
    return found


TOKEN_LIFETIME = """
import openstack
session = openstack.connect(cloud="demo").session
access = session.auth.get_access(session)
print(round((access.expires - access.issued).total_seconds()))
"""


def test_a_keystone_config_change_restarts_exactly_keystone_and_is_live(real_cloud: RealCloud, tmp_path: Path) -> None:
    clouds = tmp_path / "clouds.yaml"
    realcloud.write_clouds_yaml(real_cloud.cluster.kubeconfig, NAMESPACE, NAME, clouds)
    before = _pods_by_component(real_cloud.core)
    lifetime = host_python(TOKEN_LIFETIME, clouds)
    assert lifetime.returncode == 0, lifetime.stderr
    assert int(lifetime.stdout) != 7200
    real_cloud.custom.patch_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, NAME,
        {"spec": {"services": {"keystone": {"config": {"token": {"expiration": 7200}}}}}},
    )  # fmt: skip
    wait_ready(real_cloud.custom, 900)
    deadline = time.monotonic() + 300
    while True:  # the old keystone pods terminate after the new ones are ready
        after = _pods_by_component(real_cloud.core)
        if len(after.get("keystone/api", set())) == len(before["keystone/api"]) or time.monotonic() > deadline:
            break
        time.sleep(2)
    changed = sorted(key for key in before if before[key] != after.get(key))
    assert changed == ["keystone/api"]
    lifetime = host_python(TOKEN_LIFETIME, clouds)
    assert lifetime.returncode == 0, lifetime.stderr
    assert int(lifetime.stdout) == 7200
