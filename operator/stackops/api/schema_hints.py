"""Extra OpenAPI keywords pydantic cannot express, attached to fields and used by CRD generation."""

from __future__ import annotations

from typing import Any

from stackops.api.releases import SUPPORTED_RELEASES, allowed_upgrades

# The only place the schema gives up on structure: oslo overrides hold whatever oslo.config accepts.
FREE_FORM: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
}

# Kubernetes quantities: `cpu: 1` and `cpu: 500m` are both valid.
INT_OR_STRING: dict[str, Any] = {"x-kubernetes-int-or-string": True}


def release_transition_rules() -> list[dict[str, str]]:
    """CEL transition rules on the whole OpenStackCloud (they read its status), generated from the
    Python upgrade table.

    spec.release never goes down, except back to the deployed release (status.release) while no
    upgrade has contracted a database: an upgrade under way then shows status.upgrade.rollbackTo.
    It goes up at most as far as allowed_upgrades permits from the deployed release (from the old
    spec.release while nothing is deployed), so chained edits cannot skip a release either.
    """
    spec, old, status = "self.spec.release", "oldSelf.spec.release", "self.status"
    deployed = f"has({status}) && has({status}.release)"
    base = f"({deployed} ? {status}.release : {old})"
    chain = "true"
    for series in reversed(SUPPORTED_RELEASES):
        targets = ", ".join(f"'{t}'" for t in (series, *allowed_upgrades(series)))
        chain = f"{base} == '{series}' ? {spec} in [{targets}] : ({chain})"
    no_contract = f"!has({status}.upgrade) || has({status}.upgrade.rollbackTo)"
    rollback = f"{deployed} && {spec} == {status}.release && ({no_contract})"
    return [
        {
            "rule": f"{spec} >= {old} || ({rollback})",
            "message": "spec.release cannot be downgraded; it may go back to the deployed release only while "
            "an upgrade has contracted no database (status.upgrade.rollbackTo)",
            "reason": "FieldValueForbidden",
            "fieldPath": ".spec.release",
        },
        {
            "rule": f"{spec} <= {old} || ({chain})",
            "message": "spec.release may move to the next release, or from a SLURP release (YYYY.1) to the next "
            "SLURP release, counted from the deployed release (status.release); it cannot skip further",
            "reason": "FieldValueForbidden",
            "fieldPath": ".spec.release",
        },
    ]
