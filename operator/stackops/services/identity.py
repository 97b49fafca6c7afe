"""How every service meets keystone: the identity service's URLs, the [keystone_authtoken] section
APIs validate tokens with, and the Job that registers a service's user and catalog entry.

Keystone's own module (services/keystone.py) says what keystone is; this is what the others use of
it, kept apart so that keystone can be an OpenStack service like the rest (services/openstack.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stackops import certificates, services
from stackops.credentials import Credentials
from stackops.services import memcached
from stackops.services.base import CloudContext, Service, Step
from stackops.services.endpoints import service_urls

PORT = 5000  # keystone's API
SERVICE_TYPE = "identity"  # keystone's catalog entry, which its bootstrap Job makes
ADMIN_USER = "admin"
ADMIN_PROJECT = "admin"
ADMIN_PASSWORD_KEY = "keystone-admin-password"
AUTHTOKEN_CACHE_KEY = "authtoken-cache-key"  # every service's [keystone_authtoken] cache
REGISTRATION = "registration"  # the component of a service's registration Jobs
# keystone's Job that creates the admin and sets its password (`keystone-manage bootstrap`), and
# the variable it reads the password from
BOOTSTRAP = "bootstrap"
BOOTSTRAP_PASSWORD_ENV = "OS_BOOTSTRAP_PASSWORD"
# keystone's Job removing what disabled services registered
DEREGISTRATION = "deregistration"
# the variable whose file (CA_CERT_ENV_FILE) holds the cloud's CA for the admin Jobs' connections
CA_CERT_ENV = "OS_CACERT"


def identity_urls(ctx: CloudContext) -> dict[str, str]:
    """Catalog URLs of the identity service (unversioned, as keystone recommends)."""
    return service_urls(ctx, ctx.spec.services.keystone.endpoints, "keystone", PORT)


def auth_url(ctx: CloudContext, interface: str = "internal") -> str:
    return identity_urls(ctx)[interface] + "/v3"


def authtoken(ctx: CloudContext, user: str, password_key: str, ca_file: str) -> dict[str, Any]:
    """The [keystone_authtoken] section every API service validates tokens with; `ca_file`: where
    its containers have the cloud's CA, which verifies keystone's and memcached's certificates."""
    identity = identity_urls(ctx)
    return {
        "www_authenticate_uri": identity["public"],
        "auth_url": identity["internal"],
        "auth_type": "password",
        "project_domain_id": "default",
        "user_domain_id": "default",
        "project_name": "service",
        "username": user,
        "password": ctx.credentials[password_key],
        "region_name": ctx.spec.region,
        "interface": "internal",
        "cafile": ca_file,
        **memcached.authtoken_cache(ctx, ca_file),
        # validated tokens cached in memcached are encrypted and authenticated with a key only the
        # services hold: whoever reaches memcached cannot read them or plant a token of their own
        "memcache_security_strategy": "ENCRYPT",
        "memcache_secret_key": ctx.credentials[AUTHTOKEN_CACHE_KEY],
        "service_token_roles_required": True,
    }


@dataclass(frozen=True)
class KeystoneUser:
    """A keystone user a service's Jobs create: its name, in its domain (by name or id)."""

    name: str
    domain: str = "default"


def admin_job(
    ctx: CloudContext,
    service: str,
    component: str,
    job: str,
    args: Sequence[str],
    resources: dict[str, Any],
    password: tuple[str, str] | None = None,
) -> list[dict[str, Any]]:
    """A Job from the stackops image running `stackops job <job> <args>` as keystone's admin;
    `password` is (environment variable, credentials Secret key) of the one password it sets.
    During a rotation of the admin password it logs in with the one keystone's bootstrap Job, in a
    step before it, set last (admin_passwords_in_use)."""
    secrets: dict[str, tuple[str | None, str]] = {"OS_PASSWORD": (None, ctx.credentials.live_key(ADMIN_PASSWORD_KEY))}
    if ctx.internal_tls:  # the cloud's CA, which verifies keystone's and every API's certificate
        secrets[CA_CERT_ENV] = (None, certificates.CA_CERT_KEY)
    if password:
        secrets[password[0]] = (None, password[1])
    env = {"OS_AUTH_URL": auth_url(ctx), "OS_USERNAME": ADMIN_USER, "OS_PROJECT_NAME": ADMIN_PROJECT}
    return ctx.stackops_job(service, component, job, args, resources, env=env, secrets=secrets)


def registration_step(
    ctx: CloudContext,
    service: Service,
    service_type: str | None,
    description: str,
    urls: dict[str, str],
    password_key: str,
    catalog_name: str | None = None,
    paired: bool = True,
) -> Step:
    """A Job from the stackops image that registers `service` with keystone: its user (named after
    the service) with the admin and service roles, its catalog entry and public/internal endpoints.
    The Job is the service's (its `registration` component's resources). Keystone takes one password
    per user and revokes a user's tokens when it changes: a credential rotation registers the other
    account of the service's pair with the new password, and removes the old account once the
    configs have rolled to the new one (docs/security.md, "Rotation").

    A service with a second catalog entry (heat's cloudformation API) registers it under its own
    `catalog_name`, with a Job of its own and the same user; one without an API (ceilometer), its
    user alone (`service_type` None)."""
    component = f"{REGISTRATION}-{catalog_name}" if catalog_name else REGISTRATION
    entry = [f"--type={service_type}", f"--description={description}"] if service_type else []
    args = [
        f"--region={ctx.spec.region}",
        *entry[:1],
        f"--name={catalog_name or service.name}",
        *entry[1:],
        *(f"--{interface}-url={urls[interface]}" for interface in ("public", "internal") if interface in urls),
        f"--user={ctx.credentials.granted_account(service.name) if paired else service.name}",
    ]
    retired = ctx.credentials.retired_account(service.name) if paired else None
    if retired is not None:
        args.append(f"--remove-user={retired}")
    resources = registration_resources(ctx, service)
    password = ("STACKOPS_SERVICE_PASSWORD", ctx.credentials.secret_key(password_key))
    objects = admin_job(ctx, service.name, component, "register-service", args, resources, password)
    return Step(f"{service.name}-{component}", service.name, objects)


def deregistration_step(
    ctx: CloudContext, keystone: Service, entries: Sequence[tuple[str, str, str]], users: Sequence[KeystoneUser]
) -> Step | None:
    """keystone's Job that removes from its catalog and users what the cloud's disabled services
    registered: `entries` as (type, name, description), exactly as their registration Jobs wrote them,
    so that an entry someone else made under the same type is left alone; `users` only where the
    registration marked them as stackops's. Declarative: the Job states what must not be there, so
    it changes nothing when run again, and a service enabled again is registered by its own Jobs.
    None when no disabled service has anything in keystone."""
    if not entries and not users:
        return None
    args = [f"--region={ctx.spec.region}"]
    for entry in entries:
        args += ["--service", *entry]
    for user in users:
        args += ["--user", user.domain, user.name]
    resources = keystone.resources(ctx.spec, DEREGISTRATION)
    objects = admin_job(ctx, keystone.name, DEREGISTRATION, "deregister-services", args, resources)
    return Step(f"{keystone.name}-{DEREGISTRATION}", keystone.name, objects)


def registration_resources(ctx: CloudContext, service: Service) -> dict[str, Any]:
    """What `service`'s registration Jobs ask for: its own `registration` resources when the spec
    sets them, else keystone's (which sized every registration Job before each service had its own,
    and still do for clouds that set only those), else the default."""
    keystone = ctx.spec.services.keystone.resources.get(REGISTRATION)
    if keystone is None or REGISTRATION in service.workload(ctx.spec).resources:
        return service.resources(ctx.spec, REGISTRATION)
    return services.service("keystone").resources(ctx.spec, REGISTRATION)


def admin_passwords_in_use(credentials: Credentials, bootstrap_jobs: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """The admin password keystone takes now, for its clients outside the rendering (the operator's
    own, `stackops clouds-yaml`), then, during a rotation of it, the other one. Keystone takes one
    password per user, and the bootstrap Job sets it: a rotation's new one from the moment the Job
    that reads it (its Secret key, `next.…`) has succeeded, the one before until then. The other
    one is for a client that authenticates between the Job's change and its success being seen
    (docs/security.md, "Rotation")."""
    live = credentials.live_key(ADMIN_PASSWORD_KEY)
    if live == ADMIN_PASSWORD_KEY:
        return (credentials[ADMIN_PASSWORD_KEY],)
    set_by = {
        variable["valueFrom"]["secretKeyRef"]["key"]
        for job in bootstrap_jobs
        if (job.get("status") or {}).get("succeeded")
        for container in job["spec"]["template"]["spec"]["containers"]
        for variable in container.get("env", [])
        if variable["name"] == BOOTSTRAP_PASSWORD_ENV and "secretKeyRef" in variable.get("valueFrom", {})
    }
    new, old = credentials[ADMIN_PASSWORD_KEY], credentials.values()[ADMIN_PASSWORD_KEY]
    return (new, old) if live in set_by else (old, new)
