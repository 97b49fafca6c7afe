"""What the status keeps of an upgrade, and how a change riding along with spec.release is seen."""

from __future__ import annotations

from stackops.api.models import OpenStackCloudStatus
from stackops.upgrade.record import UpgradeRecord, changed_sections, spec_hashes


def test_the_record_goes_through_status_unchanged_and_loads_as_the_model() -> None:
    record = UpgradeRecord("2025.2", "2026.1", "Upgrading", ["preflight", "mariadb/roll"], "2025.2", 3, 17, "k", "x")
    dumped = record.dump()
    assert dumped["from"] == "2025.2" and dumped["to"] == "2026.1" and dumped["rollbackTo"] == "2025.2"
    assert UpgradeRecord.load(dumped) == record
    status = OpenStackCloudStatus.model_validate({"upgrade": dumped, "specHashes": {"images": "x"}})
    assert status.upgrade is not None and status.upgrade.from_ == "2025.2" and status.spec_hashes == {"images": "x"}
    closed = UpgradeRecord("2025.2", "2026.1", "Upgrading").dump()
    assert "rollbackTo" not in closed and UpgradeRecord.load(closed) == UpgradeRecord("2025.2", "2026.1", "Upgrading")
    assert UpgradeRecord.load(None) is None and UpgradeRecord.load({}) is None


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
