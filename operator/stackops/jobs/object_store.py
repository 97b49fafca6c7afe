"""Backups in an S3 bucket: what the backup Job's second container does once its first wrote a
backup onto the volume (`stackops job backup-upload`), and the restore Job's first container before
the restore runs (`stackops job backup-download`).

A backup is its file `NAME.EXTENSION` and its manifest `NAME.json` (templates/common/backups.sh.j2),
kept in the bucket as `PREFIX/NAME.EXTENSION` and `PREFIX/NAME.json`: the file first, the manifest
last, so that a backup counts in the bucket once its manifest is there, as on the volume. An upload
sends the backups of the volume the bucket does not have yet among the newest it keeps (one that
failed to go last time goes now), checks the size the bucket holds against the manifest, then
removes the oldest beyond the retention. A download fetches a backup's file and manifest; the
restore script checks the file's SHA-256 against the manifest before it touches anything.

boto3 (the AWS SDK, kept by AWS) speaks the S3 API of Amazon, Ceph RGW, MinIO and Swift's s3api:
SigV4 signing, multipart uploads of large files, retries.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackops.api.models import BACKUP_NAME_PATTERN

MANIFEST = ".json"
CHUNK = 1024 * 1024
NAMES = re.compile(BACKUP_NAME_PATTERN.removesuffix("$") + r"\.")  # a backup's files: NAME.<extension>


class ObjectStoreJobError(Exception):
    """The bucket refused or failed a request, or holds no such backup."""


@dataclass(frozen=True)
class Bucket:
    """Where the backups are, and how to reach it."""

    endpoint: str
    bucket: str
    region: str
    prefix: str
    access_key: str
    secret_key: str
    ca_bundle: str | None = None  # a file of PEM certificates; None: the image's public CAs
    path_style: bool = True

    def key(self, file: str) -> str:
        return f"{self.prefix}/{file}"

    def url(self, file: str) -> str:
        """The object's URL, for people (the status)."""
        if self.path_style:
            return f"{self.endpoint}/{self.bucket}/{self.key(file)}"
        scheme, _, rest = self.endpoint.partition("://")
        return f"{scheme}://{self.bucket}.{rest}/{self.key(file)}"

    def client(self) -> Any:
        # imported here: only these Jobs need boto3, not the operator
        import boto3
        from botocore.config import Config

        config = Config(
            s3={"addressing_style": "path" if self.path_style else "virtual"},
            signature_version="s3v4",
            retries={"max_attempts": 5, "mode": "standard"},
            # the checksums newer botocore adds unasked (CRC32 trailers) are refused by many S3
            # APIs but Amazon's (Swift's s3api, older Ceph and MinIO): only those S3 requires
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            verify=self.ca_bundle or True,  # never off
            config=config,
        )


def _errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return BotoCoreError, ClientError


def stored(s3: Any, bucket: Bucket) -> dict[str, list[str]]:
    """The backups in the bucket under its prefix: NAME -> its keys' file names (manifest included),
    whether or not the manifest is there; objects that are no backup's are left out."""
    found: dict[str, list[str]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket.bucket, Prefix=f"{bucket.prefix}/"):
        for entry in page.get("Contents", []):
            file = entry["Key"].removeprefix(f"{bucket.prefix}/")
            if "/" not in file and NAMES.match(file):
                found.setdefault(file.split(".", 1)[0], []).append(file)
    return found


def _manifests(directory: Path) -> list[Path]:
    """The finished backups of the volume, oldest first (a backup counts once its manifest is there)."""
    return sorted(p for p in directory.iterdir() if NAMES.match(p.name) and p.name.endswith(MANIFEST))


def upload(bucket: Bucket, directory: Path, retention: int) -> tuple[list[str], dict[str, Any]]:
    """The backups of `directory` the bucket lacks among the newest `retention` of both, then the
    bucket's retention; returns what changed and the newest backup's manifest with where the bucket
    has it (`uploaded`)."""
    manifests = {p.name.removesuffix(MANIFEST): p for p in _manifests(directory)}
    if not manifests:
        raise ObjectStoreJobError(f"{directory}: no finished backup to upload")
    s3 = bucket.client()
    changed: list[str] = []
    try:
        there = stored(s3, bucket)
        finished = {name for name, files in there.items() if f"{name}{MANIFEST}" in files}
        # what the bucket is to keep: none is uploaded only to be removed again
        kept = sorted(finished | manifests.keys(), reverse=True)[:retention]
        for name in sorted(set(kept) - finished):  # oldest first
            changed.append(_upload(s3, bucket, directory, manifests[name]))
            there[name] = [p.name for p in directory.iterdir() if p.name.startswith(f"{name}.")]
        # older ones, and what an upload cut short left of a backup no longer on the volume
        for old in sorted(set(there) - set(kept)):
            for file in there.pop(old):
                s3.delete_object(Bucket=bucket.bucket, Key=bucket.key(file))
            changed.append(f"{old} removed from the bucket (retention {retention})")
    except _errors() as error:
        raise ObjectStoreJobError(f"{bucket.endpoint} bucket {bucket.bucket}: {error}") from None
    newest = max(manifests)
    report = json.loads(manifests[newest].read_text())
    data = [f for f in sorted(there.get(newest, [])) if f != f"{newest}{MANIFEST}"]
    return changed, report | ({"uploaded": bucket.url(data[0])} if data else {})


def _upload(s3: Any, bucket: Bucket, directory: Path, manifest: Path) -> str:
    """One backup: its files, their size in the bucket checked against the manifest, then the manifest."""
    name = manifest.name.removesuffix(MANIFEST)
    size = json.loads(manifest.read_text())["size"]
    files = sorted(p for p in directory.iterdir() if p.name.startswith(f"{name}.") and p != manifest)
    for file in files:
        s3.upload_file(str(file), bucket.bucket, bucket.key(file.name))
    held = sum(s3.head_object(Bucket=bucket.bucket, Key=bucket.key(f.name))["ContentLength"] for f in files)
    if held != size:
        raise ObjectStoreJobError(f"{bucket.url(name)}: the bucket holds {held} bytes, not {size}")
    s3.upload_file(str(manifest), bucket.bucket, bucket.key(manifest.name))
    return f"{name} uploaded to {bucket.url(files[0].name)} ({size} bytes)"


def download(bucket: Bucket, name: str, directory: Path) -> list[str]:
    """The backup `name`'s file and manifest from the bucket into `directory`."""
    s3 = bucket.client()
    try:
        there = stored(s3, bucket)
        files = there.get(name, [])
        if f"{name}{MANIFEST}" not in files:
            finished = sorted(n for n, f in there.items() if f"{n}{MANIFEST}" in f)
            raise ObjectStoreJobError(f"no backup {name} in {bucket.url('')} (there: {' '.join(finished) or 'none'})")
        for file in sorted(files):  # one GET each, streamed to the file
            body = s3.get_object(Bucket=bucket.bucket, Key=bucket.key(file))["Body"]
            with (directory / file).open("wb") as out:
                shutil.copyfileobj(body, out, CHUNK)
    except _errors() as error:
        raise ObjectStoreJobError(f"{bucket.endpoint} bucket {bucket.bucket}: {error}") from None
    return [f"{file} downloaded from {bucket.url(file)}" for file in sorted(files)]
