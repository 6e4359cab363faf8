"""Checks of an NWB file and of what is read from it, for :func:`~cortexfit.io.nwb.read_nwb`.

The options of ``read_nwb``; the file itself (HDF5 signature, the structure read first in a
child process, since the HDF5 library can crash on a corrupt file; an NWBFile at the root);
and its contents: ragged indexes and column lengths against their table, event columns,
spike and trial times (NaN, negative, impossibly large, unsorted). Also the plain-array
form of the file's contents (``_UnitsData``, ``_TrialsData``, ``_FileData``) and the access
to a table's columns that reading and checking share. Imports nothing from
:mod:`~cortexfit.io.nwb.read` or :mod:`~cortexfit.io.nwb.write`: both import from here.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ...exceptions import ConfigError, DataError, FileFormatError
from ..convention import clean_spike_times
from ..files import check_input_file, os_error, read_head

_EVENT_CONVENTIONS = ("auto", "absolute", "relative")
_UNSORTED_CHOICES = ("warn", "error", "sort")
_EVENT_SUFFIX = "_time"
_NWB_EXPECTED = "an NWB 2 (.nwb) file"
# No recording lasts 30 years: a time beyond this (seconds from the session's reference
# time) is a corrupt value (e.g. a flipped exponent bit) or not in seconds.
MAX_TIME = 1e9


# --------------------------------------------------------------------------------------
# The file's contents as plain arrays, and a table's columns
# --------------------------------------------------------------------------------------


@dataclass
class _UnitsData:
    """The Units table as plain arrays (spike times as stored: maybe unsorted)."""

    ids: list[str]
    spike_times: list[np.ndarray]
    annotations: list[dict[str, Any]]


@dataclass
class _TrialsData:
    """The trials table as plain arrays; ``events`` holds the raw event columns."""

    ids: list[Any]
    start: np.ndarray
    stop: np.ndarray
    columns: dict[str, list[Any]]
    events: dict[str, np.ndarray]


@dataclass
class _FileData:
    units: _UnitsData
    trials: _TrialsData
    annotations: dict[str, Any] = field(default_factory=dict)


def _column_kind(column: Any) -> str:
    """``"scalar"`` for a plain 1-D column, else ``"ragged"``, ``"region"`` or ``"array"``."""
    from hdmf.common.table import DynamicTableRegion, VectorIndex

    if isinstance(column, VectorIndex):
        return "ragged"
    if isinstance(column, DynamicTableRegion):
        return "region"
    shape = getattr(column.data, "shape", None)
    if shape is not None and len(shape) != 1:
        return "array"
    return "scalar"


def _column_values(column: Any) -> np.ndarray:
    values = np.asarray(column.data[:])
    if values.dtype.kind in "OS":
        values = np.array(
            [v.decode(errors="replace") if isinstance(v, bytes) else v for v in values],
            dtype=object,
        )
    return values


# --------------------------------------------------------------------------------------
# The options and the file
# --------------------------------------------------------------------------------------


def _check_read_options(
    event_times: str,
    event_columns: Sequence[str] | None,
    unsorted_spikes: str,
    trial_padding: float,
) -> None:
    if event_times not in _EVENT_CONVENTIONS:
        raise ConfigError(
            "unknown event_times option", field="event_times", found=event_times,
            expected=" or ".join(repr(c) for c in _EVENT_CONVENTIONS),
        )
    if unsorted_spikes not in _UNSORTED_CHOICES:
        raise ConfigError(
            "unknown unsorted_spikes option", field="unsorted_spikes", found=unsorted_spikes,
            expected=" or ".join(repr(c) for c in _UNSORTED_CHOICES),
        )
    if event_columns is not None and (
        isinstance(event_columns, str)
        or not all(isinstance(name, str) for name in event_columns)
    ):
        raise ConfigError(
            "event_columns must be a list of column names", field="event_columns",
            found=repr(event_columns), expected="a list of str such as ['go_cue_time'], or None",
        )
    try:
        padding_ok = math.isfinite(float(trial_padding)) and float(trial_padding) > 0
    except (TypeError, ValueError):
        padding_ok = False
    if not padding_ok:
        raise ConfigError(
            "trial_padding must be a positive number of seconds", field="trial_padding",
            found=repr(trial_padding), expected="a finite number > 0 (seconds)",
        )


def _check_nwb_file(path: Path) -> None:
    """Raise :class:`FileFormatError` unless ``path`` is an HDF5 file whose root is an NWBFile."""
    source = str(path)
    check_input_file(path, expected=_NWB_EXPECTED)
    try:
        is_hdf5 = _has_hdf5_signature(path)
        head = read_head(path, 16)
    except OSError as exc:
        raise os_error(path, exc, _NWB_EXPECTED) from None
    if not is_hdf5:
        raise FileFormatError(
            "the file is not an HDF5 file, so it cannot be NWB 2", file=source,
            field="HDF5 signature", found=f"file starting with {head!r}",
            expected="an NWB 2 file (HDF5, starting with b'\\x89HDF')",
            hint="NWB 1 and other formats are not supported; convert the file to NWB 2",
        )
    info = _probe_hdf5(path)
    if info is None:  # no probe process available: open the file here
        info = _open_hdf5(path)
    kind, entries = info["kind"], info["entries"]
    if isinstance(kind, bytes):
        kind = kind.decode(errors="replace")
    if kind != "NWBFile":
        raise FileFormatError(
            "the HDF5 file is not an NWB file", file=source,
            field="root attribute neurodata_type",
            found=f"{kind!r}; top-level entries {entries[:10]}",
            expected="'NWBFile' (an NWB 2 file)",
        )


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _has_hdf5_signature(path: Path) -> bool:
    """Whether the file has the HDF5 signature where the format puts it (offset 0, or
    512, 1024, 2048, ... after a user block), read without the HDF5 library: its own test
    (``h5py.is_hdf5``) opens the file, which a corrupt file can crash."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        offset = 0
        while offset + len(_HDF5_SIGNATURE) <= size:
            handle.seek(offset)
            if handle.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE:
                return True
            offset = 512 if offset == 0 else offset * 2
    return False


# The HDF5 library can crash the process (segmentation fault) on some corrupt files: a
# single flipped bit in an attribute's datatype does it. So, before the file is opened in
# this process, a child process opens it, reads every attribute, follows every object
# reference and reads the tables cortexfit reads (units, trials, electrodes) and every
# small dataset: what pynwb and read_nwb then read here. A crash kills only the child.
PROBE_TIMEOUT = 300.0  # seconds; only metadata and the tables are read
_PROBE_SCRIPT = r"""
import json, sys
try:
    import h5py
    import numpy as np
except Exception as exc:
    print(json.dumps({"skip": repr(exc)}))
    sys.exit(4)
FULL = ("units", "intervals/trials", "general/extracellular_ephys/electrodes")
LIMIT = 1 << 20
where = ["/"]

def follow(value, handle):
    if isinstance(value, (h5py.Reference, h5py.RegionReference)):
        if value:
            handle[value]
    elif isinstance(value, np.ndarray) and value.dtype == object:
        for item in value.flat:
            follow(item, handle)

def visit(name, obj):
    where[0] = name
    for key in obj.attrs:
        follow(obj.attrs[key], handle)
    if isinstance(obj, h5py.Dataset):
        obj.shape, obj.dtype
        if name.startswith(FULL) or (obj.size or 0) <= LIMIT:
            follow(obj[()], handle)

try:
    with h5py.File(sys.argv[1], "r") as handle:
        kind = handle.attrs.get("neurodata_type")
        entries = sorted(handle.keys())
        for key in handle.attrs:
            follow(handle.attrs[key], handle)
        handle.visititems(visit)
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__, "message": " ".join(str(exc).split()),
                      "where": where[0]}))
    sys.exit(3)
if isinstance(kind, bytes):
    kind = kind.decode(errors="replace")
print(json.dumps({"kind": kind if isinstance(kind, str) else repr(kind), "entries": entries}))
"""


def _probe_hdf5(path: Path) -> dict[str, Any] | None:
    """Read the file's structure in a child process (see ``_PROBE_SCRIPT``); return the
    root's ``neurodata_type`` and top-level entries, None when no child process can be
    started, or raise :class:`FileFormatError` when reading fails or crashes."""
    import json
    import signal
    import subprocess
    import sys

    if not sys.executable:
        return None
    source = str(path)
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE_SCRIPT, os.fspath(path)], capture_output=True,
            timeout=PROBE_TIMEOUT, stdin=subprocess.DEVNULL, check=False,
        )
    except subprocess.TimeoutExpired:
        raise FileFormatError(
            "reading the HDF5 file's structure did not finish: it is probably corrupt",
            file=source, field="HDF5 structure",
            found=f"no result after {PROBE_TIMEOUT:g} s", expected=_NWB_EXPECTED,
        ) from None
    except OSError:  # cannot start a process here: read in this process only
        return None
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        raise FileFormatError(
            "the HDF5 library crashed reading the file: it is corrupt", file=source,
            field="HDF5 structure", found=f"the reading process was killed by {name}",
            expected="a complete, readable NWB 2 file",
        )
    try:
        report = json.loads(done.stdout.decode(errors="replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None  # not our script's output (a broken interpreter?): read here
    if "skip" in report:
        return None
    if "error" in report:
        at = report.get("where") or "/"
        raise FileFormatError(
            "the HDF5 file cannot be read: it is corrupt or truncated", file=source,
            field="HDF5 structure",
            found=_shorten(f"{report['error']}: {report['message']}"
                           + ("" if at == "/" else f" (at {at})")),
            expected="a complete, readable NWB 2 file",
        )
    return report


def _open_hdf5(path: Path) -> dict[str, Any]:
    source = str(path)
    try:
        with h5py.File(source, "r") as handle:
            kind = handle.attrs.get("neurodata_type")
            entries = sorted(handle.keys())
    except PermissionError as exc:
        raise os_error(path, exc, _NWB_EXPECTED) from None
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise FileFormatError(
            "the HDF5 file cannot be opened: it is corrupt or truncated", file=source,
            field="HDF5 structure", found=_shorten(f"{type(exc).__name__}: {exc}"),
            expected="a complete, readable NWB 2 file",
        ) from exc
    return {"kind": kind, "entries": entries}


def _shorten(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------------------
# The contents
# --------------------------------------------------------------------------------------


def _check_ragged_index(
    ends: np.ndarray, n_values: int, n_rows: int, source: str, field: str, what: str
) -> None:
    """A ragged column's index (the end of each row's values) must be non-decreasing,
    one per row, and end exactly at the last value: else rows would get other rows'
    values or lose some, silently."""
    problem = None
    if ends.shape != (n_rows,):
        problem = f"{ends.size} entries for {n_rows} rows"
    elif n_rows and (ends[0] < 0 or np.any(np.diff(ends) < 0)):
        problem = "entries that decrease (or are negative)"
    elif n_rows and ends[-1] != n_values:
        problem = f"a last entry of {int(ends[-1])} for {n_values} stored {what}"
    if problem is not None:
        raise DataError(
            f"the index of the {what} does not fit the data: the file is corrupt",
            file=source, field=field, found=problem,
            expected=f"one non-decreasing end position per row, the last = {n_values}",
        )


def _check_lengths(table: Any, n_rows: int, source: str, name: str) -> None:
    """Every plain column of an NWB table must hold one value per row (per id)."""
    for column_name in table.colnames:
        column = table[column_name]
        if _column_kind(column) != "scalar":
            continue
        length = len(column.data)
        if length != n_rows:
            raise DataError(
                f"a column of the {name} table does not have one value per row: the file is "
                "corrupt", file=source, field=f"{name}.{column_name}",
                found=f"{length} values for {n_rows} rows (ids)",
                expected=f"{n_rows} values",
            )


def _check_event_column(
    name: str, trials: Any, colnames: list[str], scalar_columns: dict[str, Any], source: str
) -> None:
    if name in ("start_time", "stop_time"):
        raise DataError(
            "start_time and stop_time are trial bounds, not events", file=source,
            field="event_columns", found=name,
            expected=f"event columns among {list(scalar_columns)}",
        )
    if name not in colnames:
        raise DataError(
            "unknown event column", file=source, field="event_columns", found=name,
            expected=f"a trials-table column: one of {colnames}",
        )
    if name not in scalar_columns:
        raise DataError(
            "event column does not hold one value per trial", file=source,
            field=f"trials.{name}", found=f"a {_column_kind(trials[name])} column",
            expected="one event time (number, seconds) per trial",
        )
    values = _column_values(scalar_columns[name])
    if values.dtype.kind not in "fiu":
        raise DataError(
            "event column is not numeric", file=source, field=f"trials.{name}",
            found=f"dtype {values.dtype} (values like {values[:3].tolist()})",
            expected="event times in seconds (float)",
        )


def _clean_unit_spikes(
    times: np.ndarray, *, source: str, unit_id: str, unsorted: str
) -> np.ndarray:
    where = f"units.spike_times (unit {unit_id})"
    cleaned = clean_spike_times(times, source=source, field=where, unsorted=unsorted)
    _check_not_huge(cleaned, source, where, "spike times")
    if cleaned.size and cleaned[0] < 0:
        n_negative = int(np.sum(cleaned < 0))
        raise DataError(
            "spike times are negative", file=source, field=where,
            found=f"{n_negative} negative spike time(s), the first {cleaned[0]:g} s",
            expected="spike times >= 0 s on the session clock",
        )
    return cleaned


def _check_not_huge(values: np.ndarray, source: str, field: str, what: str) -> None:
    finite = values[np.isfinite(values)]
    if finite.size and np.abs(finite).max() > MAX_TIME:
        n_huge = int(np.sum(np.abs(finite) > MAX_TIME))
        raise DataError(
            f"{what} are impossibly large: the file is corrupt or the times are not in seconds",
            file=source, field=field,
            found=f"{n_huge} value(s) beyond {MAX_TIME:.0e} s (~30 years), the largest "
            f"{np.abs(finite).max():.4g} s",
            expected="times in seconds from the session's reference time",
        )


def _check_trial_times(trials: _TrialsData, source: str) -> None:
    bad_start = ~np.isfinite(trials.start)
    if bad_start.any():
        row = int(np.argmax(bad_start))
        raise DataError(
            "trial start times are missing or infinite", file=source,
            field="trials.start_time",
            found=f"{int(bad_start.sum())} trial(s), the first trial id {trials.ids[row]}: "
            f"{trials.start[row]}",
            expected="a finite start_time (seconds) for every trial",
        )
    _check_not_huge(trials.start, source, "trials.start_time", "trial start times")
    _check_not_huge(trials.stop, source, "trials.stop_time", "trial stop times")
    for name, values in trials.events.items():
        _check_not_huge(values, source, f"trials.{name}", "event times")
    if trials.start.size and trials.start.min() < 0:
        row = int(np.argmin(trials.start))
        raise DataError(
            "trial start times are negative", file=source, field="trials.start_time",
            found=f"trial id {trials.ids[row]} starts at {trials.start[row]:g} s",
            expected="start_time >= 0 s on the session clock",
        )
    known = np.isfinite(trials.stop)
    short = known & (trials.stop <= trials.start)
    if short.any():
        row = int(np.argmax(short))
        raise DataError(
            "trials have zero or negative length", file=source,
            field="trials.stop_time",
            found=f"{int(short.sum())} trial(s) with stop_time <= start_time, the first "
            f"trial id {trials.ids[row]}: start {trials.start[row]:g} s, "
            f"stop {trials.stop[row]:g} s",
            expected="stop_time > start_time (or NaN when unknown)",
        )
    infinite = np.isinf(trials.stop)
    if infinite.any():
        raise DataError(
            "trial stop times are infinite", file=source, field="trials.stop_time",
            found=f"{int(infinite.sum())} trial(s)", expected="finite times or NaN",
        )


def _check_events_after_start(
    trials: _TrialsData, absolute_events: dict[str, np.ndarray], source: str, convention: str
) -> None:
    """Events read with an explicit convention must not precede their trial's start."""
    for name, times in absolute_events.items():
        early = np.isfinite(times) & (times < trials.start)
        if early.any():
            other = "relative" if convention == "absolute" else "absolute"
            raise DataError(
                f"event times read as {convention} fall before their trial's start_time",
                file=source, field=f"trials.{name}",
                found=f"{int(early.sum())} of {early.size} trials",
                expected="events inside their trial",
                hint=f'These look {other}: pass event_times="{other}" (or "auto")',
            )
