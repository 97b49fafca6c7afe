"""The OpenStackCloud reference in Markdown, generated from the same schema as the CRD."""

from __future__ import annotations

from typing import Any

from stackops.api.crd import crd


def _type(node: dict[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int or string"
    if node.get("x-kubernetes-preserve-unknown-fields"):
        return "free-form"
    kind = str(node.get("type", ""))
    if kind == "array":
        return f"list of {_type(node.get('items', {}))}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map of {_type(node['additionalProperties'])}"
    return kind


def _constraints(node: dict[str, Any]) -> str:
    parts = []
    if "enum" in node:
        parts.append("one of " + ", ".join(f"`{v}`" for v in node["enum"]))
    if "minimum" in node or "maximum" in node:
        parts.append(f"{node.get('minimum', '')}..{node.get('maximum', '')}")
    if "minLength" in node:
        parts.append(f"min length {node['minLength']}")
    if "pattern" in node:
        parts.append(f"pattern `{node['pattern']}`")
    for rule in node.get("x-kubernetes-validations", []):
        parts.append(str(rule["message"]))
    return "; ".join(parts)


def _rows(node: dict[str, Any], path: str) -> list[str]:
    description = str(node.get("description", "")).replace("|", "\\|").replace("\n", " ")
    rows = [f"| `{path}` | {_type(node)} | {_constraints(node)} | {description} |"]
    for name, child in node.get("properties", {}).items():
        rows += _rows(child, f"{path}.{name}")
    additional = node.get("additionalProperties")
    if isinstance(additional, dict) and "properties" in additional:
        rows += _rows(additional, f"{path}.<name>")
    return rows


def reference_markdown() -> str:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    lines = [
        "# OpenStackCloud reference",
        "",
        "Generated from the models by `stackops docs --output docs/reference.md`; do not edit by hand.",
        "`apiVersion: stackops.dev/v1alpha1`, `kind: OpenStackCloud`, namespaced.",
        "",
    ]
    for part in ("spec", "status"):
        lines += [f"## {part}", "", "| field | type | allowed | description |", "|---|---|---|---|"]
        lines += _rows(schema[part], part)
        lines.append("")
    return "\n".join(lines)
