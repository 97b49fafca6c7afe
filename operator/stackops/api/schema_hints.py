"""Extra OpenAPI keywords pydantic cannot express, attached to fields and used by CRD generation."""

from __future__ import annotations

from typing import Any

from pydantic import JsonValue

from stackops.api.releases import SUPPORTED_RELEASES, allowed_upgrades

# The only place the schema gives up on structure: oslo overrides hold whatever oslo.config accepts.
FREE_FORM: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
}

# Kubernetes quantities: `cpu: 1` and `cpu: 500m` are both valid.
INT_OR_STRING: dict[str, Any] = {"x-kubernetes-int-or-string": True}


def release_transition_rules() -> list[JsonValue]:
    """CEL transition rules for spec.release, generated from the Python upgrade table."""
    chain = "true"
    for series in reversed(SUPPORTED_RELEASES):
        targets = ", ".join(f"'{t}'" for t in (series, *allowed_upgrades(series)))
        chain = f"oldSelf == '{series}' ? self in [{targets}] : ({chain})"
    return [
        {
            "rule": "self >= oldSelf",
            "message": "spec.release cannot be downgraded",
            "reason": "FieldValueForbidden",
        },
        {
            "rule": chain,
            "message": "spec.release may move to the next release, or from a SLURP release (YYYY.1) "
            "to the next SLURP release; it cannot skip further",
            "reason": "FieldValueForbidden",
        },
    ]
