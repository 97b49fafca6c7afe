"""The image builder (hack/images/build.py) loaded as a module, so tests build and inspect images
exactly as `make images` does."""

from __future__ import annotations

from tests.support.scripts import load_script

builder = load_script("hack/images/build.py", "stackops_image_build")

Buildah = builder.Buildah
Builder = builder.Builder
CI_IMAGES: tuple[str, ...] = builder.CI_IMAGES
SERVICES = builder.SERVICES
