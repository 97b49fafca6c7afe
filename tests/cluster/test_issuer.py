"""The cloud's certificates from a cert-manager Issuer the user names, with cert-manager's own
controllers (hack/kube/cert-manager: its issuers, certificates and CA signer, from its Go module)
against a real API server, the operator running as its own user with the chart's RBAC.

The cloud is created before cert-manager runs: it waits for its certificates and says so; the
operator has asked for one Certificate per server. Once cert-manager runs, it issues them from the
Issuer's CA; the operator copies them into the credentials Secret (no CA key of its own kept), the
API servers' config Secrets carry them, the long-running servers' pods are served them from the
credentials Secret, and the cloud becomes Ready (kwok's pods). A certificate cert-manager issues
anew reaches the credentials Secret; keystone's API config follows (its pods roll), while MariaDB's
StatefulSet stays as it was: the kubelet brings the new files to the running server, which loads
them (tests/real show that part).
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from kubernetes import client

from stackops.api.validation import parse_cloud
from stackops.certificates import CA_CERT_KEY, CA_PRIVATE_KEY, issued
from stackops.devcluster import processes
from stackops.devcluster.binaries import ensure_cert_manager
from stackops.devcluster.install import wait_for
from stackops.kube.issuer import CERTIFICATE
from stackops.plan import certificate_requests
from tests.support.cluster import NAMESPACE, Env, operated_cluster
from tests.support.progress import printer

NAME = "issued"
ISSUER = "cloud-ca"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with operated_cluster(tmp_path_factory.mktemp("issuer"), compute_nodes=1, volumes=20) as env:
        yield env


def install_cert_manager_crds(api: client.ApiClient, crds: Path) -> None:
    extensions = client.ApiextensionsV1Api(api)
    names = []
    for document in yaml.safe_load_all(crds.read_text()):
        if document:
            extensions.create_custom_resource_definition(document)
            names.append(document["metadata"]["name"])
    wait_for(lambda: all(_established(extensions, n) for n in names), "cert-manager's CRDs established", 60.0)


def _established(extensions: client.ApiextensionsV1Api, name: str) -> bool:
    conditions = extensions.read_custom_resource_definition(name).status.conditions or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


def issuer_ca(env: Env) -> str:
    """A CA of the user's (made here), in the Secret a cert-manager CA Issuer signs with; its
    certificate (PEM)."""
    values = issued({}, [], "a user's CA for cert-manager", datetime.datetime.now(datetime.UTC))
    env.core.create_namespaced_secret(
        NAMESPACE,
        {
            "metadata": {"name": "cloud-ca-key-pair"},
            "type": "kubernetes.io/tls",
            "stringData": {"tls.crt": values[CA_CERT_KEY], "tls.key": values[CA_PRIVATE_KEY]},
        },
    )
    env.custom.create_namespaced_custom_object(
        "cert-manager.io", "v1", NAMESPACE, "issuers",
        {"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": {"name": ISSUER},
         "spec": {"ca": {"secretName": "cloud-ca-key-pair"}}},
    )  # fmt: skip
    return values[CA_CERT_KEY]


def credentials(env: Env) -> dict[str, str]:
    try:
        secret = env.core.read_namespaced_secret(f"{NAME}-credentials", NAMESPACE)
    except client.ApiException:
        return {}
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}


def config(env: Env, service: str) -> dict[str, str]:
    """A service's config Secret's files; none before the operator wrote it."""
    try:
        secret = env.core.read_namespaced_secret(f"{NAME}-{service}-config", NAMESPACE)
    except client.ApiException:
        return {}
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}


def mariadb_template(env: Env) -> dict[str, object]:
    statefulset = env.apps.read_namespaced_stateful_set(f"{NAME}-mariadb", NAMESPACE)
    template: dict[str, object] = env.api.sanitize_for_serialization(statefulset.spec.template)
    return template


def served_keys(env: Env) -> set[str]:
    """The credentials Secret's keys MariaDB's pods are served as files (its certificate's)."""
    spec = mariadb_template(env)["spec"]
    assert isinstance(spec, dict)
    return {
        item["key"]
        for volume in spec["volumes"]
        for source in volume.get("projected", {}).get("sources", [])
        if source.get("secret", {}).get("name") == f"{NAME}-credentials"
        for item in source["secret"]["items"]
    }


def conditions_say(env: Env, words: str) -> bool:
    status = env.get(NAME).get("status") or {}
    return any(words in (c.get("message") or "") for c in status.get("conditions", []))


def test_the_clouds_certificates_come_from_the_named_issuer(env: Env, pytestconfig: pytest.Config) -> None:
    say = printer(pytestconfig)
    controller, crds = ensure_cert_manager(progress=say)
    install_cert_manager_crds(env.api, crds)
    ca_pem = issuer_ca(env)
    body = env.cloud_body(NAME, {"internalTLS": {"issuer": {"name": ISSUER}}})
    env.create(body)
    requests = certificate_requests(parse_cloud({**body, "status": None}))

    # no cert-manager yet: the Certificates are asked for, and the cloud says what it waits for
    wait_for(lambda: conditions_say(env, "waiting for certificates from cert-manager"), "the wait shown", 120.0)
    asked = env.custom.list_namespaced_custom_object("cert-manager.io", "v1", NAMESPACE, CERTIFICATE.plural)["items"]
    by_name = {c["metadata"]["name"]: c for c in asked}
    assert set(by_name) == {f"{NAME}-tls-{r.name}" for r in requests}, sorted(by_name)
    for request in requests:
        spec = by_name[f"{NAME}-tls-{request.name}"]["spec"]
        assert spec["dnsNames"] == list(request.dns_names) and spec["issuerRef"]["name"] == ISSUER
    say(f"cert-manager: {len(asked)} Certificates asked for; the cloud waits")

    log = env.workdir / "cert-manager.log"
    started = processes.spawn(
        "cert-manager", [str(controller), f"--kubeconfig={env.cluster.kubeconfig}"], log, die_with_parent=True
    )
    try:
        wait_for(lambda: all(r.cert_key in credentials(env) for r in requests), "the certificates copied", 240.0)
        values = credentials(env)
        ca = x509.load_pem_x509_certificate(ca_pem.encode())
        assert values[CA_CERT_KEY] == ca_pem and CA_PRIVATE_KEY not in values
        for request in requests:
            cert = x509.load_pem_x509_certificate(values[request.cert_key].encode())
            cert.verify_directly_issued_by(ca)  # the Issuer's CA signed it, not one of the operator's
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert set(names.get_values_for_type(x509.DNSName)) == set(request.dns_names)
        wait_for(lambda: config(env, "keystone").get("api.crt") == values["tls-keystone-api.crt"], "keystone's", 300.0)
        assert "tls-mariadb.crt" in served_keys(env) and "server.crt" not in config(env, "mariadb")
        assert config(env, "keystone")["ca.crt"] == ca_pem
        say(f"cert-manager: {len(requests)} certificates issued by the Issuer's CA, in the config Secrets")
        wait_for(lambda: (env.get(NAME).get("status") or {}).get("phase") == "Ready", "the cloud Ready", 420.0)
        # cert-manager issues MariaDB's and keystone's certificates anew (their Secrets lost): the
        # copies follow at the operator's next look (its periodic one); keystone's API rolls (its
        # config Secret carries its certificate), MariaDB's pod template does not change: once
        # keystone's config has the new one, the pass has applied MariaDB's step (it comes first)
        template = mariadb_template(env)
        old = {key: values[key] for key in ("tls-mariadb.crt", "tls-keystone-api.crt")}
        for key in old:
            env.core.delete_namespaced_secret(f"{NAME}-{key.removesuffix('.crt')}", NAMESPACE)
        wait_for(lambda: all(credentials(env).get(k, v) != v for k, v in old.items()), "the new ones copied", 240.0)
        renewed = credentials(env)
        for key in old:
            x509.load_pem_x509_certificate(renewed[key].encode()).verify_directly_issued_by(ca)
        keystone_api = renewed["tls-keystone-api.crt"]
        wait_for(lambda: config(env, "keystone").get("api.crt") == keystone_api, "keystone's config renewed", 120.0)
        assert mariadb_template(env) == template
        say("cert-manager: certificates issued anew reached the credentials Secret; MariaDB's pods unchanged")
    except (TimeoutError, AssertionError):
        print(f"--- cert-manager ---\n{log.read_text()[-3000:]}\n--- operator ---\n{env.operator.log()[-3000:]}")
        raise
    finally:
        processes.stop(started, str(env.workdir), timeout=15)
