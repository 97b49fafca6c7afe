"""Registering a service with keystone: its user, roles, catalog entry and endpoints; and removing
them again once the service is disabled.

Run by each service's registration Job (`stackops job register-service`), keystone's deregistration
Job (`stackops job deregister-services`) and by the tests, the same code. Idempotent: what exists is
left alone or brought in line (an endpoint URL that changed, the password from the credentials
Secret), what is missing is created; what a disabled service registered is removed, what is gone
already is not looked for again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from stackops.credentials import TWIN_SUFFIX

DEFAULT_DOMAIN = "default"
# The description of every user stackops creates: removing a disabled service's users removes only
# users carrying it, never one an administrator made under the same name.
MANAGED_USER = "managed by stackops"


@dataclass(frozen=True)
class Registration:
    region: str
    # None for a service with a user and no API of its own (ceilometer): no catalog entry then
    service_type: str | None
    service_name: str
    description: str
    endpoints: dict[str, str]  # interface (public, internal) -> URL
    user: str
    project: str = "service"
    # `service` lets the service's token be trusted as a service token; `admin` on the service project
    # is what the services' own policies expect of their users.
    roles: tuple[str, ...] = field(default=("admin", "service"))
    # the other user of the service's pair, removed once a credential rotation no longer needs it
    retired_user: str | None = None


# The users the cloud runs on (admin, the services' users, heat's domain admin) log in all day with
# passwords from the credentials Secret: keystone's lockout, expiry and first-use rules
# (spec.services.keystone.securityCompliance) must not apply to them, or a stranger guessing the
# admin password, or a calendar, would stop the cloud.
EXEMPT_OPTIONS = {
    "ignore_lockout_failure_attempts": True,
    "ignore_password_expiry": True,
    "ignore_change_password_upon_first_use": True,
}


def _exempted(user: Any) -> dict[str, Any]:
    """The user's options with EXEMPT_OPTIONS set."""
    return {**(getattr(user, "options", None) or {}), **EXEMPT_OPTIONS}


def exempt(identity: Any, user: Any) -> list[str]:
    """Set EXEMPT_OPTIONS on `user` where missing; returns what changed."""
    options = _exempted(user)
    if options == (getattr(user, "options", None) or {}):
        return []
    identity.update_user(user, options=options)
    return [f"user {user.name} exempt from lockout and password expiry"]


def _exempt_caller(conn: Any) -> list[str]:
    """The admin the Job authenticates as is one of the cloud's own users too."""
    identity = conn.identity
    return exempt(identity, identity.get_user(conn.current_user_id))


def _find_or_create(finder: Any, creator: Any, name: str, **attrs: Any) -> tuple[Any, bool]:
    found = finder(name, ignore_missing=True, **({"domain_id": attrs["domain_id"]} if "domain_id" in attrs else {}))
    if found is not None:
        return found, False
    return creator(name=name, **attrs), True


def register(conn: Any, reg: Registration, password: str) -> list[str]:
    """Bring keystone in line with `reg`; returns what changed, for the Job's log."""
    identity = conn.identity
    changed: list[str] = []
    project, created = _find_or_create(
        identity.find_project, identity.create_project, reg.project, domain_id=DEFAULT_DOMAIN
    )
    if created:
        changed.append(f"project {reg.project} created")
    user = identity.find_user(reg.user, domain_id=DEFAULT_DOMAIN, ignore_missing=True)
    if user is None:
        user = identity.create_user(
            name=reg.user,
            password=password,
            domain_id=DEFAULT_DOMAIN,
            default_project_id=project.id,
            options=EXEMPT_OPTIONS,
            description=MANAGED_USER,
        )
        changed.append(f"user {reg.user} created")
    else:
        # the credentials Secret is the truth (set with the exemptions, so a first-use rule never
        # expires the password an administrator just set); users made before the mark get it here
        user = identity.update_user(user, password=password, options=_exempted(user), description=MANAGED_USER)
    changed += _exempt_caller(conn)
    for role_name in reg.roles:
        role, created = _find_or_create(identity.find_role, identity.create_role, role_name)
        if created:
            changed.append(f"role {role_name} created")
        identity.assign_project_role_to_user(project, user, role)
    if reg.retired_user is not None:
        changed += _remove_user(identity, reg.retired_user, DEFAULT_DOMAIN, DEFAULT_DOMAIN)
    if reg.service_type is None:
        return changed
    service = next((s for s in identity.services() if s.type == reg.service_type and s.name == reg.service_name), None)
    if service is None:
        service = identity.create_service(
            name=reg.service_name, type=reg.service_type, description=reg.description, is_enabled=True
        )
        changed.append(f"service {reg.service_name} ({reg.service_type}) created")
    for interface, url in sorted(reg.endpoints.items()):
        existing = list(identity.endpoints(service_id=service.id, interface=interface, region_id=reg.region))
        if not existing:
            identity.create_endpoint(
                service_id=service.id, interface=interface, url=url, region_id=reg.region, is_enabled=True
            )
            changed.append(f"{interface} endpoint {url} created")
        elif existing[0].url != url:
            identity.update_endpoint(existing[0], url=url)
            changed.append(f"{interface} endpoint moved to {url}")
    return changed


@dataclass(frozen=True)
class DomainAdmin:
    """A keystone domain of its own for what a service creates on users' behalf (heat's stack users
    and projects), the user that administers it, and roles the service expects to exist."""

    domain: str
    user: str
    description: str = ""
    roles: tuple[str, ...] = ()


def ensure_domain_admin(conn: Any, setup: DomainAdmin, password: str) -> list[str]:
    """Bring keystone in line with `setup`; returns what changed, for the Job's log."""
    identity = conn.identity
    changed: list[str] = []
    domain = identity.find_domain(setup.domain, ignore_missing=True)
    if domain is None:
        domain = identity.create_domain(name=setup.domain, description=setup.description, is_enabled=True)
        changed.append(f"domain {setup.domain} created")
    user = identity.find_user(setup.user, domain_id=domain.id, ignore_missing=True)
    if user is None:
        user = identity.create_user(
            name=setup.user, password=password, domain_id=domain.id, options=EXEMPT_OPTIONS, description=MANAGED_USER
        )
        changed.append(f"user {setup.user} in domain {setup.domain} created")
    else:  # the Secret is the truth
        user = identity.update_user(user, password=password, options=_exempted(user), description=MANAGED_USER)
    changed += _exempt_caller(conn)
    admin, created = _find_or_create(identity.find_role, identity.create_role, "admin")
    if created:
        changed.append("role admin created")
    if not identity.validate_user_has_domain_role(domain, user, admin):
        identity.assign_domain_role_to_user(domain, user, admin)
        changed.append(f"user {setup.user} made admin of domain {setup.domain}")
    for role_name in setup.roles:
        _role, created = _find_or_create(identity.find_role, identity.create_role, role_name)
        if created:
            changed.append(f"role {role_name} created")
    return changed


@dataclass(frozen=True)
class CatalogService:
    """A catalog entry as a registration Job writes it."""

    type: str
    name: str
    description: str


@dataclass(frozen=True)
class ServiceUser:
    """A user a service's Jobs create, in its domain (by id or name)."""

    name: str
    domain: str = DEFAULT_DOMAIN


def deregister(conn: Any, services: Sequence[CatalogService], users: Sequence[ServiceUser]) -> list[str]:
    """Remove from keystone the catalog entries (with every endpoint of theirs) and the users that
    stackops registered for services now disabled; returns what was removed, for the Job's log.

    Only what stackops made goes: an entry whose type, name and description are all the ones its
    registration wrote, a user carrying MANAGED_USER. Projects, roles and domains stay: they are
    shared (the service project, the admin role) or hold what the service made for users (heat's
    stack domain), which the service finds again when it is enabled again."""
    identity = conn.identity
    removed: list[str] = []
    wanted = set(services)
    for service in list(identity.services()):
        if CatalogService(service.type, service.name, service.description or "") not in wanted:
            continue
        for endpoint in list(identity.endpoints(service_id=service.id)):
            identity.delete_endpoint(endpoint, ignore_missing=True)
            removed.append(f"{endpoint.interface} endpoint {endpoint.url} removed")
        identity.delete_service(service, ignore_missing=True)
        removed.append(f"service {service.name} ({service.type}) removed")
    for wanted_user in users:
        domain = identity.find_domain(wanted_user.domain, ignore_missing=True)
        if domain is None:
            continue
        # both users of the service's pair (credential rotations alternate between them)
        for name in (wanted_user.name, f"{wanted_user.name}{TWIN_SUFFIX}"):
            removed += _remove_user(identity, name, domain.id, domain.name)
    return removed


def _remove_user(identity: Any, name: str, domain_id: str, domain_name: str) -> list[str]:
    """Delete the user `name` if stackops made it; returns what was done."""
    user = identity.find_user(name, domain_id=domain_id, ignore_missing=True)
    if user is None:
        return []
    if getattr(user, "description", None) != MANAGED_USER:
        return [f"user {name} in domain {domain_name} left: not made by stackops"]
    identity.delete_user(user, ignore_missing=True)
    return [f"user {name} in domain {domain_name} removed"]
