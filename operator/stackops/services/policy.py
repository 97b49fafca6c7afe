"""oslo.policy overrides: `services.<name>.policy` becomes the service's policy.yaml.

A service enforces policy when one of its config files draws on the `oslo.policy` option namespace
(its `config_files` say so). Its overrides are written as policy.yaml next to that file, where
oslo.policy looks for its default `policy_file`, and copied into place only by the containers that
read that file; a service without overrides gets no policy.yaml and runs on its in-code defaults.

Rule names are checked against the rules the service defines at the cloud's release, read from the
service's own package (hack/policies/generate.py writes policies/<release>.json), the way
oslo-config-validator checks option names.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import yaml
from pydantic.alias_generators import to_camel

from stackops.api.models import OpenStackCloudSpec, ServiceSpec
from stackops.render.kolla import ConfigFile, KollaCommand
from stackops.services.base import CloudContext, RenderError, Service

POLICY_FILE = "policy.yaml"
NAMESPACE = "oslo.policy"
ENFORCE_OPTIONS = ("enforce_scope", "enforce_new_defaults")
RULES_DIR = Path(__file__).with_name("policies")


@dataclass(frozen=True)
class ServicePolicy:
    """What one service's package defines at one release."""

    package: str
    rules: frozenset[str]
    enforce_scope: bool
    enforce_new_defaults: bool


@cache
def release_policies(release: str) -> dict[str, ServicePolicy]:
    document = json.loads((RULES_DIR / f"{release}.json").read_text(encoding="utf-8"))
    return {
        name: ServicePolicy(
            entry["package"], frozenset(entry["rules"]), entry["enforce_scope"], entry["enforce_new_defaults"]
        )
        for name, entry in document.items()
    }


def policy_config_file(service: Service) -> str | None:
    """The key of the config file that holds the service's [oslo_policy] section, if it has one."""
    return next((key for key, namespaces in service.config_files.items() if NAMESPACE in namespaces), None)


def _spec(service: Service, spec: OpenStackCloudSpec) -> ServiceSpec | None:
    workload = service.workload(spec)
    return workload if isinstance(workload, ServiceSpec) and policy_config_file(service) else None


def problems(service: Service, spec: OpenStackCloudSpec) -> list[RenderError]:
    """Overrides of rules the service does not define at the cloud's release, and enforcement flags
    set twice (typed and under `config`)."""
    settings = _spec(service, spec)
    if settings is None:
        return []
    field = f"spec.{service.spec_path}"
    found = []
    if settings.policy:
        defined = release_policies(spec.release)[service.name]
        found += [
            RenderError(
                f"{field}.policy.{rule}",
                f"{service.name} defines no policy rule {rule!r} at release {spec.release} ({defined.package})",
            )
            for rule in sorted(settings.policy)
            if rule not in defined.rules
        ]
    configured = settings.config.get("oslo_policy", {})
    found += [
        RenderError(f"{field}.config.oslo_policy.{option}", f"set either this or {field}.{to_camel(option)}, not both")
        for option in ENFORCE_OPTIONS
        if option in configured and getattr(settings, option) is not None
    ]
    return found


def oslo_policy(ctx: CloudContext, service: Service) -> dict[str, bool]:
    """The [oslo_policy] options the spec sets (unset ones keep the service's own default)."""
    settings = _spec(service, ctx.spec)
    if settings is None:
        return {}
    return {option: value for option in ENFORCE_OPTIONS if (value := getattr(settings, option)) is not None}


def with_policy_file(
    ctx: CloudContext, service: Service, files: dict[str, str], commands: dict[str, KollaCommand]
) -> tuple[dict[str, str], dict[str, KollaCommand]]:
    """`files` and `commands` with the service's policy.yaml, when the spec overrides rules: the file
    is copied next to the policy-holding config file by every command that reads that file."""
    settings = _spec(service, ctx.spec)
    config_key = policy_config_file(service)
    if settings is None or not settings.policy or config_key not in files:
        return files, commands
    text = yaml.safe_dump(settings.policy, default_flow_style=False, sort_keys=True, width=2**30)
    placed = {}
    for component, command in commands.items():
        config = next((f for f in command.files if f.source == config_key), None)
        if config is not None:
            policy = ConfigFile(POLICY_FILE, posixpath.join(posixpath.dirname(config.dest), POLICY_FILE), config.owner)
            command = replace(command, files=(*command.files, policy))
        placed[component] = command
    return files | {POLICY_FILE: text}, placed
