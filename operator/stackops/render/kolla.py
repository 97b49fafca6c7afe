"""The Kolla container contract: image names, config.json, and the config volume.

Kolla images start with `kolla_start`, which copies the files listed in
/var/lib/kolla/config_files/config.json to their destinations and then runs `command`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from stackops.api.models import ImagesSpec

CONFIG_DIR = "/var/lib/kolla/config_files"
CONFIG_STRATEGY_ENV = {"name": "KOLLA_CONFIG_STRATEGY", "value": "COPY_ALWAYS"}

# Python inside Kolla images, per base distro: needed for paths into site-packages.
DISTRO_PYTHON = {
    "ubuntu-noble": "3.12",
    "debian-bookworm": "3.11",
    "rocky-10": "3.12",
    "centos-stream10": "3.12",
}


def image_ref(images: ImagesSpec, release: str, name: str, overrides: dict[str, str]) -> str:
    """<registry>/<namespace>/<name>:<release>-<distro>, unless the service overrides this image."""
    if name in overrides:
        return overrides[name]
    tag = images.tag or f"{release}-{images.distro}"
    return f"{images.registry}/{images.namespace}/{name}:{tag}"


@dataclass(frozen=True)
class ConfigFile:
    """One file kolla_start copies from the config volume into place."""

    source: str
    dest: str
    owner: str
    perm: str = "0600"


@dataclass(frozen=True)
class Permission:
    path: str
    owner: str
    perm: str | None = None
    recurse: bool = False


@dataclass(frozen=True)
class KollaCommand:
    """What one container runs, as a config.json."""

    command: str
    files: tuple[ConfigFile, ...] = ()
    permissions: tuple[Permission, ...] = field(default=())

    def to_json(self) -> str:
        document: dict[str, Any] = {
            "command": self.command,
            "config_files": [
                {"source": f"{CONFIG_DIR}/{f.source}", "dest": f.dest, "owner": f.owner, "perm": f.perm}
                for f in self.files
            ],
        }
        if self.permissions:
            document["permissions"] = [
                {k: v for k, v in vars(p).items() if v not in (None, False)} for p in self.permissions
            ]
        return json.dumps(document, indent=2) + "\n"


def config_volume(name: str, secret_name: str, command_key: str, command: KollaCommand) -> dict[str, Any]:
    """A Secret volume holding exactly one container's config.json and the files it lists."""
    items = [{"key": command_key, "path": "config.json"}]
    items += [{"key": f.source, "path": f.source} for f in command.files]
    return {"name": name, "secret": {"secretName": secret_name, "items": items, "defaultMode": 0o400}}


def config_mount(name: str) -> dict[str, Any]:
    return {"name": name, "mountPath": CONFIG_DIR, "readOnly": True}
