"""Start and stop the cluster's processes, each in its own session/process group.

A process group per binary means one `killpg` takes along anything it forked, and a terminal's
Ctrl-C (sent to the foreground group) does not hit a detached cluster. Processes of a detached
cluster are not our children: we find them by pid in /proc and, before signalling, check that
their command line still mentions our workdir, so a recycled pid is never killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_PR_SET_PDEATHSIG = 1


@dataclass
class Process:
    """One running binary. `popen` is set only in the process that started it."""

    name: str
    args: list[str]
    log: Path
    pid: int = 0
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        # pgid == pid: every process is started as a session (and group) leader.
        return {"name": self.name, "args": self.args, "log": str(self.log), "pid": self.pid, "pgid": self.pid}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Process:
        return cls(str(data["name"]), [str(a) for a in data["args"]], Path(data["log"]), int(data["pid"]))


def die_with_parent_preexec() -> Callable[[], None]:
    """A preexec_fn asking the kernel to SIGKILL the child when the starting thread dies.

    The safety net for a test runner that is killed outright (SIGKILL, OOM), where neither
    atexit nor weakref.finalize run. Resolved before fork so the child only makes the syscall.
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def spawn(
    name: str,
    args: Sequence[str],
    log: Path,
    *,
    die_with_parent: bool,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Process:
    """Start `args` with output appended to `log`, in a new session (in `cwd`, with `env` as its
    whole environment when given, this process's otherwise).

    `die_with_parent` is only honoured on the main thread: PR_SET_PDEATHSIG fires when the
    *thread* that forked exits, which for a worker thread is long before the process does.
    """
    on_main_thread = threading.current_thread() is threading.main_thread()
    preexec = die_with_parent_preexec() if die_with_parent and on_main_thread else None
    with log.open("ab") as out:
        popen = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec,
            close_fds=True,
            env=None if env is None else dict(env),
            cwd=cwd,
        )
    return Process(name, list(args), log, popen.pid, popen)


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, pgid) from /proc/<pid>/stat, or None if there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[2])


def alive(pid: int) -> bool:
    """True if `pid` runs (a zombie, dead but not yet reaped, does not count)."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def ours(pid: int, marker: str) -> bool:
    """True if `pid` is alive and its command line mentions `marker` (our workdir)."""
    return alive(pid) and marker in cmdline(pid)


def processes_mentioning(marker: str) -> list[int]:
    """Live processes whose command line contains `marker`: what a clean stop leaves none of."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid() and ours(int(entry.name), marker):
            found.append(int(entry.name))
    return found


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[1] == pgid and stat[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members


def _reap(pid: int) -> None:
    """Collect the exit status if `pid` is our child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _wait_gone(process: Process, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if process.popen is not None:
            if process.popen.poll() is not None:
                return True
        else:
            _reap(process.pid)
            if not alive(process.pid):
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop(process: Process, marker: str, timeout: float = 10.0) -> None:
    """SIGTERM the process group, SIGKILL it after `timeout`, then make sure no member is left.

    `marker` guards against pid reuse for processes we did not start in this interpreter.
    """
    pid = process.pid
    if pid <= 0:
        return
    if process.popen is None and not ours(pid, marker):
        _reap(pid)  # a zombie child of ours (started, then attached to, in one interpreter)
        return  # already gone, or the pid now belongs to someone else
    _killpg(pid, signal.SIGTERM)
    if not _wait_gone(process, timeout):
        _killpg(pid, signal.SIGKILL)
        _wait_gone(process, 5.0)
    # Anything the binary forked into its group (none of ours fork today) goes too.
    if _group_members(pid):
        _killpg(pid, signal.SIGKILL)
    _reap(pid)


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} not readable)"
    return "\n".join(text.splitlines()[-lines:])
