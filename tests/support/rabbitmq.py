"""A throwaway, real RabbitMQ server from Debian's rabbitmq-server package, for tests.

It boots the rabbitmq.conf, the conf.d files (the first-boot administrator) and enabled_plugins
stackops renders, with two changes only: the listeners move to free loopback ports, and the
Kubernetes peer discovery settings are dropped unless asked for (without a Kubernetes API to
discover peers through, the node starts on its own). Its Mnesia directory, logs, Erlang cookie,
conf.d and (with internal TLS) the certificate, key and CA the config names, and Erlang's
distribution options with the environment file naming them, live in a temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
import urllib3

from stackops.devcluster.cluster import free_ports
from stackops.services.base import ServedCertificate
from stackops.services.rabbitmq import DEFAULT_USER_CONF, DIST_TLS_FILE, ENV_FILE, TLS_FILES

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # not /usr/sbin's wrapper, which switches users
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # the probe of api() alone


class RabbitMQError(RuntimeError):
    """The RabbitMQ server could not be started or reached."""


def port_mapper(port: int) -> subprocess.Popen[bytes]:
    """An Erlang port mapper in the foreground (not the daemon Erlang would fork), for its owner to stop."""
    epmd = shutil.which("epmd") or "/usr/bin/epmd"
    return subprocess.Popen(
        [epmd, "-port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


class RabbitMQ:
    def __init__(
        self,
        rabbitmq_conf: str,
        enabled_plugins: str,
        cookie: str,
        admin: tuple[str, str],
        *,
        keep_peer_discovery: bool = False,
        epmd_port: int | None = None,
        tls_files: Mapping[str, str] | None = None,
        conf_d: Mapping[str, str] | None = None,
        host: str = "localhost",
        hosts: Sequence[str] = (),
    ) -> None:
        """`epmd_port`: a port mapper the caller runs, shared by the members of a cluster (they find
        each other through it); by default each server starts one of its own. `tls_files`: the
        certificate, key and CA a config with TLS listeners names (RabbitMQ.tls_files: what its pod
        is served), and the config Secret's files of Erlang's distribution over TLS.
        `conf_d`: files of the directory read after rabbitmq.conf (rabbitmq.CONF_D), by name.
        `host`: the host name of the node (a long name, as a pod's, unless localhost), which it and
        `hosts` (its peers') resolve to loopback through Erlang's own host table."""
        if not os.path.exists(SERVER):
            raise RabbitMQError(f"{SERVER} is missing: install the Debian package rabbitmq-server")
        self.host = "127.0.0.1"
        self.port, self.management_port, self.dist_port, self.epmd_port, prometheus_port = free_ports(5)
        self.own_epmd = epmd_port is None
        self.epmd_port = epmd_port or self.epmd_port
        self.admin = admin
        self.root = Path(tempfile.mkdtemp(prefix="stackops-rabbitmq-"))
        self.node = f"rabbit-{self.port}@{host}"
        listeners = {"listeners.tcp.default": self.port, "management.tcp.port": self.management_port}
        listeners |= {"listeners.ssl.default": self.port, "management.ssl.port": self.management_port}
        self.tls = "listeners.ssl.default = " in rabbitmq_conf
        paths = {path: self.root / key for key, path in TLS_FILES.items()}
        self.paths = paths
        for key, path in TLS_FILES.items():
            if self.tls:
                paths[path].write_text((tls_files or {})[key])
        # Erlang's distribution over TLS, as the rendered environment file and TLS options ask (the
        # server and the command line tools read the environment file)
        env_file = self.root / "rabbitmq-env.conf"
        given = tls_files or {}
        if all(Path(name).name in given for name in (DIST_TLS_FILE, ENV_FILE)):
            here = {
                **{path: str(file) for path, file in paths.items()},
                DIST_TLS_FILE: str(self.root / "dist.config"),
            }
            for name, written in ((DIST_TLS_FILE, self.root / "dist.config"), (ENV_FILE, env_file)):
                text = given[Path(name).name]
                for path, file in here.items():
                    text = text.replace(path, file)
                written.write_text(text)

        def local(line: str) -> str:
            key, _, value = line.partition(" = ")
            if key in listeners:
                return f"{key} = {listeners[key]}"
            return f"{key} = {paths[value]}" if value in paths else line

        discovery = not keep_peer_discovery
        lines = [
            local(line)
            for line in rabbitmq_conf.splitlines()
            if not (discovery and line.startswith("cluster_formation."))
        ]
        # the Prometheus plugin's own port, so two servers (or a system one) do not collide
        lines.append(f"prometheus.tcp.port = {prometheus_port}")
        (self.root / "rabbitmq.conf").write_text("\n".join(lines) + "\n")
        (self.root / "enabled_plugins").write_text(enabled_plugins)
        (self.root / "conf.d").mkdir()
        for name, text in (conf_d or {}).items():
            (self.root / "conf.d" / name).write_text(text)
        home = self.root / "home"
        home.mkdir()
        (home / ".erlang.cookie").write_text(cookie)
        (home / ".erlang.cookie").chmod(0o400)
        self.env = {
            **os.environ,
            "HOME": str(home),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq.conf"),
            "RABBITMQ_CONFIG_FILES": str(self.root / "conf.d" / "*.conf"),  # not the machine's
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_LOGS": "-",
            # none, unless written above (the default, /etc/rabbitmq's, is the machine's)
            "RABBITMQ_CONF_ENV_FILE": str(env_file),
            # a port mapper of its own, stopped with the server
            "ERL_EPMD_PORT": str(self.epmd_port),
        }
        if host != "localhost":
            names = " ".join(f'"{name}"' for name in sorted({host, *hosts})).replace('" "', '", "')
            (self.root / "inetrc").write_text(f"{{host, {{127,0,0,1}}, [{names}]}}.\n{{lookup, [file, native]}}.\n")
            self.env |= {"RABBITMQ_USE_LONGNAME": "true", "ERL_INETRC": str(self.root / "inetrc")}
        self.process: subprocess.Popen[bytes] | None = None
        self.epmd: subprocess.Popen[bytes] | None = None

    @classmethod
    def rendered(cls, files: Mapping[str, str], admin: tuple[str, str], **options: Any) -> RabbitMQ:
        """A server of the files of the rendered config Secret: rabbitmq.conf, the plugins, the
        cookie, and the administrator a node makes on its first boot (with TLS: the certificates)."""
        conf, plugins, cookie = files["rabbitmq.conf"], files["enabled_plugins"], files["erlang.cookie"]
        return cls(conf, plugins, cookie, admin, conf_d={DEFAULT_USER_CONF: files[DEFAULT_USER_CONF]}, **options)

    @property
    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def api(self, path: str) -> requests.Response:
        """The management API, as the tests' own probe: over TLS (the server's name is not 127.0.0.1, so
        not verified here; clients that verify it do so in tests/real/test_rabbitmq_tls.py)."""
        scheme = "https" if self.tls else "http"
        url = f"{scheme}://{self.host}:{self.management_port}/api/{path}"
        return requests.get(url, auth=self.admin, timeout=10, verify=False)

    def serve(self, tls_files: Mapping[str, str]) -> None:
        """New contents of the server's certificate, key and CA, as the kubelet renews them in place:
        each file replaced whole (the server reads them again only when asked)."""
        for key, path in TLS_FILES.items():
            staged = self.paths[path].with_suffix(".new")
            staged.write_text(tls_files[key])
            staged.replace(self.paths[path])

    def probe(self, argv: Sequence[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """A rendered exec probe, run against this node: the paths it names are this server's files
        (as rabbitmq.conf's are, and its /tmp a directory of its own), and the tools are the
        package's own, which find the node by the environment (RABBITMQ_NODENAME), as a pod's do."""
        here = {path: str(file) for path, file in self.paths.items()}
        here[ServedCertificate.loaded_marker] = str(self.root / "tls-loaded")
        command = []
        for arg in argv:
            for path, file in here.items():
                arg = arg.replace(path, file)
            command.append(arg)
        env = self.env | {"PATH": f"/usr/lib/rabbitmq/bin:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)

    def cli(self, tool: str, *args: str, timeout: float = 60) -> str:
        """Run one of RabbitMQ's command line tools (rabbitmqctl, rabbitmq-plugins …) against the node."""
        result = subprocess.run(
            [f"/usr/lib/rabbitmq/bin/{tool}", "-n", self.node, *args],
            env=self.env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RabbitMQError(f"{tool} {' '.join(args)}: {result.stderr[-2000:]}")
        return result.stdout

    def launch(self) -> subprocess.Popen[bytes]:
        """Start the server process without waiting for it to answer."""
        if self.own_epmd:
            self.epmd = port_mapper(self.epmd_port)
        with (self.root / "server.log").open("wb") as log:
            # a session of its own: the start script runs the Erlang VM as a child, and both must go
            self.process = subprocess.Popen(
                [SERVER], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self.process

    def start(self, timeout: float = 90.0) -> None:
        self.launch()
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RabbitMQError(f"rabbitmq-server exited ({self.process.returncode}):\n{self.log[-4000:]}")
            try:
                if self.api("overview").ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.terminate()
        raise RabbitMQError(f"rabbitmq-server did not answer within {timeout:.0f}s:\n{self.log[-4000:]}")

    def stop(self) -> None:
        """Stop the server and remove everything it wrote."""
        self.terminate()
        shutil.rmtree(self.root, ignore_errors=True)

    def terminate(self) -> None:
        """Stop the server (and its port mapper), keeping its files and log."""
        if self.process is not None and self.process.poll() is None:
            # the start script does not pass SIGTERM on to the Erlang VM: ask the node to stop
            with contextlib.suppress(RabbitMQError, subprocess.TimeoutExpired):
                self.cli("rabbitmqctl", "stop", timeout=15)
        self.kill(signal.SIGTERM)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the server's whole process group and wait for the start script to end."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if self.epmd is not None and self.epmd.poll() is None:
            self.epmd.kill()
            self.epmd.wait()

    def __enter__(self) -> RabbitMQ:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
