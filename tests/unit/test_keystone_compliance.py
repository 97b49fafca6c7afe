"""Keystone's security compliance settings: typed, validated, rendered into [security_compliance]."""

from __future__ import annotations

import re
from typing import Any

import pytest

from stackops.api.validation import InvalidCloud, load_cloud_text
from stackops.credentials import SAMPLE_PASSWORDS, CredentialKind, has_every_class, new_value
from stackops.plan import plan, problems
from tests.conftest import cloud
from tests.support.rendered import secret_data

HEADER = "apiVersion: stackops.dev/v1alpha1\nkind: OpenStackCloud\nmetadata: {name: demo}\n"
AUDIT: dict[str, Any] = {
    "lockoutFailureAttempts": 5,
    "lockoutDurationSeconds": 900,
    "passwordExpiresDays": 90,
    "uniqueLastPasswordCount": 5,
    "minimumPasswordAgeDays": 1,
    "passwordRegex": r"^(?=.*\d)(?=.*[a-z])(?=.*[A-Z]).{12,}$",
    "passwordRegexDescription": "at least 12 characters with a digit, a lowercase and an uppercase letter",
    "changePasswordUponFirstUse": True,
    "disableUserAccountDaysInactive": 60,
}


def keystone_conf(rules: dict[str, object]) -> str:
    rendered = plan(cloud({"services": {"keystone": {"securityCompliance": rules}}}))
    return secret_data(rendered, "demo-keystone-config")["keystone.conf"]


def test_an_audits_settings_are_rendered_as_keystone_names_them() -> None:
    section = keystone_conf(AUDIT).split("[security_compliance]\n")[1].split("\n\n")[0]
    assert section.splitlines() == [
        "change_password_upon_first_use = true",
        "disable_user_account_days_inactive = 60",
        "lockout_duration = 900",
        "lockout_failure_attempts = 5",
        "minimum_password_age = 1",
        "password_expires_days = 90",
        # oslo.config reads $$ as one $: the anchor survives its substitution
        r"password_regex = ^(?=.*\d)(?=.*[a-z])(?=.*[A-Z]).{12,}$$",
        "password_regex_description = at least 12 characters with a digit, a lowercase and an uppercase letter",
        "unique_last_password_count = 5",
    ]


def test_nothing_set_nothing_written() -> None:
    assert "[security_compliance]" not in keystone_conf({})
    # a duration alone locks nobody out: keystone's lockout needs the attempts
    assert "[security_compliance]" not in keystone_conf({"lockoutDurationSeconds": 60})


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"passwordRegex": "(unclosed"}, "not a regular expression: missing ), unterminated"),
        ({"passwordRegex": ".{8,}"}, "passwordRegexDescription: required with passwordRegex"),
        ({"minimumPasswordAgeDays": 30, "passwordExpiresDays": 30}, "must be less than passwordExpiresDays"),
        ({"lockoutFailureAttempts": 0}, "lockoutFailureAttempts: Input should be greater than or equal to 1"),
    ],
)
def test_mistakes_are_named(rules: dict[str, object], message: str) -> None:
    text = HEADER + f"spec: {{services: {{keystone: {{securityCompliance: {rules}}}}}}}"
    with pytest.raises(InvalidCloud) as caught:
        load_cloud_text(text)
    assert any(message in problem for problem in caught.value.problems), caught.value.problems
    assert all(problem.startswith("spec.services.keystone.securityCompliance") for problem in caught.value.problems)


def test_a_regex_the_generated_passwords_fail_is_refused() -> None:
    spec = {"securityCompliance": {"passwordRegex": r"^.*[!@#].*$", "passwordRegexDescription": "a symbol"}}
    found = problems(cloud({"services": {"keystone": spec}}).spec)
    assert [p.field for p in found] == ["spec.services.keystone.securityCompliance.passwordRegex"]
    assert "refuses passwords stackops generates" in str(found[0])
    assert problems(cloud({"services": {"keystone": {"securityCompliance": AUDIT}}}).spec) == []


def test_generated_passwords_have_every_class_and_the_shapes_are_such_passwords() -> None:
    generated = [new_value(CredentialKind.PASSWORD) for _ in range(200)]
    assert all(has_every_class(p) and len(p) == 32 and p.isalnum() for p in generated)
    assert all(has_every_class(p) and len(p) == 32 and p.isalnum() for p in SAMPLE_PASSWORDS)
    assert not has_every_class("a" * 31 + "1")
    assert all(re.match(AUDIT["passwordRegex"], p) for p in generated)
