"""Atomic writes: one home for every file cortexfit writes that someone may read.

:func:`atomic_path` yields a temporary path beside the target; when the body finishes, the
file is flushed to disk (fsync), renamed over the target and the folder entry synced, so a
reader sees either the old file or the new one, never a torn one. A write that fails (disk
full, permissions, Ctrl-C) removes its temporary file and leaves the target as it was. A
process killed mid-write leaves only a hidden ``.<name>.<random>.tmp`` beside it.

:func:`file_record` / :func:`record_matches`: size and SHA-256 of a file, so that a later
reader can tell a file it wrote from a torn or foreign one (the run folder's
``stages.json``).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "file_record", "record_matches", "write_bytes", "write_netcdf",
           "write_text"]

_TMP_SUFFIX = ".tmp"


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed to
    ``path``; on any exception (or Ctrl-C) it is removed and ``path`` is left as it was."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                    suffix=_TMP_SUFFIX)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)  # mkstemp makes it private; a run folder is for sharing
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_netcdf(ds, path: str | os.PathLike, *, compress: bool = True) -> Path:
    """Write an xarray Dataset to NetCDF (HDF5, h5netcdf) atomically, every numeric
    variable compressed."""
    encoding = {}
    if compress:
        encoding = {name: {"zlib": True, "complevel": 4} for name, var in ds.data_vars.items()
                    if var.dtype.kind in "fiub" and var.ndim}
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding)
    return Path(path)


# ---------------------------------------------------------------------- output records
def file_record(path: str | os.PathLike) -> dict[str, Any]:
    """``{"size": bytes, "sha256": hex}`` of a file."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return {"size": size, "sha256": digest.hexdigest()}


def record_matches(path: str | os.PathLike, record: Any) -> bool:
    """Whether the file at ``path`` exists and has the size and hash of ``record``."""
    path = Path(path)
    if not isinstance(record, dict) or not path.is_file():
        return False
    try:
        if path.stat().st_size != record.get("size"):
            return False
        return file_record(path)["sha256"] == record.get("sha256")
    except OSError:
        return False
