"""Create a service's databases and account on MariaDB/MySQL, idempotently.

Run as a Job (`stackops job create-database`) before a service's db-sync. Safe to repeat: databases
and the account are created when missing, and the account's password is set to the one in the
credentials Secret every time, so the Secret stays the source of truth.

During a credential rotation the Job is also given the old password, which the account then keeps
accepting beside the new one (two authentication methods joined by OR, MariaDB 10.4 and later)
until the configs have rolled to the new one and the Job runs again without it.
"""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pymysql

IDENTIFIER = re.compile(r"^[A-Za-z0-9_]{1,64}$")
# the hosts of the accounts the Jobs manage: services' from anywhere, root's also from the socket
ACCOUNT_HOSTS = ("%", "localhost")


class DatabaseJobError(Exception):
    """A problem the Job cannot retry its way out of (bad arguments, refused credentials)."""


@dataclass(frozen=True)
class Admin:
    host: str
    port: int
    user: str
    password: str
    ca_file: str | None = None  # the server speaks TLS, its certificate and name verified against this CA


def _identifier(kind: str, value: str) -> str:
    # Identifiers cannot be bound as query parameters, so they are checked and backquoted instead.
    if not IDENTIFIER.match(value):
        raise DatabaseJobError(f"{kind} {value!r} must be 1-64 letters, digits or underscores")
    return f"`{value}`"


def connect(admin: Admin, attempts: int = 30, delay: float = 2.0) -> pymysql.connections.Connection:
    """Connect as the admin, waiting for a server that is still starting."""
    for attempt in range(1, attempts + 1):
        try:
            return pymysql.connect(
                host=admin.host,
                port=admin.port,
                user=admin.user,
                password=admin.password,
                connect_timeout=10,
                ssl=ssl.create_default_context(cafile=admin.ca_file) if admin.ca_file else None,
            )
        except pymysql.err.OperationalError as error:
            code = error.args[0] if error.args else None
            if code == 1045:  # access denied: waiting will not help
                raise DatabaseJobError(f"{admin.user}@{admin.host}:{admin.port}: access denied") from error
            if attempt == attempts:
                raise DatabaseJobError(f"{admin.host}:{admin.port}: not reachable ({error})") from error
            time.sleep(delay)
    raise AssertionError("unreachable")


def create_databases(
    admin: Admin, databases: Sequence[str], user: str, password: str, old_password: str | None = None
) -> list[str]:
    """Ensure `databases` exist and `user` (from any host) owns them with `password`, and with
    `old_password` too when given; returns what changed."""
    if not databases:
        raise DatabaseJobError("at least one database is needed")
    quoted_user = _identifier("user", user)
    quoted_dbs = [_identifier("database", d) for d in databases]
    changed: list[str] = []
    connection = connect(admin)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
            existing = {row[0] for row in cursor.fetchall()}
            for database, quoted in zip(databases, quoted_dbs, strict=True):
                if database not in existing:
                    cursor.execute(f"CREATE DATABASE IF NOT EXISTS {quoted} CHARACTER SET utf8")
                    changed.append(f"database {database} created")
            cursor.execute("SELECT COUNT(*) FROM mysql.user WHERE User = %s AND Host = '%%'", (user,))
            row = cursor.fetchone()
            if not row or row[0] == 0:
                changed.append(f"user {user} created")
            cursor.execute(f"CREATE USER IF NOT EXISTS {quoted_user}@'%%' IDENTIFIED BY %s", (password,))
            changed += _identify(cursor, user, "%", password, old_password)
            for quoted in quoted_dbs:
                cursor.execute(f"GRANT ALL PRIVILEGES ON {quoted}.* TO {quoted_user}@'%'")
        connection.commit()
    finally:
        connection.close()
    return changed


def _identify(cursor: Any, user: str, host: str, password: str, old_password: str | None) -> list[str]:
    """Make `user`@`host` accept `password`, and `old_password` too when given (a rotation's)."""
    account = f"{_identifier('user', user)}@{_host(host)}"
    if old_password is None:
        cursor.execute(f"ALTER USER {account} IDENTIFIED BY %s", (password,))
        return []
    cursor.execute(
        f"ALTER USER {account} IDENTIFIED VIA mysql_native_password USING PASSWORD(%s)"
        " OR mysql_native_password USING PASSWORD(%s)",
        (password, old_password),
    )
    return [f"user {user}@{host} accepts its old password beside the new one"]


def _host(host: str) -> str:
    # '%' doubled: the statement goes through PyMySQL's parameter formatting
    if host not in ACCOUNT_HOSTS:
        raise DatabaseJobError(f"account host {host!r} must be one of {', '.join(ACCOUNT_HOSTS)}")
    return "'%%'" if host == "%" else f"'{host}'"


def set_password(
    admin: Admin, user: str, hosts: Sequence[str], password: str, old_password: str | None = None
) -> list[str]:
    """Set the password of existing accounts `user`@each of `hosts` (MariaDB's root: '%' and
    localhost), with `old_password` accepted too when given; returns what changed. Logs in as the
    admin, which may be one of these accounts: the server keeps the session it authenticated."""
    if not hosts:
        raise DatabaseJobError("at least one account host is needed")
    connection = connect(admin)
    changed = []
    try:
        with connection.cursor() as cursor:
            for host in hosts:
                changed += _identify(cursor, user, host, password, old_password)
            if old_password is None:
                changed += [f"user {user}@{host} accepts only its password" for host in hosts]
        connection.commit()
    finally:
        connection.close()
    return changed
