from __future__ import annotations

import base64

import pytest

from stackops.credentials import (
    CredentialKind,
    Credentials,
    CredentialSpec,
    MissingCredentialError,
    complete,
    rotate_fernet,
)


def test_complete_generates_only_what_is_missing_and_never_replaces() -> None:
    specs = [CredentialSpec("a"), CredentialSpec("b"), CredentialSpec("k", CredentialKind.FERNET_KEY)]
    first = complete(specs, {"a": "kept"})
    assert first["a"] == "kept"
    assert len(first["b"]) == 32 and first["b"].isalnum()
    assert len(base64.urlsafe_b64decode(first["k"])) == 32
    assert complete(specs, first) == first


def test_generated_values_differ() -> None:
    specs = [CredentialSpec("a")]
    assert complete(specs, {})["a"] != complete(specs, {})["a"]


def test_missing_credential_names_the_key() -> None:
    with pytest.raises(MissingCredentialError, match="'x' is missing"):
        Credentials({})["x"]


def test_placeholders_are_clearly_marked() -> None:
    creds = Credentials.placeholders([CredentialSpec("keystone-admin-password")])
    assert creds["keystone-admin-password"] == "PLACEHOLDER-keystone-admin-password"
    assert creds.placeholder


def test_fernet_rotation_promotes_the_staged_key_and_prunes_the_oldest() -> None:
    keys = {"0": "staged", "1": "primary"}
    once = rotate_fernet(keys, max_active=3)
    assert once["2"] == "staged" and once["1"] == "primary" and once["0"] not in ("staged", "primary")
    twice = rotate_fernet(once, max_active=3)
    assert sorted(twice, key=int) == ["0", "2", "3"]  # 1 dropped: staged + 2 kept
    assert twice["3"] == once["0"] and twice["2"] == "staged"


def test_rotation_is_stamped_first_and_applied_when_due() -> None:
    import datetime

    from stackops.credentials import KeyRotation
    from stackops.kube.credentials_secret import next_values

    rotation = KeyRotation("keystone-fernet-", interval_hours=24, max_active=3)
    specs = [CredentialSpec(f"keystone-fernet-{i}", CredentialKind.FERNET_KEY) for i in (0, 1)]
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    values, stamps = next_values({}, {}, specs, [rotation], start)
    assert stamps == {"stackops.dev/rotated-keystone-fernet": "2026-01-01T00:00:00Z"}

    soon = start + datetime.timedelta(hours=23)
    assert next_values(values, stamps, specs, [rotation], soon) == (values, stamps)

    later = start + datetime.timedelta(hours=24)
    rotated, new_stamps = next_values(values, stamps, specs, [rotation], later)
    assert rotated["keystone-fernet-2"] == values["keystone-fernet-0"]  # staged key promoted
    assert rotated["keystone-fernet-1"] == values["keystone-fernet-1"]
    assert new_stamps["stackops.dev/rotated-keystone-fernet"] == "2026-01-02T00:00:00Z"
