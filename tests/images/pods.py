"""Running a rendered pod's container inside a built image with buildah, as a kubelet would start it.

The image is the one the pod names; the container's command, arguments, environment (Secret
references resolved) and user come from the pod; each Secret volume becomes a directory with the
files its items select, owned and moded the way the kubelet lays out a read-only Secret volume for
the pod's fsGroup. buildah's chroot isolation shares the host's network, so a pod reaches MariaDB on
loopback and the host reaches the pod's ports.
"""

from __future__ import annotations

import os
import secrets as tokens
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.images.build import Buildah
from tests.support.rendered import container_env

# What the kubelet gives files of a read-only volume when the pod has an fsGroup: group read.
FS_GROUP_FILE_BITS = 0o440


@contextmanager
def working_container(buildah: Buildah, image: str) -> Iterator[str]:
    """A buildah working container of `image`, removed afterwards."""
    name = f"stackops-test-{tokens.token_hex(4)}"
    buildah.run("from", "--pull-never", "--name", name, image)
    try:
        yield name
    finally:
        buildah.run("rm", name, check=False)


def secret_volume(
    volume: dict[str, Any], secrets: dict[str, dict[str, str]], target: Path, fs_group: int | None
) -> Path:
    """The files a Secret volume (or a projected volume of Secrets) shows: its items (or every key),
    with defaultMode and fsGroup applied."""
    if "projected" in volume:
        sources = [s["secret"] for s in volume["projected"]["sources"]]
        default_mode = volume["projected"].get("defaultMode", 0o644)
        named = [(secrets[source["name"]], source) for source in sources]
    else:
        default_mode = volume["secret"].get("defaultMode", 0o644)
        named = [(secrets[volume["secret"]["secretName"]], volume["secret"])]
    target.mkdir(parents=True)
    for data, source in named:
        items = source.get("items") or [{"key": k, "path": k} for k in sorted(data)]
        for item in items:
            path = target / item["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(data[item["key"]])
            path.chmod(item.get("mode", default_mode) | (FS_GROUP_FILE_BITS if fs_group is not None else 0))
            if fs_group is not None:
                os.chown(path, 0, fs_group)
    target.chmod(0o2755 if fs_group is not None else 0o755)
    if fs_group is not None:
        os.chown(target, 0, fs_group)
    return target


def run_options(pod: dict[str, Any], secrets: dict[str, dict[str, str]], workdir: Path) -> tuple[list[str], list[str]]:
    """buildah run options (user, environment, volumes) and the command of the pod's first container."""
    spec = pod["spec"]["template"]["spec"]
    container = spec["containers"][0]
    pod_security = spec.get("securityContext", {})
    fs_group = pod_security.get("fsGroup")
    options: list[str] = []
    security = {**pod_security, **container.get("securityContext", {})}
    if "runAsUser" in security:
        options += ["--user", f"{security['runAsUser']}:{security.get('runAsGroup', security['runAsUser'])}"]
    for name, value in container_env(container, secrets).items():
        options += ["--env", f"{name}={value}"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        assert "secret" in volume or "projected" in volume, f"only Secret volumes are laid out here, not {volume}"
        directory = secret_volume(volume, secrets, workdir / mount["name"], fs_group)
        options += ["--volume", f"{directory}:{mount['mountPath']}:ro"]
    return options, [*container.get("command", []), *container.get("args", [])]


def run(
    buildah: Buildah, pod: dict[str, Any], secrets: dict[str, dict[str, str]], workdir: Path
) -> subprocess.CompletedProcess[str]:
    """Run the pod's first container to completion (a Job) in the image it names."""
    options, command = run_options(pod, secrets, workdir)
    image = pod["spec"]["template"]["spec"]["containers"][0]["image"]
    with working_container(buildah, image) as name:
        # Buildah comes from hack/images/build.py loaded at run time: mypy sees Any
        result: subprocess.CompletedProcess[str] = buildah.run(
            "run", "--isolation", "chroot", *options, name, "--", *command, check=False
        )
        return result
