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
"""
from __future__ import annotations

import datetime as dt
import math
import os
import uuid
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import neo
import numpy as np
import quantities as pq

from ..exceptions import ConfigError, CortexfitError, CortexfitWarning, DataError, FileFormatError
from .convention import (
    Trial,
    check_block,
    clean_spike_times,
    make_block,
    unit_annotations,
    unit_ids,
)
from .files import check_input_file, no_unpickling, os_error, read_head

__all__ = ["read_nwb", "write_nwb"]

_EVENT_CONVENTIONS = ("auto", "absolute", "relative")
_UNSORTED_CHOICES = ("warn", "error", "sort")
# Columns that NWB defines itself and that cortexfit must not create from annotations.
_RESERVED_UNIT_COLUMNS = frozenset(
    {"id", "spike_times", "obs_intervals", "electrodes", "electrode_group", "waveform_mean",
     "waveform_sd", "waveforms"}
)
_RESERVED_TRIAL_COLUMNS = frozenset({"id", "start_time", "stop_time", "tags", "timeseries"})
_EVENT_SUFFIX = "_time"
_NWB_EXPECTED = "an NWB 2 (.nwb) file"
# No recording lasts 30 years: a time beyond this (seconds from the session's reference
# time) is a corrupt value (e.g. a flipped exponent bit) or not in seconds.
MAX_TIME = 1e9


# --------------------------------------------------------------------------------------
# Reading
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


def read_nwb(
    path: str | os.PathLike,
    *,
    event_times: str = "auto",
    event_columns: Sequence[str] | None = None,
    unsorted_spikes: str = "warn",
    trial_padding: float = 2.0,
) -> neo.Block:
    """Read an NWB 2 file into a Block with one Segment per trial (session clock, seconds).

    Parameters
    ----------
    path
        The ``.nwb`` file.
    event_times
        How the trials table's event columns are timed: ``"absolute"`` (session clock, like
        start_time), ``"relative"`` (seconds after each trial's start_time; the shared ALM
        files) or ``"auto"`` (default) to infer it from the values:

        * *relative* when most finite event values are smaller than their trial's
          start_time (impossible for absolute times), or when they do not fit the absolute
          reading but do fit the relative one;
        * *absolute* when every finite value lies at or after its trial's start_time (and at
          or before its stop_time when known) and the relative reading does not fit
          (it would push events past a known stop_time) or the trials start late enough
          in the session for the two readings to differ;
        * otherwise (e.g. every trial starts near 0 s, so that both readings fit) a
          :class:`DataError` asks you to pass ``"absolute"`` or ``"relative"``.

        The convention used is stored in ``block.annotations["event_times"]`` (``"none"``
        when the file has no event times).
    event_columns
        The trials-table columns that hold event times. Default: every floating-point
        column whose name ends in ``_time`` except start_time and stop_time. Each becomes
        a :class:`neo.Event` named after the column (e.g. ``cue_start_time``) on the session
        clock; a trial whose value is NaN has no such event.
    unsorted_spikes
        What to do with out-of-order spike times (the shared ALM files have about 20 per
        unit): ``"warn"`` (default) sorts them with a :class:`CortexfitWarning`,
        ``"sort"`` sorts them silently, ``"error"`` raises :class:`DataError`.
    trial_padding
        Seconds added after a trial's last event when its stop_time is missing (NaN).

    Returns
    -------
    neo.Block
        Built by :func:`~cortexfit.io.convention.make_block`. Segment ``t_start``/``t_stop``
        are the trial's start and stop on the session clock. Segment annotations: every
        trials-table column except start_time, stop_time and the event columns, with
        ``trial_id`` = the table's ``id`` (a ``trial_id`` column takes precedence).
        Spike trains are annotated with ``unit_id`` (the Units table's ``id`` as a string,
        or its ``unit_id`` column when it has one) and every scalar Units column
        (``depth``, ``quality``, ``cell_type``...); non-scalar columns (``electrodes``,
        ``waveform_mean``...) are skipped, but when the electrodes table has a
        ``location`` column and the Units table does not, the unit's electrode location
        is added as ``location``. Block annotations: ``source``, ``session_description``,
        ``identifier``, ``session_start_time`` (ISO 8601), ``subject_id`` (when known),
        ``nwb_version``, ``event_times``, ``event_columns``, ``trial_stop`` and
        ``trial_padding``.

    Notes
    -----
    **Missing stop times.** When a trial's stop_time is NaN (as in the shared ALM files),
    its stop is ``max(next trial's start_time, latest event of this trial +
    trial_padding)``; for the last trial (no later start) it is ``max(latest event,
    start_time) + trial_padding``. ``block.annotations["trial_stop"]`` says whether stops
    came from the ``"file"``, were ``"inferred"`` or ``"partly inferred"``.
    Trials may then **overlap** (in the ALM files the go cue of a trial often comes after
    the next trial's start_time): this is allowed, and each Segment takes every spike
    within its own ``[t_start, t_stop]``, so a spike in an overlap belongs to both trials.

    **Spikes between trials** (outside every trial's window) are in no Segment.

    Raises
    ------
    FileFormatError
        The file is missing, a directory, unreadable (permissions), not HDF5, HDF5 but
        not NWB, or corrupt/truncated (including a file that crashes the HDF5 library).
    DataError
        No Units table, no units, no trials table, a spike index or column that does not
        fit its table, NaN/infinite/negative/impossibly large (> 1e9 s) spike or trial
        times, unsorted spike times with ``unsorted_spikes="error"``, missing or
        non-increasing trial times, an unknown or non-numeric name in ``event_columns``, or event times
        whose convention cannot be inferred.
    ConfigError
        An option has an invalid value.
    """
    _check_read_options(event_times, event_columns, unsorted_spikes, trial_padding)
    path = Path(path)
    source = str(path)
    _check_nwb_file(path)
    with no_unpickling(path):  # NWB holds no pickles; no library may unpickle from it
        contents = _read_file(path, event_columns)

    units = contents.units
    spikes = [
        _clean_unit_spikes(times, source=source, unit_id=uid, unsorted=unsorted_spikes)
        for uid, times in zip(units.ids, units.spike_times)
    ]

    trials = contents.trials
    _check_trial_times(trials, source)
    if trials.events:
        convention = (
            _infer_event_convention(trials, source) if event_times == "auto" else event_times
        )
    else:
        convention = "none"
    absolute_events = {
        name: trials.start + values if convention == "relative" else values.copy()
        for name, values in trials.events.items()
    }
    if event_times != "auto":
        _check_events_after_start(trials, absolute_events, source, convention)
    stops, stop_origin = _trial_stops(trials, absolute_events, trial_padding)

    records = []
    for row, trial_id in enumerate(trials.ids):
        start, stop = float(trials.start[row]), float(stops[row])
        annotations = {"trial_id": trial_id}
        annotations.update({name: values[row] for name, values in trials.columns.items()})
        events = {
            name: float(times[row])
            for name, times in absolute_events.items()
            if math.isfinite(times[row])
        }
        records.append(
            Trial(
                t_start=start,
                t_stop=stop,
                spikes=[_window(times, start, stop) for times in spikes],
                annotations=annotations,
                events=events,
            )
        )

    block_annotations = dict(contents.annotations)
    block_annotations.update(
        event_times=convention,
        event_columns=list(trials.events),
        trial_stop=stop_origin,
        trial_padding=float(trial_padding),
    )
    return make_block(
        records,
        units.ids,
        unit_annotations=units.annotations,
        source=source,
        block_annotations=block_annotations,
    )


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


def _read_file(path: Path, event_columns: Sequence[str] | None) -> _FileData:
    """Read everything needed from the file into memory, then close it."""
    from pynwb import NWBHDF5IO  # imported here: pynwb is slow to import

    source = str(path)
    try:
        with NWBHDF5IO(source, "r", load_namespaces=True) as nwb_io:
            nwbfile = nwb_io.read()
            units = _read_units(nwbfile, source)
            trials = _read_trials(nwbfile, source, event_columns)
            annotations = _file_annotations(nwbfile)
    except CortexfitError:
        raise
    except PermissionError as exc:
        raise os_error(path, exc, _NWB_EXPECTED) from None
    except Exception as exc:  # noqa: BLE001 - any pynwb/hdmf/h5py failure means "unreadable"
        where, what = _describe_failure(exc)
        raise FileFormatError(
            "the NWB file cannot be read: it is corrupt, truncated or not valid NWB 2",
            file=source, field=where or "NWB structure", found=what,
            expected="a complete NWB 2 file readable by pynwb",
        ) from exc
    return _FileData(units=units, trials=trials, annotations=annotations)


def _describe_failure(exc: BaseException) -> tuple[str | None, str]:
    """(where in the file, what went wrong) for an exception from pynwb, hdmf or h5py, as
    one line: hdmf's ConstructError carries the builder (a dump of the group's contents)
    and the reason, of which only the group's path and the reason are useful."""
    where = None
    text = str(exc)
    args = getattr(exc, "args", ())
    if type(exc).__name__ == "ConstructError" and len(args) == 2:
        where = getattr(args[0], "path", None)
        text = str(args[1])
    return where, _shorten(f"{type(exc).__name__}: {text}")


def _file_annotations(nwbfile: Any) -> dict[str, Any]:
    annotations: dict[str, Any] = {
        "file_format": "NWB",
        "session_description": str(nwbfile.session_description or ""),
        "identifier": str(nwbfile.identifier or ""),
    }
    if nwbfile.session_start_time is not None:
        annotations["session_start_time"] = nwbfile.session_start_time.isoformat()
    subject = getattr(nwbfile, "subject", None)
    if subject is not None and getattr(subject, "subject_id", None):
        annotations["subject_id"] = str(subject.subject_id)
    version = getattr(nwbfile, "nwb_version", None)
    if version:
        annotations["nwb_version"] = str(version)
    return annotations


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


def _read_units(nwbfile: Any, source: str) -> _UnitsData:
    units = nwbfile.units
    if units is None:
        raise DataError(
            "the NWB file has no Units table", file=source, field="units",
            found="no /units", expected="a Units table with the spike times of sorted units",
            hint="cortexfit needs sorted spikes: run spike sorting and store the result in "
            "the Units table",
        )
    n_units = len(units)
    if n_units == 0:
        raise DataError(
            "the NWB Units table is empty", file=source, field="units",
            found="0 units", expected="at least one unit with spike times",
        )
    if "spike_times" not in units.colnames:
        raise DataError(
            "the NWB Units table has no spike times", file=source, field="units.spike_times",
            found=f"columns {list(units.colnames)}", expected="a spike_times column",
        )
    table_ids = [int(i) for i in np.asarray(units.id.data[:])]
    spike_index = units["spike_times"]
    ends = np.asarray(spike_index.data[:], dtype=np.int64)
    flat = np.asarray(spike_index.target.data[:])
    _check_ragged_index(ends, len(flat), n_units, source, "units.spike_times_index",
                        "spike times")
    _check_lengths(units, n_units, source, "units")
    begins = np.concatenate([[0], ends[:-1]])
    spike_times = [flat[begin:end] for begin, end in zip(begins, ends)]

    annotations: list[dict[str, Any]] = [{} for _ in range(n_units)]
    id_column = None
    for name in units.colnames:
        if name == "spike_times" or _column_kind(units[name]) != "scalar":
            continue
        values = _column_values(units[name])
        if name == "unit_id":
            id_column = [str(v) for v in values]
            continue
        for row in range(n_units):
            annotations[row][name] = values[row]
    if "location" not in units.colnames:
        locations = _electrode_locations(nwbfile, units, n_units, source)
        if locations is not None:
            for row, location in enumerate(locations):
                if location:
                    annotations[row]["location"] = location
    ids = id_column if id_column is not None else [str(i) for i in table_ids]
    return _UnitsData(ids=ids, spike_times=spike_times, annotations=annotations)


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


def _electrode_locations(
    nwbfile: Any, units: Any, n_units: int, source: str
) -> list[str] | None:
    """Each unit's electrode location(s) (``" | "``-joined if several), or None if unknown."""
    electrodes = getattr(nwbfile, "electrodes", None)
    if electrodes is None or "location" not in electrodes.colnames:
        return None
    if "electrodes" not in units.colnames or _column_kind(units["electrodes"]) != "ragged":
        return None
    region_index = units["electrodes"]
    ends = np.asarray(region_index.data[:], dtype=np.int64)
    rows = np.asarray(region_index.target.data[:], dtype=np.int64)
    _check_ragged_index(ends, len(rows), n_units, source, "units.electrodes_index",
                        "electrode references")
    location_column = _column_values(electrodes["location"])
    if rows.size and (rows.min() < 0 or rows.max() >= len(location_column)):
        raise DataError(
            "a unit refers to an electrode that is not in the electrodes table: the file is "
            "corrupt", file=source, field="units.electrodes",
            found=f"electrode rows {int(rows.min())} to {int(rows.max())}",
            expected=f"rows 0 to {len(location_column) - 1}",
        )
    locations = []
    begin = 0
    for end in ends[:n_units]:
        names = dict.fromkeys(str(location_column[r]) for r in rows[begin:end])
        locations.append(" | ".join(names))
        begin = end
    return locations


def _read_trials(
    nwbfile: Any, source: str, event_columns: Sequence[str] | None
) -> _TrialsData:
    trials = nwbfile.trials
    if trials is None:
        raise DataError(
            "the NWB file has no trials table", file=source, field="intervals/trials",
            found="no trials table", expected="a trials table with start_time and stop_time",
        )
    if len(trials) == 0:
        raise DataError(
            "the NWB trials table is empty", file=source, field="intervals/trials",
            found="0 trials", expected="at least one trial",
        )
    colnames = list(trials.colnames)
    _check_lengths(trials, len(trials), source, "trials")
    start = np.asarray(trials["start_time"].data[:], dtype=np.float64)
    stop = np.asarray(trials["stop_time"].data[:], dtype=np.float64)
    ids: list[Any] = [int(i) for i in np.asarray(trials.id.data[:])]

    scalar_columns = {
        name: trials[name]
        for name in colnames
        if name not in ("start_time", "stop_time") and _column_kind(trials[name]) == "scalar"
    }
    if event_columns is None:
        chosen = [
            name for name, column in scalar_columns.items()
            if name.endswith(_EVENT_SUFFIX) and _column_values(column).dtype.kind == "f"
        ]
    else:
        chosen = list(dict.fromkeys(event_columns))
        for name in chosen:
            _check_event_column(name, trials, colnames, scalar_columns, source)

    events = {
        name: np.asarray(_column_values(scalar_columns[name]), dtype=np.float64)
        for name in chosen
    }
    columns = {
        name: list(_column_values(column))
        for name, column in scalar_columns.items()
        if name not in events
    }
    return _TrialsData(ids=ids, start=start, stop=stop, columns=columns, events=events)


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


def _infer_event_convention(trials: _TrialsData, source: str) -> str:
    """``"absolute"`` or ``"relative"`` from the event values (see :func:`read_nwb`)."""
    values = np.column_stack(list(trials.events.values()))
    start = np.broadcast_to(trials.start[:, None], values.shape)
    stop = np.broadcast_to(trials.stop[:, None], values.shape)
    finite = np.isfinite(values)
    if not finite.any():
        return "none"
    value, start, stop = values[finite], start[finite], stop[finite]
    known_stop = np.isfinite(stop)
    tolerance = 1e-9

    if np.mean(value < start) > 0.5:
        return "relative"
    absolute_fits = bool(
        np.all(value >= start - tolerance)
        and np.all(value[known_stop] <= stop[known_stop] + tolerance)
    )
    relative_fits = bool(
        np.all(value >= -tolerance)
        and np.all(start[known_stop] + value[known_stop] <= stop[known_stop] + tolerance)
    )
    # With trials starting near 0 s both readings put the events at nearly the same place.
    starts_near_zero = float(np.max(trials.start)) <= float(np.median(value))
    if absolute_fits and not (relative_fits and starts_near_zero):
        return "absolute"
    if relative_fits and not absolute_fits:
        return "relative"
    reason = (
        "both readings fit: the trials start near 0 s"
        if absolute_fits
        else "neither reading fits: some values precede their trial's start_time and some "
        "would pass its stop_time"
    )
    raise DataError(
        "cannot tell whether the trials' event times are absolute or relative to start_time",
        file=source, field=f"trials.{', trials.'.join(trials.events)}",
        found=f"{reason} (start_time {np.min(trials.start):g} to {np.max(trials.start):g} s, "
        f"event values {np.min(value):g} to {np.max(value):g} s)",
        expected="event times clearly on the session clock or clearly after start_time",
        hint='Pass event_times="absolute" or event_times="relative" to read_nwb',
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


def _trial_stops(
    trials: _TrialsData, absolute_events: dict[str, np.ndarray], padding: float
) -> tuple[np.ndarray, str]:
    """Each trial's stop: from the file, or inferred where it is NaN (see :func:`read_nwb`)."""
    stops = trials.stop.copy()
    missing = ~np.isfinite(stops)
    if not missing.any():
        return stops, "file"
    if absolute_events:
        event_matrix = np.column_stack(list(absolute_events.values()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no events
            latest = np.nanmax(event_matrix, axis=1)
    else:
        latest = np.full(trials.start.shape, np.nan)
    sorted_starts = np.unique(trials.start)
    for row in np.flatnonzero(missing):
        start = trials.start[row]
        after_events = (start if np.isnan(latest[row]) else latest[row]) + padding
        later = sorted_starts[np.searchsorted(sorted_starts, start, side="right"):]
        if later.size:
            stops[row] = max(later[0], after_events)
        else:
            stops[row] = max(after_events, start + padding)
    return stops, "inferred" if missing.all() else "partly inferred"


def _window(times: np.ndarray, start: float, stop: float) -> np.ndarray:
    """The sorted spike times within ``[start, stop]`` (a copy)."""
    first = np.searchsorted(times, start, side="left")
    last = np.searchsorted(times, stop, side="right")
    return times[first:last].copy()


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def write_nwb(
    block: neo.Block,
    path: str | os.PathLike,
    *,
    session_description: str = "cortexfit recording",
    identifier: str | None = None,
    session_start_time: dt.datetime | str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a convention Block on a session clock as an NWB 2 file; return the path.

    The Block must use **absolute times**: the ``t_start``/``t_stop`` of each Segment's
    spike trains are the trial's start and stop on the session clock, and its events and
    spikes are on that clock too (as :func:`read_nwb` returns them). The file holds:

    * a Units table: one row per unit with its spike times pooled over all trials (sorted,
      a spike present in several overlapping trials is written once); the table ``id`` is
      the unit id when every unit id is an integer, otherwise ids are 0, 1, ... and the
      unit ids go to a ``unit_id`` column (which :func:`read_nwb` uses as ids); every unit
      annotation becomes a column;
    * a trials table: ``start_time``, ``stop_time``, one column per segment annotation
      (``trial_id`` is the table ``id`` when every trial id is an integer, else a column)
      and one float column per event name holding its absolute time, NaN where a trial
      lacks it.

    Annotation columns are bool, int or float when every value is, strings otherwise; a
    value a trial or unit lacks is written as NaN (numbers) or ``""`` (strings).
    Spikes outside every trial are not in the Block and so not in the file.

    :func:`read_nwb` of the result gives back the same trials, annotations, events and
    spikes when trials do not overlap and event names end in ``_time`` (others are read
    back as events only with ``event_columns``; a :class:`CortexfitWarning` says so).

    Parameters
    ----------
    session_description, identifier, session_start_time
        NWB file metadata. ``identifier`` defaults to the Block's ``identifier``
        annotation or a new UUID; ``session_start_time`` (datetime or ISO 8601 string;
        a naive time is taken as UTC) defaults to the Block's ``session_start_time``
        annotation or the current time.
    overwrite
        Replace an existing file; without it an existing ``path`` raises :class:`DataError`.
    """
    from pynwb import NWBHDF5IO, NWBFile

    path = Path(path)
    source = str(path)
    if path.exists() and not overwrite:
        raise DataError(
            "the output file already exists", file=source, field="path",
            found="an existing file", expected="a new file name",
            hint="Pass overwrite=True to replace it",
        )
    if path.exists() and not path.is_file():
        raise DataError(
            "the output path is not a file", file=source, field="path",
            found="a directory", expected="a file name ending in .nwb",
        )
    check_block(block)
    where = str(block.annotations.get("source", "block"))
    start_time = _session_start_time(session_start_time, block, source)
    if identifier is None:
        identifier = str(block.annotations.get("identifier") or uuid.uuid4())

    ids = unit_ids(block)
    spikes = _pooled_spikes(block, where)
    unit_columns = _annotation_columns(
        unit_annotations(block), reserved=_RESERVED_UNIT_COLUMNS | {"unit_id"},
        what="unit annotation", source=where,
    )
    integer_unit_ids = all(_is_integer_text(uid) for uid in ids)
    if not integer_unit_ids:
        unit_columns["unit_id"] = (list(ids), "cortexfit unit id")

    starts, stops = _trial_bounds(block, where, output=source)
    trial_ids = [seg.annotations["trial_id"] for seg in block.segments]
    integer_trial_ids = all(_is_integer(trial_id) for trial_id in trial_ids)
    trial_records = [
        {k: v for k, v in seg.annotations.items() if not (integer_trial_ids and k == "trial_id")}
        for seg in block.segments
    ]
    trial_columns = _annotation_columns(
        trial_records, reserved=_RESERVED_TRIAL_COLUMNS, what="trial annotation", source=where,
    )
    for name, times in _event_columns(block, where).items():
        if name in trial_columns or name in _RESERVED_TRIAL_COLUMNS:
            raise DataError(
                "an event has the name of a trial annotation or NWB trial column",
                file=where, field=f"event {name}", found=name,
                expected="event names distinct from trial annotations and "
                f"{sorted(_RESERVED_TRIAL_COLUMNS)}",
            )
        if not name.endswith(_EVENT_SUFFIX):
            warnings.warn(
                f"{source}: event {name!r} does not end in {_EVENT_SUFFIX!r}: read_nwb will "
                f"read it back as an event only with event_columns=[..., {name!r}].",
                CortexfitWarning,
                stacklevel=2,
            )
        trial_columns[name] = (times, "event time (s, session clock); NaN = no such event")

    nwbfile = NWBFile(
        session_description=session_description,
        identifier=identifier,
        session_start_time=start_time,
    )
    for name, (_, description) in unit_columns.items():
        nwbfile.add_unit_column(name=name, description=description)
    for index, uid in enumerate(ids):
        row = {name: values[index] for name, (values, _) in unit_columns.items()}
        unit_table_id = int(uid) if integer_unit_ids else index
        nwbfile.add_unit(spike_times=spikes[index], id=unit_table_id, **row)
    for name, (_, description) in trial_columns.items():
        nwbfile.add_trial_column(name=name, description=description)
    for index, trial_id in enumerate(trial_ids):
        row = {name: values[index] for name, (values, _) in trial_columns.items()}
        trial_table_id = int(trial_id) if integer_trial_ids else index
        nwbfile.add_trial(
            start_time=starts[index], stop_time=stops[index], id=trial_table_id, **row
        )

    try:
        with NWBHDF5IO(source, "w") as nwb_io:
            nwb_io.write(nwbfile)
    except OSError as exc:
        raise DataError(
            "the NWB file cannot be written", file=source, field="path",
            found=f"{type(exc).__name__}: {exc}", expected="a writable file path",
        ) from exc
    return path


def _session_start_time(
    value: dt.datetime | str | None, block: neo.Block, source: str
) -> dt.datetime:
    if value is None:
        value = block.annotations.get("session_start_time")
    if value is None:
        return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise DataError(
                "session_start_time is not an ISO 8601 date", file=source,
                field="session_start_time", found=value,
                expected="a datetime or a string like '2024-01-31T12:00:00+00:00'",
            ) from None
    if not isinstance(value, dt.datetime):
        raise DataError(
            "session_start_time is not a date and time", file=source,
            field="session_start_time", found=type(value).__name__,
            expected="a datetime or an ISO 8601 string",
        )
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value


def _trial_bounds(
    block: neo.Block, source: str, *, output: str
) -> tuple[list[float], list[float]]:
    # From the spike trains, not Segment.t_start/t_stop: neo computes those from every
    # child, events included, so an event outside its trial would move them.
    starts = [min(float(_seconds(st.t_start)) for st in seg.spiketrains) for seg in block.segments]
    stops = [max(float(_seconds(st.t_stop)) for st in seg.spiketrains) for seg in block.segments]
    if min(starts) < 0:
        index = int(np.argmin(starts))
        raise DataError(
            "a trial starts before 0 s", file=source, field=f"segment {index}: t_start",
            found=f"{starts[index]:g} s",
            expected="trial times >= 0 s on the session clock (NWB times are never negative)",
        )
    order = np.argsort(starts, kind="stable")
    ordered_starts, ordered_stops = np.asarray(starts)[order], np.asarray(stops)[order]
    overlapping = int(np.sum(ordered_starts[1:] < np.maximum.accumulate(ordered_stops)[:-1]))
    if overlapping:
        warnings.warn(
            f"writing {output}: {overlapping} trial(s) of {source} overlap an earlier one: "
            "spikes in an overlap are written once, and read_nwb will give them to every "
            "trial covering them.",
            CortexfitWarning,
            stacklevel=3,
        )
    return starts, stops


def _pooled_spikes(block: neo.Block, source: str) -> list[np.ndarray]:
    """Per unit, the sorted union of its spike times over all trials (seconds)."""
    n_units = len(block.segments[0].spiketrains)
    pooled: list[list[np.ndarray]] = [[] for _ in range(n_units)]
    for seg in block.segments:
        for index, train in enumerate(seg.spiketrains):
            pooled[index].append(_seconds(train))
    result = []
    for index, parts in enumerate(pooled):
        times = np.unique(np.concatenate(parts)) if parts else np.empty(0)
        if times.size and times[0] < 0:
            raise DataError(
                "spike times are negative", file=source,
                field=f"unit {unit_ids(block)[index]}", found=f"first spike {times[0]:g} s",
                expected="spike times >= 0 s on the session clock",
            )
        result.append(times)
    return result


def _event_columns(block: neo.Block, source: str) -> dict[str, list[float]]:
    """Per event name, its absolute time in every trial (NaN where a trial lacks it)."""
    columns: dict[str, list[float]] = {}
    n_trials = len(block.segments)
    for index, seg in enumerate(block.segments):
        for event in seg.events:
            times = np.atleast_1d(_seconds(event.times))
            if len(times) == 0:
                continue
            if len(times) > 1:
                raise DataError(
                    "an event occurs more than once in a trial", file=source,
                    field=f"segment {index}: event {event.name}", found=f"{len(times)} times",
                    expected="one time per event and trial (an NWB trials column holds one)",
                )
            column = columns.setdefault(event.name, [math.nan] * n_trials)
            if not math.isnan(column[index]):
                raise DataError(
                    "two events of the same name in one trial", file=source,
                    field=f"segment {index}: event {event.name}", found="2 events",
                    expected="one event per name and trial",
                )
            column[index] = float(times[0])
    return columns


def _annotation_columns(
    records: Sequence[dict[str, Any]],
    *,
    reserved: Iterable[str],
    what: str,
    source: str,
) -> dict[str, tuple[list[Any], str]]:
    """Turn per-row annotation dicts into NWB columns: ``{name: (values, description)}``."""
    reserved = set(reserved)
    names: list[str] = []
    for record in records:
        for name in record:
            if name not in names:
                names.append(name)
    columns = {}
    for name in names:
        if name in reserved or "/" in name:
            raise DataError(
                f"a {what} cannot be written as an NWB column", file=source, field=name,
                found=f"the name {name!r}",
                expected=f"a name without '/' and other than {sorted(reserved)}",
            )
        values = [record.get(name) for record in records]
        columns[name] = (_typed_column(values), f"cortexfit {what}")
    return columns


def _typed_column(values: list[Any]) -> list[Any]:
    """One dtype for a column: bool, int, float (NaN = missing) or str (``""`` = missing)."""
    values = [v.item() if isinstance(v, np.generic) else v for v in values]
    present = [v for v in values if v is not None]
    missing = len(present) < len(values)
    if not missing and all(isinstance(v, bool) for v in present):
        return values
    if not missing and all(_is_integer(v) for v in present):
        return [int(v) for v in values]
    if all(isinstance(v, (int, float)) for v in present):
        return [math.nan if v is None else float(v) for v in values]
    return ["" if v is None else str(v) for v in values]


_SECONDS_PER_UNIT: dict[str, float] = {}


def _seconds(quantity: pq.Quantity) -> np.ndarray:
    """The magnitude of a time quantity in seconds, as float64.

    Same as ``quantity.rescale(pq.s).magnitude`` but caches the factor per unit: rescaling
    thousands of spike trains one by one is slow in ``quantities``.
    """
    unit = quantity.dimensionality.string
    factor = _SECONDS_PER_UNIT.get(unit)
    if factor is None:
        factor = float(pq.Quantity(1.0, quantity.units).rescale(pq.s).magnitude)
        _SECONDS_PER_UNIT[unit] = factor
    magnitude = np.asarray(quantity.magnitude, dtype=np.float64)
    return magnitude if factor == 1.0 else magnitude * factor


def _is_integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_integer_text(text: str) -> bool:
    try:
        return str(int(text)) == text
    except ValueError:
        return False
