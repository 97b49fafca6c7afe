"""Every rendered oslo.config file passes `oslo-config-validator` of its own service package, at the
default release, with the option namespaces the service module declares for that file.

A service's config may be split over several Secrets (e.g. one per compute group): every Secret of
the service that holds a declared file is checked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stackops.api.validation import load_cloud_text
from stackops.plan import plan
from stackops.services import all_services, service
from tests.conftest import EXAMPLES, VARIANT
from tests.real.conftest import service_venv
from tests.support.config_validation import sections_as_groups, validate

VALIDATED = sorted(s.name for s in all_services() if s.config_files)
# Services whose config has sections only the rendering variant renders: octavia's amphora provider
# ([controller_worker], [health_manager], [certificates], [haproxy_amphora]).
FROM_VARIANT = ("octavia",)


def rendered_files(name: str, file_name: str) -> list[tuple[str, str]]:
    """(label, content) of `file_name` in every config Secret of service `name`, over the examples
    (and the variant, for FROM_VARIANT).

    Sections the spec names (cinder's backends) are checked against the option group they take their
    options from, under that group's name: the validator knows no section it has no sample of."""
    found = []
    for path in [*EXAMPLES, *([VARIANT] if name in FROM_VARIANT else [])]:
        cloud = load_cloud_text(path.read_text())
        aliases = service(name).config_sections_like(cloud.spec)
        for obj in plan(cloud).objects():
            labels = obj["metadata"].get("labels", {})
            if obj["kind"] == "Secret" and labels.get("app.kubernetes.io/name") == name:
                content = obj.get("stringData", {}).get(file_name)
                if content is not None:
                    found.append((f"{path.stem}/{obj['metadata']['name']}", sections_as_groups(content, aliases)))
    return found


def test_every_oslo_service_is_validated() -> None:
    # a new service module that writes oslo.config files must declare them, or nothing checks them
    assert {"keystone", "placement", "glance"} <= set(VALIDATED)


@pytest.mark.parametrize("name", VALIDATED)
def test_rendered_config_passes_oslo_config_validator(name: str, tmp_path: Path) -> None:
    bin_dir = service_venv(name, "gunicorn")
    checked = 0
    for file_name, namespaces in service(name).config_files.items():
        print(f"{name}: {file_name}: oslo-config-validator namespaces: {', '.join(namespaces)}")
        assert namespaces
        files = rendered_files(name, file_name)
        assert files, f"{file_name} is declared but no example renders it"
        assert (name in FROM_VARIANT) == any(label.startswith(f"{VARIANT.stem}/") for label, _ in files)
        for label, content in files:
            conf = tmp_path / label.replace("/", "-")
            conf.write_text(content)
            code, stderr = validate(bin_dir, namespaces, conf)
            assert code == 0, f"{label} {file_name}: {stderr[-2000:]}"
            checked += 1
        # The validator really checks: an option the service does not have is caught and named.
        bogus = tmp_path / "bogus.conf"
        bogus.write_text(files[0][1] + "\n[DEFAULT]\nno_such_option = 1\n")
        code, stderr = validate(bin_dir, namespaces, bogus)
        assert code == 1 and "DEFAULT/no_such_option is not part of the sample config" in stderr
    print(f"{name}: {checked} rendered files passed")
