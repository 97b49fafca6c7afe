"""TLS inside the cloud: the CA and certificates the operator keeps in the credentials Secret, and
the servers (MariaDB, RabbitMQ, memcached) and their clients rendered to use them
(tests/real/test_mariadb_server.py, test_rabbitmq_tls.py and test_memcached_tls.py run them)."""

from __future__ import annotations

import configparser
import datetime
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509

from stackops import certificates
from stackops.api.validation import parse_cloud
from stackops.certificates import CA_CERT_KEY, CertificateRequest, issued
from stackops.credentials import Credentials
from stackops.openstack.clouds import clouds_yaml
from stackops.plan import Plan, certificate_requests, plan
from stackops.render.naming import COMPONENT_LABEL, NAME_LABEL
from stackops.services import memcached
from stackops.services.base import CloudContext
from tests.conftest import cloud
from tests.support.rendered import cloud_credentials, find, job_env, projected_files, secret_data

NOW = datetime.datetime(2026, 12, 6, tzinfo=datetime.UTC)
REQUEST = CertificateRequest("db", ("db", "db.ns", "db.ns.svc"))
# swift, whose proxy caches in memcached too
SWIFT_NODES = [{"node": "a", "zone": 1, "devices": [{"name": f"d{i}"} for i in range(3)]}]
SWIFT_ON = {"swift": {"enabled": True, "nodes": SWIFT_NODES}}


def cert(values: dict[str, str], key: str = REQUEST.cert_key) -> x509.Certificate:
    return x509.load_pem_x509_certificate(values[key].encode())


def test_a_certificate_is_issued_by_the_clouds_ca_for_its_names_and_kept_while_current() -> None:
    values = issued({"other": "kept"}, [REQUEST], "test CA", NOW)
    issued_cert, ca = cert(values), cert(values, CA_CERT_KEY)
    issued_cert.verify_directly_issued_by(ca)
    names = issued_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == list(REQUEST.dns_names)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert values["other"] == "kept"
    assert issued(values, [REQUEST], "test CA", NOW + datetime.timedelta(days=200)) == values


def test_renewal_before_expiry_keeps_the_ca_so_clients_trust_the_new_certificate() -> None:
    values = issued({}, [REQUEST], "test CA", NOW)
    due = NOW + certificates.LIFETIME - certificates.RENEW_BEFORE + datetime.timedelta(days=1)
    renewed = issued(values, [REQUEST], "test CA", due)
    assert renewed[CA_CERT_KEY] == values[CA_CERT_KEY] and renewed[certificates.CA_PRIVATE_KEY]
    assert renewed[REQUEST.cert_key] != values[REQUEST.cert_key]
    assert renewed[REQUEST.private_key] != values[REQUEST.private_key]
    cert(renewed).verify_directly_issued_by(cert(values, CA_CERT_KEY))
    assert cert(renewed).not_valid_after_utc > due + certificates.RENEW_BEFORE


def test_other_names_or_another_ca_issue_the_certificate_again() -> None:
    values = issued({}, [REQUEST], "test CA", NOW)
    more = CertificateRequest("db", (*REQUEST.dns_names, "db.ns.svc.cluster.local"))
    assert issued(values, [more], "test CA", NOW)[REQUEST.cert_key] != values[REQUEST.cert_key]
    other_ca = issued({}, [], "another CA", NOW)
    swapped = {**values, CA_CERT_KEY: other_ca[CA_CERT_KEY], certificates.CA_PRIVATE_KEY: other_ca["tls-ca.key"]}
    again = issued(swapped, [REQUEST], "test CA", NOW)
    cert(again).verify_directly_issued_by(cert(other_ca, CA_CERT_KEY))


def test_mariadb_serves_tls_by_its_service_names_and_refuses_plaintext() -> None:
    demo = cloud({"infrastructure": {"database": {"replicas": 3}}})
    request = next(r for r in certificate_requests(demo) if r.name == "mariadb")
    assert request.dns_names[:4] == ("demo-mariadb", "demo-mariadb.openstack", "demo-mariadb.openstack.svc",
                                     "demo-mariadb.openstack.svc.cluster.local")  # fmt: skip
    assert "*.demo-mariadb-cluster.openstack.svc" in request.dns_names  # each Galera member's name
    credentials = Credentials(cloud_credentials(demo))
    rendered = plan(demo, credentials)
    files = secret_data(rendered, "demo-mariadb-config")
    mysqld = configparser.ConfigParser(interpolation=None, strict=False)
    mysqld.read_string(files["my.cnf"])
    assert mysqld["mysqld"]["require_secure_transport"] == "ON"
    assert mysqld["mysqld"]["ssl_cert"] == "/etc/mysql/tls/server.crt"
    server = find(rendered, "StatefulSet", "mariadb", "server")
    assert served(server, credentials) == {
        "/etc/mysql/tls/server.crt": credentials[request.cert_key],
        "/etc/mysql/tls/server.key": credentials[request.private_key],
        "/etc/mysql/tls/ca.crt": credentials[CA_CERT_KEY],
    }


def galera_cnf(spec: dict[str, Any]) -> configparser.ConfigParser:
    """The my.cnf of a three-member Galera cluster with `spec` on top."""
    demo = cloud({"infrastructure": {"database": {"replicas": 3}}} | spec)
    cnf = configparser.ConfigParser(interpolation=None, strict=False)
    cnf.read_string(secret_data(plan(demo, Credentials(cloud_credentials(demo))), "demo-mariadb-config")["my.cnf"])
    return cnf


def provider_options(cnf: configparser.ConfigParser) -> dict[str, str]:
    items = cnf["mysqld"]["wsrep_provider_options"].split(";")
    return dict((part.strip().split("=", 1)[0], part.strip().split("=", 1)[1]) for part in items)


def test_galera_members_replicate_and_transfer_state_over_tls_verifying_each_other_by_the_ca() -> None:
    cnf = galera_cnf({})
    tls = {"cert": "/etc/mysql/tls/server.crt", "key": "/etc/mysql/tls/server.key", "ca": "/etc/mysql/tls/ca.crt"}
    # replication and IST: Galera's sockets, with the server's certificate (its names cover every member)
    assert provider_options(cnf) == {
        "socket.ssl": "YES",
        "socket.ssl_cert": tls["cert"],
        "socket.ssl_key": tls["key"],
        "socket.ssl_ca": tls["ca"],
    }
    # SST: mariabackup through socat's TLS (encrypt=3), the peer's chain verified against the CA
    assert cnf["mysqld"]["wsrep_sst_method"] == "mariabackup"
    assert dict(cnf["sst"]) == {
        "encrypt": "3", "ssl-mode": "VERIFY_CA", "tcert": tls["cert"], "tkey": tls["key"], "tca": tls["ca"],
    }  # fmt: skip
    # tuning Galera through config keeps TLS; the user's own option wins where both set one
    tuned = galera_cnf({"infrastructure": {"database": {"replicas": 3, "config": {
        "mysqld": {"wsrep_provider_options": "gcache.size=1G; socket.ssl_cipher=AES256-SHA", "max_connections": 10}
    }}}})  # fmt: skip
    assert provider_options(tuned) == {**provider_options(cnf), "gcache.size": "1G", "socket.ssl_cipher": "AES256-SHA"}
    assert tuned["mysqld"]["max_connections"] == "10"


def test_without_internal_tls_galera_speaks_plaintext_as_before() -> None:
    cnf = galera_cnf({"internalTLS": {"enabled": False}})
    assert cnf["mysqld"]["wsrep_on"] == "ON"
    assert "wsrep_provider_options" not in cnf["mysqld"] and "sst" not in cnf
    given = galera_cnf({"internalTLS": {"enabled": False}, "infrastructure": {"database": {"replicas": 3, "config": {
        "mysqld": {"wsrep_provider_options": "gcache.size=1G"}
    }}}})  # fmt: skip
    assert given["mysqld"]["wsrep_provider_options"] == "gcache.size=1G"
    single = galera_cnf({"infrastructure": {"database": {"replicas": 1}}})
    assert "wsrep_provider_options" not in single["mysqld"] and "sst" not in single


def test_services_verify_mariadb_against_the_clouds_ca(tmp_path: Path) -> None:
    demo = cloud()
    credentials = Credentials(cloud_credentials(demo))
    rendered = plan(demo, credentials)
    conf = configparser.ConfigParser(interpolation=None)
    conf.read_string(secret_data(rendered, "demo-keystone-config")["keystone.conf"])
    assert conf["database"]["connection"].endswith("?charset=utf8&ssl_ca=/etc/keystone/ca.crt")
    assert secret_data(rendered, "demo-keystone-config")["ca.crt"] == credentials[CA_CERT_KEY]
    job = find(rendered, "Job", "keystone", "database")
    env = job_env(job["spec"]["template"]["spec"], {"demo-credentials": credentials.values()}, tmp_path)
    assert Path(env["STACKOPS_DB_CA_FILE"]).read_text() == credentials[CA_CERT_KEY]


def test_without_internal_tls_or_with_an_external_database_nothing_asks_for_database_tls() -> None:
    for spec in (
        {"internalTLS": {"enabled": False}},
        {"infrastructure": {"database": {"external": {"host": "db.example", "secretRef": {"name": "db"}}}}},
    ):
        demo = cloud(spec)
        assert "mariadb" not in {r.name for r in certificate_requests(demo)}
        rendered = plan(demo, Credentials(cloud_credentials(demo)))
        assert "ssl_ca" not in secret_data(rendered, "demo-keystone-config")["keystone.conf"]
        job = find(rendered, "Job", "keystone", "database")
        assert "STACKOPS_DB_CA_FILE" not in {e["name"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_rabbitmq_serves_amqp_and_management_over_tls_only_and_clients_verify_it(tmp_path: Path) -> None:
    demo = cloud()
    request = next(r for r in certificate_requests(demo) if r.name == "rabbitmq")
    assert request.name == "rabbitmq" and "demo-rabbitmq.openstack.svc" in request.dns_names
    credentials = Credentials(cloud_credentials(demo))
    rendered = plan(demo, credentials)
    conf = dict(
        line.split(" = ", 1) for line in secret_data(rendered, "demo-rabbitmq-config")["rabbitmq.conf"].splitlines()
    )
    assert (conf["listeners.tcp"], conf["listeners.ssl.default"], conf["management.ssl.port"]) == (
        "none",
        "5672",
        "15672",
    )
    assert "listeners.tcp.default" not in conf and "management.tcp.port" not in conf
    assert conf["ssl_options.certfile"] == "/etc/rabbitmq/tls/server.crt"
    server = find(rendered, "StatefulSet", "rabbitmq", "server")
    assert served(server, credentials)["/etc/rabbitmq/tls/server.key"] == credentials[request.private_key]
    nova = configparser.ConfigParser(interpolation=None)
    nova.read_string(secret_data(rendered, "demo-nova-config")["nova.conf"])
    assert (nova["oslo_messaging_rabbit"]["ssl"], nova["oslo_messaging_rabbit"]["ssl_ca_file"]) == (
        "true",
        "/etc/nova/ca.crt",
    )
    job = find(rendered, "Job", "nova", "messaging")["spec"]["template"]["spec"]
    env = job_env(job, {"demo-credentials": credentials.values()}, tmp_path)
    assert Path(env["STACKOPS_MQ_CA_FILE"]).read_text() == credentials[CA_CERT_KEY]

    plain = cloud({"internalTLS": {"enabled": False}})
    rendered = plan(plain, Credentials(cloud_credentials(plain)))
    assert "listeners.tcp.default = 5672" in secret_data(rendered, "demo-rabbitmq-config")["rabbitmq.conf"]
    assert "ssl" not in secret_data(rendered, "demo-nova-config")["nova.conf"].split("[oslo_messaging_rabbit]")[1]


def served(obj: dict[str, Any], credentials: Credentials) -> dict[str, str]:
    """What a server's containers have from the credentials Secret's projection (path: content), each
    file 0440 for the pod's group, which the kubelet updates in place."""
    pod = obj["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "tls"]
    assert volume["projected"]["defaultMode"] == 0o440
    files = projected_files(pod)
    assert {ref["name"] for ref in files.values()} == {"demo-credentials"}
    return {path: credentials[ref["key"]] for path, ref in files.items() if ref["key"].startswith("tls-")}


def volume_keys(obj: dict[str, Any], volume: str = "config") -> set[str]:
    """The config Secret keys a pod's volume projects (what its containers can read)."""
    (found,) = [v for v in obj["spec"]["template"]["spec"]["volumes"] if v["name"] == volume]
    return {item["key"] for item in found["secret"]["items"]}


def test_ovn_databases_speak_mutual_tls_to_every_client_and_among_members() -> None:
    demo = cloud({"services": {"neutron": {"ovn": {"replicas": 3}}, "octavia": {"enabled": True}}})
    requests = {r.name: r for r in certificate_requests(demo)}
    nb = requests["ovn-nb"].dns_names
    assert "demo-ovn-nb-2.openstack.svc.cluster.local" in nb  # what clients reach the member by
    assert "demo-ovn-nb-2.demo-ovn-nb-cluster.openstack.svc.cluster.local" in nb  # and Raft
    assert "ovn-client" in requests
    credentials = Credentials(cloud_credentials(demo))
    rendered = plan(demo, credentials)
    files = secret_data(rendered, "demo-neutron-ovn-config")
    files |= secret_data(rendered, "demo-neutron-ovn-databases-config")
    script = files["ovn-nb-db-start.sh"]
    pki = "--private-key=/etc/ovn/tls/server.key --certificate=/etc/ovn/tls/server.crt --ca-cert=/etc/ovn/tls/ca.crt"
    assert f'--remote="pssl:6641:${{address}}" --remote="punix:${{SOCKET}}" {pki}' in script
    assert "ptcp" not in script and 'self="ssl:${POD_NAME}.demo-ovn-nb-cluster' in script
    # each pod sees its own key only: the northbound database's neither the southbound's nor the clients'
    nb_server = find(rendered, "StatefulSet", "neutron", "nb-db")
    assert served(nb_server, credentials) == {
        "/etc/ovn/tls/server.crt": credentials[requests["ovn-nb"].cert_key],
        "/etc/ovn/tls/server.key": credentials[requests["ovn-nb"].private_key],
        "/etc/ovn/tls/ca.crt": credentials[CA_CERT_KEY],
    }
    assert not volume_keys(nb_server) & {"ovn-sb.key", "ovn-client.key"}
    northd = json.loads(files["neutron-northd.json"])
    assert "--ovnnb-db=ssl:demo-ovn-nb-0.openstack.svc.cluster.local:6641," in northd["command"]
    assert "--private-key=/etc/ovn/tls/client.key" in northd["command"]
    chassis = secret_data(rendered, "demo-neutron-chassis-config")
    assert 'ovn-remote="ssl:demo-ovn-sb-0' in chassis["ovn-controller-start.sh"]
    assert "--certificate=/etc/ovn/tls/client.crt" in chassis["ovn-controller-start.sh"]
    assert chassis["ovn-client.key"] == credentials[requests["ovn-client"].private_key]
    # neutron's processes, its metadata agents and octavia's OVN provider present the client certificate
    for secret, name, directory in (
        ("demo-neutron-config", "ml2_conf.ini", "/etc/neutron"),
        ("demo-neutron-metadata-agent-config", "neutron_ovn_metadata_agent.ini", "/etc/neutron"),
        ("demo-octavia-config", "octavia.conf", "/etc/octavia"),
    ):
        conf = configparser.ConfigParser(interpolation=None)
        conf.read_string(secret_data(rendered, secret)[name])
        assert conf["ovn"]["ovn_sb_private_key"] == f"{directory}/ovn-client.key", secret
        assert conf["ovn"]["ovn_sb_ca_cert"] == f"{directory}/ca.crt", secret
        assert conf["ovn"]["ovn_sb_connection"].startswith("ssl:"), secret
        assert secret_data(rendered, secret)["ovn-client.crt"] == credentials[requests["ovn-client"].cert_key]

    plain = cloud({"internalTLS": {"enabled": False}})
    assert not {"ovn-nb", "ovn-sb", "ovn-client"} & {r.name for r in certificate_requests(plain)}
    rendered = plan(plain, Credentials(cloud_credentials(plain)))
    assert '--remote="ptcp:6641' in secret_data(rendered, "demo-neutron-ovn-databases-config")["ovn-nb-db-start.sh"]
    ml2 = secret_data(rendered, "demo-neutron-config")["ml2_conf.ini"]
    assert "ovn_nb_connection = tcp:" in ml2 and "private_key" not in ml2


def test_rabbitmq_members_and_tools_talk_erlang_distribution_over_tls_by_their_host_names() -> None:
    demo = cloud({"infrastructure": {"messaging": {"replicas": 3}}})
    request = next(r for r in certificate_requests(demo) if r.name == "rabbitmq")
    # each node's host (rabbit@<pod>.<cluster Service>), exactly: Erlang matches names without wildcards
    assert "demo-rabbitmq-2.demo-rabbitmq-cluster.openstack.svc" in request.dns_names
    files = secret_data(plan(demo, Credentials(cloud_credentials(demo))), "demo-rabbitmq-config")
    flags = "-proto_dist inet_tls -ssl_dist_optfile /etc/rabbitmq/inter_node_tls.config"
    assert files["rabbitmq-env.conf"] == f'SERVER_ADDITIONAL_ERL_ARGS="{flags}"\nCTL_ERL_ARGS="{flags}"\n'
    options = files["inter_node_tls.config"]
    assert options.count("{verify, verify_peer}") == 2 and "{fail_if_no_peer_cert, true}" in options
    assert "server_name_indication" not in options  # the client checks the server's host name
    dests = {f["dest"] for f in json.loads(files["rabbitmq-server.json"])["config_files"]}
    assert {"/etc/rabbitmq/rabbitmq-env.conf", "/etc/rabbitmq/inter_node_tls.config"} <= dests

    plain = cloud({"internalTLS": {"enabled": False}})
    files = secret_data(plan(plain, Credentials(cloud_credentials(plain))), "demo-rabbitmq-config")
    assert "rabbitmq-env.conf" not in files and "inter_node_tls.config" not in files


MEMCACHED_OFF_COMMAND = "/usr/bin/memcached -v -l 0.0.0.0 -p 11211 -c 5000 -U 0 -m 256"


def ini_text(text: str) -> configparser.ConfigParser:
    conf = configparser.ConfigParser(interpolation=None, strict=False)
    conf.read_string(text)
    return conf


def ini(rendered: Plan, secret: str, name: str) -> configparser.ConfigParser:
    return ini_text(secret_data(rendered, secret)[name])


def test_memcached_serves_tls_only_for_every_pods_name_and_every_client_verifies_it() -> None:
    demo = cloud({"services": SWIFT_ON, "infrastructure": {"memcached": {"replicas": 3}}})
    request = next(r for r in certificate_requests(demo) if r.name == "memcached")
    assert request.dns_names == ("*.demo-memcached.openstack.svc", "*.demo-memcached.openstack.svc.cluster.local")
    credentials = Credentials(cloud_credentials(demo))
    ctx = CloudContext("demo", "openstack", demo.spec, credentials)
    for server in memcached.servers(ctx):  # demo-memcached-<i>.demo-memcached.openstack.svc:11211: one label more
        assert server.split(".", 1)[1].rsplit(":", 1)[0] == request.dns_names[0][2:]
    rendered = plan(demo, credentials)
    files = secret_data(rendered, "demo-memcached-config")
    command = json.loads(files["memcached.json"])
    assert command["command"] == (
        f"{MEMCACHED_OFF_COMMAND} -Z -o ssl_chain_cert=/etc/memcached/tls/server.crt,"
        "ssl_key=/etc/memcached/tls/server.key,ssl_ca_cert=/etc/memcached/tls/ca.crt"
    )
    assert command["config_files"] == []
    statefulset = find(rendered, "StatefulSet", "memcached", "server")
    assert served(statefulset, credentials) == {
        memcached.TLS_FILES["server.crt"]: credentials[request.cert_key],
        memcached.TLS_FILES["server.key"]: credentials[request.private_key],
        memcached.TLS_FILES["ca.crt"]: credentials[CA_CERT_KEY],
    }

    # keystonemiddleware: every [keystone_authtoken] of every service, with the CA beside its config
    authtokens = {
        (secret["metadata"]["name"], name): conf["keystone_authtoken"]
        for secret in rendered.objects()
        if secret["kind"] == "Secret"
        for name, text in secret.get("stringData", {}).items()
        if "[keystone_authtoken]" in text
        for conf in [ini_text(text)]
    }
    assert len(authtokens) >= 6 and ("demo-placement-config", "placement.conf") in authtokens
    for (secret_name, name), authtoken in authtokens.items():
        service = secret_name.removeprefix("demo-").removesuffix("-config")
        assert authtoken["memcached_servers"] == ",".join(memcached.servers(ctx)), name
        assert (authtoken["memcache_tls_enabled"], authtoken["memcache_tls_cafile"]) == (
            "true", f"/etc/{service}/ca.crt"
        ), name  # fmt: skip
    for service in ("nova", "keystone", "heat"):  # oslo.cache: the pooled backend, over python-binary-memcached
        cache = ini(rendered, f"demo-{service}-config", f"{service}.conf")["cache"]
        assert cache["backend"] == "oslo_cache.memcache_pool", service
        assert (cache["tls_enabled"], cache["tls_cafile"]) == ("true", f"/etc/{service}/ca.crt"), service
    proxy = ini(rendered, "demo-swift-config", "proxy-server.conf")
    assert (proxy["filter:cache"]["tls_enabled"], proxy["filter:cache"]["tls_cafile"]) == ("true", "/etc/swift/ca.crt")
    assert proxy["filter:authtoken"]["memcache_tls_cafile"] == "/etc/swift/ca.crt"


def test_without_internal_tls_memcached_and_its_clients_render_as_before() -> None:
    plain = cloud({"internalTLS": {"enabled": False}, "services": SWIFT_ON})
    assert "memcached" not in {r.name for r in certificate_requests(plain)}
    rendered = plan(plain, Credentials(cloud_credentials(plain)))
    files = secret_data(rendered, "demo-memcached-config")
    assert set(files) == {"memcached.json"}
    assert json.loads(files["memcached.json"]) == {"command": MEMCACHED_OFF_COMMAND, "config_files": []}
    for secret, name in (("demo-nova-config", "nova.conf"), ("demo-keystone-config", "keystone.conf"),
                         ("demo-heat-config", "heat.conf"), ("demo-swift-config", "proxy-server.conf")):  # fmt: skip
        assert "tls_" not in secret_data(rendered, secret)[name], name
    assert ini(rendered, "demo-keystone-config", "keystone.conf")["cache"]["backend"] == "oslo_cache.memcache_pool"


def test_every_process_told_to_verify_memcached_has_the_ca_where_its_config_says() -> None:
    """A client makes its ssl context when it starts: a missing CA file stops the process."""
    demo = cloud({"services": {**SWIFT_ON, "barbican": {"enabled": True}, "octavia": {"enabled": True}}})
    rendered = plan(demo, Credentials(cloud_credentials(demo)))
    checked = 0
    for secret in (o for o in rendered.objects() if o["kind"] == "Secret"):
        files = secret.get("stringData", {})
        for command in (json.loads(text) for name, text in files.items() if name.endswith(".json")):
            if not isinstance(command, dict) or "config_files" not in command:
                continue
            dests = {f["dest"] for f in command["config_files"]}
            for entry in command["config_files"]:
                text = files.get(entry["source"].rsplit("/", 1)[1], "")
                for line in text.splitlines():
                    if line.startswith(("memcache_tls_cafile = ", "tls_cafile = ")):
                        assert line.split(" = ", 1)[1] in dests, (secret["metadata"]["name"], command["command"])
                        checked += 1
    assert checked >= 40


def production() -> Any:
    return parse_cloud(yaml.safe_load((Path(__file__).parents[2] / "examples" / "production.yaml").read_text()))


def api_services(rendered: Plan) -> list[dict[str, Any]]:
    """The Services in front of an API (api.api_step): their port is named api."""
    return [
        o for o in rendered.objects()
        if o["kind"] == "Service" and [p["name"] for p in o["spec"]["ports"]] == ["api"]
    ]  # fmt: skip


def test_every_api_serves_https_only_with_its_services_certificate_naming_it() -> None:
    demo = production()
    namespace = demo.metadata.namespace
    credentials = Credentials(cloud_credentials(demo))
    rendered = plan(demo, credentials)
    requests = {r.name: r for r in certificate_requests(demo)}
    ca = x509.load_pem_x509_certificate(credentials[CA_CERT_KEY].encode())
    services = api_services(rendered)
    served = {(s["metadata"]["labels"][NAME_LABEL], s["metadata"]["labels"][COMPONENT_LABEL]) for s in services}
    assert {("nova", "novncproxy"), ("nova", "metadata"), ("horizon", "dashboard"), ("swift", "api")} <= served
    assert len(served) >= 18
    for service in services:
        name, labels = service["metadata"]["name"], service["metadata"]["labels"]
        owner = labels[NAME_LABEL]
        request = requests[f"{owner}-api"]  # one certificate of each service, naming each of its APIs
        assert f"{name}.{namespace}.svc" in request.dns_names, name
        x509.load_pem_x509_certificate(credentials[request.cert_key].encode()).verify_directly_issued_by(ca)
        assert service["spec"]["ports"][0]["appProtocol"] == "https", name
        deployment = next(o for o in rendered.objects() if o["kind"] == "Deployment" and o["metadata"]["name"] == name)
        pod = deployment["spec"]["template"]["spec"]
        probe = pod["containers"][0]["readinessProbe"]
        assert probe.get("httpGet", {"scheme": "HTTPS"})["scheme"] == "HTTPS", name
        config = next(v for v in pod["volumes"] if v["name"] == "config")
        keys = {item["key"] for item in config["secret"]["items"]}
        assert {"api.crt", "api.key"} <= keys, name  # only the API's containers are given its key
        files = secret_data(rendered, config["secret"]["secretName"])
        assert (files["api.crt"], files["api.key"]) == (credentials[request.cert_key], credentials[request.private_key])
        command = json.loads(files[next(i["key"] for i in config["secret"]["items"] if i["path"] == "config.json")])
        key = next(f for f in command["config_files"] if f["source"].endswith("/api.key"))
        assert key["perm"] == "0600", name
    # uWSGI listens on an https socket alone; swift's proxy and the console proxy wrap theirs
    inis = {
        (secret["metadata"]["name"], file): text
        for secret in rendered.objects() if secret["kind"] == "Secret"
        for file, text in secret.get("stringData", {}).items() if file.endswith("uwsgi.ini")
    }  # fmt: skip
    assert len(inis) >= 15
    for where, text in inis.items():
        assert "\nhttps-socket = 0.0.0.0:" in text and "http-socket" not in text.replace("https-socket", ""), where
    proxy = ini(rendered, "prod-swift-config", "proxy-server.conf")["DEFAULT"]
    assert (proxy["cert_file"], proxy["key_file"]) == ("/etc/swift/api.crt", "/etc/swift/api.key")
    nova = ini(rendered, "prod-nova-config", "nova.conf")
    assert (nova["DEFAULT"]["ssl_only"], nova["DEFAULT"]["cert"]) == ("true", "/etc/nova/api.crt")


def test_the_catalog_is_https_and_every_client_verifies_with_the_clouds_ca() -> None:
    demo = production()
    rendered = plan(demo, Credentials(cloud_credentials(demo)))
    containers = [o["spec"]["template"]["spec"]["containers"][0] for o in rendered.objects() if o["kind"] == "Job"]
    registrations = [c for c in containers if c["command"][:3] == ["stackops", "job", "register-service"]]
    internal = [a for c in registrations for a in c["args"] if a.startswith("--internal-url=")]
    assert len(internal) >= 14 and all(a.startswith("--internal-url=https://") for a in internal), internal
    for container in registrations:  # the registration Jobs verify keystone with the CA
        env = {v["name"]: v.get("value") for v in container["env"]}
        assert env["OS_AUTH_URL"].startswith("https://") and env["OS_CACERT_FILE"].endswith("/OS_CACERT")
    nova = ini(rendered, "prod-nova-config", "nova.conf")
    for section in ("keystone_authtoken", "service_user", "placement", "glance", "neutron", "cinder", "keystone"):
        assert nova[section]["cafile"] == "/etc/nova/ca.crt", section
    assert nova["cinder"]["catalog_info"] == "block-storage::internalURL"
    metadata = ini(rendered, "prod-neutron-metadata-agent-config", "neutron_ovn_metadata_agent.ini")["DEFAULT"]
    assert (metadata["nova_metadata_protocol"], metadata["auth_ca_cert"]) == ("https", "/etc/neutron/ca.crt")
    heat = ini(rendered, "prod-heat-config", "heat.conf")
    assert heat["clients"]["ca_file"] == heat["clients_keystone"]["ca_file"] == "/etc/heat/ca.crt"
    cinder = ini(rendered, "prod-cinder-config", "cinder.conf")
    assert cinder["nova"]["cafile"] == cinder["DEFAULT"]["glance_ca_certificates_file"] == "/etc/cinder/ca.crt"
    settings = secret_data(rendered, "prod-horizon-config")["local_settings.py"]
    assert "OPENSTACK_SSL_CACERT = '/etc/openstack-dashboard/ca.crt'" in settings
    assert "OPENSTACK_KEYSTONE_URL = 'https://prod-keystone-api." in settings


def test_without_internal_tls_the_apis_serve_http_as_before() -> None:
    plain = cloud({"internalTLS": {"enabled": False}})
    assert not [r for r in certificate_requests(plain) if r.name.endswith("-api")]
    rendered = plan(plain, Credentials(cloud_credentials(plain)))
    for service in api_services(rendered):
        assert service["spec"]["ports"][0]["appProtocol"] == "http"
    keystone = secret_data(rendered, "demo-keystone-config")
    assert "api.key" not in keystone and "\nhttp-socket = 0.0.0.0:5000" in keystone["keystone-api-uwsgi.ini"]
    assert (
        "nova_metadata_protocol = http\n"
        in secret_data(rendered, "demo-neutron-metadata-agent-config")["neutron_ovn_metadata_agent.ini"]
    )


def test_a_public_endpoint_reaches_its_api_over_tls_verified_with_the_clouds_ca() -> None:
    """The gateway speaks TLS to the API: an Ingress says so to ingress-nginx (and by the Service's
    appProtocol to others), an HTTPRoute by a BackendTLSPolicy naming the CA and the Service's name."""
    public = {"publicDomain": "cloud.example", "tls": {"secretName": "wildcard"}}
    ingress_cloud = cloud({"endpoints": public})
    rendered = plan(ingress_cloud, Credentials(cloud_credentials(ingress_cloud)))
    ingresses = [o for o in rendered.objects() if o["kind"] == "Ingress"]
    assert len(ingresses) >= 8
    for ingress in ingresses:
        assert ingress["metadata"]["annotations"] == {"nginx.ingress.kubernetes.io/backend-protocol": "HTTPS"}
    routed = cloud({"endpoints": {**public, "exposure": "HTTPRoute", "gateway": {"name": "gw"}}})
    credentials = Credentials(cloud_credentials(routed))
    rendered = plan(routed, credentials)
    routes = [o for o in rendered.objects() if o["kind"] == "HTTPRoute"]
    policies = {o["metadata"]["name"]: o for o in rendered.objects() if o["kind"] == "BackendTLSPolicy"}
    assert routes and len(policies) == len(routes)
    for route in routes:
        backend = route["spec"]["rules"][0]["backendRefs"][0]["name"]
        policy = policies[backend]["spec"]
        assert policy["targetRefs"] == [{"group": "", "kind": "Service", "name": backend}]
        assert policy["validation"]["hostname"] == f"{backend}.openstack.svc"
        (ref,) = policy["validation"]["caCertificateRefs"]
        ca = next(o for o in rendered.objects() if o["kind"] == "ConfigMap" and o["metadata"]["name"] == ref["name"])
        assert ca["data"]["ca.crt"] == credentials[CA_CERT_KEY]
    plain = cloud(
        {"internalTLS": {"enabled": False}, "endpoints": {**public, "exposure": "HTTPRoute", "gateway": {"name": "gw"}}}
    )
    rendered = plan(plain, Credentials(cloud_credentials(plain)))
    assert not [o for o in rendered.objects() if o["kind"] in ("BackendTLSPolicy", "ConfigMap")]


def test_clouds_yaml_names_the_ca_its_users_verify_the_endpoints_with() -> None:
    entry = clouds_yaml("demo", "https://demo-keystone-api.openstack.svc:5000/v3", "pw", "RegionOne", "/x/demo.ca.crt")
    assert entry["clouds"]["demo"]["cacert"] == "/x/demo.ca.crt"
    assert "cacert" not in clouds_yaml("demo", "https://keystone.example.com/v3", "pw", "RegionOne")["clouds"]["demo"]


SINGLE_SERVERS = (
    ("mariadb", "server"),
    ("rabbitmq", "server"),
    ("memcached", "server"),
    ("neutron", "nb-db"),
    ("neutron", "sb-db"),
)


def test_a_renewed_certificate_reaches_the_single_servers_without_rolling_them() -> None:
    """Every certificate issued again (as months before expiry): the one-replica servers' pods and
    config Secrets are byte for byte the same, so none restarts; the kubelet updates their served
    files and each server loads them (its probe asks, or ovsdb-server sees them change). The APIs,
    which roll without an outage (a surge pod first), roll."""
    demo = cloud()
    credentials = Credentials(cloud_credentials(demo))
    requests = certificate_requests(demo)
    kept = {k: v for k, v in credentials.values().items() if not k.startswith("tls-") or k.startswith("tls-ca.")}
    renewed = Credentials(issued(kept, requests, "demo", NOW))
    assert all(renewed[r.cert_key] != credentials[r.cert_key] for r in requests)
    before, after = plan(demo, credentials), plan(demo, renewed)
    for service, component in SINGLE_SERVERS:
        old, new = (find(p, "StatefulSet", service, component) for p in (before, after))
        assert old["spec"]["replicas"] == 1
        assert json.dumps(old) == json.dumps(new), f"{service}/{component} would roll"
        (config,) = {v["secret"]["secretName"] for v in old["spec"]["template"]["spec"]["volumes"] if "secret" in v}
        assert secret_data(before, config) == secret_data(after, config), config
        assert served(old, credentials) != served(new, renewed)
    keystone = (find(p, "Deployment", "keystone", "api")["spec"]["template"]["metadata"] for p in (before, after))
    assert len({json.dumps(m["annotations"]) for m in keystone}) == 2
    # what has each load the renewed files: its readiness probe, once they differ from what it loaded
    probes = {
        service: find(before, "StatefulSet", service, "server")["spec"]["template"]["spec"]["containers"][0][
            "readinessProbe"
        ]["exec"]["command"][-1]
        for service in ("rabbitmq", "memcached")
    }
    assert "ssl:clear_pem_cache()" in probes["rabbitmq"] and "refresh_certs" in probes["memcached"]
    assert 'query "FLUSH SSL"' in secret_data(before, "demo-mariadb-config")["mariadb-probe.sh"]
    galera = cloud({"infrastructure": {"database": {"replicas": 3}}})
    probe = secret_data(plan(galera, Credentials(cloud_credentials(galera))), "demo-mariadb-config")["mariadb-probe.sh"]
    assert "wsrep_provider_options='socket.ssl_reload=1'" in probe


def test_a_probe_reloads_once_per_renewal_and_never_fails_for_it(tmp_path: Path) -> None:
    """The probe's lines (ServedCertificate.reload_when_renewed) under bash's errexit and pipefail, as
    mariadb-probe.sh runs them: a reload at the first probe and at each change of the files, none
    otherwise; a failed reload is tried again; a marker that cannot be written or files that cannot
    be read fail nothing."""
    served = CloudContext("demo", "openstack", cloud().spec, Credentials({})).served_certificate(
        [REQUEST], str(tmp_path)
    )
    assert served is not None
    for name in ("server.crt", "server.key", "ca.crt"):
        (tmp_path / name).write_text(f"{name} 1")
    marker, log, outcome = tmp_path / "marker", tmp_path / "reloads", tmp_path / "outcome"
    outcome.write_text("0")
    lines = served.reload_when_renewed(f'echo reloaded >> {log} && exit_with "$(cat {outcome})"')
    script = 'set -euo pipefail\nexit_with() { return "$1"; }\n' + lines.replace(served.loaded_marker, str(marker))

    def probe() -> int:
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        return len(log.read_text().splitlines()) if log.exists() else 0

    assert (probe(), probe()) == (1, 1)  # the first probe reloads, the next does not
    (tmp_path / "ca.crt").write_text("ca.crt 2")  # the kubelet renewed the files
    assert (probe(), probe()) == (2, 2)
    (tmp_path / "server.crt").write_text("server.crt 3")
    outcome.write_text("1")  # the reload fails: tried again at each probe until it works
    assert (probe(), probe()) == (3, 4)
    outcome.write_text("0")
    assert (probe(), probe()) == (5, 5)
    (tmp_path / "server.key").unlink()  # unreadable files: a reload is tried, the probe passes
    assert probe() == 6
    marker.unlink()
    marker.mkdir()  # a marker that cannot be written: a reload at each probe, which passes
    assert (probe(), probe()) == (7, 8)
