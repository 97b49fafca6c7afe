"""Taking what the operator would run out of a rendered plan, to run it here for real.

A Job's container says which command runs (directly, or through Kolla's config.json) and which
environment it gets from Secrets; this module resolves both and lays the config files out under a
temporary root, so tests run exactly the rendered commands against real services.
"""

from __future__ import annotations

import datetime
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from stackops.api.models import OpenStackCloud
from stackops.certificates import CertificateRequest, issued
from stackops.credentials import Credentials
from stackops.kube.credentials_secret import next_values
from stackops.plan import Plan, ca_name, certificate_requests, required_credentials
from stackops.render.kolla import CONFIG_DIR
from tests.support.projected import ProjectedVolume


def cloud_credentials(cloud: OpenStackCloud, existing: Mapping[str, str] | None = None) -> dict[str, str]:
    """The credentials Secret's values the operator makes for `cloud` (`existing` completed):
    passwords and keys, the cloud's CA and its services' certificates."""
    values, _ = next_values(
        dict(existing or {}),
        {},
        required_credentials(cloud.spec),
        [],
        datetime.datetime.now(datetime.UTC),
        certificate_requests(cloud),
        ca_name(cloud),
    )
    return values


def renewed(credentials: Credentials, request: CertificateRequest, cloud: OpenStackCloud) -> Credentials:
    """The credentials with `request`'s certificate issued again, as the operator does months before
    it expires: the same names and CA, a new key and serial."""
    kept = {k: v for k, v in credentials.values().items() if k not in (request.cert_key, request.private_key)}
    return Credentials(issued(kept, [request], ca_name(cloud), datetime.datetime.now(datetime.UTC)))


def serial(pem: str) -> str:
    """A certificate's serial number as OpenSSL prints it (`openssl x509 -serial`, Python's
    getpeercert()): upper-case hex in whole bytes."""
    digits = format(x509.load_pem_x509_certificate(pem.encode()).serial_number, "X")
    return digits.zfill(len(digits) + len(digits) % 2)


def find(plan: Plan, kind: str, service: str, component: str) -> dict[str, Any]:
    found = [
        o
        for o in plan.objects()
        if o["kind"] == kind
        and o["metadata"]["labels"]["app.kubernetes.io/name"] == service
        and o["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    assert len(found) == 1, f"expected one {kind} for {service}/{component}, found {len(found)}"
    return found[0]


def secret_data(plan: Plan, name: str) -> dict[str, str]:
    secret = next(o for o in plan.objects() if o["kind"] == "Secret" and o["metadata"]["name"] == name)
    data: dict[str, str] = secret["stringData"]
    return data


def container_env(
    container: dict[str, Any], secrets: dict[str, dict[str, str]], fields: dict[str, str] | None = None
) -> dict[str, str]:
    """The container's environment, with secretKeyRefs resolved from `secrets` (name -> data) and
    fieldRefs from `fields` (field path -> value, e.g. status.podIP: what the kubelet would fill in)."""
    env: dict[str, str] = {}
    for var in container.get("env", []):
        if "value" in var:
            # $(NAME) of a variable defined before it, as the kubelet expands it
            env[var["name"]] = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), var["value"])
        elif "fieldRef" in var["valueFrom"]:
            env[var["name"]] = (fields or {})[var["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = secrets[ref["name"]][ref["key"]]
    return env


def container_of(pod: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """The pod's container `name`, an init container's too; its first container when no name is given."""
    if name is None:
        first: dict[str, Any] = pod["containers"][0]
        return first
    found: dict[str, Any] = next(c for c in [*pod.get("initContainers", []), *pod["containers"]] if c["name"] == name)
    return found


def projected_files(pod: dict[str, Any], container_name: str | None = None) -> dict[str, dict[str, str]]:
    """Every file the kubelet projects from Secrets into a container (the first, or the one named):
    its path in the container -> the Secret and key it comes from (and whether optional)."""
    container = container_of(pod, container_name)
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    files: dict[str, dict[str, str]] = {}
    for mount in container.get("volumeMounts", []):
        for source in volumes.get(mount["name"], {}).get("projected", {}).get("sources", []):
            for item in source["secret"]["items"]:
                ref = {"name": source["secret"]["name"], "key": item["key"]}
                files[f"{mount['mountPath']}/{item['path']}"] = ref | (
                    {"optional": "true"} if source["secret"].get("optional") else {}
                )
    return files


def secret_files(pod: dict[str, Any], container_name: str | None = None) -> dict[str, dict[str, str]]:
    """The Secret values a stackops Job's container (the first, or the one named) is given as files:
    the variable naming each file (without its _FILE) -> the Secret and key the file comes from."""
    files = projected_files(pod, container_name)
    container = container_of(pod, container_name)
    named = {v["name"].removesuffix("_FILE"): v["value"] for v in container["env"] if v["name"].endswith("_FILE")}
    return {name: files[path] for name, path in named.items()}


def job_env(
    pod: dict[str, Any], secrets: dict[str, dict[str, str]], root: Path, container_name: str | None = None
) -> dict[str, str]:
    """A container's environment (the first's, or the one named) with each Secret value it is given
    as a file (secret_files) written under `root`, as the kubelet lays out the projected volume, and
    its <NAME>_FILE variable pointing there instead."""
    env = container_env(container_of(pod, container_name), secrets)
    root.mkdir(parents=True, exist_ok=True)
    for name, ref in secret_files(pod, container_name).items():
        value = secrets[ref["name"]].get(ref["key"])
        (root / name).unlink(missing_ok=True)
        if value is not None or not ref.get("optional"):  # an optional key missing: no file, as the kubelet does
            (root / name).write_text(secrets[ref["name"]][ref["key"]])
        env[f"{name}_FILE"] = str(root / name)
    return env


def backup_pod(cloud_plan: Plan, kind: str, service: str, component: str) -> dict[str, Any]:
    """The pod of a backup CronJob's Jobs or of a restore Job."""
    obj = find(cloud_plan, kind, service, component)
    pod: dict[str, Any] = (obj["spec"]["jobTemplate"]["spec"] if kind == "CronJob" else obj["spec"])["template"]["spec"]
    return pod


def backup_command(
    cloud_plan: Plan, kind: str, service: str, component: str, root: Path, container_name: str | None = None
) -> tuple[list[str], dict[str, Any]]:
    """A backup CronJob's or restore Job's command and arguments as a container of its pod runs them
    (the one named `component`, or `container_name`: the upload or download beside it), and the
    container, with its volumes directories under `root`: the scripts of the rendered Secret its
    `scripts` volume mounts, and the backups' volume, each in place of where the pod mounts it."""
    pod = backup_pod(cloud_plan, kind, service, component)
    container = container_of(pod, container_name or component)
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    config = next(v["secret"]["secretName"] for v in pod["volumes"] if v["name"] == "scripts")
    scripts, backups = root / "scripts", root / "backups"
    scripts.mkdir(exist_ok=True)
    backups.mkdir(exist_ok=True)
    for name, text in secret_data(cloud_plan, config).items():
        (scripts / name).write_text(text)
    here = {mounts[name]: str(path) for name, path in (("scripts", scripts), ("backups", backups)) if name in mounts}
    command = [
        next((arg.replace(k, v) for k, v in here.items() if arg.startswith(k)), arg)
        for arg in [*container["command"], *container.get("args", [])]
    ]
    return command, container


# Secrets' data by their names, as the kubelet would find them (a test's own, or the rendered ones)
Secrets = dict[str, dict[str, str]]


@dataclass(frozen=True)
class KollaRun:
    """A Kolla container's command with its config files placed under a local root."""

    argv: list[str]
    env: dict[str, str]
    files: dict[str, Path]  # destination in the container -> where it is here
    # what the kubelet projects from Secrets, by mount path: a renewal updates them in place
    volumes: dict[str, ProjectedVolume] = field(default_factory=dict)


def kolla_run(
    plan: Plan,
    workload: dict[str, Any],
    root: Path,
    secrets: dict[str, dict[str, str]],
    container_name: str | None = None,
    fields: dict[str, str] | None = None,
) -> KollaRun:
    """What kolla_start would run in the workload's first container (or the one named, an init
    container's too), with files laid
    out under `root`; `fields` as for container_env."""
    pod = workload["spec"]["template"]["spec"]
    # an init container by its name: what runs before the pod's containers (swift's ring builder)
    candidates = [*pod["containers"], *pod.get("initContainers", [])]
    container = next(c for c in candidates if container_name in (None, c["name"]))
    assert container["command"] == ["kolla_start"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == CONFIG_DIR)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    data = secret_data(plan, volume["secret"]["secretName"])
    items = {i["path"]: i["key"] for i in volume["secret"]["items"]}
    config = json.loads(data[items["config.json"]])
    files: dict[str, Path] = {}
    for entry in config["config_files"]:
        source = entry["source"].removeprefix(f"{CONFIG_DIR}/")
        local = root / entry["dest"].lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(data[items[source]])
        files[entry["dest"]] = local
    # and what the kubelet projects from the Secrets given (a served certificate), as it lays it out
    projected: dict[str, dict[str, str]] = {}
    for dest, ref in projected_files(pod, container["name"]).items():
        if ref["name"] in secrets and ref["key"] in secrets[ref["name"]]:
            directory, name = dest.rsplit("/", 1)
            projected.setdefault(directory, {})[name] = secrets[ref["name"]][ref["key"]]
            files[dest] = root / dest.lstrip("/")
    volumes = {path: ProjectedVolume(root / path.lstrip("/"), contents) for path, contents in projected.items()}
    argv = [str(files.get(arg, arg)) for arg in shlex.split(config["command"])]
    return KollaRun(argv=argv, env=container_env(container, secrets, fields), files=files, volumes=volumes)
