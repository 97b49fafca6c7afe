"""Generated credentials: passwords and keys a cloud needs, made once and kept in one Secret.

Rendering takes credentials as input and never makes them up, so the same spec and the same
credentials always render the same bytes. Generation adds what is missing and never replaces a value
that exists: a regenerated database password would lock every service out of its database.
"""

from __future__ import annotations

import base64
import secrets
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

PLACEHOLDER_PREFIX = "PLACEHOLDER-"
PASSWORD_LENGTH = 32
_PASSWORD_ALPHABET = string.ascii_letters + string.digits  # safe in URLs, INI files and shells
PASSWORD_CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits)


class CredentialKind(Enum):
    PASSWORD = "password"
    FERNET_KEY = "fernet-key"


@dataclass(frozen=True)
class CredentialSpec:
    """One value a service needs, by its key in the credentials Secret."""

    key: str
    kind: CredentialKind = CredentialKind.PASSWORD


class MissingCredentialError(KeyError):
    def __str__(self) -> str:
        return f"credential {self.args[0]!r} is missing from the credentials Secret"


def new_value(kind: CredentialKind) -> str:
    if kind is CredentialKind.FERNET_KEY:
        return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    while True:  # drawn again until every class is in it: password rules (keystone's) often ask so
        password = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))
        if has_every_class(password):
            return password


def has_every_class(password: str) -> bool:
    """A lowercase letter, an uppercase letter and a digit."""
    return all(any(c in chars for c in password) for chars in PASSWORD_CLASSES)


# Passwords shaped like the generated ones (each class first, last, or alone among others): a
# password rule (keystone's securityCompliance.passwordRegex) must accept all of them, or creating
# the cloud's own users would fail on it.
SAMPLE_PASSWORDS = (
    "aB3" + "x" * (PASSWORD_LENGTH - 3),
    "9" * (PASSWORD_LENGTH - 2) + "zZ",
    "Q" * (PASSWORD_LENGTH // 2) + "q" * (PASSWORD_LENGTH - PASSWORD_LENGTH // 2 - 1) + "0",
    "Kp4mW8zR2tY6vB1nL5cX9dF3gH7jS0aQ",
)
PASSWORD_SHAPE = f"{PASSWORD_LENGTH} letters and digits, with a lowercase letter, an uppercase letter and a digit"


def complete(specs: Iterable[CredentialSpec], existing: Mapping[str, str]) -> dict[str, str]:
    """`existing` plus a fresh value for every spec it lacks; existing values are kept as they are."""
    values = dict(existing)
    for spec in specs:
        if spec.key not in values:
            values[spec.key] = new_value(spec.kind)
    return values


class Credentials:
    """Read-only view of the credentials Secret's values, as rendering sees them."""

    def __init__(self, values: Mapping[str, str], *, placeholder: bool = False) -> None:
        self._values = dict(values)
        self.placeholder = placeholder

    @classmethod
    def placeholders(cls, specs: Iterable[CredentialSpec]) -> Credentials:
        """Clearly marked stand-ins, for `stackops render` without a cluster."""
        return cls({s.key: f"{PLACEHOLDER_PREFIX}{s.key}" for s in specs}, placeholder=True)

    def __getitem__(self, key: str) -> str:
        try:
            return self._values[key]
        except KeyError:
            raise MissingCredentialError(key) from None

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def with_prefix(self, prefix: str) -> dict[str, str]:
        """The values whose keys start with `prefix`, keyed by the rest of the key."""
        return {k[len(prefix) :]: v for k, v in sorted(self._values.items()) if k.startswith(prefix)}

    def values(self) -> dict[str, str]:
        return dict(self._values)


@dataclass(frozen=True)
class KeyRotation:
    """Keys under `prefix` that are rotated every `interval_hours`, keeping `max_active` of them."""

    prefix: str
    interval_hours: int
    max_active: int

    def apply(self, values: Mapping[str, str]) -> dict[str, str]:
        """`values` with this rotation's keys rotated and the rest untouched."""
        keys = {k[len(self.prefix) :]: v for k, v in values.items() if k.startswith(self.prefix)}
        others = {k: v for k, v in values.items() if not k.startswith(self.prefix)}
        return others | {f"{self.prefix}{i}": v for i, v in rotate_fernet(keys, self.max_active).items()}


def fernet_specs(prefix: str, count: int = 2) -> list[CredentialSpec]:
    """A fresh key repository: 0 is the staged key, 1 the primary (what `fernet_setup` makes)."""
    return [CredentialSpec(f"{prefix}{i}", CredentialKind.FERNET_KEY) for i in range(count)]


def rotate_fernet(keys: Mapping[str, str], max_active: int) -> dict[str, str]:
    """keystone-manage fernet_rotate, on a mapping of index -> key.

    The staged key (0) becomes the new primary (highest index), a new staged key is made, and the
    oldest secondary keys beyond `max_active` are dropped. Tokens made with any kept key still validate.
    """
    if "0" not in keys:
        raise ValueError("a fernet key repository needs a staged key 0")
    indexes = sorted(int(i) for i in keys)
    rotated = {str(i): keys[str(i)] for i in indexes if i != 0}
    rotated[str(indexes[-1] + 1)] = keys["0"]
    rotated["0"] = new_value(CredentialKind.FERNET_KEY)
    kept = sorted(int(i) for i in rotated)
    excess = len(kept) - max_active
    for index in kept[1 : 1 + max(excess, 0)]:
        del rotated[str(index)]
    return {str(i): rotated[str(i)] for i in sorted(int(k) for k in rotated)}
