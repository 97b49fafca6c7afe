"""helm for the chart tests: the binary `make chart` uses (hack/helm/helm.py), and the chart rendered
by `helm template` as Kubernetes objects."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "stackops"


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


getter = _load("stackops_helm", ROOT / "hack" / "helm" / "helm.py")
sync = _load("stackops_sync_chart", ROOT / "hack" / "helm" / "sync_chart.py")


def helm_env() -> dict[str, str]:
    """helm honours proxy variables; everything it talks to here is on loopback."""
    drop = {"HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY", "all_proxy"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(getter.ensure_helm()), *args], capture_output=True, text=True, check=check, env=helm_env()
    )


def values_args(values: dict[str, Any] | None) -> list[str]:
    """--set-json per top-level value: typed as given, no string coercion."""
    return [arg for key, value in (values or {}).items() for arg in ("--set-json", f"{key}={json.dumps(value)}")]


def template(
    values: dict[str, Any] | None = None,
    namespace: str = "stackops-system",
    crds: bool = False,
    release: str = "stackops",
) -> list[dict[str, Any]]:
    args = ["template", release, str(CHART), "--namespace", namespace, *values_args(values)]
    if crds:
        args.append("--include-crds")
    rendered = helm(*args).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def only(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = of_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]
