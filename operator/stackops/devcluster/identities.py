"""Who may talk to the local apiserver: static bearer tokens, kubeconfigs, the SA signing key.

Static tokens (`--token-auth-file`) need no client-certificate PKI, and every file here is
written with the standard library only.
"""

from __future__ import annotations

import base64
import csv
import io
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# The identity the operator under test uses. Deliberately in no group: tests grant it exactly
# the RBAC its ClusterRole allows, so a missing rule fails the test instead of hiding behind
# system:masters.
OPERATOR_USER = "stackops-operator"
CONTEXT = "stackops-dev"


@dataclass(frozen=True)
class Identity:
    """A static-token user: `key` is the short name used in this package (admin, kcm, ...)."""

    key: str
    username: str
    groups: tuple[str, ...]
    token: str

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "username": self.username, "groups": list(self.groups), "token": self.token}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Identity:
        return cls(str(data["key"]), str(data["username"]), tuple(data["groups"]), str(data["token"]))


def make_identities(extra: Mapping[str, Sequence[str]] | None = None) -> dict[str, Identity]:
    """The control plane's own users, the operator's, and any `extra` {username: groups}."""
    wanted: list[tuple[str, str, tuple[str, ...]]] = [
        ("admin", "admin", ("system:masters",)),
        # KCM and scheduler get their RBAC from the bootstrap ClusterRoleBindings by username.
        ("kcm", "system:kube-controller-manager", ()),
        ("scheduler", "system:kube-scheduler", ()),
        ("kwok", "kwok", ("system:masters",)),
        (OPERATOR_USER, OPERATOR_USER, ()),
    ]
    wanted += [(user, user, tuple(groups)) for user, groups in (extra or {}).items()]
    return {key: Identity(key, user, groups, f"{key}-{secrets.token_hex(16)}") for key, user, groups in wanted}


def find_identity(identities: Mapping[str, Identity], user: str) -> Identity:
    """Look up by short key ("kcm") or by username ("system:kube-controller-manager")."""
    if user in identities:
        return identities[user]
    for identity in identities.values():
        if identity.username == user:
            return identity
    raise KeyError(f"no such user in this cluster: {user!r} (known: {', '.join(identities)})")


def tokens_csv(identities: Iterable[Identity]) -> str:
    """The --token-auth-file format: token,user,uid[,"group1,group2"]."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for identity in identities:
        row = [identity.token, identity.username, identity.username]
        if identity.groups:
            row.append(",".join(identity.groups))
        writer.writerow(row)
    return out.getvalue()


def kubeconfig_text(server: str, ca_file: Path, identity: Identity) -> str:
    """A kubeconfig that verifies the apiserver's self-signed certificate instead of skipping TLS."""
    user = f"{identity.key}@{CONTEXT}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": server, "certificate-authority": str(ca_file)}}],
        "users": [{"name": user, "user": {"token": identity.token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user}}],
        "current-context": CONTEXT,
    }
    return yaml.safe_dump(config, sort_keys=False)


def write_private(path: Path, text: str | bytes) -> None:
    """Write a file only its owner can read (tokens and keys live in these)."""
    data = text.encode() if isinstance(text, str) else text
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


# NIST P-256: group order, and the DER of its OID 1.2.840.10045.3.1.7.
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_P256_OID = bytes.fromhex("06082a8648ce3d030107")


def service_account_key_pem() -> str:
    """A fresh ECDSA P-256 private key (SEC1 PEM) for signing service-account tokens.

    Built with the standard library alone (no openssl, no `cryptography`): a SEC1 key may omit
    its public point, and Go's x509.ParseECPrivateKey (used for both --service-account-key-file
    and --service-account-signing-key-file) derives it from the private scalar.
    """
    scalar = (secrets.randbelow(_P256_ORDER - 1) + 1).to_bytes(32, "big")
    body = (
        bytes([0x02, 0x01, 0x01])  # version 1
        + bytes([0x04, 0x20])
        + scalar  # privateKey OCTET STRING
        + bytes([0xA0, len(_P256_OID)])
        + _P256_OID  # [0] parameters: namedCurve
    )
    der = bytes([0x30, len(body)]) + body
    b64 = base64.b64encode(der).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return "\n".join(["-----BEGIN EC PRIVATE KEY-----", *lines, "-----END EC PRIVATE KEY-----", ""])
