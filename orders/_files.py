"""Writing files so that a crash or a power cut leaves something whole: the journal's
segments, the paper broker's state and change files, the HTML report."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["sync_directory", "write_atomically"]


def write_atomically(target: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace `target` with `data` whole: a crash leaves the old file or the new, never half.

    `mode` is the new file's permissions: private by default (what a temporary file gets).
    """
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode != 0o600:
            os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    sync_directory(target.parent)


def sync_directory(directory: Path) -> None:
    """Force a directory's entries (a rename, a new file) to disk: without it a power cut can
    keep a later change (a new segment, an emptied change file) and lose the entry it
    depended on."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
