"""The image table agrees with the code: build arguments come from the release table, and a cloud
pointed at these images (`spec.images`) names exactly the tags built, with Kolla's uid as fsGroup."""

from __future__ import annotations

import pytest
import yaml

from stackops.api.releases import RELEASES, SUPPORTED_RELEASES
from stackops.api.validation import parse_cloud
from stackops.plan import plan
from tests.conftest import ROOT
from tests.images.build import SERVICES, Builder


@pytest.mark.parametrize("series", SUPPORTED_RELEASES)
def test_build_arguments_are_the_releases_requirements(series: str) -> None:
    release = RELEASES[series]
    images = Builder(release).images
    assert dict(images["openstack-base"].args)["CONSTRAINTS"] == " ".join(release.constraints)
    for service, declared in SERVICES.items():
        name = declared.names[0] if len(declared.names) == 1 else f"{declared.user.name}-base"
        args = dict(images[name].args)
        assert args["PIP_PACKAGES"].split()[0] == release.packages[service]
        assert args["SERVICE_UID"] == str(declared.user.uid)
        assert all(tag.endswith(f":{series}-debian-bookworm") for n in declared.names for tag in images[n].tags)


def test_a_cloud_pointed_at_these_images_runs_the_built_tags_as_their_users() -> None:
    body = yaml.safe_load((ROOT / "examples" / "production.yaml").read_text())
    body["spec"]["images"] = {"registry": "localhost", "namespace": "stackops", "distro": "debian-bookworm"}
    cloud = parse_cloud(body)
    images = Builder(RELEASES[cloud.spec.release]).images
    uids = {name: declared.user.uid for declared in SERVICES.values() for name in declared.names}
    matched = set()
    for obj in plan(cloud).objects():
        if obj["kind"] not in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            continue
        pod = obj["spec"]["template"]["spec"]
        for container in pod["containers"]:
            name = container["image"].rsplit("/", 1)[-1].split(":")[0]
            if name not in uids:
                continue
            matched.add(name)
            assert container["image"] == images[name].ref
            fs_group = pod.get("securityContext", {}).get("fsGroup")
            assert fs_group in (None, uids[name]), (obj["metadata"]["name"], fs_group)
    assert {"keystone", "glance-api", "placement-api", "nova-api", "horizon", "heat-engine"} <= matched
