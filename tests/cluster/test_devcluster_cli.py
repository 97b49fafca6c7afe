"""`stackops dev cluster up|status|down`: up returns, the cluster outlives it, down removes all.

`up` runs in a child Python process (through `register`'s argparse wiring) so the test proves
the detached processes survive the command that started them; status and down then work from
another process (this one), as they would from a later shell command.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from kubernetes import client, config

from stackops.devcluster import Binaries, DevClusterError
from stackops.devcluster.cli import down, status, up
from stackops.devcluster.processes import alive, processes_mentioning
from stackops.devcluster.state import ClusterState

# A stand-in for `stackops dev ...` until the lead wires register() into stackops.cli.
MAIN = textwrap.dedent(
    """
    import argparse, sys
    from stackops.devcluster import DevClusterError
    from stackops.devcluster.cli import register
    top = argparse.ArgumentParser(prog="stackops dev")
    register(top.add_subparsers(dest="command", required=True))
    args = top.parse_args(sys.argv[1:])
    try:
        sys.exit(args.func(args))
    except DevClusterError as error:
        print(*error.problems, sep="\\n", file=sys.stderr)
        sys.exit(2)
    """
)


def dev(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", MAIN, *args], capture_output=True, text=True, timeout=300, check=False)


def test_detached_up_status_down(
    tmp_path: Path, cluster_binaries: Binaries, capsys: pytest.CaptureFixture[str]
) -> None:
    workdir = tmp_path / "dev"
    kubeconfig = tmp_path / "home" / "kubeconfig"
    started = dev("cluster", "up", "--workdir", str(workdir), "--kubeconfig", str(kubeconfig), "--compute-nodes", "1")
    try:
        assert started.returncode == 0, started.stderr
        assert f"kubeconfig: {kubeconfig}" in started.stdout
        assert "2 nodes Ready" in started.stdout

        state = ClusterState.load(workdir)
        pids = [p.pid for p in state.processes]
        assert [p.name for p in state.processes] == [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok",
        ]
        assert all(alive(pid) for pid in pids), "the cluster outlives `up`"
        assert state.exported_kubeconfig == kubeconfig

        api = config.new_client_from_config(config_file=str(kubeconfig))
        try:
            names = sorted(n.metadata.name for n in client.CoreV1Api(api).list_node().items)
        finally:
            api.close()
        assert names == ["compute-0", "control-plane-0"]

        capsys.readouterr()
        assert status(workdir) is True
        shown = capsys.readouterr().out
        assert "running" in shown and state.as_dict()["server"] in shown
        assert "compute-0" in shown and "Ready" in shown

        again = dev("cluster", "up", "--workdir", str(workdir))
        assert again.returncode == 2 and "already" not in again.stdout
        assert "a dev cluster is running in" in again.stderr
        with pytest.raises(DevClusterError, match="is running"):
            up(None, 1, workdir)
    finally:
        # Found through the kubeconfig, as `stackops dev cluster down --kubeconfig` does.
        if kubeconfig.exists():
            down(kubeconfig=kubeconfig)
    assert not any(alive(pid) for pid in pids)
    assert processes_mentioning(str(workdir)) == []
    assert not workdir.exists() and not kubeconfig.exists()
    assert status(workdir) is False
    with pytest.raises(DevClusterError, match="no dev cluster"):
        down(workdir=workdir)


def test_up_refuses_a_non_empty_unrelated_workdir(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(DevClusterError, match="not empty"):
        up(None, 1, tmp_path)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_up_does_not_overwrite_a_foreign_kubeconfig(tmp_path: Path) -> None:
    foreign = tmp_path / "config"
    foreign.write_text("apiVersion: v1\nkind: Config\ncurrent-context: prod\n")
    with pytest.raises(DevClusterError, match="not overwriting"):
        up(foreign, 1, tmp_path / "dev")
    assert "prod" in foreign.read_text()
