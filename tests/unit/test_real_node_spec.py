"""What the real node changes in a cloud it runs: images built here, and the datapath and the
virtualisation this machine offers."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackops.devcluster import realcloud


@pytest.mark.parametrize(("mode", "open_to_guests"), [(0o600, False), (0o660, True), (0o666, True), (0o640, False)])
def test_guests_use_kvm_only_where_the_kvm_group_may_open_it(tmp_path: Path, mode: int, open_to_guests: bool) -> None:
    device = tmp_path / "kvm"
    device.touch()
    device.chmod(mode)
    assert realcloud.kvm_open_to_guests(device) is open_to_guests


def test_no_kvm_device_means_no_kvm(tmp_path: Path) -> None:
    assert not realcloud.kvm_open_to_guests(tmp_path / "kvm")


def test_a_machine_without_kvm_for_guests_runs_them_under_tcg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(realcloud, "kvm_open_to_guests", lambda: False)
    body = realcloud.for_real_node({"spec": {}})
    assert body["spec"]["services"]["nova"]["compute"]["virtType"] == "qemu"


def test_what_the_spec_sets_itself_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(realcloud, "kvm_open_to_guests", lambda: False)
    monkeypatch.setattr(realcloud, "kernel_has_openvswitch", lambda: False)
    spec = {"services": {"nova": {"compute": {"virtType": "kvm"}}, "neutron": {"ovn": {"datapathType": "system"}}}}
    body = realcloud.for_real_node({"spec": spec})
    assert body["spec"]["services"]["nova"]["compute"]["virtType"] == "kvm"
    assert body["spec"]["services"]["neutron"]["ovn"]["datapathType"] == "system"


def test_a_real_nodes_directory_too_long_for_the_kubelets_sockets_is_refused(tmp_path: Path) -> None:
    from stackops.devcluster import realnode
    from stackops.devcluster.errors import DevClusterError

    realnode.check_paths(realnode.NodeFiles(Path("/tmp/stackops-cluster-abcd/node"), tmp_path))
    deep = Path("/tmp") / ("d" * 80) / "node"
    with pytest.raises(DevClusterError, match="too long a path"):
        realnode.check_paths(realnode.NodeFiles(deep, tmp_path))
