"""A cloud's plan: every service's steps, in dependency order, ready to apply.

This is where a spec and credentials become the ordered list of objects the operator applies and
`stackops render` prints. Pure: no cluster, no clock, no randomness.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stackops import certificates
from stackops.api.models import OpenStackCloud, OpenStackCloudSpec
from stackops.credentials import Credentials, CredentialSpec, KeyRotation
from stackops.render.hashing import name_job_by_spec
from stackops.render.ini import IniShapeError
from stackops.services import all_services, api, mariadb, network_policies, ovn, policy
from stackops.services.backups import BackupSet
from stackops.services.base import CloudContext, RenderError, RenderOptions, Service, Step
from stackops.services.network_policies import Rendered, Rule

# every set of backups a cloud may have (what a restore stops, what the status shows)
BACKUP_SETS: tuple[BackupSet, ...] = (mariadb.BACKUPS, ovn.BACKUPS)


def enabled_services(spec: OpenStackCloudSpec) -> list[Service]:
    return [s for s in all_services() if s.enabled(spec)]


def required_credentials(spec: OpenStackCloudSpec) -> list[CredentialSpec]:
    return [c for s in enabled_services(spec) for c in s.credentials(spec)]


def certificate_requests(cloud: OpenStackCloud) -> list[certificates.CertificateRequest]:
    """The certificates of the cloud's CA its enabled services serve TLS with (their backends' and
    their APIs') or present to a server."""
    ctx = CloudContext(cloud.metadata.name, cloud.metadata.namespace, cloud.spec, Credentials({}))
    services = enabled_services(cloud.spec)
    apis = [request for s in services if (request := api.certificate(ctx, s)) is not None]
    return [r for s in services for r in s.certificates(ctx)] + apis


def ca_name(cloud: OpenStackCloud) -> str:
    """The common name of the cloud's certificate authority."""
    return f"stackops {cloud.metadata.namespace}/{cloud.metadata.name} CA"


def key_rotations(spec: OpenStackCloudSpec) -> list[KeyRotation]:
    return [r for s in enabled_services(spec) for r in s.key_rotations(spec)]


def rotated_credentials(spec: OpenStackCloudSpec) -> list[CredentialSpec]:
    """What a credential rotation replaces: every enabled service's credentials that say so."""
    return [c for c in required_credentials(spec) if c.rotates]


def migrated_keys(spec: OpenStackCloudSpec) -> list[str]:
    """The key repositories a credential rotation rotates and migrates."""
    return [prefix for s in enabled_services(spec) for prefix in s.migrated_keys(spec)]


def problems(spec: OpenStackCloudSpec) -> list[RenderError]:
    """Mistakes in a spec that passed schema validation, each naming its field."""
    found: list[RenderError] = []
    enabled = {s.name for s in enabled_services(spec)}
    for service in all_services():
        found += service.problems(spec) + policy.problems(service, spec)
        if service.name in enabled:
            found += [
                RenderError(f"spec.{service.spec_path}.enabled", f"{service.name} needs {dep}, which is disabled")
                for dep in service.depends_on
                if dep not in enabled
            ]
    for backups in BACKUP_SETS:
        restore = backups.asked(spec)
        if (
            restore is not None
            and restore.source == "ObjectStore"
            and backups.settings(spec).backup.object_store is None
        ):
            where = f"spec.{backups.spec_path}.backup.objectStore"
            found.append(
                RenderError(f"{backups.restore_field}.source", f"ObjectStore needs {where}: the bucket to take it from")
            )
    return found


@dataclass(frozen=True)
class Plan:
    steps: list[Step]
    endpoints: dict[str, str]
    flows: list[Rule] = field(default_factory=list)  # what its NetworkPolicies allow (none: they are off)

    def objects(self) -> list[dict[str, Any]]:
        return [obj for step in self.steps for obj in step.objects]


def plan(cloud: OpenStackCloud, credentials: Credentials | None = None, options: RenderOptions | None = None) -> Plan:
    """Render every enabled service of `cloud`; placeholder credentials when none are given.

    Raises RenderError (naming the field) for a spec that cannot be rendered.
    """
    spec = cloud.spec
    found = problems(spec)
    if found:
        raise found[0]
    credentials = credentials or Credentials.placeholders(required_credentials(spec))
    ctx = CloudContext(cloud.metadata.name, cloud.metadata.namespace, spec, credentials, options)
    rendered: list[Rendered] = []
    endpoints: dict[str, str] = {}
    for service in enabled_services(spec):
        endpoints |= service.endpoints(ctx)
        try:
            rendered.append(Rendered(service, service.steps(ctx)))
        except IniShapeError as error:
            raise RenderError(f"spec.{service.spec_path}.config", str(error)) from error
    flows: list[Rule] = []
    if spec.network_policies.enabled:
        flows = network_policies.rules(ctx, rendered)
        rendered = network_policies.protect(ctx, rendered, flows)
    steps = [step for service in rendered for step in service.steps]
    steps += [step for service in enabled_services(spec) for step in service.closing_steps(ctx)]
    for backups in BACKUP_SETS:  # nothing writes to what a restore restores, nor reads it half restored
        if backups.asked(spec) is not None:
            steps = backups.stopped_for_restore(spec, steps)
    for step in steps:
        for obj in step.objects:
            if obj["kind"] == "Job":
                name_job_by_spec(obj)
    return Plan(steps, endpoints, flows)
