"""What to check of one cloud: its services and their declared checks, its pods and Jobs, and how
the operator reaches its APIs.

The operator reaches OpenStack at the cloud's internal keystone endpoint with the admin credentials
from the cloud's credentials Secret. Outside the cluster those URLs do not resolve: the operator
setting `--keystone-url` (or STACKOPS_KEYSTONE_URL) names another one, for every cloud or for one
(`NAMESPACE/NAME=URL`), and `--openstack-interface public` makes the checks use the catalog's
public endpoints.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stackops import certificates
from stackops.api.models import OpenStackCloud
from stackops.credentials import Credentials
from stackops.health.monitor import OpenStackAccess, Target
from stackops.health.workloads import enough_hosts, workload_problems
from stackops.kube.client import Kube, Obj
from stackops.kube.credentials_secret import SECRET, credentials_of, credentials_secret_name
from stackops.kube.kinds import MANAGED_KINDS, POD
from stackops.logs import REDACTOR
from stackops.plan import enabled_services
from stackops.render.naming import CLOUD_LABEL, COMPONENT_LABEL, NAME_LABEL, selector_labels
from stackops.services import identity
from stackops.services.base import CloudContext

JOB = next(k for k in MANAGED_KINDS if k.kind == "Job")
DAEMONSET = next(k for k in MANAGED_KINDS if k.kind == "DaemonSet")
INTERFACES = ("internal", "public")
_SCOPED_URL = re.compile(r"^(?P<cloud>[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9]*[a-z0-9])?)=(?P<url>.+)$")


class SettingError(ValueError):
    """A health setting the operator cannot use; the message names the setting."""


@dataclass(frozen=True)
class HealthSettings:
    interval: float = 30.0  # seconds between two looks at a cloud
    timeout: float = 10.0  # longest a single check may take
    openstack: bool = True  # False: Kubernetes-layer checks only (no OpenStack behind the cluster)
    interface: str = "internal"
    keystone_urls: dict[str, str] = field(default_factory=dict)  # "" (every cloud) or "ns/name" -> URL

    def keystone_url(self, namespace: str, name: str) -> str | None:
        return self.keystone_urls.get(f"{namespace}/{name}") or self.keystone_urls.get("")


def keystone_urls(values: Iterable[str]) -> dict[str, str]:
    """`--keystone-url` values: a URL for every cloud, or NAMESPACE/NAME=URL for one."""
    found: dict[str, str] = {}
    for value in values:
        scoped = _SCOPED_URL.match(value)
        cloud, url = (scoped["cloud"], scoped["url"]) if scoped else ("", value)
        if not re.match(r"^https?://[^/\s]+", url):
            raise SettingError(f"--keystone-url: {value!r} is not an http(s) URL (or NAMESPACE/NAME=URL)")
        found[cloud] = url
    return found


def _admin_access(
    kube: Kube, cloud: OpenStackCloud, jobs: list[Obj] | None = None
) -> tuple[tuple[str, ...], str | None]:
    """The admin password keystone takes now, and during a rotation of it the other one
    (identity.admin_passwords_in_use, from the cloud's keystone bootstrap Jobs: `jobs`, the cloud's
    Jobs when listed already), none before the credentials Secret has it; and the cloud's CA with
    internal TLS (its APIs' certificates are verified with it)."""
    name, namespace = cloud.metadata.name, cloud.metadata.namespace
    credentials = credentials_of(kube.get(SECRET, namespace, credentials_secret_name(name)))
    tls = cloud.spec.internal_tls.enabled and certificates.CA_CERT_KEY in credentials
    ca = credentials[certificates.CA_CERT_KEY] if tls else None
    if identity.ADMIN_PASSWORD_KEY not in credentials:
        return (), ca
    bootstrap: list[Obj] = []
    if credentials.live_key(identity.ADMIN_PASSWORD_KEY) != identity.ADMIN_PASSWORD_KEY:
        selector = ",".join(f"{k}={v}" for k, v in selector_labels(name, "keystone", identity.BOOTSTRAP).items())
        bootstrap = kube.list(JOB, namespace, selector) if jobs is None else jobs
    passwords = identity.admin_passwords_in_use(credentials, [j for j in bootstrap if _is_bootstrap(j)])
    REDACTOR.remember(list(passwords))
    return passwords, ca


def _is_bootstrap(job: Obj) -> bool:
    labels = job.get("metadata", {}).get("labels") or {}
    return labels.get(NAME_LABEL) == "keystone" and labels.get(COMPONENT_LABEL) == identity.BOOTSTRAP


def target(
    cloud: OpenStackCloud,
    status: Mapping[str, Any],
    settings: HealthSettings,
    admin_passwords: tuple[str, ...],
    workloads: Mapping[str, list[str]] | None,
    ca_certificate: str | None = None,
) -> Target:
    """What to check of `cloud` now; OpenStack checks only for services its status says are deployed
    (`ca_certificate`: the cloud's CA, which verifies its endpoints with internal TLS)."""
    name, namespace = cloud.metadata.name, cloud.metadata.namespace
    services = enabled_services(cloud.spec)
    deployed = frozenset(s for s, entry in (status.get("services") or {}).items() if entry.get("phase") == "Ready")
    values = {identity.ADMIN_PASSWORD_KEY: admin_passwords[0]} if admin_passwords else {}
    ctx = CloudContext(name, namespace, cloud.spec, Credentials(values))
    access, unchecked = None, ""
    if not settings.openstack:
        unchecked = "OpenStack checks are switched off"
    elif not admin_passwords:
        unchecked = "no admin password in the credentials Secret yet"
    else:
        access = OpenStackAccess(
            auth_url=settings.keystone_url(namespace, name) or identity.auth_url(ctx, settings.interface),
            username=identity.ADMIN_USER,
            password=admin_passwords[0],
            fallback_passwords=admin_passwords[1:],
            project=identity.ADMIN_PROJECT,
            region=cloud.spec.region,
            interface=settings.interface,
            timeout=settings.timeout,
            ca_certificate=ca_certificate,
        )
    return Target(
        namespace=namespace,
        name=name,
        services=tuple(s.name for s in services),
        deployed=deployed,
        checks={s.name: s.health_checks(ctx) for s in services if s.name in deployed},
        access=access,
        unchecked=unchecked,
        workloads=workloads,
    )


def openstack_access(kube: Kube, cloud: OpenStackCloud, settings: HealthSettings) -> OpenStackAccess | None:
    """How the operator reaches the cloud's APIs as its admin (as the health checks do); None when
    it cannot (OpenStack checks off, no admin password yet)."""
    passwords, ca = _admin_access(kube, cloud) if settings.openstack else ((), None)
    return target(cloud, {}, settings, passwords, None, ca).access


def observe(kube: Kube, cloud: OpenStackCloud, status: Mapping[str, Any], settings: HealthSettings) -> Target:
    """Read what the checks need from the cluster: pods, Jobs, host agents, the admin password (three
    lists, one get)."""
    name, namespace = cloud.metadata.name, cloud.metadata.namespace
    selector = f"{CLOUD_LABEL}={name}"
    jobs = kube.list(JOB, namespace, selector)
    problems = workload_problems(
        kube.list(POD, namespace, selector), jobs, enough_hosts(kube.list(DAEMONSET, namespace, selector))
    )
    passwords, ca = _admin_access(kube, cloud, jobs) if settings.openstack else ((), None)
    return target(cloud, status, settings, passwords, problems, ca)
