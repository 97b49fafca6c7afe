"""A Secret volume as the kubelet keeps it on a node, for servers run here that read one: the files
sit in a directory of their own, reached through the `..data` link, each name a link through it. An
update writes the new files into a new directory and swaps `..data` in one rename, so a reader sees
all old files or all new ones, never a mix: what a server that loads a renewed certificate in place
must cope with."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Mapping
from pathlib import Path


class ProjectedVolume:
    def __init__(self, path: Path, files: Mapping[str, str], mode: int = 0o440, group: str | None = None) -> None:
        """The volume at `path` with `files` (name: content), each `mode` and of `group` (the pod's
        fsGroup) when given. Made anew for each pod: a previous pod's at `path` goes."""
        self.path, self.mode, self.group = path, mode, group
        self.generations = itertools.count()
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        self.update(files)
        for name in files:
            (path / name).symlink_to(f"..data/{name}")

    def update(self, files: Mapping[str, str]) -> None:
        """The Secret's new values, swapped in at once, as the kubelet's sync does."""
        generation = self.path / f"..{next(self.generations)}"
        generation.mkdir()
        for name, content in files.items():
            (generation / name).write_text(content)
            (generation / name).chmod(self.mode)
            if self.group:
                shutil.chown(generation / name, group=self.group)
        next_link = self.path / "..data_tmp"
        next_link.symlink_to(generation.name)
        os.replace(next_link, self.path / "..data")
