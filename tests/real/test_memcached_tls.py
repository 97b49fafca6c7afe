"""memcached with the cloud's internal TLS, for real: Debian's memcached started with the arguments
of the rendered command (TLS on its one port, the certificate the operator issued from the cloud's
CA at the path kolla_start puts it), in a network of its own where the pods' names resolve to
loopback. The clients are the real libraries at the release's versions, in keystone's venv with the
memcached clients the images install, each configured by a rendered file, verbatim: keystonemiddleware
(nova.conf's [keystone_authtoken]) and oslo.cache (keystone.conf's [cache]) store and read a value
over TLS, verifying the certificate and the pod's name against the CA; swift's own client (the
proxy's cache filter) does the same in swift's venv. A plaintext client gets nothing, and a client
trusting another CA fails the handshake."""

from __future__ import annotations

import configparser
import io
import json
import shlex
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackops.api.releases import MEMCACHED_CLIENTS
from stackops.certificates import CA_CERT_KEY
from stackops.credentials import Credentials
from stackops.plan import Plan, plan
from stackops.services import keystone, memcached, nova, swift
from stackops.services.base import CloudContext
from tests.conftest import cloud
from tests.real.conftest import service_venv
from tests.support.https import SERVED_SERIAL
from tests.support.projected import ProjectedVolume
from tests.support.rendered import cloud_credentials, find, renewed, secret_data
from tests.support.rendered import serial as serial_of
from tests.support.sandbox import Sandbox, eventually

# keystonemiddleware's token cache, as auth_token builds it from [keystone_authtoken]: a token's
# data stored (encrypted, memcache_security_strategy) and read back
AUTHTOKEN_CLIENT = """
import logging, sys
from oslo_config import cfg
from keystonemiddleware import auth_token
logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")
conf = cfg.ConfigOpts()
conf(["--config-file", sys.argv[1]], project="nova", default_config_files=[])
middleware = auth_token.AuthProtocol(lambda environ, start_response: None, {"oslo_config_config": conf})
cache = middleware._token_cache
cache.initialize({})
cache.set("a-token-id", {"token": {"user": "tls"}})
print("authtoken read:", cache.get("a-token-id"))
"""

# oslo.cache's region, configured from a [cache] section
OSLO_CACHE_CLIENT = """
import logging, sys
from oslo_config import cfg
from oslo_cache import core
logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")
conf = cfg.ConfigOpts()
core.configure(conf)
conf(["--config-file", sys.argv[1]], project="keystone", default_config_files=[])
region = core.create_region()
core.configure_cache_region(conf, region)
try:
    region.set("a-key", "over tls")
    print("oslo.cache read:", region.get("a-key"))
except Exception as error:
    print("oslo.cache failed:", type(error).__name__, error)
"""

# swift's memcache client, loaded as the proxy's cache filter loads it
SWIFT_CLIENT = """
import configparser, sys
from swift.common.memcached import load_memcache
from swift.common.utils import get_logger
config = configparser.ConfigParser(interpolation=None)
config.read(sys.argv[1])
ring = load_memcache(dict(config["filter:cache"]), get_logger({}, log_route="memcache"))
ring.set("a-key", "over tls")
print("swift read:", ring.get("a-key"))
"""


# in a mount namespace of its own: /etc overlaid with the files a process has in its container, and
# its volumes over that ($3: directory=mount point ...)
ETC_OVERLAY = (
    'mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1,workdir=$2" /etc && '
    'for bind in $3; do mount --bind "${bind%%=*}" "${bind#*=}"; done && shift 3 && exec "$@"'
)
# a cloud with swift, whose proxy is a client too; internal TLS is on by default
DEVICES = [{"name": f"d{i}"} for i in range(3)]
SPEC = {"services": {"swift": {"enabled": True, "nodes": [{"node": "node-a", "zone": 1, "devices": DEVICES}]}}}

# the handshake those libraries make (ssl.create_default_context(cafile=...), the pod's name as
# server_hostname), which they do not report when it fails: they answer "no value"
HANDSHAKE = """
import socket, ssl, sys
host, port, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
context = ssl.create_default_context(cafile=cafile)
try:
    with socket.create_connection((host, port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            print("handshake:", tls.version())
except ssl.SSLCertVerificationError as error:
    print("handshake failed:", error.verify_message)
"""

# memcached's text protocol in plaintext: a plaintext listener answers VERSION
PLAINTEXT = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as s:
    s.sendall(b"version\\r\\n")
    try:
        answer = s.recv(64)
    except OSError as error:
        answer = repr(error).encode()
print("plaintext answered VERSION" if answer.startswith(b"VERSION") else f"plaintext refused: {answer!r}")
"""


@pytest.fixture(scope="module")
def rendered() -> tuple[Plan, Credentials]:
    own = cloud(SPEC)
    credentials = Credentials(cloud_credentials(own))
    return plan(own, credentials), credentials


@pytest.fixture(scope="module")
def served(rendered: tuple[Plan, Credentials], tmp_path_factory: pytest.TempPathFactory) -> ProjectedVolume:
    """memcached's certificate, key and the CA as its pod has them: the credentials Secret's projection."""
    _, credentials = rendered
    ctx = CloudContext("demo", "openstack", cloud(SPEC).spec, credentials)
    return ProjectedVolume(tmp_path_factory.mktemp("memcached-served"), memcached.SERVICE.tls_files(ctx))


@pytest.fixture(scope="module")
def box(
    rendered: tuple[Plan, Credentials], served: ProjectedVolume, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    """memcached started from the rendered command, its served TLS files where its volume has them,
    in a sandbox whose /etc/hosts names every memcached pod on loopback."""
    plan_, credentials = rendered
    root = tmp_path_factory.mktemp("memcached-tls")
    files = secret_data(plan_, "demo-memcached-config")
    command = json.loads(files["memcached.json"])
    assert command["config_files"] == []  # nothing that kolla_start copies: the certificate is served
    argv = shlex.split(command["command"])
    assert argv[argv.index("-p") + 1] == str(memcached.PORT) and "-Z" in argv
    ctx = CloudContext("demo", "openstack", cloud(SPEC).spec, credentials)
    hosts = {server.rsplit(":", 1)[0]: "127.0.0.1" for server in memcached.servers(ctx)}
    sandbox = Sandbox(root, hosts)
    try:
        # as root here (the pod runs as memcached, which needs no -u)
        server = with_etc(sandbox, {}, [*argv, "-u", "root"], {memcached.TLS_DIR: served.path})
        sandbox.start("memcached", server, {}, {})
        eventually(
            lambda: bool(sandbox.listeners("memcached", "0.0.0.0", memcached.PORT)), lambda: sandbox.log("memcached")
        )
        yield sandbox
    finally:
        sandbox.close()


def with_etc(box: Sandbox, files: dict[str, str], argv: list[str], volumes: dict[str, Path] | None = None) -> list[str]:
    """`argv` seeing /etc with `files` (path: content) and the sandbox's hosts laid over it, in the
    sandbox's mount namespace: the files are where the containers have them, the machine's /etc is
    left as it is. `volumes`: directories here mounted at their paths under /etc."""
    overlay = Path(tempfile.mkdtemp(dir=box.root, prefix="etc-"))
    upper, work = overlay / "upper", overlay / "work"
    work.mkdir(parents=True)
    for path, content in {"/etc/hosts": box.hosts.read_text(), **files}.items():
        target = upper / path.removeprefix("/etc/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    for mount_point in volumes or {}:
        (upper / mount_point.removeprefix("/etc/")).mkdir(parents=True, exist_ok=True)
    binds = " ".join(f"{source}={mount_point}" for mount_point, source in (volumes or {}).items())
    return ["sh", "-c", ETC_OVERLAY, "sh", str(upper), str(work), binds, *argv]


def client(box: Sandbox, venv: Path, script: str, args: list[str], ca: str, ca_path: str) -> str:
    """Run `script` with `args` in the sandbox's network and names, with `ca` at `ca_path` (where
    the service's containers have the cloud's CA); what it printed and logged."""
    argv, env = box.command(with_etc(box, {ca_path: ca}, [str(venv / "python"), "-c", script, *args]), {})
    result = subprocess.run(
        argv, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env}, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    return result.stdout + result.stderr


def rendered_config(plan_: Plan, secret: str, name: str, path: Path, **overrides: dict[str, str | None]) -> Path:
    """A service's rendered config file, byte for byte; with `overrides`, sections' options changed
    (None: removed)."""
    text = secret_data(plan_, secret)[name]
    if overrides:
        conf = configparser.ConfigParser(interpolation=None)
        conf.read_string(text)
        for section, options in overrides.items():
            for option, value in options.items():
                if value is None:
                    conf.remove_option(section, option)
                else:
                    conf[section][option] = value
        out = io.StringIO()
        conf.write(out)
        text = out.getvalue()
    path.write_text(text)
    return path


def test_memcached_serves_tls_that_its_clients_verify_against_the_clouds_ca(
    rendered: tuple[Plan, Credentials], box: Sandbox, tmp_path: Path
) -> None:
    plan_, credentials = rendered
    keystone_bin = service_venv("keystone", *MEMCACHED_CLIENTS)
    ca = credentials[CA_CERT_KEY]

    # keystonemiddleware with nova.conf's [keystone_authtoken], as rendered
    nova_conf = rendered_config(plan_, "demo-nova-config", "nova.conf", tmp_path / "nova.conf")
    authtoken = configparser.ConfigParser(interpolation=None)
    authtoken.read(nova_conf)
    section = authtoken["keystone_authtoken"]
    assert (section["memcache_tls_enabled"], section["memcache_tls_cafile"]) == ("true", nova.SERVICE.ca_file)
    read = client(box, keystone_bin, AUTHTOKEN_CLIENT, [str(nova_conf)], ca, nova.SERVICE.ca_file)
    assert "authtoken read: {'token': {'user': 'tls'}}" in read, read

    # oslo.cache with keystone.conf's [cache], as rendered
    keystone_conf = rendered_config(plan_, "demo-keystone-config", "keystone.conf", tmp_path / "keystone.conf")
    read = client(box, keystone_bin, OSLO_CACHE_CLIENT, [str(keystone_conf)], ca, keystone.SERVICE.ca_file)
    assert "oslo.cache read: over tls" in read, read

    # swift's proxy cache filter, as rendered, in swift's venv
    swift_bin = service_venv("swift", "keystonemiddleware", "boto3")
    swift_conf = rendered_config(plan_, "demo-swift-config", "proxy-server.conf", tmp_path / "proxy-server.conf")
    read = client(box, swift_bin, SWIFT_CLIENT, [str(swift_conf)], ca, swift.SERVICE.ca_file)
    assert "swift read: over tls" in read, read

    # the same [cache] without TLS (python-memcached, as a cloud without internal TLS renders it): nothing
    plaintext = rendered_config(
        plan_, "demo-keystone-config", "keystone.conf", tmp_path / "plaintext.conf",
        cache={"tls_enabled": None, "tls_cafile": None},
    )  # fmt: skip
    read = client(box, keystone_bin, OSLO_CACHE_CLIENT, [str(plaintext)], ca, keystone.SERVICE.ca_file)
    assert "oslo.cache read: NoValue.NO_VALUE" in read, read
    print(read)

    # trusting another cloud's CA: the handshake fails on the certificate, and the libraries get nothing
    other_ca = Credentials(cloud_credentials(cloud({})))[CA_CERT_KEY]
    read = client(box, keystone_bin, OSLO_CACHE_CLIENT, [str(keystone_conf)], other_ca, keystone.SERVICE.ca_file)
    assert "oslo.cache read: NoValue.NO_VALUE" in read, read
    read = client(box, keystone_bin, AUTHTOKEN_CLIENT, [str(nova_conf)], other_ca, nova.SERVICE.ca_file)
    assert "authtoken read: None" in read, read
    pod = memcached.servers(CloudContext("demo", "openstack", cloud(SPEC).spec, credentials))[0].rsplit(":", 1)[0]
    port = str(memcached.PORT)
    shake = client(box, keystone_bin, HANDSHAKE, [pod, port, nova.SERVICE.ca_file], other_ca, nova.SERVICE.ca_file)
    # memcached sends the CA with its certificate (ssl_ca_cert): a CA the client does not trust
    assert shake.strip() == "handshake failed: self-signed certificate in certificate chain", shake
    print(shake)
    # the cloud's CA, by the pod's name: TLS 1.3; by an address the certificate does not name: refused
    shake = client(box, keystone_bin, HANDSHAKE, [pod, port, nova.SERVICE.ca_file], ca, nova.SERVICE.ca_file)
    assert shake.strip() == "handshake: TLSv1.3", shake
    by_address = ["127.0.0.1", port, nova.SERVICE.ca_file]
    shake = client(box, keystone_bin, HANDSHAKE, by_address, ca, nova.SERVICE.ca_file)
    assert shake.strip().startswith("handshake failed: IP address mismatch"), shake
    print(shake)
    plain = client(box, keystone_bin, PLAINTEXT, [pod, port], ca, nova.SERVICE.ca_file)
    assert plain.startswith("plaintext refused: "), plain
    print(plain)


def test_a_renewed_certificate_is_served_without_a_restart_once_the_probe_ran(
    rendered: tuple[Plan, Credentials], box: Sandbox, served: ProjectedVolume, tmp_path: Path
) -> None:
    """The kubelet swaps the renewed files in; memcached serves the old certificate until its
    readiness probe (the rendered one) sees them changed and has it refresh_certs; then new clients
    get the new one, verified, from the same process. The probe passes throughout."""
    plan_, credentials = rendered
    ctx = CloudContext("demo", "openstack", cloud(SPEC).spec, credentials)
    (request,) = memcached.SERVICE.certificates(ctx)
    keystone_bin = service_venv("keystone", *MEMCACHED_CLIENTS)
    ca, pod = credentials[CA_CERT_KEY], memcached.servers(ctx)[0].rsplit(":", 1)[0]

    def serial() -> str:
        args = [pod, str(memcached.PORT), pod, nova.SERVICE.ca_file]
        return client(box, keystone_bin, SERVED_SERIAL, args, ca, nova.SERVICE.ca_file).strip()

    probe = find(plan_, "StatefulSet", "memcached", "server")["spec"]["template"]["spec"]["containers"][0]
    readiness = probe["readinessProbe"]["exec"]["command"]
    assert box.inside("memcached", readiness).returncode == 0
    server = set(box.listeners("memcached", "0.0.0.0", memcached.PORT))
    old = serial()
    new_credentials = renewed(credentials, request, cloud(SPEC))
    served.update(memcached.SERVICE.tls_files(CloudContext("demo", "openstack", cloud(SPEC).spec, new_credentials)))
    assert serial() == old  # memcached keeps what it loaded until asked
    ran = box.inside("memcached", readiness)
    assert ran.returncode == 0, ran.stderr
    new = serial()
    assert new == serial_of(new_credentials[request.cert_key]) and new != old, (old, new)
    assert set(box.listeners("memcached", "0.0.0.0", memcached.PORT)) == server  # the same process
    # the clients keep working: keystone's cache over TLS, verified
    keystone_conf = rendered_config(plan_, "demo-keystone-config", "keystone.conf", tmp_path / "keystone.conf")
    read = client(box, keystone_bin, OSLO_CACHE_CLIENT, [str(keystone_conf)], ca, keystone.SERVICE.ca_file)
    assert "oslo.cache read: over tls" in read, read
    print(old, "->", new)
