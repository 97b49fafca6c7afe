#!/usr/bin/env python3
"""Build stackops' images with buildah: the operator image (the root Dockerfile) and the Kolla-compatible
OpenStack images (images/), all from a Debian base made by debootstrap. No container registry is pulled.

    .venv/bin/python hack/images/build.py                       # every image, default release
    .venv/bin/python hack/images/build.py operator keystone     # these and the images they build on
    .venv/bin/python hack/images/build.py ci                    # what CI builds: the same two
    .venv/bin/python hack/images/build.py --release 2025.2 --list

Everything lives under ${STACKOPS_CACHE:-~/.cache/stackops}/images: the rootfs tarball, buildah's storage
(overlay driver: layers are shared, not copied per image) and build logs. Each image carries a label with the hash of
its inputs (Containerfile, the files it copies, build args, its parent's hash); an image whose hash is
unchanged is not built again.

Which images there are, their Debian packages and their Kolla users come from the service modules
(each declares what it runs: stackops.services.images). Service images install the PyPI requirements
of the release (stackops.api.releases), passed as build args from that table; they are tagged
<registry>/<name>:<release>-debian-bookworm, so a cloud with
`spec.images: {registry: localhost, namespace: stackops, distro: debian-bookworm}` runs them.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from stackops import __version__
from stackops.api.releases import (
    DEFAULT_RELEASE,
    MEMCACHED_CLIENTS,
    RELEASES,
    RUNTIME_LIBRARIES,
    SUPPORTED_RELEASES,
    Release,
)
from stackops.cache import cache_root
from stackops.devcluster.realnode import PAUSE_IMAGE  # containerd's sandbox_image on the real node
from stackops.services import all_services
from stackops.services.base import default_operator_image
from stackops.services.images import DebianImage, OpenStackImages

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "images"
ROOTFS_SCRIPT = ROOT / "hack" / "images" / "debian-rootfs.sh"

REGISTRY = "localhost/stackops"
DISTRO = "debian-bookworm"
# The name the root Dockerfile starts from; the debootstrap base is tagged under it as well.
PYTHON_IMAGE = "docker.io/library/python:3.11-slim-bookworm"
INPUTS_LABEL = "dev.stackops.inputs"
BUILD_CA = "/run/stackops-build-ca.crt"
# Images a CI run builds: enough for the operator's Jobs and one OpenStack service end to end.
CI_IMAGES = ("operator", "keystone")


# What each service module declares it runs (stackops.services.images): the OpenStack services'
# images by service (Release.packages' key), and the infrastructure images in dependency order.
SERVICES: dict[str, OpenStackImages] = {s.name: s.openstack_images for s in all_services() if s.openstack_images}
INFRA: tuple[DebianImage, ...] = tuple(image for s in all_services() for image in s.debian_images)


@dataclass(frozen=True)
class Image:
    """One image: how to build it and what its content depends on."""

    name: str
    tags: tuple[str, ...]
    context: Path
    containerfile: Path
    parent: str | None = None  # the image it is built FROM, passed as the build arg `parent_arg`
    parent_arg: str = ""
    args: tuple[tuple[str, str], ...] = ()
    inputs: tuple[Path, ...] = ()  # files whose content the image holds (beyond the Containerfile)

    @property
    def ref(self) -> str:
        return self.tags[0]


def images_root() -> Path:
    return cache_root() / "images"


def tag(name: str, release: str | None) -> str:
    return f"{REGISTRY}/{name}:{release}-{DISTRO}" if release else f"{REGISTRY}/{name}:{DISTRO}"


def _files(directory: Path) -> tuple[Path, ...]:
    """Files under `directory` as a build copies them (no bytecode caches or build metadata)."""
    found = [
        p
        for p in directory.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and not any(part.endswith(".egg-info") for part in p.parts)
        and p.suffix != ".pyc"
    ]
    return tuple(sorted(found))


def catalogue(release: Release) -> dict[str, Image]:
    """Every image of `release`, parents before children."""
    series = release.series
    constraints = " ".join(release.constraints)
    found: dict[str, Image] = {
        "debian": Image(
            "debian",
            (f"{REGISTRY}/debian:bookworm", PYTHON_IMAGE),
            IMAGES / "debian",
            IMAGES / "debian" / "Containerfile",
            inputs=(ROOTFS_SCRIPT,),
        ),
        "operator": Image(
            "operator",
            (default_operator_image(), f"{REGISTRY}/stackops:{__version__}"),
            ROOT,
            ROOT / "Dockerfile",
            parent="debian",
            inputs=(ROOT / ".dockerignore", ROOT / "pyproject.toml", ROOT / "README.md", *_files(ROOT / "operator")),
        ),
        "base": Image(
            "base",
            (tag("base", None),),
            IMAGES / "base",
            IMAGES / "base" / "Containerfile",
            parent="debian",
            parent_arg="DEBIAN_IMAGE",
            inputs=_files(IMAGES / "base"),
        ),
        "openstack-base": Image(
            "openstack-base",
            (tag("openstack-base", series),),
            IMAGES / "openstack-base",
            IMAGES / "openstack-base" / "Containerfile",
            parent="base",
            parent_arg="BASE_IMAGE",
            args=(
                ("CONSTRAINTS", constraints),
                ("RUNTIME_LIBRARIES", " ".join(RUNTIME_LIBRARIES)),
                ("MEMCACHED_CLIENTS", " ".join(MEMCACHED_CLIENTS)),
            ),
            inputs=_files(IMAGES / "openstack-base"),
        ),
    }
    found["pause"] = Image(
        "pause",
        (PAUSE_IMAGE,),
        IMAGES / "pause",
        IMAGES / "pause" / "Containerfile",
        inputs=_files(IMAGES / "pause"),
    )
    for infra in INFRA:
        found[infra.name] = Image(
            infra.name,
            tuple(tag(name, series) for name in infra.names),
            IMAGES / "infra",
            IMAGES / "infra" / "Containerfile",
            parent="base",
            parent_arg="BASE_IMAGE",
            args=(
                ("IMAGE", infra.name),
                ("APT_PACKAGES", " ".join(infra.apt)),
                ("USER_NAME", infra.user.name),
                ("USER_UID", str(infra.user.uid)),
                ("USER_HOME", infra.user.home),
                ("PEER_USERS", " ".join(f"{peer.name}:{peer.uid}" for peer in infra.peers)),
            ),
            inputs=_files(IMAGES / "infra"),
        )
    for service in release.packages:  # the services whose package the release installs, in its order
        declared = SERVICES[service]
        user = declared.user.name
        pip = " ".join(release.own_requirements(service))
        common = (("SERVICE", user), ("SERVICE_UID", str(declared.user.uid)), ("PIP_PACKAGES", pip))
        # A service with one image is built in one go; with several, once as <service>-base and
        # then each component on top of it (so the service's packages are installed once).
        if len(declared.images) == 1:
            [image] = declared.images
            found[image.name] = _service_image(image.name, series, common, image.apt)
            continue
        found[f"{user}-base"] = _service_image(f"{user}-base", series, common, ())
        for image in declared.images:
            found[image.name] = Image(
                image.name,
                (tag(image.name, series),),
                IMAGES / "component",
                IMAGES / "component" / "Containerfile",
                parent=f"{user}-base",
                parent_arg="SERVICE_BASE_IMAGE",
                args=(
                    ("SERVICE", user),
                    ("APT_PACKAGES", " ".join(image.apt)),
                    ("PIP_PACKAGES", " ".join(image.pip)),
                    ("BUILD_PACKAGES", " ".join(image.build_deps)),
                    ("ROOT_HELPER", "yes" if image.root_helper else ""),
                ),
                inputs=_files(IMAGES / "component"),
            )
    return found


def _service_image(name: str, series: str, common: tuple[tuple[str, str], ...], apt: tuple[str, ...]) -> Image:
    return Image(
        name,
        (tag(name, series),),
        IMAGES / "service",
        IMAGES / "service" / "Containerfile",
        parent="openstack-base",
        parent_arg="OPENSTACK_BASE_IMAGE",
        args=(*common, ("APT_PACKAGES", " ".join(apt))),
        inputs=_files(IMAGES / "service"),
    )


def with_parents(images: dict[str, Image], names: Sequence[str]) -> list[Image]:
    """`names` and every image they build on, parents first."""
    wanted: set[str] = set()
    for name in names:
        while name:
            wanted.add(name)
            name = images[name].parent or ""
    return [image for key, image in images.items() if key in wanted]


class Buildah:
    """buildah with stackops' storage: overlay driver, root and runroot in the cache, chroot isolation."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or images_root()
        self.storage = self.root / "storage-overlay"
        self.runroot = self.root / "run"

    def argv(self, *args: str) -> list[str]:
        return [
            "buildah",
            "--root",
            str(self.storage),
            "--runroot",
            str(self.runroot),
            "--storage-driver",
            "overlay",
            *args,
        ]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), capture_output=True, text=True, check=check)

    def label(self, ref: str) -> str | None:
        """The inputs hash an image was built from; None when there is no such image."""
        template = '{{ index .OCIv1.Config.Labels "' + INPUTS_LABEL + '" }}'
        found = self.run("inspect", "--type", "image", "--format", template, ref, check=False)
        return found.stdout.strip() if found.returncode == 0 else None


class Builder:
    def __init__(
        self, release: Release, buildah: Buildah | None = None, log: Callable[[str], None] | None = None
    ) -> None:
        """`log` gets one line per step (default: printed)."""
        self.release = release
        self.images = catalogue(release)
        self.buildah = buildah or Buildah()
        self.log = log or (lambda line: print(line, flush=True))
        self._hashes: dict[str, str] = {}
        self.timings: dict[str, float] = {}

    def resolve(self, name: str) -> str:
        """The image a name means: its own, or the one that carries it as another tag (OVN's
        southbound database and northd are tags of the northbound database's image)."""
        if name in self.images:
            return name
        wanted = tag(name, self.release.series)
        return next((key for key, image in self.images.items() if wanted in image.tags), name)

    def inputs_hash(self, name: str) -> str:
        """Hash of everything the image is made from, its parent's hash included."""
        if name not in self._hashes:
            image = self.images[name]
            digest = hashlib.sha256()
            digest.update(f"{image.name}\n{image.tags}\n{image.args}\n".encode())
            if image.parent:
                digest.update(self.inputs_hash(image.parent).encode())
            for path in (image.containerfile, *image.inputs):
                digest.update(f"{path.relative_to(ROOT)}\n".encode())
                digest.update(path.read_bytes() if path.exists() else b"<missing>")
            if image.name == "debian":  # the mirrors change what debootstrap fetches
                for variable in ("DEBIAN_MIRROR", "DEBIAN_SECURITY_MIRROR"):
                    digest.update(os.environ.get(variable, "").encode())
            self._hashes[name] = digest.hexdigest()[:16]
        return self._hashes[name]

    def up_to_date(self, image: Image) -> bool:
        return all(self.buildah.label(ref) == self.inputs_hash(image.name) for ref in image.tags)

    def build(self, names: Sequence[str]) -> list[Image]:
        """Build `names` and what they build on, skipping images whose inputs are unchanged."""
        images = with_parents(self.images, names)
        if all(self.up_to_date(image) for image in images):  # nothing to build: no need to wait for a build
            for image in images:
                self.log(f"{image.name}: up to date ({image.ref})")
            return images
        with self._lock():
            for image in images:
                began = time.monotonic()
                if self.up_to_date(image):
                    self.log(f"{image.name}: up to date ({image.ref})")
                    continue
                self.log(f"{image.name}: building {image.ref} ...")
                self._build(image)
                self.timings[image.name] = time.monotonic() - began
                self.log(f"{image.name}: built in {self.timings[image.name]:.0f}s")
            if self.timings:
                # a rebuilt image leaves its predecessor untagged: drop it
                self.buildah.run("rmi", "--prune", check=False)
        return images

    @contextmanager
    def _lock(self) -> Iterator[None]:
        self.buildah.root.mkdir(parents=True, exist_ok=True)
        with (self.buildah.root / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _build(self, image: Image) -> None:
        inputs = self.inputs_hash(image.name)
        if image.name == "debian":
            with tempfile.TemporaryDirectory(dir=self.buildah.root) as context:
                shutil.copy(image.containerfile, context)
                os.link(self._rootfs(inputs), Path(context) / "rootfs.tar")
                self._bud(image, Path(context), inputs)
            return
        if image.name == "pause":
            with tempfile.TemporaryDirectory(dir=self.buildah.root) as context:
                shutil.copy(image.containerfile, context)
                go_build(image.context, Path(context) / "pause")
                self._bud(image, Path(context), inputs)
            return
        self._bud(image, image.context, inputs)

    def _rootfs(self, inputs: str) -> Path:
        """The debootstrap rootfs tarball, made once per script version and mirror."""
        tarball = self.buildah.root / "rootfs" / f"debian-bookworm-{inputs}.tar"
        if not tarball.exists():
            tarball.parent.mkdir(parents=True, exist_ok=True)
            self.log("debian: debootstrap --variant=minbase bookworm ...")
            subprocess.run([str(ROOTFS_SCRIPT), str(tarball)], check=True)
        return tarball

    def _bud(self, image: Image, context: Path, inputs: str) -> None:
        args = list(image.args)
        if image.parent and image.parent_arg:
            args.append((image.parent_arg, self.images[image.parent].ref))
        argv = ["bud", "--isolation", "chroot", "--pull-never", "--layers=false", "-f", str(image.containerfile)]
        for name, value in args:
            argv += ["--build-arg", f"{name}={value}"]
        argv += host_trust()
        argv += ["--label", f"{INPUTS_LABEL}={inputs}"]
        for ref in image.tags:
            argv += ["--tag", ref]
        log = self.buildah.root / "logs" / f"{image.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as out:
            result = subprocess.run(self.buildah.argv(*argv, str(context)), stdout=out, stderr=subprocess.STDOUT)
        if result.returncode != 0:
            tail = log.read_text(errors="replace")[-4000:]
            raise BuildError(f"{image.name}: buildah bud failed (exit {result.returncode}); log {log}:\n{tail}")


class BuildError(Exception):
    pass


def go_build(module: Path, output: Path) -> None:
    """A static binary of the Go main package in `module` (the pause image's only file)."""
    if shutil.which("go") is None:
        raise BuildError("go is not installed: the pause image is built from images/pause/pause.go")
    env = {**os.environ, "CGO_ENABLED": "0"}
    argv = ["go", "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w", "-o", str(output), "."]
    result = subprocess.run(argv, cwd=module, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"go build in {module} failed: {result.stderr.strip()}")


REF_NAME = "org.opencontainers.image.ref.name"
LOAD_WORKERS = 2


def pack_layout_image(layout: Path, name: str, ref: str, archive: Path) -> None:
    """An OCI archive of one image of an OCI layout, named `ref` (the name containerd gives it)."""
    index = json.loads((layout / "index.json").read_text())
    found = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) == name]
    if not found:
        raise BuildError(f"{layout}: no image named {name}")
    descriptor = {**found[-1], "annotations": {REF_NAME: ref}}

    def blob(digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        return layout / "blobs" / algorithm / hexdigest

    manifest = json.loads(blob(descriptor["digest"]).read_text())
    digests = [descriptor["digest"], manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]
    with tarfile.open(archive, "w") as tar:
        tar.add(layout / "oci-layout", "oci-layout")
        packed = json.dumps({"schemaVersion": 2, "manifests": [descriptor]}).encode()
        info = tarfile.TarInfo("index.json")
        info.size = len(packed)
        tar.addfile(info, io.BytesIO(packed))
        for digest in dict.fromkeys(digests):
            tar.add(blob(digest), str(blob(digest).relative_to(layout)))


class Containerd:
    """Loads built images into a containerd (the real node's), in the namespace its CRI plugin uses.

    Each loaded image carries the inputs hash it was built from as a containerd label, so an image
    already loaded from the same inputs is not exported again."""

    NAMESPACE = "k8s.io"

    def __init__(self, address: Path, buildah: Buildah, mount_ns: Path | None = None) -> None:
        """`mount_ns`: the mount namespace containerd runs in (its socket is there, not on the host)."""
        self.address = address
        self.buildah = buildah
        self.enter = ["nsenter", f"--mount={mount_ns}", "--"] if mount_ns else []

    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [*self.enter, "ctr", "--address", str(self.address), "--namespace", self.NAMESPACE, *args]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise BuildError(f"{' '.join(argv)}: exit {result.returncode}: {result.stderr.strip()}")
        return result

    def loaded(self, ref: str) -> str | None:
        """The inputs hash of `ref` as loaded, or None when it is not there."""
        for line in self.ctr("images", "ls", f"name=={ref}").stdout.splitlines()[1:]:
            for label in line.split()[-1].split(","):
                key, _, value = label.partition("=")
                if key == INPUTS_LABEL:
                    return value
        return None

    def load(self, image: Image, inputs: str) -> bool:
        """Export `image` from buildah and import it, with every tag; False when already loaded.

        Exported as an uncompressed OCI layout (faster than an archive, which compresses), packed
        as an archive named after the image's reference, imported and unpacked by containerd."""
        if all(self.loaded(ref) == inputs for ref in image.tags):
            return False
        with tempfile.TemporaryDirectory(dir=self.buildah.root) as scratch:
            layout, archive = Path(scratch) / "layout", Path(scratch) / "image.tar"
            self.buildah.run("push", "--quiet", image.ref, f"oci:{layout}:{image.name}")
            pack_layout_image(layout, image.name, image.ref, archive)
            shutil.rmtree(layout)
            self.ctr("images", "import", str(archive))
        for ref in image.tags:
            if ref != image.ref:
                self.ctr("images", "rm", ref, check=False)
                self.ctr("images", "tag", image.ref, ref)
            self.ctr("images", "label", ref, f"{INPUTS_LABEL}={inputs}")
        return True

    def load_all(self, images: Sequence[Image], hashes: Callable[[str], str], log: Callable[[str], None]) -> None:
        """Load `images` two at a time (export and import are CPU-bound; two cores here)."""

        def one(image: Image) -> None:
            if self.load(image, hashes(image.name)):
                log(f"{image.name}: loaded into {self.address}")

        with ThreadPoolExecutor(max_workers=LOAD_WORKERS) as pool:
            for _ in pool.map(one, images):
                pass


def host_trust() -> list[str]:
    """A host that reaches PyPI through a TLS-inspecting proxy names its CA bundle in PIP_CERT: builds
    see it read-only at the same path, through the PIP_CERT build arg, and images do not keep it."""
    bundle = os.environ.get("PIP_CERT", "")
    if not bundle or not Path(bundle).is_file():
        return []
    return ["--volume", f"{bundle}:{BUILD_CA}:ro", "--build-arg", f"PIP_CERT={BUILD_CA}"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="images to build (default: all); `ci` names the CI set")
    parser.add_argument("--release", default=DEFAULT_RELEASE, choices=SUPPORTED_RELEASES)
    parser.add_argument("--list", action="store_true", help="print each image, its tags and inputs hash")
    parser.add_argument(
        "--containerd", type=Path, metavar="SOCKET", help="then load the named images into this containerd (k8s.io)"
    )
    parser.add_argument("--containerd-mount-ns", type=Path, metavar="FILE", help="the mount namespace it runs in")
    args = parser.parse_args(argv)
    builder = Builder(RELEASES[args.release])
    requested = [n for name in args.names for n in (CI_IMAGES if name == "ci" else (name,))] or list(builder.images)
    names = list(dict.fromkeys(builder.resolve(name) for name in requested))
    unknown = [n for n in names if n not in builder.images]
    if unknown:
        print(f"unknown image(s): {', '.join(unknown)} (known: {', '.join(builder.images)})", file=sys.stderr)
        return 2
    if args.list:
        for image in with_parents(builder.images, names):
            print(f"{image.name:16} {builder.inputs_hash(image.name)}  {' '.join(image.tags)}")
        return 0
    if shutil.which("buildah") is None:
        print("buildah is not installed: run hack/system-packages.sh", file=sys.stderr)
        return 2
    began = time.monotonic()
    try:
        builder.build(names)
        if args.containerd:
            containerd = Containerd(args.containerd, builder.buildah, args.containerd_mount_ns)
            containerd.load_all([builder.images[n] for n in names], builder.inputs_hash, builder.log)
    except (BuildError, subprocess.CalledProcessError) as error:
        print(error, file=sys.stderr)
        return 1
    print(f"images ready in {time.monotonic() - began:.0f}s (storage: {builder.buildah.storage})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
