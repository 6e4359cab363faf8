"""Writing a convention Block on a session clock as an NWB 2 file: :func:`write_nwb`."""
from __future__ import annotations

import datetime as dt
import math
import os
import uuid
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import neo
import numpy as np
import quantities as pq

from ...exceptions import CortexfitWarning, DataError
from ..convention import check_block, unit_annotations, unit_ids
from .checks import _EVENT_SUFFIX

__all__ = ["write_nwb"]

# Columns that NWB defines itself and that cortexfit must not create from annotations.
_RESERVED_UNIT_COLUMNS = frozenset(
    {"id", "spike_times", "obs_intervals", "electrodes", "electrode_group", "waveform_mean",
     "waveform_sd", "waveforms"}
)
_RESERVED_TRIAL_COLUMNS = frozenset({"id", "start_time", "stop_time", "tags", "timeseries"})


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
    trial_ids, integer_trial_ids, trial_columns = _trial_columns(block, where, output=source)

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


def _trial_columns(
    block: neo.Block, where: str, *, output: str
) -> tuple[list[Any], bool, dict[str, tuple[list[Any], str]]]:
    """The trial ids, whether they are all integers (then they are the table's ``id``)
    and the trials table's columns: ``{name: (values, description)}``, annotations then
    events (absolute times, NaN = no such event)."""
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
                f"{output}: event {name!r} does not end in {_EVENT_SUFFIX!r}: read_nwb will "
                f"read it back as an event only with event_columns=[..., {name!r}].",
                CortexfitWarning,
                stacklevel=3,
            )
        trial_columns[name] = (times, "event time (s, session clock); NaN = no such event")
    return trial_ids, integer_trial_ids, trial_columns


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
