"""Running a command of a service's virtualenv as a container would: a clean environment, only what
is given."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def run(argv: list[str], env: dict[str, str], bin_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    path = f"{bin_dir}:{os.environ['PATH']}" if bin_dir else os.environ["PATH"]
    return subprocess.run(
        argv,
        env={"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), **env},
        capture_output=True,
        text=True,
        check=False,
    )
