"""Swift for real, from swift 2.37 (2026.1) with keystone, on loopback.

The ring-builder Job's swift-ring-builder container runs its rendered script on the spec's storage
node of three devices, into a directory that stands for the rings Secret (what `stackops job
store-rings` stores there is tests/unit/test_swift.py's); the servers find the rings in /etc/swift,
where swift-start.sh links them from the Secret's volume (here the overlay has them). Then the
storage node's account, container and object servers, and the proxy, each from its rendered
config (under an /etc overlay: swift reads /etc/swift/swift.conf whatever its command line says),
with /etc/hosts naming the storage
pod's DNS name on a loopback address of its own, as the cluster's DNS names the pod. The devices
are three directories, as hostPath devices are.

openstacksdk finds swift in the catalog and PUTs an object with a keystone token: it is read back
byte-identical and listed in its container. One pass of the storage pod's object replicator, with
its rsyncd, brings back a partition removed from one device. The same object is read, and another
written, through the S3 API (boto3, from swift's virtualenv) with EC2 credentials made in keystone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from stackops.certificates import CA_CERT_KEY
from stackops.devcluster.cluster import free_ports
from stackops.plan import plan
from stackops.services import swift as swift_service
from stackops.services.health_checks import ObjectStoreAccount
from tests.real.deployment import SWIFT_DEVICES, SWIFT_STORAGE_IP, Deployment, in_container
from tests.real.served import RINGS_DIR, hosts, storage_node
from tests.support.commands import run
from tests.support.https import plaintext_get, verified_get
from tests.support.sandbox import eventually

CONTENT = os.urandom(3 * 1024 * 1024 + 17)  # several of the proxy's chunks, and not a round size


def test_rings_are_built_from_the_specs_three_devices(rings: str, deployed: Deployment, swift_bin: Path) -> None:
    built = deployed.root / RINGS_DIR
    # what store-rings puts in the Secret: the files (swift-ring-builder's backups/ stays behind)
    assert {p.name for p in built.iterdir() if p.is_file()} == {
        *(f"{r}.{kind}" for r in swift_service.RINGS for kind in ("builder", "ring.gz")),
        "devices",
    }
    host = swift_service.SERVICE.storage_host(deployed.context(), storage_node(deployed))
    script = (
        "import json, sys\n"
        "from swift.common.ring import RingData\n"
        "ring = RingData.load(sys.argv[1])\n"
        "table = ring._replica2part2dev_id\n"
        "print(json.dumps({'replicas': len(table), 'partitions': len(table[0]),\n"
        "  'devices': sorted((d['ip'], d['port'], d['device']) for d in ring.devs if d),\n"
        "  'used': sorted({ring.devs[i]['device'] for row in table for i in row})}))\n"
    )
    for ring, port in swift_service.SERVER_PORTS.items():
        result = subprocess.run(
            [str(swift_bin / "python"), "-c", script, str(built / f"{ring}.ring.gz")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        found = json.loads(result.stdout)
        assert found["replicas"] == 3
        assert found["partitions"] == 2**10
        assert found["devices"] == [[host, port, device] for device in SWIFT_DEVICES]
        assert found["used"] == list(SWIFT_DEVICES)  # every device holds partitions


def assignments(swift_bin: Path, ring: Path) -> list[list[str]]:
    """Which device holds each replica of each partition."""
    script = (
        "import json, sys\n"
        "from swift.common.ring import RingData\n"
        "ring = RingData.load(sys.argv[1])\n"
        "print(json.dumps([[ring.devs[i]['device'] for i in row] for row in ring._replica2part2dev_id]))\n"
    )
    result = subprocess.run([str(swift_bin / "python"), "-c", script, str(ring)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    table: list[list[str]] = json.loads(result.stdout)
    return table


def stored(directory: Path) -> dict[str, bytes]:
    """What store-rings would put in the Secret from `directory`: its files."""
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}


def test_a_second_run_on_its_own_builders_keeps_the_rings(
    rings: str, deployed: Deployment, swift_bin: Path, tmp_path: Path
) -> None:
    """The Job run again (the Secret holding the first run's files) moves no partition and writes
    every file as the first run did: store-rings then leaves the Secret as it is."""
    builder = deployed.kolla("Job", "swift", "ring-builder", container="swift-ring-builder")
    first = deployed.root / RINGS_DIR
    again = tmp_path / "again"
    result = run([*builder.argv[:-2], str(first), str(again)], builder.env, swift_bin)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for ring in swift_service.RINGS:
        assert assignments(swift_bin, again / f"{ring}.ring.gz") == assignments(swift_bin, first / f"{ring}.ring.gz")
    assert "weight set to" not in result.stdout  # no device was touched
    assert stored(again) == stored(first)


def test_an_object_put_through_the_catalog_is_read_back_and_listed(swift: str, deployed: Deployment) -> None:
    conn = deployed.connect()
    endpoint = conn.object_store.get_endpoint()
    project = conn.current_project_id
    assert endpoint == f"{deployed.urls['swift']}/v1/AUTH_{project}"
    conn.object_store.create_container(name="stackops")
    conn.object_store.upload_object(container="stackops", name="data.bin", data=CONTENT)
    assert conn.object_store.download_object("data.bin", container="stackops") == CONTENT
    assert [o.name for o in conn.object_store.objects("stackops")] == ["data.bin"]
    assert ObjectStoreAccount().run(conn).ok
    # three copies, one on each device (other tests store objects of their own)
    devices = (deployed.root / "swift-devices").glob("d*/objects/*/*/*/*.data")
    stored = [p for p in devices if p.read_bytes() == CONTENT]
    assert len(stored) == 3 and {p.relative_to(deployed.root / "swift-devices").parts[0] for p in stored} == set(
        SWIFT_DEVICES
    )


def rsyncd_conf(deployed: Deployment, rendered: Path) -> Path:
    """The rendered rsyncd.conf with the paths of this machine, as the servers' config overlay has
    them: the test's devices and state directories, the storage pod's address, and root's uid for
    the transfers (a daemon run as root would make them as nobody; the pod's runs as swift)."""
    state = deployed.root / "swift-state"  # the pod's state volume, which the kubelet makes
    state.mkdir(exist_ok=True)
    text = rendered.read_text()
    text = text.replace(f"path = {swift_service.DEVICES_DIR}", f"path = {deployed.root / 'swift-devices'}")
    text = text.replace(swift_service.STATE_DIR, str(state))
    path = deployed.root / "swift-rsyncd.conf"
    path.write_text(f"address = {SWIFT_STORAGE_IP}\nuid = root\ngid = root\n{text}")
    return path


def test_the_object_replicator_restores_a_lost_copy(swift: str, deployed: Deployment, swift_bin: Path) -> None:
    """One pass of the storage pod's object replicator (its rendered command, once) with the pod's
    rsyncd: a partition removed from one device comes back from the other two, byte-identical."""
    conn = deployed.connect()
    content = b"replicated " + os.urandom(4096)
    conn.object_store.create_container(name="replicated")
    conn.object_store.upload_object(container="replicated", name="copy.bin", data=content)
    devices = deployed.root / "swift-devices"
    copies = sorted(
        p.relative_to(devices) for p in devices.glob("d*/objects/*/*/*/*.data") if p.read_bytes() == content
    )
    assert [c.parts[0] for c in copies] == list(SWIFT_DEVICES)
    lost = copies[0]
    shutil.rmtree(devices / Path(*lost.parts[:3]))  # d1/objects/<partition>
    etc = {
        "/etc/hosts": hosts(deployed),
        **{f"/etc/swift/{r}.ring.gz": deployed.root / RINGS_DIR / f"{r}.ring.gz" for r in swift_service.RINGS},
    }
    rsyncd = deployed.kolla("StatefulSet", "swift", "storage", "swift-rsyncd")
    conf = rsyncd_conf(deployed, rsyncd.files[f"/etc/swift/{swift_service.RSYNCD_CONF}"])
    rsyncd_paths = deployed.container_paths(rsyncd, "swift-rsyncd", {**etc, "/etc/swift/rsyncd.conf": conf})
    replicator = deployed.kolla("StatefulSet", "swift", "storage", "swift-object-replicator")
    paths = deployed.container_paths(replicator, "swift-object-replicator", etc)
    with deployed.running("StatefulSet", "swift", "storage", swift_bin, "swift-rsyncd", rsyncd_paths):
        result = run([*paths, *in_container(replicator), "--once"], replicator.env, swift_bin)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert (devices / lost).read_bytes() == content, output[-3000:]
    assert "Object replication complete (once)" in output
    assert not [line for line in output.splitlines() if "error" in line.lower() or "Traceback" in line], output[-3000:]


S3_CLIENT = """
import json, sys, boto3
from botocore.config import Config
endpoint, access, secret, region, body_file = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
                  region_name=region,
                  # path-style buckets; the checksums newer botocore adds unasked are not in s3api's
                  # signature checks, so only the ones S3 requires
                  config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                                request_checksum_calculation="when_required",
                                response_checksum_validation="when_required"))
read = s3.get_object(Bucket="stackops", Key="data.bin")["Body"].read()
s3.put_object(Bucket="stackops", Key="from-s3.txt", Body=b"written through S3")
listed = [o["Key"] for o in s3.list_objects_v2(Bucket="stackops")["Contents"]]
print(json.dumps({"same": read == open(body_file, "rb").read(), "listed": listed}))
"""


def ec2_credentials(conn: Any) -> tuple[str, str, Any]:
    """EC2 credentials of the connection's user and project, made in keystone (what s3token checks
    an S3 request's signature against): access key, secret key and the credential to delete."""
    access, secret = os.urandom(8).hex(), os.urandom(16).hex()
    credential = conn.identity.create_credential(
        type="ec2",
        user_id=conn.current_user_id,
        project_id=conn.current_project_id,
        blob=json.dumps({"access": access, "secret": secret}),
    )
    return access, secret, credential


def test_the_same_object_through_the_s3_api_with_ec2_credentials(
    swift: str, deployed: Deployment, swift_bin: Path, tmp_path: Path
) -> None:
    conn = deployed.connect()
    test_an_object_put_through_the_catalog_is_read_back_and_listed(swift, deployed)
    access, secret, credential = ec2_credentials(conn)
    body = tmp_path / "body"
    body.write_bytes(CONTENT)
    try:
        region = deployed.cloud.spec.region
        result = subprocess.run(
            [str(swift_bin / "python"), "-c", S3_CLIENT, swift, access, secret, region, str(body)],
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        )
        assert result.returncode == 0, result.stderr[-3000:]
        found = json.loads(result.stdout)
        assert found == {"same": True, "listed": ["data.bin", "from-s3.txt"]}
        # written through S3, read with a token: the same account
        assert conn.object_store.download_object("from-s3.txt", container="stackops") == b"written through S3"
    finally:
        conn.identity.delete_credential(credential)


def test_the_proxy_serves_tls_only_with_its_certificate(
    rings: str, deployed: Deployment, swift_bin: Path, tmp_path: Path
) -> None:
    """The proxy as a cloud renders it by default (internal TLS; the session's proxy is told
    otherwise, as behind a terminator): swift's own server on the API's certificate, which a client
    verifying the cloud's CA accepts for the Service's name and no other; plaintext gets no answer."""
    (port,) = free_ports(1)
    tls_cloud = deployed.cloud.model_copy(deep=True)
    default = tls_cloud.spec.services.swift.config["DEFAULT"]
    del default["cert_file"], default["key_file"]  # the session's own overrides: the default again
    default["bind_port"] = port
    with deployed.using(plan(tls_cloud, deployed.credentials)):
        proxy = deployed.kolla("Deployment", "swift", "api")
        conf = proxy.files[swift_service.CONFIG.dest].read_text()
        assert "cert_file = /etc/swift/api.crt\n" in conf and "key_file = /etc/swift/api.key\n" in conf
        built = deployed.root / RINGS_DIR
        extra = {
            "/etc/hosts": hosts(deployed),
            **{f"/etc/swift/{r}.ring.gz": built / f"{r}.ring.gz" for r in swift_service.RINGS},
        }
        wrapper = deployed.container_paths(proxy, "swift-proxy-tls", extra)
        with deployed.running("Deployment", "swift", "api", swift_bin, wrapper=wrapper):
            ca = tmp_path / "ca.crt"
            ca.write_text(deployed.credentials[CA_CERT_KEY])
            name = deployed.context().service_host(deployed.context().object_name("swift", "api"))
            log = deployed.root / "swift-api.log"

            def health() -> str:
                return verified_get("127.0.0.1", port, name, ca, "/healthcheck")

            eventually(
                lambda: "200 OK" in health(), lambda: f"the proxy over TLS: {health()} {log.read_text()[-3000:]}"
            )
            answered = health()
            other_name = verified_get("127.0.0.1", port, "swift.example.com", ca, "/healthcheck")
            plaintext = plaintext_get("127.0.0.1", port, "/healthcheck")
    print(f"swift proxy: {answered}; another name: {other_name}; plaintext: {plaintext}")
    assert answered.startswith("TLSv1.3 HTTP/1.") and answered.endswith("200 OK"), answered
    assert other_name.startswith("refused") and "Hostname mismatch" in other_name, other_name
    assert not plaintext.startswith("answered"), plaintext
