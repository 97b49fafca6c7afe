"""Running the real operator against a real API server, as a process tests can kill and restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from stackops.devcluster.cluster import free_ports
from stackops.devcluster.processes import die_with_parent_preexec


class OperatorProcess:
    """`stackops operator` in its own process group, logging to a file."""

    def __init__(self, kubeconfig: Path, log_path: Path, health_port: int, extra_env: dict[str, str] | None = None):
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.health_port = health_port
        self.metrics_port = free_ports(1)[0]
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *args: str) -> OperatorProcess:
        env = {**os.environ, **self.extra_env}
        command = [sys.executable, "-m", "stackops.cli", "operator", "--kubeconfig", str(self.kubeconfig)]
        command += ["--health-port", str(self.health_port), "--metrics-port", str(self.metrics_port)]
        # kwok runs no OpenStack behind the pods: health is the Kubernetes layer's only
        command += ["--no-openstack-checks", *args]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # a test run that is killed outright must not leave an operator acting on its own
                preexec_fn=die_with_parent_preexec(),
            )
        return self

    def kill(self) -> None:
        """SIGKILL: what a node failure or OOM does; no chance to clean up."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 20.0) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
