"""Readers that turn recordings into a ``neo.Block`` in cortexfit's trial convention.

``load(path)`` picks the reader from the file: NWB through pynwb (:func:`read_nwb`),
everything else through Neo (:func:`read_neo`). Plain arrays: :mod:`cortexfit.io.arrays`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .arrays import from_rates, from_spike_matrix, from_spike_times
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
from .neo import from_block, read_neo, split_trials, write_nix

__all__ = [
    "Trial",
    "check_block",
    "event_names",
    "event_time",
    "from_block",
    "from_rates",
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


def read_nwb(path, **kwargs):
    """Read an NWB file (Units + trials table) into a Block: see :mod:`cortexfit.io.nwb`."""
    from .nwb import read_nwb as _read_nwb

    return _read_nwb(path, **kwargs)


def write_nwb(block, path, **kwargs):
    """Write a convention Block as NWB: see :mod:`cortexfit.io.nwb`."""
    from .nwb import write_nwb as _write_nwb

    return _write_nwb(block, path, **kwargs)


def load(path: str | os.PathLike, **kwargs: Any):
    """Load any supported recording file into a convention Block.

    ``.nwb`` files go to :func:`read_nwb`; everything else to :func:`read_neo`.
    Keyword arguments are passed to that reader.
    """
    if Path(path).suffix.lower() == ".nwb":
        return read_nwb(path, **kwargs)
    return read_neo(path, **kwargs)
