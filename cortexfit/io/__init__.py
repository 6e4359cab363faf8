"""Readers that turn recordings into a ``neo.Block`` in cortexfit's trial convention.

``load(path)`` picks the reader from the file: NWB through pynwb (:func:`read_nwb`),
everything else through Neo (:func:`read_neo`). Plain arrays: :mod:`cortexfit.io.arrays`
(trial-averaged rates without trials go straight to targets:
:func:`cortexfit.targets.targets_from_rates`). The data formats of a run (``[data]
format``): :mod:`cortexfit.io.formats`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .arrays import from_spike_matrix, from_spike_times
from .convention import (
    Trial,
    check_block,
    event_names,
    event_time,
    make_block,
    trial_annotations,
    unit_annotations,
    unit_ids,
)
from .files import pickle_kind, read_head
from .neo import from_block, read_neo, split_trials, write_nix
from .nwb import read_nwb, write_nwb

__all__ = [
    "Trial",
    "check_block",
    "event_names",
    "event_time",
    "from_block",
    "from_spike_matrix",
    "from_spike_times",
    "load",
    "make_block",
    "read_neo",
    "read_nwb",
    "split_trials",
    "trial_annotations",
    "unit_annotations",
    "unit_ids",
    "write_nix",
    "write_nwb",
]


def load(path: str | os.PathLike, *, allow_pickle: bool = False, **kwargs: Any):
    """Load any supported recording file into a convention Block.

    ``.nwb`` files go to :func:`read_nwb`; everything else to :func:`read_neo`.
    Keyword arguments are passed to that reader.

    ``allow_pickle``: read a Python pickle (``.pkl``, or any file whose first bytes are a
    pickle). Off by default, since reading a pickle can run any code it contains: without
    it such a file raises :class:`~cortexfit.exceptions.UnsafeFileError` and nothing in it
    is run. Pass ``True`` only for a file you trust.
    """
    path = Path(path)
    if path.suffix.lower() == ".nwb":
        if not _is_pickle(path):
            return read_nwb(path, **kwargs)
        # a pickle named .nwb: read_neo refuses it (or, trusted, reads it with PickleIO)
        kwargs = {k: v for k, v in kwargs.items() if k not in _NWB_OPTIONS}
    return read_neo(path, allow_pickle=allow_pickle, **kwargs)


_NWB_OPTIONS = frozenset({"event_times", "event_columns", "unsorted_spikes", "trial_padding"})


def _is_pickle(path: Path) -> bool:
    """A file whose first bytes are a pickle (an unreadable path: False, the reader says why)."""
    try:
        return path.is_file() and pickle_kind(read_head(path)) is not None
    except OSError:
        return False
