"""The guest builder (hack/guest/build.py) loaded as a module, so tests build and boot the guest exactly
as `python3 hack/guest/build.py --boot` does."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "hack" / "guest" / "build.py"
_spec = importlib.util.spec_from_file_location("stackops_guest_build", _PATH)
assert _spec is not None and _spec.loader is not None
guest_build = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = guest_build  # dataclasses look their module up while the file runs
_spec.loader.exec_module(guest_build)

Guest = guest_build.Guest
MARKER: str = guest_build.MARKER
ADDRESS_MARKER: str = guest_build.ADDRESS_MARKER
METADATA_MARKER: str = guest_build.METADATA_MARKER
