"""Reading an NWB 2 file into a convention Block: :func:`read_nwb`.

The file is checked (:mod:`~cortexfit.io.nwb.checks`) before pynwb opens it, read into
plain arrays, closed, and its contents checked again before the Block is built.
"""
from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import neo
import numpy as np

from ...exceptions import CortexfitError, DataError, FileFormatError
from ..convention import Trial, make_block
from ..files import no_unpickling, os_error
from .checks import (
    _EVENT_SUFFIX,
    _NWB_EXPECTED,
    _check_event_column,
    _check_events_after_start,
    _check_lengths,
    _check_nwb_file,
    _check_ragged_index,
    _check_read_options,
    _check_trial_times,
    _clean_unit_spikes,
    _column_kind,
    _column_values,
    _FileData,
    _shorten,
    _TrialsData,
    _UnitsData,
)

__all__ = ["read_nwb"]


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
    records, convention, stop_origin = _trial_records(
        trials, spikes, source, event_times, trial_padding
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


def _trial_records(
    trials: _TrialsData,
    spikes: list[np.ndarray],
    source: str,
    event_times: str,
    trial_padding: float,
) -> tuple[list[Trial], str, str]:
    """One :class:`Trial` per row of the trials table (session clock), the event
    convention used and where the stops came from (see :func:`read_nwb`)."""
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
    return records, convention, stop_origin


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
