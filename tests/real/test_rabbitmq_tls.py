"""RabbitMQ with the cloud's internal TLS, for real: Debian's rabbitmq-server booted from the
rabbitmq.conf stackops renders (TLS listeners only, the certificate the operator issued from the
cloud's CA), then, by the broker Service's name (resolved to loopback in a mount namespace of the
clients' own): the rendered messaging Job creates nova's user through the management API over TLS,
and oslo.messaging with the rendered nova.conf does an RPC round trip over AMQPS, both verifying the
certificate against the CA. A plaintext AMQP client gets no AMQP from the broker, and a client
trusting another CA fails the handshake. Two members cluster over Erlang's distribution with TLS,
and a command line tool speaking plaintext distribution cannot reach a node."""

from __future__ import annotations

import configparser
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stackops.certificates import CA_CERT_KEY
from stackops.credentials import Credentials
from stackops.devcluster.cluster import free_ports
from stackops.plan import Plan, certificate_requests, plan
from stackops.services import nova
from stackops.services import rabbitmq as rabbitmq_service
from stackops.services.base import CloudContext
from tests.conftest import cloud
from tests.real.test_rabbitmq import RPC_ROUND_TRIP
from tests.support.https import SERVED_SERIAL
from tests.support.rabbitmq import RabbitMQ, port_mapper
from tests.support.rendered import cloud_credentials, find, job_env, renewed, secret_data, serial

STACKOPS = str(Path(sys.executable).with_name("stackops"))
# a client in a mount namespace of its own, where /etc/hosts names the broker's Service on loopback
WITH_HOSTS = 'mount --bind "$HOSTS" /etc/hosts && exec "$@"'

# what a client that does not speak TLS gets: AMQP's protocol header, sent in plaintext, answered
# by AMQP's connection.start from a plaintext listener, by a TLS alert or nothing from a TLS one
PLAINTEXT_CLIENT = """
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as s:
    s.sendall(b"AMQP\\x00\\x00\\x09\\x01")
    try:
        answer = s.recv(64)
    except OSError as error:
        answer = repr(error).encode()
print("plaintext answered with AMQP" if answer.startswith(b"\\x01\\x00\\x00") else "plaintext refused")
"""

# a TLS client that trusts another CA than the cloud's
OTHER_CA_CLIENT = """
import socket, ssl, sys
context = ssl.create_default_context(cafile=sys.argv[3])
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=5) as s:
        context.wrap_socket(s, server_hostname=sys.argv[1]).close()
    print("other CA: handshake done")
except ssl.SSLCertVerificationError as error:
    print("other CA:", error.verify_message)
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RabbitMQ, Plan, Credentials, Path]]:
    own = cloud({})  # internal TLS is on by default
    credentials = Credentials(cloud_credentials(own))
    rendered = plan(own, credentials)
    files = secret_data(rendered, "demo-rabbitmq-config")
    assert "listeners.tcp = none" in files["rabbitmq.conf"]
    admin = (rabbitmq_service.ADMIN_USER, credentials[rabbitmq_service.ADMIN_PASSWORD_KEY])
    root = tmp_path_factory.mktemp("rabbitmq-tls")
    ctx = CloudContext("demo", "openstack", own.spec, credentials)
    served_files = rabbitmq_service.SERVICE.tls_files(ctx)
    # the node named as its pod is: the command line tools (the probes) check that name in its certificate
    (host,) = rabbitmq_service.member_hosts(ctx)
    with RabbitMQ.rendered(files, admin, tls_files=files | served_files, host=host) as server:
        yield server, rendered, credentials, root


def in_namespace(root: Path, host: str, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    hosts = root / "hosts"
    hosts.write_text(f"127.0.0.1 localhost {host}\n")
    return subprocess.run(
        ["unshare", "--mount", "--", "bash", "-c", WITH_HOSTS, "bash", *argv],
        env={**env, "HOSTS": str(hosts)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_the_services_reach_rabbitmq_over_tls_only_verifying_the_clouds_ca(
    served: tuple[RabbitMQ, Plan, Credentials, Path], nova_bin: Path
) -> None:
    server, rendered, credentials, root = served
    ctx = CloudContext("demo", "openstack", cloud({}).spec, credentials)
    host = rabbitmq_service.broker(ctx).host

    # nova's user and vhost, by the rendered Job, over the management API's TLS
    pod = find(rendered, "Job", "nova", rabbitmq_service.USER_JOB)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    args = [a.replace(f"={rabbitmq_service.MANAGEMENT_PORT}", f"={server.management_port}") for a in container["args"]]
    env = job_env(pod, {"demo-credentials": credentials.values()}, root / "job")
    assert "STACKOPS_MQ_CA_FILE" in env
    job = in_namespace(root, host, [STACKOPS, *container["command"][1:], *args], env)
    assert job.returncode == 0, job.stdout + job.stderr
    assert server.api("users/nova").ok

    # an RPC round trip with the rendered nova.conf: AMQPS to the Service's name, the CA verifying it
    conf = configparser.ConfigParser(interpolation=None)
    conf.read_string(secret_data(rendered, "demo-nova-config")["nova.conf"])
    rabbit = conf["oslo_messaging_rabbit"]
    assert (rabbit["ssl"], rabbit["ssl_ca_file"]) == ("true", nova.SERVICE.ca_file)
    (root / "ca.crt").write_text(credentials[CA_CERT_KEY])
    rabbit["ssl_ca_file"] = str(root / "ca.crt")
    url = conf["DEFAULT"]["transport_url"]
    assert f"@{host}:{rabbitmq_service.AMQP_PORT}/" in url
    conf["DEFAULT"]["transport_url"] = url.replace(f":{rabbitmq_service.AMQP_PORT}/", f":{server.port}/")
    with (root / "nova.conf").open("w") as out:
        conf.write(out)
    rpc = in_namespace(root, host, [str(nova_bin / "python"), "-c", RPC_ROUND_TRIP, str(root / "nova.conf")], {})
    assert rpc.returncode == 0 and rpc.stdout.strip() == "pong", rpc.stderr[-3000:]
    connections = server.api("connections").json()
    assert connections == [] or all(c["ssl"] for c in connections)

    # no plaintext AMQP; another CA's client fails the handshake
    plaintext = subprocess.run(
        [sys.executable, "-c", PLAINTEXT_CLIENT, str(server.port)], capture_output=True, text=True
    )
    assert plaintext.stdout.strip() == "plaintext refused", plaintext.stdout + plaintext.stderr
    (root / "other-ca.crt").write_text(Credentials(cloud_credentials(cloud({})))[CA_CERT_KEY])
    other = subprocess.run(
        [sys.executable, "-c", OTHER_CA_CLIENT, host, str(server.port), str(root / "other-ca.crt")],
        capture_output=True,
        text=True,
    )
    # the broker sends the CA with its certificate: a CA the client does not trust
    assert other.stdout.strip() == "other CA: self-signed certificate in certificate chain", other.stdout + other.stderr


def test_the_members_talk_erlang_distribution_over_tls_only(tmp_path: Path) -> None:
    root = tmp_path
    own = cloud({"infrastructure": {"messaging": {"replicas": 2}}})
    credentials = Credentials(cloud_credentials(own))
    files = secret_data(plan(own, credentials), "demo-rabbitmq-config")
    files |= rabbitmq_service.SERVICE.tls_files(CloudContext("demo", "openstack", own.spec, credentials))
    assert "-proto_dist inet_tls" in files["rabbitmq-env.conf"]
    admin = (rabbitmq_service.ADMIN_USER, credentials[rabbitmq_service.ADMIN_PASSWORD_KEY])
    (epmd_port,) = free_ports(1)
    epmd = port_mapper(epmd_port)
    # the nodes named as the pods' are (rabbit@<pod>.<cluster Service>): the names their certificate has
    hosts = rabbitmq_service.member_hosts(CloudContext("demo", "openstack", own.spec, credentials))
    members = [
        RabbitMQ.rendered(files, admin, epmd_port=epmd_port, tls_files=files, host=host, hosts=hosts) for host in hosts
    ]
    listed = [f"cluster_formation.classic_config.nodes.{i} = {m.node}" for i, m in enumerate(members, 1)]
    for member in members:
        with (member.root / "rabbitmq.conf").open("a") as conf:
            conf.write("cluster_formation.peer_discovery_backend = classic_config\n" + "\n".join(listed) + "\n")
    try:
        for member in members:
            member.start()
        running = {n["name"] for n in members[0].api("nodes").json() if n.get("running")}
        assert running == {m.node for m in members}, running
        # the command line tools reach a node over the distribution's TLS (the environment file)
        assert members[1].node in members[0].cli("rabbitmqctl", "cluster_status")
        # a tool with the same cookie but speaking plaintext distribution cannot, nor one presenting
        # a certificate of another CA
        other = Credentials(cloud_credentials(own))  # the same names, another CA
        certificate = next(r for r in certificate_requests(own) if r.name == "rabbitmq")
        for key, value in (("server.crt", certificate.cert_key), ("server.key", certificate.private_key)):
            (root / key).write_text(other[value])
        (root / "ca.crt").write_text(other[CA_CERT_KEY])
        ours = members[0].root
        (root / "dist.config").write_text((ours / "dist.config").read_text().replace(str(ours), str(root)))
        (root / "env.conf").write_text((ours / "rabbitmq-env.conf").read_text().replace(str(ours), str(root)))
        for what, env_file in (("plaintext", root / "none"), ("another CA's certificate", root / "env.conf")):
            result = subprocess.run(
                ["/usr/lib/rabbitmq/bin/rabbitmqctl", "-n", members[0].node, "status"],
                env={**members[0].env, "RABBITMQ_CONF_ENV_FILE": str(env_file)},
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert result.returncode != 0, f"{what}: {result.stdout}"
            print(f"{what}:", result.stderr.strip().splitlines()[0])
    finally:
        for member in members:
            member.stop()
        epmd.kill()
        epmd.wait()


def test_a_renewed_certificate_is_served_without_a_restart_once_the_probe_ran(
    served: tuple[RabbitMQ, Plan, Credentials, Path],
) -> None:
    """The renewed files replace the old; the rendered readiness probe sees them changed and has
    Erlang's TLS drop what it cached; then AMQP and the management API serve the new certificate,
    verified by the broker's name, from the same server process. The probe passes throughout."""
    server, rendered, credentials, root = served
    own = cloud({})
    ctx = CloudContext("demo", "openstack", own.spec, credentials)
    host = rabbitmq_service.broker(ctx).host
    (request,) = rabbitmq_service.SERVICE.certificates(ctx)
    (root / "ca.crt").write_text(credentials[CA_CERT_KEY])
    readiness = find(rendered, "StatefulSet", "rabbitmq", "server")["spec"]["template"]["spec"]["containers"][0]
    probe = readiness["readinessProbe"]["exec"]["command"]

    def serials() -> set[str]:
        return {
            subprocess.run(
                [sys.executable, "-c", SERVED_SERIAL, "127.0.0.1", str(port), host, str(root / "ca.crt")],
                capture_output=True, text=True, check=True,
            ).stdout.strip()
            for port in (server.port, server.management_port)
        }  # fmt: skip

    def probes_until(done: Callable[[], bool]) -> list[str]:
        """The probe run as the kubelet runs it, period after period (each run may fail: the command
        line tools' distribution connection can time out on a busy machine, and the next run tries
        again), until `done`: how each run ended."""
        ran: list[str] = []
        for _ in range(10):
            result = server.probe(probe)
            ran.append("ready" if result.returncode == 0 else result.stderr.strip().splitlines()[0])
            if done():
                return ran
            time.sleep(2)
        raise AssertionError(f"not done after {len(ran)} probes: {ran}")

    old, assert_process = {serial(credentials[request.cert_key])}, server.process
    assert assert_process is not None
    print("before:", probes_until(lambda: serials() == old))
    new_credentials = renewed(credentials, request, own)
    new = {serial(new_credentials[request.cert_key])}
    server.serve(rabbitmq_service.SERVICE.tls_files(CloudContext("demo", "openstack", own.spec, new_credentials)))
    assert serials() == old  # Erlang's TLS serves what it cached until told
    ran = probes_until(lambda: serials() == new)
    print("after renewal:", ran)
    assert "ready" in ran
    assert assert_process.poll() is None and server.process is assert_process  # the same server
    assert server.api("overview").ok
