"""Generated credentials: passwords and keys a cloud needs, made once and kept in one Secret.

Rendering takes credentials as input and never makes them up, so the same spec and the same
credentials always render the same bytes. Generation adds what is missing and never replaces a value
that exists: a regenerated database password would lock every service out of its database.

A rotation (asked for by spec.credentialRotation) replaces them in an order that never leaves a
client without a credential that works (docs/security.md, "Rotation"): the new values are kept
beside the live ones under NEXT_PREFIX, the phases say which of them each side uses, and only once
nothing uses the old ones do the new ones take their keys (`promote`). The decisions are here, pure;
kube/credentials_secret.py reads and writes the Secret, reconcile/ drives the phases.
"""

from __future__ import annotations

import base64
import secrets
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
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
    """One value a service needs, by its key in the credentials Secret; `rotates`: replaced by a
    credential rotation (a service's database, keystone and RabbitMQ passwords). `own_pair`: the
    password of an account of a pair of its own (RabbitMQ's administrator), which alternates when
    this key rotates, not with every rotation as the services' pairs do (RotationState.own_twins)."""

    key: str
    kind: CredentialKind = CredentialKind.PASSWORD
    rotates: bool = False
    own_pair: bool = False


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


# Where a rotation keeps the new value of a key beside the live one, until it is promoted.
NEXT_PREFIX = "next."
# The second account of a service in keystone and RabbitMQ, which take one password per user: a
# rotation sets the new password on the account not in use, switches the configs to it, then
# removes the other (docs/security.md, "Rotation").
TWIN_SUFFIX = "-b"


class RotationPhase(Enum):
    """Where a credential rotation is; each phase lasts until the cloud has converged in it."""

    GRANTING = "Granting"  # the new credentials are accepted beside the old; configs use the old
    ROLLING = "Rolling"  # configs use the new ones, and pods roll to them; the old still work
    REVOKING = "Revoking"  # nothing uses the old ones: they stop working, credential keys migrate


PHASES = tuple(RotationPhase)


@dataclass(frozen=True)
class RotationState:
    """The credential rotations of a cloud: the generation of the last one begun, its phase (None:
    none under way, the last one done), and which account of each pair is in use outside one.
    No secret in it: it is kept as an annotation of the credentials Secret and shown in status."""

    generation: int = 0
    phase: RotationPhase | None = None
    twins: bool = False  # the services' keystone and RabbitMQ accounts in use are the -b ones
    # The keys of the own pairs (CredentialSpec.own_pair) whose -b account is in use. An own pair
    # may have joined rotations after others ran (a cloud rotated before stackops rotated RabbitMQ's
    # administrator still uses its first account), so it keeps its own side.
    own_twins: frozenset[str] = frozenset()

    def __str__(self) -> str:
        text = f"{self.generation}/{self.phase.value if self.phase else 'Done'}/{'b' if self.twins else 'a'}"
        return f"{text}/{','.join(sorted(self.own_twins))}" if self.own_twins else text

    @classmethod
    def parse(cls, text: str | None) -> RotationState:
        """What __str__ wrote; none (no rotation ever) is the first state."""
        if not text:
            return cls()
        try:
            generation, phase, accounts, *own = text.split("/")
            if len(own) > 1 or own == [""]:
                raise ValueError(text)
            return cls(
                int(generation),
                None if phase == "Done" else RotationPhase(phase),
                {"a": False, "b": True}[accounts],
                frozenset(own[0].split(",")) if own else frozenset(),
            )
        except (ValueError, KeyError):
            raise ValueError(
                f"credential rotation state {text!r} is not generation/phase/accounts[/own pairs on -b]"
            ) from None

    @property
    def switched(self) -> bool:
        """Whether configs use the new values (and the other account of each pair)."""
        return self.phase in (RotationPhase.ROLLING, RotationPhase.REVOKING)


class Credentials:
    """Read-only view of the credentials Secret's values, as rendering sees them: during a rotation,
    a key's value is the one its phase says configs use (see RotationState)."""

    def __init__(
        self, values: Mapping[str, str], *, placeholder: bool = False, rotation: RotationState | None = None
    ) -> None:
        self._values = dict(values)
        self.placeholder = placeholder
        self.rotation = rotation or RotationState()

    def rotating(self, key: str) -> bool:
        return self.rotation.phase is not None and f"{NEXT_PREFIX}{key}" in self._values

    def secret_key(self, key: str) -> str:
        """The Secret key a Job takes `key`'s value from: the new value's while a rotation grants,
        switches and revokes it (the Job makes it work before configs use it)."""
        return f"{NEXT_PREFIX}{key}" if self.rotating(key) else key

    def live_key(self, key: str) -> str:
        """The Secret key of the value configs use now (what `self[key]` is): the new value's once
        a rotation has switched to it. For what takes the value from the Secret itself rather than
        from a rendered config (a Job's or a pod's Secret files and environment)."""
        return f"{NEXT_PREFIX}{key}" if self.rotation.switched and self.rotating(key) else key

    def retiring_key(self, key: str) -> str | None:
        """The Secret key of `key`'s old value while it must keep working (granting, rolling)."""
        phase = self.rotation.phase
        return key if self.rotating(key) and phase is not RotationPhase.REVOKING else None

    def _pair(self, own_key: str | None) -> tuple[bool, bool]:
        """Whether a pair's -b account was in use when the rotation began, and whether the
        rotation alternates it: the services' pairs with every rotation, an own pair (`own_key`,
        its password's key) when its key rotates."""
        if own_key is None:
            return self.rotation.twins, self.rotation.phase is not None
        return own_key in self.rotation.own_twins, self.rotating(own_key)

    def account(self, name: str, own_key: str | None = None) -> str:
        """The account a service's configs use in keystone and RabbitMQ: `name` or its twin
        (`own_key`: of an own pair, see CredentialSpec.own_pair)."""
        twins, rotating = self._pair(own_key)
        return f"{name}{TWIN_SUFFIX}" if twins != (rotating and self.rotation.switched) else name

    def retired_account(self, name: str, own_key: str | None = None) -> str | None:
        """The account a rotation removes, once nothing uses it (revoking): the one in use before."""
        twins, rotating = self._pair(own_key)
        if self.rotation.phase is not RotationPhase.REVOKING or not rotating:
            return None
        return f"{name}{TWIN_SUFFIX}" if twins else name

    def granted_account(self, name: str, own_key: str | None = None) -> str:
        """The account a service's Jobs give the password of `secret_key` to: during a rotation the
        one configs use from rolling on (the one not in use before), else the one they use."""
        twins, rotating = self._pair(own_key)
        return f"{name}{TWIN_SUFFIX}" if twins != rotating else name

    @classmethod
    def placeholders(cls, specs: Iterable[CredentialSpec]) -> Credentials:
        """Clearly marked stand-ins, for `stackops render` without a cluster: those of `specs`, and
        of whatever else rendering asks for (the CA and certificates the operator would issue)."""
        return cls({s.key: f"{PLACEHOLDER_PREFIX}{s.key}" for s in specs}, placeholder=True)

    def __getitem__(self, key: str) -> str:
        if self.rotation.switched and self.rotating(key):
            return self._values[f"{NEXT_PREFIX}{key}"]
        try:
            return self._values[key]
        except KeyError:
            if self.placeholder:
                return f"{PLACEHOLDER_PREFIX}{key}"
            raise MissingCredentialError(key) from None

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def with_prefix(self, prefix: str) -> dict[str, str]:
        """The values whose keys start with `prefix`, keyed by the rest of the key."""
        return {k[len(prefix) :]: v for k, v in sorted(self._values.items()) if k.startswith(prefix)}

    def values(self) -> dict[str, str]:
        """Every value of the Secret, the new ones of a rotation included."""
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


# Credential rotation: what each pass decides, and the Secret's values at its start and end.


class RotationAction(Enum):
    NONE = "none"
    BEGIN = "begin"  # new values generated, the first phase entered
    ADVANCE = "advance"  # the next phase
    PROMOTE = "promote"  # the new values take the live keys; the rotation is done


def rotation_action(state: RotationState, requested: int, converged: bool) -> RotationAction:
    """What a pass does about rotations: `requested` is spec.credentialRotation.generation, and
    `converged` whether the cloud has converged as the current phase renders it (a rotation begins
    on a converged cloud too, not halfway through a deployment). A rotation asked for while one runs
    waits for it: the first pass after its end begins it."""
    if not converged:
        return RotationAction.NONE
    if state.phase is None:
        return RotationAction.BEGIN if requested > state.generation else RotationAction.NONE
    return RotationAction.PROMOTE if state.phase is PHASES[-1] else RotationAction.ADVANCE


def next_rotation(
    action: RotationAction,
    values: Mapping[str, str],
    state: RotationState,
    requested: int,
    rotated: Iterable[CredentialSpec],
    key_repositories: Iterable[str],
) -> tuple[dict[str, str], RotationState]:
    """The Secret's values and the rotation's state after `action`."""
    if action is RotationAction.BEGIN:
        return begin_rotation(values, state, requested, rotated, key_repositories)
    if action is RotationAction.ADVANCE:
        return dict(values), advance_rotation(state)
    if action is RotationAction.PROMOTE:
        return promote_rotation(values, state, key_repositories, rotated)
    return dict(values), state


def begin_rotation(
    values: Mapping[str, str],
    state: RotationState,
    generation: int,
    rotated: Iterable[CredentialSpec],
    key_repositories: Iterable[str] = (),
) -> tuple[dict[str, str], RotationState]:
    """A new value beside each rotated key's, and each key repository (by prefix) rotated as
    `keystone-manage credential_rotate` does: its staged key becomes the primary, which a migration
    then re-encrypts everything with; the old primary stays until `promote_rotation`."""
    if state.phase is not None:
        raise ValueError(f"a credential rotation ({state.generation}) is under way already")
    new = dict(values)
    for spec in rotated:
        if spec.key in values:  # a value not generated yet has nothing to rotate
            new[f"{NEXT_PREFIX}{spec.key}"] = new_value(spec.kind)
    for prefix in key_repositories:
        new = KeyRotation(prefix, 0, CREDENTIAL_KEYS_KEPT).apply(new)
    return new, replace(state, generation=generation, phase=PHASES[0])


def advance_rotation(state: RotationState) -> RotationState:
    if state.phase is None or state.phase is PHASES[-1]:
        raise ValueError(f"credential rotation {state} has no next phase")
    return replace(state, phase=PHASES[PHASES.index(state.phase) + 1])


def promote_rotation(
    values: Mapping[str, str],
    state: RotationState,
    key_repositories: Iterable[str] = (),
    rotated: Iterable[CredentialSpec] = (),
) -> tuple[dict[str, str], RotationState]:
    """The end of a rotation: each new value under its key (what configs used since rolling, so
    nothing renders differently), the accounts in use now the others (of an own pair among
    `rotated`: if its key rotated), and each key repository down to its staged key and primary,
    which is all the migrated credentials need."""
    if state.phase is not PHASES[-1]:
        raise ValueError(f"credential rotation {state} is not revoking yet")
    switched = {spec.key for spec in rotated if spec.own_pair and f"{NEXT_PREFIX}{spec.key}" in values}
    promoted = {k: v for k, v in values.items() if not k.startswith(NEXT_PREFIX)}
    promoted |= {k[len(NEXT_PREFIX) :]: v for k, v in values.items() if k.startswith(NEXT_PREFIX)}
    for prefix in key_repositories:
        indexes = sorted(int(k[len(prefix) :]) for k in promoted if k.startswith(prefix))
        for index in indexes[1:-1]:
            del promoted[f"{prefix}{index}"]
    return promoted, replace(state, phase=None, twins=not state.twins, own_twins=state.own_twins ^ switched)


# keystone's credential key repository holds at most 3 keys (its MAX_ACTIVE_KEYS): staged, primary
# and the primary before, which credentials not migrated yet were encrypted with
CREDENTIAL_KEYS_KEPT = 3
