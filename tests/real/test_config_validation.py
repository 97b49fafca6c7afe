"""Every rendered oslo.config file passes `oslo-config-validator` of its own service package, at the
default release, with the option namespaces the service module declares."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackops.api.validation import load_cloud_text
from stackops.plan import plan
from stackops.services import service
from tests.conftest import EXAMPLES
from tests.real.deployment import run
from tests.support.rendered import secret_data

CONFIG_FILES = {"keystone": "keystone.conf", "placement": "placement.conf", "glance": "glance-api.conf"}


def validate(bin_dir: Path, namespaces: tuple[str, ...], path: Path) -> tuple[int, str]:
    argv = [str(bin_dir / "oslo-config-validator"), "--input-file", str(path)]
    for namespace in namespaces:
        argv += ["--namespace", namespace]
    result = run(argv, {})
    return result.returncode, result.stderr


@pytest.mark.parametrize("name", sorted(CONFIG_FILES))
def test_rendered_config_passes_oslo_config_validator(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    bin_dir: Path = request.getfixturevalue(f"{name}_bin")
    namespaces = service(name).config_namespaces
    print(f"{name}: oslo-config-validator namespaces: {', '.join(namespaces)}")
    assert namespaces
    # the example clouds as users get them (the deployed one also ran for real, with local paths)
    clouds = []
    for path in EXAMPLES:
        example = load_cloud_text(path.read_text())
        clouds.append((path.stem, plan(example), example.metadata.name))
    for label, rendered, cloud_name in clouds:
        conf = tmp_path / f"{label}-{CONFIG_FILES[name]}"
        conf.write_text(secret_data(rendered, f"{cloud_name}-{name}-config")[CONFIG_FILES[name]])
        code, stderr = validate(bin_dir, namespaces, conf)
        assert code == 0, f"{label}: {stderr[-2000:]}"
    # The validator really checks: an option the service does not have is caught and named.
    bogus = tmp_path / "bogus.conf"
    bogus.write_text(conf.read_text() + "\n[DEFAULT]\nno_such_option = 1\n")
    code, stderr = validate(bin_dir, namespaces, bogus)
    assert code == 1 and "DEFAULT/no_such_option is not part of the sample config" in stderr
