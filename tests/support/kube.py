"""The one in-memory Kubernetes API the unit tests run stackops against (the real control plane is
in tests/cluster).

It stores objects by (kind, namespace, name), answers label selectors, applies merge patches as the
API server does (null removes a key), and records every write. What a cluster does by itself (Jobs
complete, pods roll out) happens only in settle(), so a test decides what is finished when.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from stackops.kube.client import Kube, Obj
from stackops.kube.kinds import Kind


def merged(target: Any, patch: Any) -> Any:
    """`patch` applied to `target` as a JSON merge patch (RFC 7386)."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merged(result.get(key), value)
    return result


def _matches(obj: Obj, selector: str) -> bool:
    labels = obj["metadata"].get("labels") or {}
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


class FakeKube(Kube):
    """What stackops.kube.client.Kube does, in memory: a Kube whose every request is overridden (it has no
    API client), so it goes wherever the operator takes a Kube and mypy holds it to Kube's signatures."""

    def __init__(self) -> None:  # no super().__init__: nothing here talks to an API server
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.applied: list[tuple[str, str]] = []  # (kind, name), in order
        self.deleted: list[tuple[str, str]] = []
        self.patches: list[tuple[str, str, str | None, Obj]] = []  # (kind, name, subresource, patch)
        self.refuse_status = False  # an operator killed before it wrote the status: its writes fail

    def writes(self) -> int:
        return len(self.applied) + len(self.deleted) + len(self.patches)

    def forget_writes(self) -> None:
        self.applied.clear()
        self.deleted.clear()
        self.patches.clear()

    def get(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        found = self.objects.get((kind.kind, namespace, name))
        return copy.deepcopy(found) if found else None

    def list(self, kind: Kind, namespace: str, selector: str = "", *, fields: str = "", limit: int = 0) -> list[Obj]:
        found = [
            copy.deepcopy(o)
            for (k, ns, _), o in self.objects.items()
            if k == kind.kind and ns == namespace and _matches(o, selector)
        ]
        return found[:limit] if limit else found

    def apply(self, kind: Kind, obj: Obj) -> Obj:
        key = (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])
        old = self.objects.get(key)
        stored = copy.deepcopy(obj)
        generation = (old or {}).get("metadata", {}).get("generation", 0)
        changed = old is None or old.get("spec") != obj.get("spec")
        stored["metadata"]["generation"] = generation + 1 if changed else generation
        stored["status"] = {} if changed else (old or {}).get("status", {})
        self.objects[key] = stored
        self.applied.append((obj["kind"], obj["metadata"]["name"]))
        return copy.deepcopy(stored)

    def create(self, kind: Kind, obj: Obj) -> Obj:
        return self.apply(kind, {**obj, "kind": kind.kind, "metadata": {**obj["metadata"], "resourceVersion": "1"}})

    def merge_patch(self, kind: Kind, namespace: str, name: str, patch: Obj, subresource: str | None = None) -> Obj:
        if subresource == "status" and self.refuse_status:
            raise ConnectionResetError("the operator died before it wrote the status")
        key = (kind.kind, namespace, name)
        # a resourceVersion in the patch makes it a compare-and-swap, as on an API server
        version = self.objects[key]["metadata"].get("resourceVersion")
        expected = (patch.get("metadata") or {}).get("resourceVersion")
        if expected is not None and expected != version:
            raise ApiException(status=409, reason="Conflict")
        self.objects[key] = merged(self.objects[key], patch)
        if version is not None:
            self.objects[key]["metadata"]["resourceVersion"] = str(int(version) + 1)
        self.patches.append((kind.kind, name, subresource, copy.deepcopy(patch)))
        return copy.deepcopy(self.objects[key])

    def delete(self, kind: Kind, namespace: str, name: str, propagation: str = "Background") -> bool:
        self.deleted.append((kind.kind, name))
        return self.objects.pop((kind.kind, namespace, name), None) is not None

    # -- what the cluster does ----------------------------------------------------------------

    def settle(self, fail: str | None = None) -> None:
        """Every Job completes (a Job whose name starts with `fail` fails), every workload rolls out."""
        for (kind, _, name), obj in self.objects.items():
            if kind == "Job" and not obj["status"]:
                failed = fail is not None and name.startswith(fail)
                condition = {"type": "Failed" if failed else "Complete", "status": "True", "reason": "BackoffLimit"}
                obj["status"] = {"conditions": [condition]}
            elif kind in ("Deployment", "StatefulSet"):
                replicas = obj["spec"].get("replicas", 1)
                obj["status"] = {
                    "observedGeneration": obj["metadata"]["generation"],
                    "readyReplicas": replicas,
                    "updatedReplicas": replicas,
                    "availableReplicas": replicas,
                }
            elif kind == "DaemonSet":
                obj["status"] = {"observedGeneration": obj["metadata"]["generation"], "desiredNumberScheduled": 0}

    def settle_only(self, *names: str) -> None:
        """Only the workloads and Jobs named (by prefix) become ready; the rest stay as they are."""
        others = {k: o for k, o in self.objects.items() if not k[2].startswith(names)}
        saved = {k: copy.deepcopy(o.get("status")) for k, o in others.items()}
        self.settle()
        for key, status in saved.items():
            self.objects[key]["status"] = status
