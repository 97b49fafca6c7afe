"""Glance for real: database and registration through the stackops Jobs' own command, db-sync and
the metadata definitions from the rendered config.json, the API from glance 32 (2026.1) with a file
store; openstacksdk uploads an image through the catalog and reads the same bytes back, and the
metadefs catalog lists what glance ships."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from tests.real.deployment import Deployment


def test_upload_an_image_and_read_it_back(glance: str, deployed: Deployment) -> None:
    conn = deployed.connect()
    assert conn.image.get_endpoint().rstrip("/").startswith(glance)
    data = os.urandom(256 * 1024)
    image = conn.image.create_image(
        name="cirros-like", data=data, disk_format="raw", container_format="bare", allow_duplicates=True
    )
    stored = conn.image.get_image(image.id)
    assert stored.status == "active" and stored.size == len(data)
    downloaded = conn.image.download_image(stored).content
    assert hashlib.sha256(downloaded).hexdigest() == hashlib.sha256(data).hexdigest()
    assert (deployed.root / "glance" / "images" / image.id).stat().st_size == len(data)
    conn.image.delete_image(image)


def test_the_metadata_definitions_glance_ships_are_listed_and_loading_again_changes_nothing(
    glance: str, deployed: Deployment, glance_bin: Path
) -> None:
    shipped = glance_bin.parent / "etc" / "glance" / "metadefs"
    files = [json.loads(f.read_text()) for f in shipped.glob("*.json")]
    namespaces = {f["namespace"] for f in files}
    resource_types = {rt["name"] for f in files for rt in f.get("resource_type_associations", [])}
    conn = deployed.connect()

    def listed() -> tuple[set[str], set[str]]:
        found = {n.namespace for n in conn.image.metadef_namespaces()}
        types = {t.name for t in conn.image.metadef_resource_types()}
        return found, types

    assert len(namespaces) > 20
    assert listed() == (namespaces, resource_types)
    # the Job again (a new release runs it again): nothing doubled, nothing lost
    again = deployed.kolla_job("glance", "metadefs", glance_bin)
    assert again.returncode == 0, again.stderr[-2000:]
    assert listed() == (namespaces, resource_types)
