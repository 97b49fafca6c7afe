"""The guest builder (hack/guest/build.py) loaded as a module, so tests build and boot the guest exactly
as `python3 hack/guest/build.py --boot` does."""

from __future__ import annotations

from tests.support.scripts import load_script

guest_build = load_script("hack/guest/build.py", "stackops_guest_build")

Guest = guest_build.Guest
MARKER: str = guest_build.MARKER
ADDRESS_MARKER: str = guest_build.ADDRESS_MARKER
METADATA_MARKER: str = guest_build.METADATA_MARKER
