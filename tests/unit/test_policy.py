"""Policy overrides: checked against the rules each service defines at the cloud's release, written
to policy.yaml beside the service's config file, and the enforcement flags into [oslo_policy]."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from stackops.api.releases import SUPPORTED_RELEASES
from stackops.plan import plan, problems
from stackops.services import all_services, policy
from tests.conftest import ROOT, cloud
from tests.support.rendered import secret_data

ENFORCING = sorted(s.name for s in all_services() if policy.policy_config_file(s))


def test_the_services_that_enforce_policy() -> None:
    assert ENFORCING == [
        "aodh", "barbican", "cinder", "designate", "glance", "gnocchi", "heat", "keystone", "manila", "neutron",
        "nova", "octavia", "placement",
    ]  # fmt: skip


@pytest.mark.parametrize("release", SUPPORTED_RELEASES)
def test_every_release_names_the_rules_of_every_enforcing_service(release: str) -> None:
    defined = policy.release_policies(release)
    assert sorted(defined) == ENFORCING
    for name, entry in defined.items():
        assert len(entry.rules) > 15, name  # it could fail: an empty list would accept nothing (aodh has 18)
    assert "identity:list_projects" in defined["keystone"].rules
    assert "os_compute_api:servers:create" in defined["nova"].rules


def test_a_rule_the_service_does_not_define_is_refused_naming_it() -> None:
    spec = {"services": {"keystone": {"policy": {"identity:list_projects": "role:admin", "identity:no_such": "!"}}}}
    found = problems(cloud(spec).spec)
    assert [str(p) for p in found] == [
        "spec.services.keystone.policy.identity:no_such: keystone defines no policy rule 'identity:no_such' "
        "at release 2026.1 (keystone 29.1.0)"
    ]


def test_rules_are_checked_at_the_clouds_release() -> None:
    # glance 33 (2026.2) has rules glance 32 (2026.1) does not: named by the files, so taken from them
    new = sorted(policy.release_policies("2026.2")["glance"].rules - policy.release_policies("2026.1")["glance"].rules)
    assert new
    spec = {"services": {"glance": {"policy": {new[0]: "role:admin"}}}}
    assert problems(cloud({**spec, "release": "2026.2"}).spec) == []
    assert [p.field for p in problems(cloud(spec).spec)] == [f"spec.services.glance.policy.{new[0]}"]


def test_overrides_become_policy_yaml_copied_beside_the_config_file_by_the_control_plane() -> None:
    rules = {
        "os_compute_api:os-quota-sets:update": "role:admin and not role:project-admin",
        "context_is_admin": "role:admin",
    }
    rendered = plan(cloud({"services": {"nova": {"policy": rules}}}))
    data = secret_data(rendered, "demo-nova-config")
    assert yaml.safe_load(data["policy.yaml"]) == rules
    for component in ("api", "conductor", "scheduler"):
        files = json.loads(data[f"nova-{component}.json"])["config_files"]
        policy_entry = next(f for f in files if f["source"].endswith("/policy.yaml"))
        assert policy_entry["dest"] == "/etc/nova/policy.yaml" and policy_entry["owner"] == "nova"
    # host agents do not enforce API policy: their Secret has no policy file and does not change
    compute = [o for o in rendered.objects() if o["kind"] == "Secret" and "compute" in o["metadata"]["name"]]
    assert compute and all("policy.yaml" not in o["stringData"] for o in compute)
    names = {c["metadata"]["name"] for c in compute}
    assert compute == [o for o in plan(cloud()).objects() if o["metadata"]["name"] in names]


def test_no_overrides_no_policy_file() -> None:
    for obj in plan(cloud()).objects():
        if obj["kind"] == "Secret":
            assert "policy.yaml" not in obj.get("stringData", {}), obj["metadata"]["name"]


def test_enforcement_flags_go_to_oslo_policy_only_when_set() -> None:
    spec = {"services": {"cinder": {"enforceScope": True, "enforceNewDefaults": True}, "nova": {"enforceScope": False}}}
    rendered = plan(cloud(spec))
    cinder = secret_data(rendered, "demo-cinder-config")["cinder.conf"]
    assert "[oslo_policy]\nenforce_new_defaults = true\nenforce_scope = true\n" in cinder
    nova = secret_data(rendered, "demo-nova-config")["nova.conf"]
    assert "[oslo_policy]\nenforce_scope = false\n" in nova
    assert "[oslo_policy]" not in secret_data(plan(cloud()), "demo-nova-config")["nova.conf"]


def test_a_flag_set_twice_is_refused() -> None:
    spec = {"services": {"nova": {"enforceScope": False, "config": {"oslo_policy": {"enforce_scope": True}}}}}
    assert [str(p) for p in problems(cloud(spec).spec)] == [
        "spec.services.nova.config.oslo_policy.enforce_scope: set either this or spec.services.nova.enforceScope, "
        "not both"
    ]


def test_the_documented_defaults_are_the_packages() -> None:
    text = (ROOT / "docs" / "policy.md").read_text()
    for release in SUPPORTED_RELEASES:
        for name, entry in policy.release_policies(release).items():
            row = rf"\| {re.escape(release)} \| {name} \| {re.escape(entry.package)} \| {len(entry.rules)} \| "
            row += rf"{str(entry.enforce_scope).lower()} \| {str(entry.enforce_new_defaults).lower()} \|"
            assert re.search(row, text), f"docs/policy.md lacks: {release} {name}"


def test_rule_files_are_package_data() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"services/policies/*.json"' in pyproject
    assert all((Path(policy.RULES_DIR) / f"{r}.json").is_file() for r in SUPPORTED_RELEASES)
