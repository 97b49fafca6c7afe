"""Where the control-plane binaries come from, and what a missing one says (no cluster started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackops.devcluster import Binaries, DevClusterError, ensure_binaries
from stackops.devcluster.binaries import _run_build, build_script, cache_dir, kube_version, locate


def test_version_is_read_from_the_pinned_go_mod() -> None:
    script = build_script()
    assert script is not None and script.name == "build.sh"
    assert kube_version() == "v1.34.10"


def test_kubebuilder_assets_win_for_what_they_contain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cluster_binaries: Binaries
) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "etcd").symlink_to(cluster_binaries.etcd)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    found, missing = locate()
    assert missing == []
    assert found["etcd"] == assets / "etcd"
    # Everything envtest does not ship still comes from the cache.
    assert found["kube-controller-manager"] == cache_dir().absolute() / "kube-controller-manager"


def test_missing_binaries_are_named_with_how_to_build_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKOPS_CACHE", str(tmp_path))
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    with pytest.raises(DevClusterError) as error:
        ensure_binaries(build=False)
    message = str(error.value)
    assert "etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, kwok-stages.yaml" in message
    assert str(tmp_path / "kube" / "v1.34.10") in message and "build.sh" in message


def test_a_build_streams_its_output_and_reports_failure(tmp_path: Path) -> None:
    script = tmp_path / "build.sh"
    script.write_text("echo '==> kube-apiserver: building ...'\necho 'go: no network' >&2\nexit 1\n")
    lines: list[str] = []
    with pytest.raises(DevClusterError, match=r"(?s)failed \(exit status 1\).*go: no network"):
        _run_build(script, lines.append)
    assert lines[1:] == ["==> kube-apiserver: building ...", "go: no network"]
