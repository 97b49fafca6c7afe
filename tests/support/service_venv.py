"""Cached, per-service virtualenvs for running real OpenStack services in tests.

OpenStack services pin mutually conflicting versions of the oslo.* libraries
(and of each other), so they cannot share one environment with each other or
with the operator. Each service therefore gets its own virtualenv, keyed by a
hash of its requirements, built once and reused across test runs:

    bin_dir = ensure_venv("keystone", ["keystone==29.1.0", "PyMySQL"])
    subprocess.run([bin_dir / "keystone-manage", "--version"], check=True)

Building a service venv takes minutes, so it is cached under
``$STACKOPS_CACHE/venvs`` (default ``~/.cache/stackops/venvs``). A marker file
is written only after pip succeeded, so an interrupted or failed build is
thrown away and redone on the next call, and an ``fcntl`` lock serialises
concurrent builders (e.g. pytest-xdist workers) of the same venv.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["VenvError", "cache_root", "ensure_venv", "venv_path"]

#: Written into the venv once it is complete; its absence means "rebuild".
MARKER_NAME = ".stackops-venv-complete"

#: How much of pip's output to put into an exception message.
_OUTPUT_TAIL_CHARS = 6000


class VenvError(RuntimeError):
    """Creating a service virtualenv or installing into it failed."""


def cache_root() -> Path:
    """Return the cache root: ``$STACKOPS_CACHE`` or ``~/.cache/stackops``."""
    configured = os.environ.get("STACKOPS_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "stackops"


def _requirements_key(requirements: Sequence[str], python: str) -> str:
    """Hash the requirement set plus the interpreter's version.

    Order and surrounding whitespace of requirements do not change what pip
    installs, so they are normalised away; the interpreter's version is part of
    the key because a venv (and its compiled wheels) is tied to it.
    """
    normalised = sorted({req.strip() for req in requirements if req.strip()})
    payload = json.dumps({"python": python, "requirements": normalised})
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def _python_version(python: str) -> str:
    """Return ``major.minor`` of the interpreter at ``python``."""
    if python == sys.executable:
        return f"{sys.version_info.major}.{sys.version_info.minor}"
    result = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def venv_path(name: str, requirements: Sequence[str], python: str | None = None) -> Path:
    """Return where ``ensure_venv`` keeps the venv for these arguments."""
    interpreter = python or sys.executable
    key = _requirements_key(requirements, _python_version(interpreter))
    return cache_root() / "venvs" / f"{name}-{key}"


@contextmanager
def _exclusive_lock(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_file`` for the duration.

    The lock is released by the kernel if the holder dies, so a killed test
    run cannot leave a stale lock behind.
    """
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(command: list[str], what: str, timeout: float | None) -> None:
    """Run ``command`` quietly; on failure raise with the tail of its output."""
    env = dict(os.environ)
    # The caller may itself run inside a venv; do not let that leak in.
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    env.setdefault("PIP_NO_INPUT", "1")
    try:
        result = subprocess.run(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.output or ""
        if isinstance(output, bytes):
            output = output.decode(errors="replace")
        raise VenvError(
            f"{what} timed out after {timeout}s: {' '.join(command)}\n"
            f"--- output tail ---\n{output[-_OUTPUT_TAIL_CHARS:]}"
        ) from exc
    if result.returncode != 0:
        raise VenvError(
            f"{what} failed with exit code {result.returncode}: {' '.join(command)}\n"
            f"--- output tail ---\n{result.stdout[-_OUTPUT_TAIL_CHARS:]}"
        )


def ensure_venv(
    name: str,
    requirements: list[str],
    *,
    python: str | None = None,
    timeout: float | None = 1800.0,
) -> Path:
    """Create (once) a virtualenv with ``requirements`` and return its bin dir.

    ``name`` only makes the cache directory readable; the requirements decide
    its identity, so changing a pin yields a fresh venv next to the old one.
    ``python`` is the interpreter to base the venv on (default: the one running
    the tests). ``timeout`` bounds each pip invocation, in seconds.
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"invalid venv name: {name!r}")
    if not requirements:
        raise ValueError("requirements must not be empty")

    interpreter = python or sys.executable
    root = venv_path(name, requirements, interpreter)
    bin_dir = root / "bin"
    marker = root / MARKER_NAME

    # Fast path without the lock: the marker is only ever written last.
    if marker.is_file():
        return bin_dir

    with _exclusive_lock(root.with_name(root.name + ".lock")):
        if marker.is_file():  # another process finished it while we waited
            return bin_dir
        if root.exists():  # leftovers of a failed or interrupted build
            shutil.rmtree(root)
        _run([interpreter, "-m", "venv", str(root)], f"creating venv {name!r}", timeout)
        try:
            _run(
                [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", *requirements],
                f"pip install into venv {name!r}",
                timeout,
            )
        except VenvError:
            shutil.rmtree(root, ignore_errors=True)
            raise
        marker_tmp = marker.with_name(marker.name + ".tmp")
        marker_tmp.write_text(json.dumps(sorted(requirements), indent=2) + "\n")
        marker_tmp.replace(marker)
    return bin_dir
