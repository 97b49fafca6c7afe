"""`<workdir>/cluster.json`: what another process needs to find, use and stop a running cluster."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackops.devcluster.identities import Identity, write_private
from stackops.devcluster.processes import Process

STATE_FILE = "cluster.json"
_FORMAT = 1


@dataclass
class ClusterState:
    workdir: Path
    kube_version: str
    ports: dict[str, int]
    processes: list[Process]
    identities: dict[str, Identity]
    kubeconfig: Path
    binaries: dict[str, str]
    startup_seconds: float | None = None
    # Extra copy of the admin kubeconfig written by `stackops dev cluster up --kubeconfig`.
    exported_kubeconfig: Path | None = None
    # The address the API server listens on: loopback, or the host end of a real node's link.
    host: str = "127.0.0.1"
    real_node: bool = False
    # this cluster made the real node's changes to the machine (so its stop undoes them)
    owns_node: bool = False

    @property
    def server(self) -> str:
        return f"https://{self.host}:{self.ports['apiserver']}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "workdir": str(self.workdir),
            "kube_version": self.kube_version,
            "server": self.server,
            "host": self.host,
            "real_node": self.real_node,
            "owns_node": self.owns_node,
            "ports": self.ports,
            "processes": [p.as_dict() for p in self.processes],
            "identities": [i.as_dict() for i in self.identities.values()],
            "kubeconfig": str(self.kubeconfig),
            "exported_kubeconfig": str(self.exported_kubeconfig) if self.exported_kubeconfig else None,
            "binaries": self.binaries,
            "startup_seconds": self.startup_seconds,
        }

    def save(self) -> None:
        """Write atomically (rename), so a reader never sees half a file; 0600: it holds tokens."""
        target = self.workdir / STATE_FILE
        tmp = target.with_name(f".{STATE_FILE}.{os.getpid()}")
        write_private(tmp, json.dumps(self.as_dict(), indent=2) + "\n")
        tmp.replace(target)

    @classmethod
    def load(cls, workdir: Path) -> ClusterState:
        """Raises OSError if there is no state file, ValueError/KeyError if it is not ours."""
        data = json.loads((workdir / STATE_FILE).read_text(encoding="utf-8"))
        if data.get("format") != _FORMAT:
            raise ValueError(f"unknown state format {data.get('format')!r}")
        identities = [Identity.from_dict(i) for i in data["identities"]]
        exported = data.get("exported_kubeconfig")
        return cls(
            workdir=Path(data["workdir"]),
            kube_version=str(data["kube_version"]),
            ports={str(k): int(v) for k, v in data["ports"].items()},
            processes=[Process.from_dict(p) for p in data["processes"]],
            identities={i.key: i for i in identities},
            kubeconfig=Path(data["kubeconfig"]),
            binaries={str(k): str(v) for k, v in data["binaries"].items()},
            startup_seconds=data.get("startup_seconds"),
            exported_kubeconfig=Path(exported) if exported else None,
            host=str(data.get("host", "127.0.0.1")),
            real_node=bool(data.get("real_node", False)),
            owns_node=bool(data.get("owns_node", False)),
        )
