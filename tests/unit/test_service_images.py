"""The images service modules declare (stackops.services.images): what the image catalogue of
hack/images/build.py and the release table are derived from."""

from __future__ import annotations

from stackops.api.releases import RELEASES
from stackops.services import all_services


def test_every_release_installs_a_package_for_each_service_with_openstack_images() -> None:
    declared = {s.name for s in all_services() if s.openstack_images}
    for release in RELEASES.values():
        assert set(release.packages) == declared, release.series


def test_no_image_is_declared_twice() -> None:
    names = [name for s in all_services() for name in s.images]
    assert len(names) == len(set(names))
