"""The image builder (hack/images/build.py) loaded as a module, so tests build and inspect images
exactly as `make images` does."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "hack" / "images" / "build.py"
_spec = importlib.util.spec_from_file_location("stackops_image_build", _PATH)
assert _spec is not None and _spec.loader is not None
builder = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = builder  # dataclasses look their module up while the file runs
_spec.loader.exec_module(builder)

Buildah = builder.Buildah
Builder = builder.Builder
CI_IMAGES: tuple[str, ...] = builder.CI_IMAGES
SERVICES = builder.SERVICES
