"""Running the real operator against a real API server, as a process tests can kill and restart."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from stackops.devcluster import processes
from stackops.devcluster.cluster import free_ports


class OperatorProcess:
    """`stackops operator` in its own process group, logging to a file."""

    def __init__(self, kubeconfig: Path, log_path: Path, health_port: int, extra_env: dict[str, str] | None = None):
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.health_port = health_port
        self.metrics_port = free_ports(1)[0]
        self.extra_env = extra_env or {}
        self.process: processes.Process | None = None

    def command(self, *args: str) -> list[str]:
        command = [sys.executable, "-m", "stackops.cli", "operator", "--kubeconfig", str(self.kubeconfig)]
        command += ["--health-port", str(self.health_port), "--metrics-port", str(self.metrics_port)]
        # kwok runs no OpenStack behind the pods: health is the Kubernetes layer's only
        return [*command, "--no-openstack-checks", *args]

    def start(self, *args: str) -> OperatorProcess:
        # a test run that is killed outright must not leave an operator acting on its own
        self.process = processes.spawn(
            "stackops-operator",
            self.command(*args),
            self.log_path,
            die_with_parent=True,
            env={**os.environ, **self.extra_env},
        )
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.popen is not None and self.process.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: what a node failure or OOM does; no chance to clean up."""
        if self.process and self.process.popen and self.running():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.popen.wait()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, SIGKILL after `timeout`: the whole process group."""
        if self.process and self.running():
            processes.stop(self.process, str(self.log_path), timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
