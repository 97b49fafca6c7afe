"""What the status keeps of an upgrade, and how a change riding along with spec.release is seen."""

from __future__ import annotations

from stackops.api.models import OpenStackCloudStatus, UpgradeStatus
from stackops.reconcile.status import dump_status, load_status
from stackops.upgrade.record import changed_sections, spec_hashes


def test_the_upgrade_goes_through_status_unchanged_under_the_crd_names() -> None:
    upgrade = UpgradeStatus(
        from_="2025.2",
        to="2026.1",
        phase="Upgrading",
        completed=["preflight", "mariadb/roll"],
        rollback_to="2025.2",
        step=3,
        steps=17,
        service="k",
        current="x",
    )
    dumped = dump_status(OpenStackCloudStatus(upgrade=upgrade, spec_hashes={"images": "x"}))
    assert dumped["upgrade"]["from"] == "2025.2" and dumped["upgrade"]["to"] == "2026.1"
    assert dumped["upgrade"]["rollbackTo"] == "2025.2" and dumped["specHashes"] == {"images": "x"}
    assert load_status(dumped).upgrade == upgrade
    closed = dump_status(OpenStackCloudStatus(upgrade=UpgradeStatus(from_="2025.2", to="2026.1", phase="Upgrading")))
    assert "rollbackTo" not in closed["upgrade"]
    assert load_status(closed).upgrade == UpgradeStatus(from_="2025.2", to="2026.1", phase="Upgrading")
    assert load_status(None).upgrade is None and load_status({}).upgrade is None
    # nothing that was not seen is written: a new cloud's status has no empty maps
    assert set(dump_status(OpenStackCloudStatus(observed_generation=1))) == {
        "observedGeneration",
        "phase",
        "conditions",
        "services",
    }


def test_only_what_changes_the_cloud_counts_and_the_section_is_named() -> None:
    spec = {"release": "2025.2", "services": {"keystone": {"replicas": 1}, "glance": {}}, "images": {"tag": "x"}}
    recorded = spec_hashes(spec)
    assert set(recorded) == {"services.keystone", "services.glance", "images"}
    moved = {**spec, "release": "2026.1", "paused": True, "deletionPolicy": "Delete"}
    assert changed_sections(recorded, moved) == []
    edited = {**moved, "services": {"keystone": {"replicas": 2}, "glance": {}, "heat": {"enabled": True}}}
    assert changed_sections(recorded, edited) == ["spec.services.heat", "spec.services.keystone"]
    assert changed_sections(recorded, {"release": "2026.1"}) == [
        "spec.images",
        "spec.services.glance",
        "spec.services.keystone",
    ]
