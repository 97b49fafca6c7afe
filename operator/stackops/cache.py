"""Where stackops keeps what it can build again: binaries, images, compiled templates.

`STACKOPS_CACHE` moves it (CI machines, read-only homes); nothing in it is needed for correctness.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("STACKOPS_CACHE") or Path.home() / ".cache" / "stackops")
