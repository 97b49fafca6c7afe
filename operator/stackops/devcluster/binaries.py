"""Find (and if needed build) the control-plane binaries the local cluster runs.

Search order, per binary: `$KUBEBUILDER_ASSETS` (envtest's asset dir: etcd and kube-apiserver,
sometimes kubectl; whatever it has wins, so a CI that already ships envtest assets does not
rebuild those), then the cache `${STACKOPS_CACHE:-~/.cache/stackops}/kube/<version>/`, which
is where `hack/kube/build.sh` puts what it compiles from pinned Go modules.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stackops.cache import cache_root
from stackops.devcluster.errors import DevClusterError

# Used when stackops runs from an installed package (no hack/kube/go.mod to read).
KUBE_VERSION = "v1.34.10"

PROGRAMS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
# A real node's programs (stackops.devcluster.realnode), built by the same script.
NODE_PROGRAMS = ("kubelet", "kube-proxy", "kube-router", "coredns")
# kwok alone finds no Stage objects; build.sh assembles kwokctl's default stages into this file.
KWOK_STAGES = "kwok-stages.yaml"
# cert-manager's controllers and CRDs (hack/kube/cert-manager), built only when asked (`build.sh cert-manager`)
CERT_MANAGER = ("cert-manager-controller", "cert-manager-crds.yaml")

_GO_MOD_REQUIRE = re.compile(r"^\s*(?:require\s+)?k8s\.io/kubernetes\s+(v\d[^\s]*)\s*(?://.*)?$", re.MULTILINE)


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of everything the cluster starts."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kwok: Path
    kwok_stages: Path
    kubelet: Path | None = None
    kube_proxy: Path | None = None
    coredns: Path | None = None
    kube_router: Path | None = None

    def node_programs(self) -> dict[str, Path]:
        """The real node's programs by name; DevClusterError when they were not looked for."""
        found = {
            "kubelet": self.kubelet,
            "kube-proxy": self.kube_proxy,
            "kube-router": self.kube_router,
            "coredns": self.coredns,
        }
        missing = [name for name, path in found.items() if path is None]
        if missing:
            raise DevClusterError(f"no {', '.join(missing)} binaries: ask ensure_binaries(real_node=True)")
        return {name: path for name, path in found.items() if path is not None}


def build_script() -> Path | None:
    """`hack/kube/build.sh` of the source checkout this package runs from, if it does."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "hack" / "kube" / "build.sh"
        if candidate.is_file():
            return candidate
    return None


def kube_version() -> str:
    """The Kubernetes version to run: pinned in hack/kube/go.mod (one source of truth) if present."""
    script = build_script()
    if script is not None:
        try:
            match = _GO_MOD_REQUIRE.search((script.parent / "go.mod").read_text(encoding="utf-8"))
        except OSError:
            match = None
        if match:
            return match.group(1)
    return KUBE_VERSION


def cache_dir(version: str | None = None) -> Path:
    return cache_root() / "kube" / (version or kube_version())


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def locate(version: str | None = None, real_node: bool = False) -> tuple[dict[str, Path], list[str]]:
    """Found files by name, and the names of those missing (programs and the kwok stages file)."""
    places = [Path(p) for p in [os.environ.get("KUBEBUILDER_ASSETS", "")] if p]
    places.append(cache_dir(version))
    found: dict[str, Path] = {}
    missing: list[str] = []
    programs = (*PROGRAMS, *(NODE_PROGRAMS if real_node else ()))
    for name in (*programs, KWOK_STAGES):
        ok = _executable if name in programs else Path.is_file
        hit = next((place / name for place in places if ok(place / name)), None)
        if hit is None:
            missing.append(name)
        else:
            found[name] = hit.absolute()
    return found, missing


def _run_build(script: Path, progress: Callable[[str], None], *args: str) -> None:
    """Run build.sh (with `args`), passing each output line on as it comes (a cold build takes minutes)."""
    progress(f"building missing binaries with {script} {' '.join(args)} (a cold build takes minutes)")
    last: deque[str] = deque(maxlen=20)
    with subprocess.Popen(
        ["bash", str(script), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as build:
        assert build.stdout is not None
        for line in build.stdout:
            line = line.rstrip("\n")
            last.append(line)
            progress(line)
    if build.returncode != 0:
        raise DevClusterError("\n".join([f"{script} failed (exit status {build.returncode}); last lines:", *last]))


def ensure_binaries(
    build: bool = True, progress: Callable[[str], None] = print, *, real_node: bool = False
) -> Binaries:
    """All binaries the cluster needs (with a real node's when asked), building missing ones with
    hack/kube/build.sh when possible."""
    version = kube_version()
    found, missing = locate(version, real_node)
    script = build_script()
    if missing and build and script is not None:
        _run_build(script, progress)
        found, missing = locate(version, real_node)
    if missing:
        how = (
            f"run {script} (needs Go >= 1.26)"
            if script is not None
            else "build them from a stackops source checkout with hack/kube/build.sh (needs Go >= 1.26), "
            "or point KUBEBUILDER_ASSETS at a directory holding them"
        )
        raise DevClusterError(
            f"missing Kubernetes {version} binaries: {', '.join(missing)} "
            f"(looked in {'$KUBEBUILDER_ASSETS and ' if os.environ.get('KUBEBUILDER_ASSETS') else ''}"
            f"{cache_dir(version)}); {how}"
        )
    return Binaries(
        etcd=found["etcd"],
        kube_apiserver=found["kube-apiserver"],
        kube_controller_manager=found["kube-controller-manager"],
        kube_scheduler=found["kube-scheduler"],
        kwok=found["kwok"],
        kwok_stages=found[KWOK_STAGES],
        kubelet=found.get("kubelet"),
        kube_proxy=found.get("kube-proxy"),
        coredns=found.get("coredns"),
        kube_router=found.get("kube-router"),
    )


def ensure_cert_manager(progress: Callable[[str], None] = print) -> tuple[Path, Path]:
    """cert-manager's controllers and its CRDs (one YAML file) from the cache, built with
    `hack/kube/build.sh cert-manager` when missing."""
    paths = tuple(cache_dir() / name for name in CERT_MANAGER)
    script = build_script()
    if not all(p.is_file() for p in paths) and script is not None:
        _run_build(script, progress, "cert-manager")
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DevClusterError(f"missing {', '.join(missing)} in {cache_dir()}: run hack/kube/build.sh cert-manager")
    return paths[0], paths[1]
