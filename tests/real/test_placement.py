"""Placement for real: database and registration through the stackops Jobs' own command, db-sync from
the rendered config.json, the API from openstack-placement 15 (2026.1); openstacksdk, as the
placement service user, reaches it through the catalog."""

from __future__ import annotations

from stackops.services.placement import SERVICE as PLACEMENT
from tests.real.deployment import Deployment


def test_placement_user_lists_resource_providers_through_the_catalog(placement: str, deployed: Deployment) -> None:
    conn = deployed.connect("placement", PLACEMENT.keystone_password_key, "service")
    catalog = {entry["type"]: entry for entry in conn.service_catalog}
    assert {e["interface"]: e["url"] for e in catalog["placement"]["endpoints"]} == {
        "public": placement,
        "internal": placement,
    }
    before = {p.name for p in conn.placement.resource_providers()}  # nova's hypervisors, if its tests ran
    created = conn.placement.create_resource_provider(name="stackops-test-provider")
    assert {p.name for p in conn.placement.resource_providers()} == before | {"stackops-test-provider"}
    conn.placement.delete_resource_provider(created)
    assert {p.name for p in conn.placement.resource_providers()} == before


def test_registration_is_idempotent(placement: str, deployed: Deployment) -> None:
    again = deployed.stackops_job("placement", "registration")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "register-service: nothing to change"
