"""The run lock: one process at a time executes a run id.

An exclusive fcntl.flock on a file next to the journal, which the kernel releases when the
process dies, even on SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import socket
import time
from pathlib import Path

from ..errors import JournalError, RunInUseError


class RunLock:
    """An exclusive lock on one run id: a file locked with flock while the run executes.

    The file is removed on release; a process that locked a file removed under it retries, so
    two processes never both believe they hold the lock.
    """

    def __init__(self, journal_path: Path, run_id: str) -> None:
        self.path = journal_path.with_name(f"{journal_path.name}.{_safe_name(run_id)}.lock")
        self.run_id = run_id
        self._fd: int | None = None

    def acquire(self) -> None:
        while self._fd is None:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise JournalError(
                    self.path, f"cannot create the run lock: {exc.strerror}"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise RunInUseError(self.path, self.run_id, holder) from None
            if _same_file(fd, self.path):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
                self._fd = fd
            else:  # released and removed between our open and our lock: try again
                os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            # Unlink while still holding the lock, so nobody locks a file about to vanish.
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            os.close(self._fd)
            self._fd = None


def _safe_name(run_id: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", run_id):
        return run_id
    return "x" + run_id.encode().hex()[:120]


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _read_holder(fd: int) -> str:
    """'pid N on host H' from a lock file (the holder may not have written it yet)."""
    for _ in range(20):
        text = os.pread(fd, 200, 0).decode(errors="replace").split()
        if len(text) == 2:
            return f"pid {text[0]} on host {text[1]}"
        time.sleep(0.01)
    return "another process"
