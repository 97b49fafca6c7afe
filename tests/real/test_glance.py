"""Glance for real: database and registration through the stackops Jobs' own command, db-sync from
the rendered config.json, the API from glance 32 (2026.1) with a file store; openstacksdk uploads an
image through the catalog and reads the same bytes back."""

from __future__ import annotations

import hashlib
import os

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
