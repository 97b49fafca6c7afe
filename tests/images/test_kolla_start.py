"""kolla_start, the images' entry point: config.json's files put in place with their owner and mode,
then the command; mistakes named in one line. Run here directly (it needs only Python's standard
library), and once inside the base image for what depends on the container's own filesystem."""

from __future__ import annotations

import json
import pwd
import subprocess
from pathlib import Path
from typing import Any

from tests.images.build import Builder
from tests.images.pods import working_container

KOLLA_START = Path(__file__).resolve().parents[2] / "images" / "base" / "kolla_start"


def kolla_start(
    tmp_path: Path, config: dict[str, Any] | str, strategy: str | None = "COPY_ALWAYS"
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.json"
    path.write_text(config if isinstance(config, str) else json.dumps(config))
    env = {"PATH": "/usr/bin:/bin", "KOLLA_CONFIG_FILE": str(path)}
    if strategy:
        env["KOLLA_CONFIG_STRATEGY"] = strategy
    return subprocess.run([str(KOLLA_START)], env=env, capture_output=True, text=True, check=False)


def test_files_are_copied_with_owner_and_mode_then_the_command_runs(tmp_path: Path) -> None:
    source = tmp_path / "source"
    (source / "policy.d").mkdir(parents=True)
    (source / "service.conf").write_text("[DEFAULT]\n")
    (source / "policy.d" / "a.yaml").write_text("a: 1\n")
    dest = tmp_path / "etc" / "service"
    config = {
        "command": f"sh -c 'echo \"two words\"; stat -c %a:%U {dest}/service.conf {dest}/policy.d/a.yaml'",
        "config_files": [
            {"source": str(source / "service.conf"), "dest": f"{dest}/service.conf", "owner": "nobody", "perm": "0640"},
            {"source": str(source / "policy.d"), "dest": f"{dest}/policy.d", "owner": "nobody:nogroup", "perm": "0600"},
            {"source": str(source / "missing.conf"), "dest": f"{dest}/missing.conf", "optional": True},
        ],
        "permissions": [{"path": str(dest), "owner": "nobody", "perm": "0750"}],
    }
    result = kolla_start(tmp_path, config)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["two words", "640:nobody", "600:nobody"]
    assert dest.stat().st_uid == pwd.getpwnam("nobody").pw_uid and (dest.stat().st_mode & 0o777) == 0o750
    assert not (dest / "missing.conf").exists()


def test_copy_always_replaces_what_an_earlier_start_left(tmp_path: Path) -> None:
    source = tmp_path / "new.conf"
    source.write_text("new\n")
    dest = tmp_path / "service.conf"
    dest.write_text("old\n")
    config = {"command": f"cat {dest}", "config_files": [{"source": str(source), "dest": str(dest)}]}
    assert kolla_start(tmp_path, config).stdout == "new\n"


def problem(tmp_path: Path, config: dict[str, Any] | str, strategy: str | None = "COPY_ALWAYS") -> str:
    result = kolla_start(tmp_path, config, strategy)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stdout == ""
    [line] = result.stderr.splitlines()
    return line


def test_mistakes_are_one_line_naming_the_field(tmp_path: Path) -> None:
    ok = {"command": "true"}
    assert "KOLLA_CONFIG_STRATEGY: must be one of COPY_ALWAYS, COPY_ONCE" in problem(tmp_path, ok, None)
    assert "KOLLA_CONFIG_STRATEGY" in problem(tmp_path, ok, "COPY_SOMETIMES")
    assert "not JSON" in problem(tmp_path, "{")
    assert "command: a non-empty string is required" in problem(tmp_path, {"config_files": []})
    missing = {"command": "true", "config_files": [{"source": "/nonexistent/x.conf", "dest": "/tmp/x"}]}
    assert "config_files[0].source: /nonexistent/x.conf does not exist" in problem(tmp_path, missing)
    (tmp_path / "x.conf").write_text("")
    stranger = {
        "command": "true",
        "config_files": [{"source": str(tmp_path / "x.conf"), "dest": str(tmp_path / "y"), "owner": "no-such-user"}],
    }
    assert "config_files[0].owner: no such user or group in this image: 'no-such-user'" in problem(tmp_path, stranger)
    assert "command: No closing quotation" in problem(tmp_path, {"command": "sh -c 'unbalanced"})


def test_copy_once_copies_on_the_first_start_of_a_container_only(built: Builder, tmp_path: Path) -> None:
    """The marker lives in the container's own filesystem, so this runs in the base image."""
    config = {
        "command": "cat /etc/demo.conf",
        "config_files": [{"source": "/var/lib/kolla/config_files/demo.conf", "dest": "/etc/demo.conf"}],
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "demo.conf").write_text("first\n")
    options = ["--volume", f"{tmp_path}:/var/lib/kolla/config_files:ro", "--env", "KOLLA_CONFIG_STRATEGY=COPY_ONCE"]
    outputs = []
    buildah = built.buildah
    with working_container(buildah, built.images["base"].ref) as name:
        for content in ("first\n", "second\n"):
            (tmp_path / "demo.conf").write_text(content)
            result = buildah.run("run", "--isolation", "chroot", *options, name, "--", "kolla_start", check=False)
            assert result.returncode == 0, result.stderr
            outputs.append(result.stdout)
    assert outputs == ["first\n", "first\n"]


def test_an_images_extend_start_runs_before_the_command_unless_skipped(built: Builder, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"command": "echo command"}))
    hook = tmp_path / "kolla_extend_start"
    hook.write_text("#!/bin/sh\necho extend-start\n")
    hook.chmod(0o755)
    buildah = built.buildah
    volume = ["--volume", f"{tmp_path}:/var/lib/kolla/config_files:ro", "--env", "KOLLA_CONFIG_STRATEGY=COPY_ALWAYS"]
    with working_container(buildah, built.images["base"].ref) as name:
        buildah.run("copy", name, str(hook), "/usr/local/bin/kolla_extend_start")
        ran = buildah.run("run", "--isolation", "chroot", *volume, name, "--", "kolla_start")
        skipped = buildah.run(
            "run", "--isolation", "chroot", *volume, "--env", "KOLLA_SKIP_EXTEND_START=1", name, "--", "kolla_start"
        )
    assert ran.stdout.splitlines() == ["extend-start", "command"]
    assert skipped.stdout.splitlines() == ["command"]
