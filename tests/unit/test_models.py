from __future__ import annotations

import pytest

from stackops.api.models import check_release_change
from stackops.api.releases import DEFAULT_RELEASE
from stackops.api.validation import InvalidCloud, load_cloud_text
from tests.conftest import cloud


def test_a_cloud_with_only_a_release_is_a_complete_small_cloud() -> None:
    spec = cloud({"release": "2026.1"}).spec
    assert spec.region == "RegionOne"
    assert spec.infrastructure.database.replicas == 1
    assert spec.services.keystone.enabled and spec.services.keystone.replicas == 1
    assert spec.nodes.control_plane.match_labels == {"stackops.dev/control-plane": "true"}
    assert spec.deletion_policy == "Retain"


def test_release_defaults_to_the_default_release() -> None:
    assert cloud({}).spec.release == DEFAULT_RELEASE == "2026.1"


def _problems(text: str) -> list[str]:
    with pytest.raises(InvalidCloud) as caught:
        load_cloud_text(text)
    return caught.value.problems


HEADER = "apiVersion: stackops.dev/v1alpha1\nkind: OpenStackCloud\nmetadata: {name: demo}\n"


def test_unknown_field_is_named_with_its_path() -> None:
    assert _problems(HEADER + "spec: {services: {keystone: {replicaz: 2}}}") == [
        "spec.services.keystone.replicaz: unknown field"
    ]


def test_wrong_type_is_named_with_its_path() -> None:
    problems = _problems(HEADER + "spec: {services: {keystone: {replicas: many}}}")
    assert len(problems) == 1 and problems[0].startswith("spec.services.keystone.replicas: ")


def test_unsupported_release_lists_the_supported_ones() -> None:
    assert _problems(HEADER + "spec: {release: '2024.1'}") == [
        "spec.release: unsupported release '2024.1' (supported: 2025.1, 2025.2, 2026.1, 2026.2)"
    ]


def test_every_problem_is_reported_not_just_the_first() -> None:
    problems = _problems(HEADER + "spec: {release: '2024.1', region: '', paused: maybe}")
    assert {p.split(":")[0] for p in problems} == {"spec.release", "spec.region", "spec.paused"}


def test_two_galera_replicas_are_refused() -> None:
    problems = _problems(HEADER + "spec: {infrastructure: {database: {replicas: 2}}}")
    assert problems == [
        "spec.infrastructure.database.replicas: a Galera cluster needs 1 or at least 3 replicas (2 cannot keep quorum)"
    ]


def test_config_override_that_ini_cannot_hold_is_refused_at_validation() -> None:
    problems = _problems(HEADER + "spec: {services: {keystone: {config: {DEFAULT: {debug: {nested: 1}}}}}}")
    assert len(problems) == 1
    assert problems[0].startswith("spec.services.keystone.config: DEFAULT.debug: a mapping cannot be an INI value")


def test_cloud_name_must_prefix_valid_object_names() -> None:
    problems = _problems(HEADER.replace("name: demo", "name: 9Demo") + "spec: {}")
    assert problems[0].startswith("metadata.name: ")


def test_unparseable_yaml_names_the_line() -> None:
    problems = _problems("spec: [unclosed\n")
    assert len(problems) == 1 and "line 2" in problems[0] and "YAML does not parse" in problems[0]


def test_http_route_exposure_needs_a_gateway() -> None:
    problems = _problems(HEADER + "spec: {endpoints: {publicDomain: example.com, exposure: HTTPRoute}}")
    assert problems == ["spec.endpoints: gateway: required when exposure is HTTPRoute"]


def test_operator_refuses_the_same_release_changes_as_the_api_server() -> None:
    check_release_change("2025.2", "2026.1")
    with pytest.raises(ValueError, match="downgrade"):
        check_release_change("2026.1", "2025.2")


@pytest.mark.parametrize("value", ["0", "'0%'", "'101%'", "'ten'", "-1"])
def test_a_max_unavailable_that_would_stall_or_mean_nothing_is_refused(value: str) -> None:
    problems = _problems(HEADER + f"spec: {{nodes: {{compute: {{maxUnavailable: {value}}}}}}}")
    assert len(problems) == 1 and problems[0].startswith("spec.nodes.compute.maxUnavailable: "), problems
    assert "a number of nodes (at least 1) nor a percentage from 1% to 100%" in problems[0]


def test_each_host_agent_rolls_as_many_nodes_at_once_as_its_node_role_allows() -> None:
    from stackops.credentials import Credentials
    from stackops.plan import plan, required_credentials

    target = cloud({"nodes": {"compute": {"maxUnavailable": "25%"}, "gateway": {"maxUnavailable": 2}}})
    rendered = plan(target, Credentials.placeholders(required_credentials(target.spec)))
    rolling = {
        o["metadata"]["name"]: o["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"]
        for o in rendered.objects()
        if o["kind"] == "DaemonSet"
    }
    assert rolling == {
        "demo-nova-compute": "25%",
        "demo-neutron-ovn-controller": "25%",
        "demo-neutron-metadata-agent": "25%",
        "demo-neutron-ovn-controller-gateway": 2,
        "demo-cinder-volume-lvm": 1,  # storage nodes keep the default
    }


def test_a_node_role_given_only_its_max_unavailable_keeps_its_role_label() -> None:
    nodes = cloud({"nodes": {"compute": {"maxUnavailable": 3}, "storage": {"matchLabels": {"disk": "lvm"}}}}).spec.nodes
    assert nodes.compute.match_labels == {"stackops.dev/compute": "true"} and nodes.compute.max_unavailable == 3
    assert nodes.storage.match_labels == {"disk": "lvm"} and nodes.storage.max_unavailable == 1
    assert nodes.gateway.match_labels == {"stackops.dev/gateway": "true"}
