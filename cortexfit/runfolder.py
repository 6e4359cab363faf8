"""The run folder's safety: the lock, what a folder holds, plain messages for OS errors.

Its files are written with :mod:`cortexfit.atomic` (each output's size and SHA-256 is kept
in ``stages.json``, so a torn or foreign file makes its stage run again).

* :class:`RunLock`: an exclusive ``flock`` on ``.cortexfit.lock`` while a run uses the
  folder. The kernel releases it when the process ends, however it ends, so a lock left by a
  killed run is simply taken over; a second live run into the folder stops at once and is
  told which process holds it.
* :func:`folder_contents`: is a folder empty, a cortexfit run folder, or something else.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any

from .exceptions import RunFolderError

__all__ = ["LOCK_NAME", "MANIFEST_NAME", "RunLock", "folder_contents", "os_error_message"]

LOCK_NAME = ".cortexfit.lock"
MANIFEST_NAME = "stages.json"


# ---------------------------------------------------------------------- the lock
class RunLock:
    """An exclusive lock on a run folder for the life of a run (``with RunLock(out):``).

    ``previous`` is what the lock file said when the lock was taken: the holder of a stale
    lock (a run that was killed), or ``None``.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None
        self.previous: dict[str, Any] | None = None

    def _holder(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}

    def in_use(self) -> bool:
        """Whether a live run holds the lock (a probe that creates nothing)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)  # closing drops the probe's lock
        return False

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = self._holder()
            who = (f"process {holder.get('pid', '?')} on {holder.get('host', '?')}, started "
                   f"{holder.get('started', '?')}: {holder.get('command', '')}".rstrip(": "))
            raise RunFolderError(
                "another cortexfit run is using this run folder", file=self.folder,
                field="--out", found=who,
                expected="one run at a time per folder",
                hint="Wait for that run to finish, stop it, or give this run another --out "
                     "folder") from None
        # a lock file with content was not released: its run was killed (the kernel has
        # dropped that run's flock, or this one could not have taken it)
        self.previous = self._holder() or None
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": " ".join(sys.argv)[:300]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        except OSError:
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire() if self._fd is None else self

    def __exit__(self, *exc: object) -> None:
        self.release()


# ---------------------------------------------------------------------- what a folder holds
def folder_contents(folder: str | os.PathLike) -> tuple[str, dict[str, Any] | None, list[str]]:
    """``(kind, manifest, names)``: kind is ``"missing"``, ``"empty"``, ``"run"`` (a
    cortexfit run folder: its ``stages.json`` names cortexfit) or ``"other"``; ``names`` are
    the folder's entries (without the lock file)."""
    folder = Path(folder)
    if not folder.exists():
        return "missing", None, []
    names = sorted(p.name for p in folder.iterdir() if p.name != LOCK_NAME)
    if not names:
        return "empty", None, []
    manifest_path = folder / MANIFEST_NAME
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            manifest = None
        if isinstance(manifest, dict) and "cortexfit_version" in manifest:
            return "run", manifest, names
    return "other", None, names


# ---------------------------------------------------------------------- messages
_OS_MESSAGES = {
    errno.ENOSPC: ("the disk is full", "Free some space (or choose another --out folder on "
                   "a disk with room) and rerun the same command: finished stages are kept"),
    errno.EDQUOT: ("the disk quota is exceeded", "Free some space and rerun the same command"),
    errno.EACCES: ("permission denied", "Choose a folder you can write to (--out) or change "
                   "its permissions"),
    errno.EPERM: ("operation not permitted", "Choose a folder you can write to (--out) or "
                  "change its permissions"),
    errno.EROFS: ("the file system is read-only", "Choose a writable folder with --out"),
    errno.EISDIR: ("a folder was given where a file is expected", "Give the path of a file"),
    errno.ENOTDIR: ("a file was given where a folder is expected", "Give a folder path"),
    errno.ENOENT: ("no such file or folder", "Check the path"),
}


def os_error_message(exc: OSError) -> tuple[str, str | None]:
    """``(what went wrong, what to do)`` for an OSError, in plain words (HDF5's errors carry
    the errno in their text only: ``... errno = 28 ...``)."""
    code = exc.errno
    if code is None:
        found = re.search(r"errno = (\d+)", str(exc))
        code = int(found.group(1)) if found else None
        if code is None and "No space left" in str(exc):
            code = errno.ENOSPC
    default = (exc.strerror or str(exc) or type(exc).__name__, None)
    return _OS_MESSAGES.get(code, default)
