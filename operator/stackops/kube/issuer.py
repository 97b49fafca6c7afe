"""The cloud's certificates from a cert-manager issuer the user names (spec.internalTLS.issuer),
instead of the cloud's own CA (stackops.certificates).

For each certificate a cloud needs (plan.certificate_requests) the operator keeps one cert-manager
`Certificate` (`<cloud>-tls-<name>`, owned by the cloud: kube.engine applies them as it applies
the cloud's objects) and copies what cert-manager wrote into its
Secret (tls.crt, tls.key, ca.crt) into the credentials Secret under the keys rendering reads
(tls-<name>.crt/.key, tls-ca.crt): the pods see the same files whoever issued them, and roll when
cert-manager renews one. Until every Secret holds a certificate for exactly the names asked, the
cloud waits ("waiting for certificates ..."); an issuer that does not give its CA cannot be used,
as no client could verify with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cryptography import x509

from stackops.api.models import IssuerRef, OpenStackCloud
from stackops.certificates import CA_CERT_KEY, CertificateRequest
from stackops.kube.client import Kube, Obj
from stackops.kube.credentials_secret import SECRET, decoded
from stackops.kube.kinds import Kind
from stackops.render.naming import common_labels

CERTIFICATE = Kind("cert-manager.io/v1", "Certificate", "certificates")
# what the operator's own CA gives (stackops.certificates): a year, renewed with 90 days left
DURATION, RENEW_BEFORE = "8760h", "2160h"


class WaitingForCertificates(Exception):
    """cert-manager has not issued every certificate yet (for the names asked): a temporary state."""


class IssuerWithoutCA(Exception):
    """The issuer gives no CA with its certificates (ca.crt): nothing could verify them."""


def certificate_name(cloud: str, request: CertificateRequest) -> str:
    return f"{cloud}-tls-{request.name}"


def certificate(cloud: OpenStackCloud, issuer: IssuerRef, request: CertificateRequest) -> Obj:
    """The Certificate asking `issuer` for `request`'s names: an ECDSA P-256 key made anew at each
    renewal, for servers and for clients (OVN's clients present theirs), a year, renewed 90 days early."""
    name = certificate_name(cloud.metadata.name, request)
    return {
        "apiVersion": CERTIFICATE.api_version,
        "kind": CERTIFICATE.kind,
        "metadata": {
            "name": name,
            "namespace": cloud.metadata.namespace,
            "labels": common_labels(cloud.metadata.name, "stackops", "certificates"),
        },
        "spec": {
            "secretName": name,
            "dnsNames": list(request.dns_names),
            "duration": DURATION,
            "renewBefore": RENEW_BEFORE,
            "privateKey": {"algorithm": "ECDSA", "size": 256, "encoding": "PKCS8", "rotationPolicy": "Always"},
            "usages": ["digital signature", "key encipherment", "server auth", "client auth"],
            "issuerRef": {"name": issuer.name, "kind": issuer.kind, "group": issuer.group},
        },
    }


def _names(pem: str) -> tuple[str, ...] | None:
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return None
    return tuple(names.get_values_for_type(x509.DNSName))


def copied(secrets: Mapping[str, Mapping[str, str] | None], requests: Sequence[CertificateRequest]) -> dict[str, str]:
    """The credentials Secret's certificate values from cert-manager's Secrets (`secrets`: each
    request's Secret's decoded data by request name, None where it does not exist yet)."""
    values: dict[str, str] = {}
    waiting: list[str] = []
    authorities: set[str] = set()
    for request in requests:
        data = secrets.get(request.name) or {}
        cert, key = data.get("tls.crt", ""), data.get("tls.key", "")
        names = _names(cert) if cert else None
        if not key or names is None or set(names) != set(request.dns_names):
            waiting.append(request.name)
            continue
        values[request.cert_key], values[request.private_key] = cert, key
        authorities.add(data.get("ca.crt", ""))
    if waiting:
        raise WaitingForCertificates(f"waiting for certificates from cert-manager: {', '.join(waiting)}")
    if "" in authorities:
        raise IssuerWithoutCA(
            "spec.internalTLS.issuer: its certificates come without the CA (ca.crt) that clients verify them "
            "with; use an issuer that gives it (a CA issuer does)"
        )
    if len(authorities) > 1:  # the issuer's CA is changing: some Secrets still hold the old one
        raise WaitingForCertificates("waiting for cert-manager's certificates to agree on one CA")
    if authorities:
        values[CA_CERT_KEY] = authorities.pop()
    return values


def certificates(cloud: OpenStackCloud, requests: Sequence[CertificateRequest]) -> list[Obj]:
    """The cloud's Certificates, one per request, of the issuer its spec names."""
    issuer = cloud.spec.internal_tls.issuer
    assert issuer is not None
    return [certificate(cloud, issuer, r) for r in requests]


def issued(kube: Kube, cloud: OpenStackCloud, requests: Sequence[CertificateRequest]) -> dict[str, str]:
    """What cert-manager wrote into the requests' Secrets, as the credentials Secret holds it (copied())."""
    namespace, name = cloud.metadata.namespace, cloud.metadata.name
    secrets = {r.name: kube.get(SECRET, namespace, certificate_name(name, r)) for r in requests}
    return copied({r: decoded(s.get("data")) if s else None for r, s in secrets.items()}, requests)
