"""The OpenStackCloud CRD, generated from the pydantic models.

pydantic speaks JSON Schema; the API server wants a *structural* OpenAPI v3 schema: no $ref, no
nullable unions, a type on every node, free-form data only where marked. This module translates
one into the other so the models stay the only definition of the API.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from stackops.api.models import (
    CLOUD_NAME_MAX,
    CLOUD_NAME_PATTERN,
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    OpenStackCloudSpec,
    OpenStackCloudStatus,
)
from stackops.api.schema_hints import release_transition_rules

# Keywords that describe values and survive translation unchanged.
_KEPT = (
    "description", "enum", "minimum", "maximum", "minLength", "maxLength", "pattern",
    "minItems", "maxItems", "format", "x-kubernetes-validations", "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
)  # fmt: skip


# The cloud name prefixes every object of the cloud, so it must leave room for their suffixes.
NAME_RULE = {
    "rule": f"self.metadata.name.size() <= {CLOUD_NAME_MAX} && self.metadata.name.matches('{CLOUD_NAME_PATTERN}')",
    "message": f"metadata.name must be a DNS label of at most {CLOUD_NAME_MAX} characters starting with a letter",
}


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target = defs[node["$ref"].split("/")[-1]]
        return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _describe_default(schema: dict[str, Any], default: Any) -> None:
    if default in (None, {}, []) or "default" in schema:
        return
    text = json.dumps(default, sort_keys=True)
    schema["description"] = f"{schema.get('description', '').rstrip('.')}. Default: {text}".lstrip(". ")


def structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Translate one pydantic JSON Schema node into a structural OpenAPI v3 node."""
    node = _resolve(node, defs)
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        variants = [_resolve(v, defs) for v in node["anyOf"] if v.get("type") != "null"]
        if len(variants) == 1:  # Optional[X]: absence already means None
            merged = {**variants[0], **{k: v for k, v in node.items() if k not in ("anyOf", "default")}}
            return structural(merged, defs)
    out: dict[str, Any] = {k: node[k] for k in _KEPT if k in node}
    if "default" in node and node.get("x-stackops-default-in-crd"):
        out["default"] = node["default"]
    _describe_default(out, node.get("default"))
    if node.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        return out
    if "const" in node:
        out["enum"] = [node["const"]]
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        out["type"] = "object"
        if "properties" in node:
            out["properties"] = {name: structural(sub, defs) for name, sub in node["properties"].items()}
            if node.get("required"):
                out["required"] = list(node["required"])
        elif isinstance(node.get("additionalProperties"), dict):
            out["additionalProperties"] = structural(node["additionalProperties"], defs)
    elif kind == "array":
        out["type"] = "array"
        out["items"] = structural(node.get("items", {}), defs)
    elif kind is not None:
        out["type"] = kind
    elif "enum" in out:
        out["type"] = "string"
    elif not out.get("x-kubernetes-preserve-unknown-fields"):
        raise ValueError(f"schema node without a type: {node}")
    return out


def model_schema(model: type[OpenStackCloudSpec] | type[OpenStackCloudStatus]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return structural(schema, schema.get("$defs", {}))


def crd() -> dict[str, Any]:
    spec_schema = model_schema(OpenStackCloudSpec)
    spec_schema["description"] = "The desired cloud."
    status_schema = model_schema(OpenStackCloudStatus)
    status_schema["description"] = "What stackops observed; written by the operator only."
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": ["osc", "cloud"],
                "categories": ["stackops"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Release", "type": "string", "jsonPath": ".status.release"},
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {
                            "name": "Ready",
                            "type": "string",
                            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "An OpenStack cloud deployed and run by stackops.",
                            # the release rules read status.release: they live on the whole object
                            "x-kubernetes-validations": [NAME_RULE, *release_transition_rules()],
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def crd_yaml() -> str:
    return yaml.safe_dump(crd(), sort_keys=False, width=120)
