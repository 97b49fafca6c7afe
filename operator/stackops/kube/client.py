"""A small, typed face on the Kubernetes API for what the operator does: get, list, apply, delete.

Objects stay plain dicts end to end (as rendered), and paths come from the static kind table, so
the operator makes no discovery requests and every request it makes is one the code shows.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from stackops.kube.kinds import Kind

FIELD_MANAGER = "stackops"
Obj = dict[str, Any]


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        request = self.api.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*request, _request_timeout=30)
        response.read()
        if not 200 <= response.status <= 299:
            self.api.response_deserialize(response, {})  # raises ApiException with status and body
        result = json.loads(response.data or b"{}")
        return result if isinstance(result, dict) else {}

    def get(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        try:
            return self._call("GET", kind.path(namespace, name))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def list(self, kind: Kind, namespace: str, selector: str = "", *, fields: str = "", limit: int = 0) -> list[Obj]:
        """Objects of `kind` matching label and field selectors (the first `limit` of them, when given);
        none when the kind is not served (no Gateway API)."""
        wanted = (("labelSelector", selector), ("fieldSelector", fields), ("limit", str(limit) if limit else ""))
        query = [(key, value) for key, value in wanted if value]
        try:
            result = self._call("GET", kind.path(namespace), query=query)
        except ApiException as error:
            if error.status == 404:
                return []
            raise
        items: list[Obj] = result.get("items", [])
        for item in items:  # lists omit these; readiness and pruning need them
            item.setdefault("apiVersion", kind.api_version)
            item.setdefault("kind", kind.kind)
        return items

    def apply(self, kind: Kind, obj: Obj) -> Obj:
        """Server-side apply as field manager `stackops`, taking over fields from other managers."""
        meta = obj["metadata"]
        return self._call(
            "PATCH",
            kind.path(meta.get("namespace"), meta["name"]),
            body=json.dumps(obj),
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )

    def create(self, kind: Kind, obj: Obj) -> Obj:
        return self._call("POST", kind.path(obj["metadata"].get("namespace")), body=obj)

    def merge_patch(self, kind: Kind, namespace: str, name: str, patch: Obj, subresource: str | None = None) -> Obj:
        return self._call(
            "PATCH",
            kind.path(namespace, name, subresource),
            body=patch,
            content_type="application/merge-patch+json",
        )

    def delete(self, kind: Kind, namespace: str, name: str, propagation: str = "Background") -> bool:
        """Delete; False when it was already gone."""
        try:
            self._call("DELETE", kind.path(namespace, name), body={"propagationPolicy": propagation})
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True
