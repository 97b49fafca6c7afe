"""Glance for real: database and registration through the stackops Jobs' own command, db-sync and
the metadata definitions from the rendered config.json, the API from glance 32 (2026.1) with two
file stores; openstacksdk uploads an image through the catalog and reads the same bytes back, a
copy-image import copies it to the second store, and the metadefs catalog lists what glance ships."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from tests.real.deployment import Deployment
from tests.support.commands import run


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


def test_an_image_uploaded_to_one_store_is_copied_to_the_other_by_a_copy_image_import(
    glance: str, deployed: Deployment
) -> None:
    conn = deployed.connect()
    session = conn.image
    stores = session.get("/info/stores").json()["stores"]
    assert {s["id"]: s.get("default") in (True, "true") for s in stores} == {"file": True, "second": False}
    assert {s["id"]: s.get("description") for s in stores}["second"] == "the second store"
    methods = session.get("/info/import").json()["import-methods"]["value"]
    assert methods == ["glance-direct", "copy-image"]
    data = os.urandom(128 * 1024)
    image = conn.image.create_image(
        name="two-stores", data=data, disk_format="raw", container_format="bare", allow_duplicates=True
    )

    def shown() -> dict[str, object]:
        body: dict[str, object] = session.get(f"/images/{image.id}").json()
        return body

    assert shown()["stores"] == "file"
    copy = session.post(
        f"/images/{image.id}/import",
        json={"method": {"name": "copy-image"}, "stores": ["second"]},
        headers={"OpenStack-API-Version": "image 2.16"},
    )
    assert copy.status_code == 202, copy.text
    deadline = time.monotonic() + 60

    def copying(image: dict[str, object]) -> bool:
        # the task marks the store as being imported to once it starts, and clears it when done
        done = "second" in str(image["stores"]).split(",") or image.get("os_glance_failed_import")
        return not done or bool(image.get("os_glance_importing_to_stores"))

    while copying(shown()) and time.monotonic() < deadline:
        time.sleep(0.5)
    final = shown()
    assert final.get("os_glance_importing_to_stores") == "", final
    assert not final.get("os_glance_failed_import"), final
    assert sorted(str(final["stores"]).split(",")) == ["file", "second"]
    copied = deployed.root / "glance" / "second" / image.id
    assert hashlib.sha256(copied.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    conn.image.delete_image(image)


def test_a_downloaded_image_is_cached_and_the_pruner_the_sidecar_runs_brings_the_cache_back_to_size(
    glance: str, deployed: Deployment, glance_bin: Path
) -> None:
    conn = deployed.connect()
    data = os.urandom(512 * 1024)
    image = conn.image.create_image(
        name="cached", data=data, disk_format="raw", container_format="bare", allow_duplicates=True
    )
    assert conn.image.download_image(image).content == data  # the first read fills the cache
    cached = deployed.root / "glance" / "cache" / image.id
    deadline = time.monotonic() + 30
    while not cached.exists() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert cached.read_bytes() == data
    listed = conn.image.get("/cache").json()
    assert image.id in {entry["image_id"] for entry in listed["cached_images"]}, listed
    # the sidecar's commands, from its own config.json, with a size the cache is now over
    sidecar = deployed.kolla("Deployment", "glance", "api", container="glance-cache-pruner")
    conf = sidecar.files["/etc/glance/glance-api.conf"]
    assert (
        "glance-cache-pruner --config-file /etc/glance/glance-api.conf"
        in sidecar.files["/etc/glance/glance-cache-loop.sh"].read_text()
    )
    smaller = deployed.root / "glance-cache-smaller.conf"
    smaller.write_text(f"[DEFAULT]\nimage_cache_max_size = {len(data) // 2}\n")
    pruned = run(
        [str(glance_bin / "glance-cache-pruner"), "--config-file", str(conf), "--config-file", str(smaller)],
        sidecar.env,
        glance_bin,
    )
    assert pruned.returncode == 0, pruned.stderr[-2000:]
    assert not cached.exists()
    assert image.id not in {entry["image_id"] for entry in conn.image.get("/cache").json()["cached_images"]}
    cleaned = run([str(glance_bin / "glance-cache-cleaner"), "--config-file", str(conf)], sidecar.env, glance_bin)
    assert cleaned.returncode == 0, cleaned.stderr[-2000:]
    conn.image.delete_image(image)
