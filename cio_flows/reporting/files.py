"""Writing a report file: checked before a run sends anything, written whole or not at all.

A regular file is written through a temporary file and os.replace, so a reader never sees half
a report. A symlink is followed (its target is written, the link stays) and a device or pipe
(`/dev/stdout`) is written into: os.replace would put a file in its place.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def check_writable(path: str | Path) -> None:
    """Raise OSError (its strerror says why) unless `path` can be written at the end of a run."""
    real = Path(os.path.realpath(path))
    if real.is_dir():
        raise IsADirectoryError(21, "is a directory")
    if real.exists():
        if stat.S_ISFIFO(real.stat().st_mode):
            return  # opening a pipe blocks until it has a reader: it is written at the end
        with real.open("ab"):  # opened, nothing written
            pass
        if not real.is_file():
            return
    else:
        real.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=real.parent, prefix=f".{real.name}.", suffix=".probe"):
        pass  # the temporary file of the atomic replace can be made


def write_file(path: str | Path, data: bytes) -> None:
    """Write `data` to `path`: atomically for a regular file, through a link, into a device."""
    real = Path(os.path.realpath(path))
    if real.exists() and not real.is_file():
        with real.open("wb") as out:
            out.write(data)
        return
    real.parent.mkdir(parents=True, exist_ok=True)
    tmp = real.with_name(f".{real.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, real)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
