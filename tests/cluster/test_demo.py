"""The README's main job: `stackops demo up` brings a cloud to Ready on a local control plane."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from stackops.devcluster import processes
from tests.conftest import ROOT


def stackops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackops.cli", *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_demo_up_reaches_ready_and_down_removes_everything(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    try:
        result = stackops(
            "demo", "up", "--kwok", "-f", str(ROOT / "examples" / "minimal.yaml"), "--workdir", str(workdir)
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "cloud demo is Ready (release 2026.1)" in result.stdout
        again = stackops("demo", "up", "--kwok", "--workdir", str(workdir))
        assert again.returncode == 2 and "a demo is already running" in again.stderr
    finally:
        down = stackops("demo", "down", "--workdir", str(workdir))
    assert down.returncode == 0, down.stderr
    assert "operator stopped" in down.stdout
    assert not (workdir / "cluster").exists()
    assert processes.processes_mentioning(str(workdir)) == []
