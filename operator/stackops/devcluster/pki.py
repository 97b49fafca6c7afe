"""The real node's certificates: one CA for the kubelet's clients, and the API server's client certificate.

The kubelet accepts only clients with a certificate from this CA (x509) or a token the API server
vouches for (webhook), and asks the API server whether each may act (webhook authorization): pods
that reach port 10250 get nothing. The API server presents its certificate for logs, exec and
port-forward. The kubelet's own serving certificate is the one it generates itself.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from stackops.devcluster.identities import write_private

# The user the API server is to the kubelet; bound to system:kubelet-api-admin.
APISERVER_KUBELET_CLIENT = "kube-apiserver-kubelet-client"
_VALID = datetime.timedelta(days=30)


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_kubelet_client_pki(directory: Path) -> tuple[Path, Issued]:
    """A CA (its certificate: the kubelet's clientCAFile) and the API server's client certificate."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("stackops-kubelet-client-ca")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALID)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = (
        x509.CertificateBuilder()
        .subject_name(_name(APISERVER_KUBELET_CLIENT))
        .issuer_name(ca_name)
        .public_key(client_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALID)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_file = directory / "kubelet-client-ca.crt"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    issued = Issued(directory / "apiserver-kubelet-client.crt", directory / "apiserver-kubelet-client.key")
    issued.cert.write_bytes(client.public_bytes(serialization.Encoding.PEM))
    write_private(issued.key, _key_pem(client_key))
    return ca_file, issued
