"""Create a service's RabbitMQ user and vhost, idempotently, through the management API.

Run as a Job (`stackops job create-messaging-user`) before a service's first start. Every call is a
PUT of the wanted state, so repeating it changes nothing; the password is set from the credentials
Secret every time, so the Secret stays the source of truth. New vhosts default to quorum queues.

A credential rotation gives the new password to the other user of the service's pair, on the same
vhost, and once the configs use it, removes the old user (`retired`), which closes its connections.
The broker's own administrator is a pair too, which `stackops job create-messaging-admin` keeps
(`create_admin`): during a rotation of its password, the Job logs in as the account in use.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote

import requests

TIMEOUT = 10.0
ALL_PERMISSIONS = {"configure": ".*", "write": ".*", "read": ".*"}
DEFAULT_VHOST = "/"


class MessagingJobError(Exception):
    """A problem the Job cannot retry its way out of (refused credentials, a rejected request)."""


@dataclass(frozen=True)
class Admin:
    host: str
    management_port: int
    user: str
    password: str
    ca_file: str | None = None  # https, the certificate and its name verified against this CA

    def url(self, *parts: str) -> str:
        # vhost and user names go into the path: "/" is a valid vhost name and must be escaped
        scheme = "https" if self.ca_file else "http"
        return f"{scheme}://{self.host}:{self.management_port}/api/" + "/".join(quote(p, safe="") for p in parts)


def _put(session: requests.Session, url: str, body: Mapping[str, object]) -> None:
    response = session.put(url, json=body, timeout=TIMEOUT)
    if response.status_code in (401, 403):
        raise MessagingJobError(f"{url}: access denied")
    if response.status_code >= 400:
        raise MessagingJobError(f"{url}: {response.status_code} {response.text.strip()[:200]}")


def wait_for_management(admin: Admin, session: requests.Session, attempts: int = 60, delay: float = 2.0) -> None:
    """RabbitMQ answers on the management port once it has booted; wait for it."""
    for attempt in range(1, attempts + 1):
        try:
            response = session.get(admin.url("overview"), timeout=TIMEOUT)
        except requests.RequestException as error:
            if attempt == attempts:
                raise MessagingJobError(f"{admin.host}:{admin.management_port}: not reachable ({error})") from error
        else:
            if response.status_code in (401, 403):
                raise MessagingJobError(f"{admin.user}@{admin.host}: access denied")
            if response.ok:
                return
        time.sleep(delay)
    raise MessagingJobError(f"{admin.host}:{admin.management_port}: management API did not come up")


@contextmanager
def admin_session(admin: Admin) -> Iterator[requests.Session]:
    """A session logged in as `admin`, once the management API answers."""
    with requests.Session() as session:
        session.auth = (admin.user, admin.password)
        if admin.ca_file:
            session.verify = admin.ca_file
        wait_for_management(admin, session)
        yield session


def _set_user(admin: Admin, session: requests.Session, user: str, password: str, tags: str) -> list[str]:
    created = session.get(admin.url("users", user), timeout=TIMEOUT).status_code == 404
    _put(session, admin.url("users", user), {"password": password, "tags": tags})
    return [f"user {user} created"] if created else []


def _remove_user(admin: Admin, session: requests.Session, retired: str | None) -> list[str]:
    if retired is None or session.get(admin.url("users", retired), timeout=TIMEOUT).status_code == 404:
        return []
    response = session.delete(admin.url("users", retired), timeout=TIMEOUT)
    if response.status_code >= 400 and response.status_code != 404:
        raise MessagingJobError(f"removing user {retired}: {response.status_code}")
    return [f"user {retired} removed"]


def create_user(admin: Admin, user: str, vhost: str, password: str, retired: str | None = None) -> list[str]:
    """Ensure `vhost` exists and `user` may use all of it with `password`, and that the user
    `retired` does not exist; returns what changed."""
    changed: list[str] = []
    with admin_session(admin) as session:
        if session.get(admin.url("vhosts", vhost), timeout=TIMEOUT).status_code == 404:
            changed.append(f"vhost {vhost} created")
        _put(session, admin.url("vhosts", vhost), {"default_queue_type": "quorum"})
        changed += _set_user(admin, session, user, password, "")
        _put(session, admin.url("permissions", vhost, user), ALL_PERMISSIONS)
        changed += _remove_user(admin, session, retired)
    return changed


def create_admin(admin: Admin, user: str, password: str, retired: str | None = None) -> list[str]:
    """Ensure `user` is an administrator with `password` and, like the administrator a node creates
    on its first boot (default_user), may use all of the default vhost; and that the user `retired`
    (never `admin.user`) does not exist. Returns what changed."""
    if retired == admin.user:
        raise MessagingJobError(f"{retired} is the administrator this Job logs in as: it cannot remove itself")
    with admin_session(admin) as session:
        changed = _set_user(admin, session, user, password, "administrator")
        _put(session, admin.url("permissions", DEFAULT_VHOST, user), ALL_PERMISSIONS)
        return changed + _remove_user(admin, session, retired)
