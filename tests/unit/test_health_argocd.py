"""The Argo CD health check in docs/, run in Lua against statuses stackops' own builder writes."""

from __future__ import annotations

from typing import Any

from stackops.health.monitor import DEGRADED, HEALTHY, CloudHealth, ServiceHealth
from stackops.kube.engine import Outcome, StepState
from stackops.reconcile.errors import Failure
from tests.support.argocd import argocd_health
from tests.support.status import status_of

NOW = "2026-01-01T00:00:00Z"


def cloud(status: dict[str, Any] | None, generation: int = 1) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "stackops.dev/v1alpha1",
        "kind": "OpenStackCloud",
        "metadata": {"name": "demo", "namespace": "openstack", "generation": generation},
        "spec": {"release": "2026.1"},
    }
    if status is not None:
        obj["status"] = status
    return obj


def health(placement: ServiceHealth) -> CloudHealth:
    return CloudHealth("openstack", "demo", {"keystone": ServiceHealth(HEALTHY), "placement": placement})


READY = Outcome(
    steps=[StepState("keystone-api", "keystone", "Ready"), StepState("placement-api", "placement", "Ready")]
)


def test_each_phase_maps_to_the_argo_cd_status_with_the_reason() -> None:
    ready = status_of(None, 1, "2026.1", NOW, outcome=READY, health=health(ServiceHealth(HEALTHY)))
    assert argocd_health(cloud(ready)) == ("Healthy", "every service is deployed and healthy")

    waiting = Outcome(
        steps=[StepState("keystone-db-sync", "keystone", "Waiting", "waiting for job demo-keystone-db-sync-1a")]
    )
    deploying = status_of(None, 1, "2026.1", NOW, outcome=waiting)
    assert argocd_health(cloud(deploying)) == ("Progressing", "waiting for job demo-keystone-db-sync-1a")

    unhealthy = status_of(
        None, 1, "2026.1", NOW, outcome=READY, health=health(ServiceHealth(DEGRADED, "internal endpoint x: timed out"))
    )
    assert argocd_health(cloud(unhealthy)) == ("Degraded", "placement: internal endpoint x: timed out")

    failed_step = Outcome(
        steps=[StepState("placement-db-sync", "placement", "Failed", "job j failed: BackoffLimitExceeded")]
    )
    assert argocd_health(cloud(status_of(None, 1, "2026.1", NOW, outcome=failed_step)))[0] == "Degraded"

    invalid = status_of(None, 1, "2026.1", NOW, failure=Failure(True, "InvalidSpec", "spec.x: bad"))
    assert argocd_health(cloud(invalid)) == ("Degraded", "spec.x: bad")

    paused = status_of(ready, 1, "2026.1", NOW, paused=True)
    assert argocd_health(cloud(paused))[0] == "Suspended"


def test_a_spec_not_yet_looked_at_is_progressing_whatever_the_old_status_says() -> None:
    ready = status_of(None, 1, "2026.1", NOW, outcome=READY, health=health(ServiceHealth(HEALTHY)))
    assert argocd_health(cloud(ready, generation=2)) == (
        "Progressing",
        "waiting for stackops to look at the changed spec",
    )
    assert argocd_health(cloud(None))[0] == "Progressing"


def test_a_crash_loop_while_deploying_is_degraded() -> None:
    crash = CloudHealth(
        "openstack",
        "demo",
        {
            "memcached": ServiceHealth(
                DEGRADED, "pod demo-memcached-1 is crash-looping (container memcached, 4 restarts)"
            )
        },
    )
    waiting = Outcome(steps=[StepState("memcached", "memcached", "Waiting", "waiting for deployment demo-memcached")])
    status = status_of(None, 1, "2026.1", NOW, outcome=waiting, health=crash)
    assert status["phase"] == "Deploying"
    assert argocd_health(cloud(status)) == (
        "Degraded",
        "memcached: pod demo-memcached-1 is crash-looping (container memcached, 4 restarts)",
    )
