"""Certificates from a cert-manager issuer the user names: the Certificates the operator asks for,
and how what cert-manager wrote becomes the credentials Secret's values (tests/cluster/test_issuer.py
runs cert-manager's controllers against a real API server)."""

from __future__ import annotations

import datetime

import pytest

from stackops.certificates import CA_CERT_KEY, CA_PRIVATE_KEY, CertificateRequest, issued
from stackops.kube.credentials_secret import next_values
from stackops.kube.issuer import IssuerWithoutCA, WaitingForCertificates, certificate, copied
from stackops.plan import certificate_requests
from stackops.reconcile.errors import classify
from stackops.reconcile.rbac import rules
from tests.conftest import cloud

NOW = datetime.datetime(2026, 12, 7, tzinfo=datetime.UTC)
DB = CertificateRequest("mariadb", ("demo-mariadb", "demo-mariadb.openstack.svc"))
MQ = CertificateRequest("rabbitmq", ("demo-rabbitmq", "demo-rabbitmq.openstack.svc"))
WITH_ISSUER = {"internalTLS": {"issuer": {"name": "cloud-ca"}}}


def secret_of(values: dict[str, str], request: CertificateRequest, ca: bool = True) -> dict[str, str]:
    """What cert-manager writes for `request`, from certificates another CA issued."""
    data = {"tls.crt": values[request.cert_key], "tls.key": values[request.private_key]}
    return data | ({"ca.crt": values[CA_CERT_KEY]} if ca else {})


def test_one_certificate_per_server_of_the_named_issuer_for_exactly_its_names() -> None:
    demo = cloud(WITH_ISSUER)
    requests = certificate_requests(demo)
    issuer = demo.spec.internal_tls.issuer
    assert issuer is not None and (issuer.kind, issuer.group) == ("Issuer", "cert-manager.io")
    obj = certificate(demo, issuer, requests[0])
    assert obj["metadata"]["name"] == obj["spec"]["secretName"] == f"demo-tls-{requests[0].name}"
    assert obj["spec"]["dnsNames"] == list(requests[0].dns_names)
    assert obj["spec"]["issuerRef"] == {"name": "cloud-ca", "kind": "Issuer", "group": "cert-manager.io"}
    assert obj["spec"]["privateKey"]["rotationPolicy"] == "Always"
    assert {"server auth", "client auth"} <= set(obj["spec"]["usages"])  # OVN's clients present theirs


def test_what_cert_manager_issued_is_copied_under_the_keys_rendering_reads() -> None:
    other_ca = issued({}, [DB, MQ], "an issuer's CA", NOW)
    values = copied({"mariadb": secret_of(other_ca, DB), "rabbitmq": secret_of(other_ca, MQ)}, [DB, MQ])
    assert values == {
        DB.cert_key: other_ca[DB.cert_key], DB.private_key: other_ca[DB.private_key],
        MQ.cert_key: other_ca[MQ.cert_key], MQ.private_key: other_ca[MQ.private_key],
        CA_CERT_KEY: other_ca[CA_CERT_KEY],
    }  # fmt: skip
    # the credentials Secret takes them over its own CA's, and keeps no CA key of its own
    own, _ = next_values({"x": "1"}, {}, [], [], NOW, [DB, MQ], "own CA")
    assert CA_PRIVATE_KEY in own
    taken, _ = next_values(own, {}, [], [], NOW, [DB, MQ], "own CA", from_issuer=values)
    assert CA_PRIVATE_KEY not in taken and taken[DB.cert_key] == other_ca[DB.cert_key] and taken["x"] == "1"


def test_the_cloud_waits_for_certificates_cert_manager_has_not_issued_for_its_names() -> None:
    other_ca = issued({}, [DB, MQ], "an issuer's CA", NOW)
    with pytest.raises(WaitingForCertificates, match="rabbitmq"):
        copied({"mariadb": secret_of(other_ca, DB), "rabbitmq": None}, [DB, MQ])
    renamed = CertificateRequest("rabbitmq", (*MQ.dns_names, "demo-rabbitmq.openstack.svc.cluster.local"))
    with pytest.raises(WaitingForCertificates, match="rabbitmq"):  # the Secret still has the old names
        copied({"mariadb": secret_of(other_ca, DB), "rabbitmq": secret_of(other_ca, MQ)}, [DB, renamed])
    failure = classify(WaitingForCertificates("waiting for certificates from cert-manager: rabbitmq"))
    assert not failure.permanent and failure.reason == "WaitingForCertificates"


def test_an_issuer_that_gives_no_ca_is_refused_naming_the_field() -> None:
    other_ca = issued({}, [DB], "an issuer's CA", NOW)
    with pytest.raises(IssuerWithoutCA) as raised:
        copied({"mariadb": secret_of(other_ca, DB, ca=False)}, [DB])
    failure = classify(raised.value)
    assert failure.permanent and failure.message.startswith("spec.internalTLS.issuer:")


def test_the_operator_may_manage_certificates() -> None:
    granted = [r for r in rules() if r["apiGroups"] == ["cert-manager.io"]]
    assert granted == [
        {
            "apiGroups": ["cert-manager.io"],
            "resources": ["certificates"],
            "verbs": ["get", "list", "create", "patch", "delete"],
        }
    ]
