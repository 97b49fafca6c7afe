"""A cloud taken pass by pass through the operator's own pass (stackops.reconcile.cloud_pass.run_pass)
against the shared in-memory API: the status each pass writes is what the next one reads."""

from __future__ import annotations

import copy
from typing import Any

from stackops.api.models import GROUP, KIND, VERSION, OpenStackCloud
from stackops.api.validation import parse_cloud
from stackops.kube.client import Obj
from stackops.reconcile.cloud_pass import PassResult, run_pass
from stackops.reconcile.state import OperatorState
from stackops.reconcile.transitions import Transition
from tests.support.kube import FakeKube

UID = "8d5c0f5e-0000-4000-8000-000000000001"
NOW = "2026-11-22T00:00:00Z"
# The cloud of examples/minimal.yaml before compute, networking and the rest: its passes stay quick.
SMALL = {"services": {name: {"enabled": False} for name in ("nova", "neutron", "cinder", "horizon", "heat")}}


class CloudPasses:
    """One cloud in a FakeKube, and the operator state its passes share."""

    def __init__(self, spec: dict[str, Any], name: str = "demo", namespace: str = "openstack") -> None:
        self.kube = FakeKube()
        self.events: list[Transition] = []
        self.state = OperatorState(
            self.kube,
            post_event=lambda body, event: self.events.append(event),
            clock=lambda: NOW,
        )
        self.spec: dict[str, Any] = copy.deepcopy(spec)
        self.key = (KIND, namespace, name)
        self.kube.objects[self.key] = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "metadata": {"name": name, "namespace": namespace, "uid": UID, "generation": 1},
            "spec": copy.deepcopy(spec),
        }

    @property
    def stored(self) -> Obj:
        """The cloud object as the API server holds it (a test may change it: a user, a health round)."""
        return self.kube.objects[self.key]

    @property
    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.stored.setdefault("status", {})
        return status

    @property
    def cloud(self) -> OpenStackCloud:
        return parse_cloud({**self.stored, "spec": self.spec})

    def reconcile(self, *, store_spec: bool = True) -> PassResult:
        """One pass with `spec`; `store_spec=False` leaves the API server's copy as it is (a change
        the API server accepted after the pass began)."""
        if store_spec and self.stored["spec"] != self.spec:
            self.stored["spec"] = copy.deepcopy(self.spec)
            self.stored["metadata"]["generation"] += 1
        body = {**copy.deepcopy(self.stored), "spec": copy.deepcopy(self.spec)}
        return run_pass(self.state, body, UID)

    def converge(self, limit: int = 60, fail: str | None = None) -> PassResult:
        """Passes, the cluster settling between them, until nothing waits (or a step failed)."""
        for _ in range(limit):
            result = self.reconcile()
            if result.failure is not None:
                raise AssertionError(f"the pass failed: {result.failure}")
            if result.current is None or result.current.state == "Failed":
                return result
            self.kube.settle(fail)
        raise AssertionError(f"no end after {limit} passes: {self.status}")

    def condition(self, kind: str) -> dict[str, Any]:
        return next(c for c in self.status["conditions"] if c["type"] == kind)

    def reasons(self) -> list[str]:
        return [event.reason for event in self.events]
