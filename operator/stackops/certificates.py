"""The cloud's own certificate authority and the certificates of its internal endpoints.

A cloud's backends (MariaDB first) speak TLS with a certificate this CA signed, and their clients
verify it against the CA's certificate. The CA and every certificate live in the credentials Secret
beside the passwords (kube/credentials_secret.py writes them; rendering reads them like any other
credential), so they are made once, kept with the cloud's data when the cloud is deleted with
`deletionPolicy: Retain`, and a pod's config changes, and the pod rolls, when its certificate does.

`issued` is the whole policy, pure but for the key material it draws: the CA is made when missing; a
certificate is (re)issued when it is missing, names other hosts than asked, was signed by another CA
or has less than RENEW_BEFORE left. Renewal therefore happens on an ordinary pass, months before
expiry, and the pods roll one at a time to the new certificate while the CA they verify stays the
same: no client ever sees a certificate it does not trust. The CA itself lives CA_LIFETIME and is
not renewed by the operator (docs/security.md says how to replace it).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT_KEY = "tls-ca.crt"
CA_PRIVATE_KEY = "tls-ca.key"
CA_LIFETIME = datetime.timedelta(days=3650)
LIFETIME = datetime.timedelta(days=365)
RENEW_BEFORE = datetime.timedelta(days=90)
# a clock a little behind the operator's on another node must not see a certificate from the future
BACKDATE = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class CertificateRequest:
    """A server certificate a service needs: `name` keys it in the credentials Secret, `dns_names`
    are every name its clients reach it by."""

    name: str
    dns_names: tuple[str, ...]

    @property
    def cert_key(self) -> str:
        return f"tls-{self.name}.crt"

    @property
    def private_key(self) -> str:
        return f"tls-{self.name}.key"


def service_names(service: str, namespace: str, cluster_domain: str) -> tuple[str, ...]:
    """Every name a pod may reach a Service by: short, with its namespace, .svc, fully qualified."""
    return (
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.{cluster_domain}",
    )


def pod_names(headless: str, namespace: str, cluster_domain: str) -> tuple[str, ...]:
    """Every pod's name under a headless Service (`<pod>.<headless>.<namespace>.svc`, and fully
    qualified), as wildcards: pods come and go with the replicas, the certificate stays."""
    return tuple(f"*.{name}" for name in service_names(headless, namespace, cluster_domain)[2:])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _pem_cert(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _new_ca(common_name: str, now: datetime.datetime) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # keyCertSign, cRLSign
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _pem_cert(cert), _pem_key(key)


def _issue(
    request: CertificateRequest, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, now: datetime.datetime
) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, request.dns_names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True
        )  # digitalSignature, keyEncipherment
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in request.dns_names]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return _pem_cert(cert), _pem_key(key)


def _current(pem: str | None, ca_cert: x509.Certificate, request: CertificateRequest, now: datetime.datetime) -> bool:
    """Whether a certificate already issued serves `request`: signed by this CA, for exactly its
    names, with more than RENEW_BEFORE left."""
    if not pem:
        return False
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
        cert.verify_directly_issued_by(ca_cert)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return (
        tuple(names.get_values_for_type(x509.DNSName)) == request.dns_names
        and cert.not_valid_after_utc - now > RENEW_BEFORE
    )


def issued(
    values: Mapping[str, str], requests: Iterable[CertificateRequest], ca_name: str, now: datetime.datetime
) -> dict[str, str]:
    """`values` with the CA made if missing and each request's certificate (re)issued where it is
    not current; what is current is kept byte for byte."""
    values = dict(values)
    if CA_CERT_KEY not in values or CA_PRIVATE_KEY not in values:
        values[CA_CERT_KEY], values[CA_PRIVATE_KEY] = _new_ca(ca_name, now)
    ca_cert = x509.load_pem_x509_certificate(values[CA_CERT_KEY].encode())
    ca_key = serialization.load_pem_private_key(values[CA_PRIVATE_KEY].encode(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{CA_PRIVATE_KEY} in the credentials Secret is not an EC private key")
    for request in requests:
        if not (_current(values.get(request.cert_key), ca_cert, request, now) and request.private_key in values):
            values[request.cert_key], values[request.private_key] = _issue(request, ca_cert, ca_key, now)
    return values
