"""Read and write NWB 2 files (Units table + trials table) as Blocks in cortexfit's convention.

:func:`read_nwb` turns an NWB file into a :class:`neo.Block` with one Segment per row of the
trials table (see :mod:`cortexfit.io.convention`); :func:`write_nwb` does the reverse for a
Block on a session clock. Both use pynwb directly: neo's ``NWBIO`` fails on some published
files (e.g. the ALM recordings of Economo et al. 2018, DANDI:000006).

Every problem with the file itself is reported as a :class:`~cortexfit.exceptions.DataError`
(or its subclass :class:`~cortexfit.exceptions.FileFormatError` when the file cannot be
opened or is not NWB) naming the file, the field, what was found and what was expected.

Damaged files (tested by flipping bits in and truncating a small file: ``tests/
test_io_safety.py``): the HDF5 library can crash the process on some corrupt files, so the
file is first read in a child process (``_probe_hdf5``) and a crash there is reported;
the Units table's spike index is checked against the spike data, every table column
against its table's length, and times against NaN, negative and impossibly large
(> ``MAX_TIME``) values. Out-of-order spike times are sorted with a warning (published
files have some); a flip that only changes a value to another plausible one cannot be
detected (NWB files carry no checksums).

Layout: :mod:`~cortexfit.io.nwb.read` (:func:`read_nwb`), :mod:`~cortexfit.io.nwb.checks`
(the options, the file and its contents: the probe, index, length and time checks) and
:mod:`~cortexfit.io.nwb.write` (:func:`write_nwb`); reading and writing import the checks,
never the other way round.
"""
from __future__ import annotations

from .checks import MAX_TIME as MAX_TIME  # public constants of the former nwb.py
from .checks import PROBE_TIMEOUT as PROBE_TIMEOUT
from .read import read_nwb
from .write import write_nwb

__all__ = ["read_nwb", "write_nwb"]
