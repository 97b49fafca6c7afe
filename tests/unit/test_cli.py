"""The command as users run it: a real process, its exit status, stdout and stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

HEADER = "apiVersion: stackops.dev/v1alpha1\nkind: OpenStackCloud\nmetadata: {name: demo, namespace: openstack}\n"


def stackops(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackops.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def test_render_prints_every_object_in_apply_order() -> None:
    result = stackops("render", "-f", str(ROOT / "examples" / "minimal.yaml"))
    assert result.returncode == 0, result.stderr
    documents = list(yaml.safe_load_all(result.stdout))
    # each service's NetworkPolicies before its objects: the first service's come first of all
    kinds = [d["kind"] for d in documents]
    first = kinds.index("Secret")
    assert first > 0 and set(kinds[:first]) == {"NetworkPolicy"} and "Deployment" in kinds
    # services in dependency order, each one's Jobs in the order they must run
    jobs = [(d["metadata"]["labels"]["app.kubernetes.io/name"], d["metadata"]["labels"]["app.kubernetes.io/component"])
            for d in documents if d["kind"] == "Job"]  # fmt: skip
    services = list(dict.fromkeys(service for service, _ in jobs))
    assert services.index("keystone") < services.index("placement") < services.index("nova")
    assert services.index("neutron") < services.index("nova")
    # the deregistration of the services off by default comes once keystone serves
    assert [c for s, c in jobs if s == "keystone"] == ["database", "db-sync", "bootstrap", "deregistration"]
    assert [c for s, c in jobs if s == "nova"] == [
        "database", "messaging", "registration", "api-db-sync", "cell-setup", "db-sync"
    ]  # fmt: skip
    # the compute agents come last: after the control plane they report to
    assert (documents[-1]["kind"], documents[-1]["metadata"]["name"]) == ("DaemonSet", "demo-nova-compute")


def test_render_one_service_as_json() -> None:
    result = stackops("render", "-f", str(ROOT / "examples" / "minimal.yaml"), "--service", "keystone", "-o", "json")
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)["items"]
    assert items and {i["metadata"]["labels"]["app.kubernetes.io/name"] for i in items} == {"keystone"}


def test_render_reads_stdin() -> None:
    result = stackops("render", "-f", "-", stdin=HEADER + "spec: {release: '2025.2'}\n")
    assert result.returncode == 0 and "keystone:2025.2-ubuntu-noble" in result.stdout


def test_validate_accepts_the_examples() -> None:
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        result = stackops("validate", "-f", str(path))
        assert result.returncode == 0, result.stderr
        assert "is valid" in result.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, "cannot read: No such file or directory"),
        ("spec: [oops\n", "YAML does not parse"),
        (HEADER + "spec: {bogus: 1}\n", "spec.bogus: unknown field"),
        (HEADER + "spec: {paused: later}\n", "spec.paused: Input should be a valid boolean"),
        (HEADER + "spec: {release: '2023.2'}\n", "spec.release: unsupported release '2023.2'"),
        (
            HEADER + "spec: {services: {keystone: {config: {DEFAULT: {x: {y: 1}}}}}}\n",
            "spec.services.keystone.config: DEFAULT.x: a mapping cannot be an INI value",
        ),
        (
            HEADER + "spec: {services: {keystone: {resources: {api: {requests: {cpu: lots}}}}}}\n",
            "spec.services.keystone.resources.api.requests.cpu: 'lots' is not a Kubernetes quantity",
        ),
        (
            HEADER + "spec: {infrastructure: {database: {storage: {storageClassName: Fast_SSD}}}}\n",
            "spec.infrastructure.database.storage.storageClassName: 'Fast_SSD' is not a Kubernetes object name",
        ),
        (
            HEADER + "spec: {services: {nova: {policy: {'os_compute_api:no-such-rule': 'role:admin'}}}}\n",
            "spec.services.nova.policy.os_compute_api:no-such-rule: nova defines no policy rule",
        ),
        (
            HEADER + "spec: {services: {keystone: {resources: {web: {requests: {cpu: 1}}}}}}\n",
            "spec.services.keystone.resources.web: unknown component",
        ),
    ],
)
@pytest.mark.parametrize("command", ["render", "validate"])
def test_bad_input_gives_one_line_per_problem_and_exit_2(
    tmp_path: Path, command: str, text: str | None, expected: str
) -> None:
    path = tmp_path / "cloud.yaml"
    if text is not None:
        path.write_text(text)
    result = stackops(command, "-f", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [line for line in lines if line.startswith(f"{path}: ")]
    assert any(expected in line for line in lines), lines


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    path = tmp_path / "cloud.yaml"
    path.write_text(HEADER + "spec: {bogus: 1, region: '', infrastructure: {database: {replicas: 2}}}\n")
    result = stackops("validate", "-f", str(path))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 3


def test_unknown_service_is_refused() -> None:
    result = stackops("render", "-f", str(ROOT / "examples" / "minimal.yaml"), "--service", "nope")
    assert result.returncode == 2 and result.stderr.startswith("--service: unknown service 'nope'")


def test_crds_writes_the_committed_file(tmp_path: Path) -> None:
    result = stackops("crds", "--output-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    written = (tmp_path / "stackops.dev_openstackclouds.yaml").read_text()
    assert written == (ROOT / "crds" / "stackops.dev_openstackclouds.yaml").read_text()


def test_create_database_without_its_environment_is_a_usage_error() -> None:
    result = stackops("job", "create-database", "--host", "h", "--database", "d", "--user", "u")
    assert result.returncode == 2
    assert "environment: neither STACKOPS_DB_ADMIN_PASSWORD nor STACKOPS_DB_ADMIN_PASSWORD_FILE is set" in result.stderr


def test_a_job_reads_secret_values_from_the_files_its_variables_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stackops.cli import UserError, _job_environment

    (tmp_path / "password").write_text("s3cret\n")
    monkeypatch.setenv("STACKOPS_DB_PASSWORD_FILE", str(tmp_path / "password"))
    monkeypatch.setenv("STACKOPS_DB_ADMIN_USER", "root")
    found = _job_environment("STACKOPS_DB_ADMIN_USER", "STACKOPS_DB_PASSWORD")
    assert found == {"STACKOPS_DB_ADMIN_USER": "root", "STACKOPS_DB_PASSWORD": "s3cret\n"}  # the value as it is
    monkeypatch.setenv("STACKOPS_DB_PASSWORD_FILE", str(tmp_path / "absent"))
    with pytest.raises(UserError) as raised:
        _job_environment("STACKOPS_DB_PASSWORD")
    assert str(tmp_path / "absent") in str(raised.value) and "STACKOPS_DB_PASSWORD_FILE" in str(raised.value)


def test_flows_prints_a_clouds_allowed_connections_and_rewrites_a_documents_table(tmp_path: Path) -> None:
    result = stackops("flows", "-f", "-", stdin=HEADER + "spec: {networkPolicies: {monitoringNamespace: monitoring}}\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("| into | TCP ports | from |\n")
    assert "| rabbitmq server | 15692 | pods of the namespace monitoring |" in result.stdout
    doc = tmp_path / "doc.md"
    doc.write_text("# flows\n<!-- generated: network flows of - -->\nold\n<!-- end: network flows of - -->\nafter\n")
    assert stackops("flows", "-f", "-", "--doc", str(doc), stdin=HEADER + "spec: {}\n").returncode == 0
    text = doc.read_text()
    assert "old" not in text and "| keystone api | 5000 | every pod of the cluster |" in text
    assert text.endswith("<!-- end: network flows of - -->\nafter\n")
    off = stackops("flows", "-f", "-", stdin=HEADER + "spec: {networkPolicies: {enabled: false}}\n")
    assert off.returncode == 2 and "enabled is false" in off.stderr
