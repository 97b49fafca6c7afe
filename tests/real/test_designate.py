"""Designate for real, from designate 22 (2026.1) on MariaDB, RabbitMQ and keystone, with BIND 9 from
Debian's bind9 package.

The Jobs before the pool update run as the operator would run them; then central, the API, the
worker, the producer and mdns, each from its rendered config, and named from its rendered named.conf
and rndc key (its zones directory a scratch one, as the pod's volume). The pool update Job then runs
its rendered script, which finds mdns's and BIND's Services by name: here /etc/hosts names both on
loopback, as cluster DNS would name their cluster IPs. Two things differ from a pod: named listens on
loopback instead of every address (`any`, the pod's), and mdns too (the Deployment's `config`).

openstacksdk reaches designate through the catalog with a keystone token: a zone made there
becomes ACTIVE once BIND has it (rndc addzone, transferred from mdns), a record set added to it is
answered by BIND to a real DNS query, and designate's services report UP to the health check.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stackops.services import designate as designate_service
from stackops.services.health_checks import DnsServices
from tests.real.conftest import service_venv
from tests.real.deployment import Deployment, in_container, site_packages, wsgi_module
from tests.support.commands import run
from tests.support.sandbox import eventually

API_PASTE = "/etc/designate/api-paste.ini"  # what the image ships (images/service/Containerfile)
NAMED_CONF = f"{designate_service.BIND_DIR}/{designate_service.NAMED_CONF}"
ADDRESS = "192.0.2.53"  # TEST-NET-1: a record's value only


@pytest.fixture(scope="module")
def designate_bin() -> Path:
    return service_venv("designate", "gunicorn")


@pytest.fixture(scope="module")
def designate_jobs(deployed: Deployment, keystone: str, designate_bin: Path) -> dict[str, str]:
    return deployed.run_jobs("designate", designate_bin, until="pool-update")


def on_loopback(deployed: Deployment, conf: Path) -> Path:
    """named.conf as rendered, but listening (DNS and rndc) on loopback, not on every address."""
    text = conf.read_text()
    local = text.replace("listen-on port 53 { any; };", "listen-on port 53 { 127.0.0.1; };")
    local = local.replace("inet * port 953", "inet 127.0.0.1 port 953")
    assert local.count("127.0.0.1") == 2, text
    path = deployed.root / "named-loopback.conf"
    path.write_text(local)
    return path


def hosts(deployed: Deployment) -> Path:
    """An /etc/hosts naming mdns's and BIND's Services on loopback, as cluster DNS names their IPs."""
    ctx_hosts = [designate_service.SERVICE.mdns_host, designate_service.SERVICE.bind9_host]
    names = " ".join(host(deployed.context()) for host in ctx_hosts)
    path = deployed.root / "designate-hosts"
    path.write_text(f"127.0.0.1 localhost {names}\n")
    return path


@pytest.fixture(scope="module")
def designate(deployed: Deployment, designate_jobs: dict[str, str], designate_bin: Path) -> Iterator[dict[str, str]]:
    """Every process of designate and BIND, then the pool update; the outputs of all its Jobs."""
    api = deployed.kolla("Deployment", "designate", "api")
    paste = designate_bin.parent / "etc" / "designate" / "api-paste.ini"
    api_wrapper = deployed.container_paths(api, "designate-api", {API_PASTE: paste})
    module = wsgi_module(api.files["/etc/designate/designate-api-uwsgi.ini"].read_text(), site_packages(designate_bin))
    bind9 = deployed.kolla("StatefulSet", "designate", "bind9")
    named_wrapper = deployed.container_paths(
        bind9,
        "designate-bind9",
        {NAMED_CONF: on_loopback(deployed, bind9.files[NAMED_CONF])},
        volumes=[designate_service.ZONES_DIR],
    )
    with (
        deployed.running("Deployment", "designate", "central", designate_bin),
        deployed.serve("designate", designate_bin, module, api.env, "/healthcheck", wrapper=api_wrapper),
        deployed.running("Deployment", "designate", "worker", designate_bin),
        deployed.running("Deployment", "designate", "producer", designate_bin),
        deployed.running("Deployment", "designate", "mdns", designate_bin),
        deployed.running("StatefulSet", "designate", "bind9", designate_bin, wrapper=named_wrapper),
    ):
        log = deployed.root / "designate-bind9.log"
        eventually(lambda: "command channel listening" in log.read_text(), lambda: f"named: {log.read_text()}")
        # on loopback only, as the test's named.conf says
        interfaces = {
            line.split("interface ", 1)[1] for line in log.read_text().splitlines() if "listening on IPv" in line
        }
        assert interfaces == {"lo, 127.0.0.1#53"}, interfaces
        update = deployed.kolla("Job", "designate", "pool-update")
        wrapper = deployed.container_paths(update, "designate-pool-update", {"/etc/hosts": hosts(deployed)})
        result = run([*wrapper, *in_container(update)], update.env, designate_bin)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        yield designate_jobs | {"pool-update": result.stdout + result.stderr}


def wait_active(get: Any, what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while (found := get()).status == "PENDING" and time.monotonic() < deadline:
        time.sleep(1)
    assert found.status == "ACTIVE", f"{what}: {found.status} {getattr(found, 'action', '')}"
    return found


def dns_query(bin_dir: Path, name: str, kind: str) -> list[str]:
    """A real DNS query (dnspython, from designate's virtualenv) to BIND on loopback."""
    script = (
        "import sys, dns.message, dns.query\n"
        "answer = dns.query.udp(dns.message.make_query(sys.argv[1], sys.argv[2]), '127.0.0.1', timeout=5)\n"
        "print('\\n'.join(item.to_text() for rrset in answer.answer for item in rrset))\n"
    )
    result = subprocess.run(
        [str(bin_dir / "python"), "-c", script, name, kind], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_designate_jobs_create_its_database_queue_user_catalog_entry_and_pool(
    designate: dict[str, str], deployed: Deployment
) -> None:
    assert list(designate) == ["database", "messaging", "registration", "db-sync", "pool-update"]
    assert "register-service: service designate (dns) created" in designate["registration"]
    conn = deployed.connect()
    catalog = {entry["type"]: entry for entry in conn.service_catalog}
    urls = {e["interface"]: e["url"] for e in catalog["dns"]["endpoints"]}
    assert urls == {"public": deployed.urls["designate"], "internal": deployed.urls["designate"]}
    (pool,) = conn.dns.get("/pools").json()["pools"]
    assert pool["name"] == "default"
    assert [r["hostname"] for r in pool["ns_records"]] == designate_service.SERVICE.nameservers(deployed.context())


def test_a_record_set_is_answered_by_bind(designate: dict[str, str], deployed: Deployment, designate_bin: Path) -> None:
    conn = deployed.connect()
    zone = conn.dns.create_zone(name="stackops.test.", email="admin@stackops.test", ttl=300)
    zone = wait_active(lambda: conn.dns.get_zone(zone), "the zone")  # BIND has it: rndc addzone, AXFR
    recordset = conn.dns.create_recordset(zone, name="www.stackops.test.", type="A", records=[ADDRESS])
    wait_active(lambda: conn.dns.get_recordset(recordset, zone), "the record set")
    assert dns_query(designate_bin, "www.stackops.test.", "A") == [ADDRESS]
    ns = dns_query(designate_bin, "stackops.test.", "NS")
    assert ns == designate_service.SERVICE.nameservers(deployed.context())
    conn.dns.delete_zone(zone)


def test_designates_services_report_up(designate: dict[str, str], deployed: Deployment) -> None:
    deadline = time.monotonic() + 60
    while not (result := DnsServices().run(deployed.connect())).ok and time.monotonic() < deadline:
        time.sleep(2)  # each process reports on its first heartbeat
    assert result.ok, result.message
    names = {sample.labels["service"] for sample in result.samples}
    assert {"central", "worker", "producer", "mdns"} <= names


def test_bind_keeps_its_zones_on_its_volume(designate: dict[str, str], deployed: Deployment) -> None:
    # rndc addzone's zones go to the new-zones database in named's directory: the pod's volume
    volume = deployed.root / "overlays" / "designate-bind9" / "volume-0"
    assert any(volume.iterdir()), "named wrote nothing to its zones directory"
