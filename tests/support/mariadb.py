"""A throwaway, real MariaDB server for tests.

OpenStack services keep their state in MySQL/MariaDB and their migrations use
MySQL-specific DDL, so SQLite is no stand-in: tests that exercise a real
service (``keystone-manage db_sync`` and friends) need a real server. This
module runs one from Debian's ``mariadb-server`` package, unprivileged in
spirit: its datadir, socket, pid file and log all live in a temporary
directory, it listens only on 127.0.0.1 at a free port, and it reads no
system option files (``--no-defaults``), so it neither sees nor disturbs a
system-wide MariaDB.

    with MariaDB() as db:
        db.execute("SELECT 1")
        url = db.url()

The only Python dependency is PyMySQL (used to wait for readiness and for the
small admin helpers).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode

import pymysql

__all__ = ["MariaDB", "MariaDBError"]

#: Where Debian puts the binaries, in case PATH lacks the sbin directories.
_SEARCH_DIRS = ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")

_DEBIAN_PACKAGE = "mariadb-server"

#: How much of the server log to quote in an error.
_LOG_TAIL_CHARS = 4000

#: Marker the server logs when its TCP port is taken; we then retry elsewhere.
_PORT_IN_USE_MARKERS = ("Address already in use", "Do you already have another server running")


class MariaDBError(RuntimeError):
    """The MariaDB server could not be set up, started or reached."""


def _find_binary(*names: str) -> str:
    """Locate the first of ``names`` on PATH or in the usual Debian dirs."""
    search_path = os.pathsep.join([os.environ.get("PATH", ""), *_SEARCH_DIRS])
    for name in names:
        found = shutil.which(name, path=search_path)
        if found:
            return found
    raise MariaDBError(
        f"cannot find {' or '.join(names)}; install the Debian package "
        f"{_DEBIAN_PACKAGE!r} (apt-get install -y {_DEBIAN_PACKAGE})"
    )


def _free_port(host: str) -> int:
    """Ask the kernel for a currently unused TCP port on ``host``.

    There is a window between closing this socket and the server binding it;
    ``MariaDB.start`` retries on another port if the server loses that race.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, chars: int = _LOG_TAIL_CHARS) -> str:
    """Return the last ``chars`` characters of a text file, or a placeholder."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"


def _kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to a process group, ignoring one that is already gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class _Resources:
    """What a started server owns: its process group and its directory.

    Released by ``stop()`` or, as a last resort, by a ``weakref.finalize``
    when the ``MariaDB`` object is collected or the interpreter exits, so an
    abandoned server does not outlive the test run.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.pgid: int | None = None

    def release(self) -> None:
        if self.pgid is not None:
            _kill_group(self.pgid)
            self.pgid = None
        shutil.rmtree(self.workdir, ignore_errors=True)


def _sql_string(value: str) -> str:
    """Quote ``value`` as a SQL string literal (for names in DDL)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class MariaDB:
    """A private MariaDB server on 127.0.0.1, for the lifetime of a test.

    Use it as a context manager, or call ``start()`` and ``stop()`` (always
    call ``stop()``, e.g. in a ``finally`` or fixture teardown). The server
    runs in its own process group, so ``stop()`` can kill it, and anything it
    spawned, even if it hangs; if ``stop()`` is never called, a finaliser kills
    the group when the object is collected or the interpreter exits.
    """

    root_user = "root"

    def __init__(
        self,
        *,
        root_password: str | None = None,
        host: str = "127.0.0.1",
        startup_timeout: float = 60.0,
        install_timeout: float = 120.0,
        base_dir: str | os.PathLike[str] | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        """Configure, but do not start, a server.

        ``startup_timeout`` bounds the wait for the first TCP login and
        ``install_timeout`` the creation of the system tables, in seconds.
        ``base_dir`` is a parent for the temporary directory (default: the
        system temp dir); the socket path must stay under ~100 bytes, so keep
        it short. ``extra_args`` are appended to the ``mariadbd`` command line.
        """
        self.host = host
        self.root_password = root_password or secrets.token_hex(16)
        self.startup_timeout = startup_timeout
        self.install_timeout = install_timeout
        self._base_dir = base_dir
        self._extra_args = list(extra_args or [])
        self.port: int = 0
        self.workdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._resources: _Resources | None = None
        self._finalizer: weakref.finalize[[], MariaDB] | None = None

    # -- paths -------------------------------------------------------------

    def _path(self, name: str) -> Path:
        if self.workdir is None:
            raise MariaDBError("MariaDB has not been started")
        return self.workdir / name

    @property
    def datadir(self) -> Path:
        """The server's data directory."""
        return self._path("data")

    @property
    def socket_path(self) -> Path:
        """The server's unix socket (root may log in there too)."""
        return self._path("mysqld.sock")

    @property
    def pid_file(self) -> Path:
        """The server's pid file."""
        return self._path("mysqld.pid")

    @property
    def log_path(self) -> Path:
        """The server's error log: look here when something goes wrong."""
        return self._path("mysqld.log")

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> MariaDB:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> MariaDB:
        """Initialise a datadir, start the server and wait until it serves.

        Raises ``MariaDBError`` (with the tail of the server log) if it does
        not accept a TCP root login within ``startup_timeout`` seconds. On
        any failure everything started so far is stopped and removed.
        """
        if self._process is not None:
            raise MariaDBError("MariaDB is already started")
        install_db = _find_binary("mariadb-install-db", "mysql_install_db")
        mariadbd = _find_binary("mariadbd", "mysqld")
        self.workdir = Path(tempfile.mkdtemp(prefix="stackops-mariadb-", dir=self._base_dir))
        self._resources = _Resources(self.workdir)
        self._finalizer = weakref.finalize(self, self._resources.release)
        try:
            self._install_db(install_db)
            for attempt in range(3):
                self.port = _free_port(self.host)
                try:
                    self._launch(mariadbd)
                    self._wait_ready()
                    return self
                except MariaDBError:
                    log = _tail(self.log_path)
                    self._terminate()
                    if attempt < 2 and any(m in log for m in _PORT_IN_USE_MARKERS):
                        self.log_path.unlink(missing_ok=True)
                        continue
                    raise
            raise AssertionError("unreachable")
        except BaseException:
            self.stop()
            raise

    def _install_db(self, install_db: str) -> None:
        """Create the system tables, with root passworded for TCP logins.

        ``--auth-root-authentication-method=normal`` creates root@localhost,
        root@127.0.0.1 and root@::1 with an *empty* password (``socket``, the
        default, would tie root to the unix_socket plugin, useless over TCP).
        The extra SQL file then sets the password on all of them and adds
        root@'%'; it runs in bootstrap mode, before anything can connect.
        """
        init_sql = self._path("init.sql")
        password = _sql_string(self.root_password)
        init_sql.write_text(
            "\n".join(
                [
                    # root@<hostname> is useless (and warned about) with
                    # --skip-name-resolve; anonymous users would shadow '%'.
                    "DELETE FROM mysql.global_priv WHERE User = '' OR "
                    "(User = 'root' AND Host NOT IN ('localhost', '127.0.0.1', '::1'));",
                    "DELETE FROM mysql.proxies_priv WHERE Host NOT IN ('localhost', '127.0.0.1', '::1');",
                    "FLUSH PRIVILEGES;",
                    f"ALTER USER 'root'@'localhost' IDENTIFIED BY {password};",
                    f"ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY {password};",
                    f"ALTER USER 'root'@'::1' IDENTIFIED BY {password};",
                    f"CREATE USER 'root'@'%' IDENTIFIED BY {password};",
                    "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;",
                    "",
                ]
            )
        )
        log = self._path("install-db.log")
        command = [
            install_db,
            "--no-defaults",
            f"--datadir={self.datadir}",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
            f"--extra-file={init_sql}",
            # Passed through to the bootstrap mariadbd (see _launch for why).
            "--innodb-use-native-aio=0",
        ]
        with open(log, "wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                returncode = process.wait(timeout=self.install_timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process.pid)
                process.wait()
                returncode = None
        if returncode != 0:
            status = "timed out" if returncode is None else f"failed with exit code {returncode}"
            raise MariaDBError(f"{' '.join(command)} {status}\n--- {log} (tail) ---\n{_tail(log)}")

    def _launch(self, mariadbd: str) -> None:
        """Start ``mariadbd`` in a new process group."""
        command = [
            mariadbd,
            "--no-defaults",  # never read /etc/mysql: keep the system's config out
            "--user=root",  # mariadbd refuses to run as root without it
            f"--datadir={self.datadir}",
            f"--socket={self.socket_path}",
            f"--pid-file={self.pid_file}",
            f"--log-error={self.log_path}",
            f"--tmpdir={self.workdir}",
            f"--port={self.port}",
            f"--bind-address={self.host}",
            "--skip-name-resolve",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_general_ci",
            # OpenStack services hold large connection pools.
            "--max-connections=500",
            # Small and fast; durability is irrelevant for a throwaway server.
            "--innodb-buffer-pool-size=64M",
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-doublewrite=0",
            "--sync-binlog=0",
            # io_uring/libaio are often blocked in containers (seccomp, memlock).
            "--innodb-use-native-aio=0",
            "--skip-log-bin",
            "--performance-schema=OFF",
            *self._extra_args,
        ]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # own process group: stop() kills it all
        )
        assert self._resources is not None
        self._resources.pgid = self._process.pid

    def _wait_ready(self) -> None:
        """Poll a TCP root login until it works or the timeout expires."""
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            returncode = self._process.poll()
            if returncode is not None:
                raise MariaDBError(
                    f"mariadbd exited with code {returncode} during startup\n"
                    f"--- {self.log_path} (tail) ---\n{_tail(self.log_path)}"
                )
            try:
                # read_timeout matters: if another process grabbed our port,
                # connect() succeeds and PyMySQL would wait for a greeting forever.
                self.connect(connect_timeout=2, read_timeout=2, write_timeout=2).close()
                return
            except pymysql.MySQLError as exc:
                last_error = exc
            time.sleep(0.1)
        raise MariaDBError(
            f"mariadbd did not accept a TCP root login on {self.host}:{self.port} "
            f"within {self.startup_timeout}s (last error: {last_error!r})\n"
            f"--- {self.log_path} (tail) ---\n{_tail(self.log_path)}"
        )

    def _terminate(self, timeout: float = 30.0) -> None:
        """SIGTERM the server's process group, then SIGKILL if it lingers."""
        process = self._process
        if process is None:
            return
        pgid = process.pid  # start_new_session: the leader's pid is the pgid
        _kill_group(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
        # Whether or not the leader exited, take down anything left in the group.
        _kill_group(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if self._resources is not None:
            self._resources.pgid = None
        self._process = None

    def stop(self) -> None:
        """Stop the server and delete its directory. Safe to call repeatedly."""
        self._terminate()
        if self._finalizer is not None:
            self._finalizer()  # removes the workdir; runs at most once
            self._finalizer = None
        self._resources = None
        self.workdir = None
        self.port = 0

    # -- client helpers ----------------------------------------------------

    def url(
        self,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        **query: str,
    ) -> str:
        """Return an SQLAlchemy URL ``mysql+pymysql://user:pw@host:port/db``.

        Defaults to root. ``query`` becomes the query string, e.g.
        ``charset="utf8mb4"``. User and password are percent-encoded.
        """
        if self.port == 0:
            raise MariaDBError("MariaDB has not been started")
        if user is None:
            user = self.root_user
            password = self.root_password if password is None else password
        credentials = quote(user, safe="")
        if password:
            credentials += ":" + quote(password, safe="")
        url = f"mysql+pymysql://{credentials}@{self.host}:{self.port}/"
        if database:
            url += quote(database, safe="")
        if query:
            url += "?" + urlencode(query)
        return url

    def connect(
        self,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        **kwargs: Any,
    ) -> pymysql.connections.Connection:
        """Open a PyMySQL connection over TCP (default: as root)."""
        if user is None:
            user = self.root_user
            password = self.root_password if password is None else password
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=user,
            password=password or "",
            database=database,
            **kwargs,
        )

    def query(self, sql: str, *args: Any, database: str | None = None) -> list[tuple[Any, ...]]:
        """The rows of one SQL query as root (`args` fill its %s placeholders)."""
        with contextlib.closing(self.connect(database=database)) as conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def execute(self, *statements: str) -> None:
        """Run SQL statements as root, with autocommit."""
        with contextlib.closing(self.connect(autocommit=True)) as conn, conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)


def lay_out_server_config(files: dict[str, str], tls: Mapping[str, str], etc_mysql: Path) -> None:
    """The rendered MariaDB pod's config files (its config Secret's `files`) where kolla_start puts
    them, and its served certificate's files (`tls`: MariaDB.tls_files) where its volume has them,
    under `etc_mysql` (a test's stand-in for /etc/mysql), owned by mysql with their modes."""
    from stackops.services.mariadb import TLS_FILES

    layout = {"my.cnf": (Path("my.cnf"), 0o600), "mariadb-start.sh": (Path("mariadb-start.sh"), 0o700)}
    layout["mariadb-probe.sh"] = (Path("mariadb-probe.sh"), 0o700)
    contents = dict(files) | dict(tls)
    layout |= {key: (Path(TLS_FILES[key]).relative_to("/etc/mysql"), 0o440) for key in tls}
    for key, (path, mode) in layout.items():
        target = etc_mysql / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.chown(target.parent, "mysql", "mysql")
        target.write_text(contents[key])
        target.chmod(mode)
        shutil.chown(target, "mysql", "mysql")
