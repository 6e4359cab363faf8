"""The in-memory convention every loader produces: a ``neo.Block``, one Segment per trial.

Convention (checked by :func:`check_block`):

* ``block.segments``: one :class:`neo.Segment` per trial, with ``t_start < t_stop`` in
  seconds. Times are on whatever clock the source uses (the session clock for NWB, the
  trial clock for arrays); events and spikes of a trial share its clock.
* ``segment.annotations``: ``trial_id`` (unique in the block) and every trial attribute
  the source has (``condition``, ``outcome``, the NWB trials-table columns, ...): scalars
  only (str, int, float, bool).
* ``segment.spiketrains``: one :class:`neo.SpikeTrain` per unit, in the **same order in
  every segment**, in seconds, sorted, finite, inside ``[t_start, t_stop]``; annotated
  with ``unit_id`` (str, unique) and any unit attribute (``cell_type``, ``location``...).
* ``segment.events``: one :class:`neo.Event` per named trial event (``name`` = the event
  name, e.g. ``"go_cue_time"``), usually with one time, inside the trial. An event a trial
  lacks is absent.
* The trial window is that of its spike trains (``SpikeTrain.t_start``/``t_stop``; neo's
  ``Segment.t_start``/``t_stop`` are derived from all children).
* ``block.annotations``: ``source`` (the file or a description).

:func:`make_block` builds such a Block from plain per-trial records; all loaders use it,
so the convention is enforced in one place.
"""
from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import neo
import numpy as np
import quantities as pq

from ..exceptions import CortexfitWarning, DataError

__all__ = [
    "Trial",
    "make_block",
    "check_block",
    "unit_ids",
    "unit_annotations",
    "trial_annotations",
    "event_names",
    "event_time",
    "clean_spike_times",
    "trial_window",
]

_SCALAR = (str, int, float, bool, np.integer, np.floating, np.bool_)


@dataclass
class Trial:
    """One trial as plain data, before it becomes a Segment.

    ``spikes[k]`` are the spike times (s) of unit k on the trial's clock.
    """

    t_start: float
    t_stop: float
    spikes: Sequence[np.ndarray]
    annotations: dict[str, Any] = field(default_factory=dict)
    events: dict[str, float] = field(default_factory=dict)


def _where(source: str | None) -> str | None:
    return None if source is None else os.fspath(source)


def clean_spike_times(
    times: Any,
    *,
    source: str | None,
    field: str,
    unsorted: str = "error",
) -> np.ndarray:
    """Return spike times as a sorted, finite float64 array, or raise :class:`DataError`.

    ``unsorted``: ``"error"`` (default) raises on out-of-order times; ``"sort"`` sorts them
    silently; ``"warn"`` sorts them and issues a :class:`CortexfitWarning`.
    """
    try:
        arr = np.asarray(times, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(
            "spike times are not numbers",
            file=_where(source),
            field=field,
            found=f"{type(times).__name__} ({exc})",
            expected="a 1-D array of spike times in seconds",
        ) from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise DataError(
            "spike times must be one-dimensional",
            file=_where(source),
            field=field,
            found=f"an array of shape {arr.shape}",
            expected="a 1-D array of spike times in seconds",
        )
    if arr.size and not np.all(np.isfinite(arr)):
        n_bad = int(np.sum(~np.isfinite(arr)))
        raise DataError(
            "spike times contain NaN or infinite values",
            file=_where(source),
            field=field,
            found=f"{n_bad} non-finite of {arr.size} spike times",
            expected="finite spike times in seconds",
        )
    if arr.size > 1:
        n_back = int(np.sum(np.diff(arr) < 0))
        if n_back:
            if unsorted == "error":
                raise DataError(
                    "spike times are not sorted",
                    file=_where(source),
                    field=field,
                    found=f"{n_back} spike(s) earlier than the one before",
                    expected="spike times in increasing order",
                    hint="Sort them, or pass unsorted='sort' to the loader to sort them for you",
                )
            if unsorted == "warn":
                warnings.warn(
                    f"{_where(source) or 'input'}: {field}: {n_back} spike time(s) were out of "
                    "order and have been sorted.",
                    CortexfitWarning,
                    stacklevel=3,
                )
            elif unsorted != "sort":
                raise ValueError(f"unsorted must be 'error', 'warn' or 'sort', not {unsorted!r}")
            arr = np.sort(arr, kind="stable")
    return arr


def _scalar(value: Any, *, source: str | None, field: str) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode()
    if not isinstance(value, _SCALAR):
        raise DataError(
            "a trial or unit attribute is not a scalar",
            file=_where(source),
            field=field,
            found=f"{type(value).__name__}: {value!r}"[:120],
            expected="a str, int, float or bool",
        )
    return value


def make_block(
    trials: Sequence[Trial],
    unit_ids: Sequence[Any],
    *,
    unit_annotations: Sequence[Mapping[str, Any]] | None = None,
    source: str | os.PathLike | None = None,
    block_annotations: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> neo.Block:
    """Build a convention-conforming Block from plain per-trial records.

    Raises :class:`DataError` for empty inputs, duplicated unit ids, zero-length trials,
    spikes outside their trial or malformed spike times.
    """
    src = _where(source)
    ids = [str(u) for u in unit_ids]
    if len(ids) == 0:
        raise DataError(
            "the recording has no units",
            file=src,
            field="units",
            found="0 units",
            expected="at least one unit with spike times",
        )
    if len(set(ids)) != len(ids):
        dup = sorted({u for u in ids if ids.count(u) > 1})
        raise DataError(
            "unit ids are not unique", file=src, field="unit_id", found=dup[:10],
            expected="one id per unit",
        )
    if len(trials) == 0:
        raise DataError(
            "the recording has no trials",
            file=src,
            field="trials",
            found="0 trials",
            expected="at least one trial",
        )
    unit_ann = list(unit_annotations) if unit_annotations is not None else [{}] * len(ids)
    if len(unit_ann) != len(ids):
        raise DataError(
            "unit annotations do not match the units",
            file=src, field="unit_annotations",
            found=f"{len(unit_ann)} records", expected=f"{len(ids)} (one per unit)",
        )
    unit_ann = [
        {k: _scalar(v, source=src, field=f"unit {ids[i]}: {k}") for k, v in ann.items()}
        for i, ann in enumerate(unit_ann)
    ]

    block = neo.Block(name=name or (os.path.basename(src) if src else "recording"))
    block.annotate(source=src if src is not None else "in-memory arrays")
    if block_annotations:
        block.annotate(**dict(block_annotations))

    seen_ids: set[Any] = set()
    for index, trial in enumerate(trials):
        t0, t1 = float(trial.t_start), float(trial.t_stop)
        trial_id = trial.annotations.get("trial_id", index)
        label = f"trial {trial_id}"
        if not (math.isfinite(t0) and math.isfinite(t1)):
            raise DataError(
                "trial start or stop time is not finite", file=src,
                field=f"{label}: start_time/stop_time", found=(t0, t1),
                expected="finite times in seconds",
            )
        if not t1 > t0:
            raise DataError(
                "trial has zero or negative length", file=src,
                field=f"{label}: start_time/stop_time", found=f"start {t0} s, stop {t1} s",
                expected="stop_time > start_time",
            )
        if trial_id in seen_ids:
            raise DataError(
                "trial ids are not unique", file=src, field="trial_id", found=trial_id,
                expected="one id per trial",
            )
        seen_ids.add(trial_id)
        if len(trial.spikes) != len(ids):
            raise DataError(
                "a trial does not have one spike train per unit", file=src,
                field=f"{label}: spikes", found=f"{len(trial.spikes)} spike trains",
                expected=f"{len(ids)} (one per unit)",
            )
        seg = neo.Segment(name=label, index=index)
        ann = {"trial_id": trial_id}
        for key, value in trial.annotations.items():
            ann[key] = _scalar(value, source=src, field=f"{label}: {key}")
        seg.annotate(**ann)
        t0_q, t1_q = t0 * pq.s, t1 * pq.s  # built once per trial: quantities are slow
        for k, times in enumerate(trial.spikes):
            arr = clean_spike_times(times, source=src, field=f"{label}: unit {ids[k]}")
            if arr.size and (arr[0] < t0 or arr[-1] > t1):
                outside = int(np.sum((arr < t0) | (arr > t1)))
                raise DataError(
                    "spikes fall outside their trial", file=src,
                    field=f"{label}: unit {ids[k]}",
                    found=f"{outside} spike(s) outside [{t0:g}, {t1:g}] s "
                    f"(first {arr[0]:g} s, last {arr[-1]:g} s)",
                    expected="spike times within the trial, in seconds",
                    hint="Check that spike times are in seconds and on the same clock as "
                    "the trial start and stop times",
                )
            st = neo.SpikeTrain(arr, units=pq.s, t_start=t0_q, t_stop=t1_q, name=ids[k], copy=None)
            st.annotate(unit_id=ids[k], **unit_ann[k])
            seg.spiketrains.append(st)
        for ev_name, ev_time in trial.events.items():
            if ev_time is None:
                continue
            ev_time = float(ev_time)
            if not math.isfinite(ev_time):
                continue
            if not t0 <= ev_time <= t1:
                raise DataError(
                    "an event falls outside its trial", file=src, field=f"{label}: {ev_name}",
                    found=f"{ev_time:g} s, trial [{t0:g}, {t1:g}] s",
                    expected="event times within the trial, on the trial's clock, in seconds",
                )
            seg.events.append(
                neo.Event(np.array([ev_time]) * pq.s, labels=np.array([ev_name]), name=ev_name)
            )
        block.segments.append(seg)
    block.check_relationships()
    return block


def check_block(block: Any, *, source: str | None = None) -> neo.Block:
    """Check that ``block`` follows the convention; return it, or raise :class:`DataError`.

    Spike trains are converted to seconds in place when they carry other time units.
    """
    src = source or (block.annotations.get("source") if isinstance(block, neo.Block) else None)
    if not isinstance(block, neo.Block):
        raise DataError(
            "expected a neo.Block", file=src, field="block", found=type(block).__name__,
            expected="neo.Block with one Segment per trial",
        )
    if len(block.segments) == 0:
        raise DataError(
            "the Block has no segments (trials)", file=src, field="block.segments",
            found="0 segments", expected="one Segment per trial",
        )
    first = block.segments[0]
    ids = [_unit_id(st, k) for k, st in enumerate(first.spiketrains)]
    if not ids:
        raise DataError(
            "the first trial has no spike trains", file=src,
            field="segments[0].spiketrains", found="0 spike trains",
            expected="one SpikeTrain per unit",
        )
    if len(set(ids)) != len(ids):
        raise DataError(
            "unit ids are not unique within a trial", file=src, field="unit_id",
            found=ids[:10], expected="unique unit ids",
        )
    trial_ids = set()
    for index, seg in enumerate(block.segments):
        label = f"segment {index} ({seg.name})" if seg.name else f"segment {index}"
        seg.annotations.setdefault("trial_id", index)
        if seg.annotations["trial_id"] in trial_ids:
            raise DataError(
                "trial ids are not unique", file=src, field=f"{label}: trial_id",
                found=seg.annotations["trial_id"], expected="one id per trial",
            )
        trial_ids.add(seg.annotations["trial_id"])
        seg_ids = [_unit_id(st, k) for k, st in enumerate(seg.spiketrains)]
        if seg_ids != ids:
            raise DataError(
                "trials do not hold the same units in the same order", file=src,
                field=f"{label}: spiketrains", found=seg_ids[:10], expected=ids[:10],
            )
        t0 = t1 = None
        for k, st in enumerate(seg.spiketrains):
            st.annotations.setdefault("unit_id", ids[k])
            if st.dimensionality.string != "s":
                try:
                    times = st.rescale(pq.s)
                except ValueError:
                    raise DataError(
                        "spike times are not in units of time", file=src,
                        field=f"{label}: unit {ids[k]}", found=str(st.units.dimensionality),
                        expected="seconds (or another time unit)",
                    ) from None
                seg.spiketrains[k] = _replace_train(st, times)
                st = seg.spiketrains[k]
            arr = clean_spike_times(st.magnitude, source=src, field=f"{label}: unit {ids[k]}")
            s0, s1 = _seconds(st.t_start), _seconds(st.t_stop)
            if not s1 > s0:
                raise DataError(
                    "trial has zero or negative length", file=src, field=f"{label}: t_start/t_stop",
                    found=f"start {s0} s, stop {s1} s", expected="t_stop > t_start",
                )
            if arr.size and (arr[0] < s0 or arr[-1] > s1):
                raise DataError(
                    "spikes fall outside their trial", file=src, field=f"{label}: unit {ids[k]}",
                    found=f"spikes from {arr[0]:g} to {arr[-1]:g} s",
                    expected=f"within [{s0:g}, {s1:g}] s",
                )
            t0 = s0 if t0 is None else min(t0, s0)
            t1 = s1 if t1 is None else max(t1, s1)
        for ev in seg.events:
            if ev.name is None:
                raise DataError(
                    "an event has no name", file=src, field=f"{label}: events",
                    found="Event.name = None", expected="a name such as 'go_cue_time'",
                )
            try:
                ev.rescale(pq.s)
            except ValueError:
                raise DataError(
                    "event times are not in units of time", file=src,
                    field=f"{label}: event {ev.name}", found=str(ev.units.dimensionality),
                    expected="seconds",
                ) from None
    return block


_SECONDS_PER_UNIT: dict[str, float] = {"s": 1.0}


def _seconds(quantity: pq.Quantity) -> float:
    """A scalar time quantity in seconds (unit factors cached: quantities is slow)."""
    unit = quantity.dimensionality.string
    if unit not in _SECONDS_PER_UNIT:
        _SECONDS_PER_UNIT[unit] = float(pq.Quantity(1.0, unit).rescale(pq.s).magnitude)
    return float(quantity.magnitude) * _SECONDS_PER_UNIT[unit]


def _replace_train(st: neo.SpikeTrain, times) -> neo.SpikeTrain:
    new = neo.SpikeTrain(
        times.magnitude * pq.s, t_start=st.t_start.rescale(pq.s), t_stop=st.t_stop.rescale(pq.s),
        name=st.name,
    )
    new.annotations.update(st.annotations)
    new.segment = st.segment
    return new


def _unit_id(st: neo.SpikeTrain, index: int) -> str:
    uid = st.annotations.get("unit_id", st.name if st.name is not None else index)
    return str(uid)


def unit_ids(block: neo.Block) -> list[str]:
    """Unit ids in order (from the first trial)."""
    return [_unit_id(st, k) for k, st in enumerate(block.segments[0].spiketrains)]


def unit_annotations(block: neo.Block) -> list[dict[str, Any]]:
    """Unit attributes (cell type, location, ...) in unit order, without ``unit_id``."""
    return [
        {k: v for k, v in st.annotations.items() if k != "unit_id"}
        for st in block.segments[0].spiketrains
    ]


def trial_annotations(block: neo.Block) -> dict[str, list[Any]]:
    """Every trial annotation key, with its value per trial (None where a trial lacks it)."""
    keys: list[str] = []
    for seg in block.segments:
        for k in seg.annotations:
            if k not in keys:
                keys.append(k)
    return {k: [seg.annotations.get(k) for seg in block.segments] for k in keys}


def event_names(block: neo.Block) -> list[str]:
    """The names of all trial events present in at least one trial, in first-seen order."""
    names: list[str] = []
    for seg in block.segments:
        for ev in seg.events:
            if ev.name not in names:
                names.append(ev.name)
    return names


def event_time(segment: neo.Segment, name: str) -> float | None:
    """The (first) time in seconds of the event ``name`` in one trial, or None if absent."""
    for ev in segment.events:
        if ev.name == name and len(ev) > 0:
            return float(ev.times.rescale(pq.s).magnitude[0])
    return None


def trial_window(segment: neo.Segment) -> tuple[float, float]:
    """A trial's (start, stop) in seconds: the window of its spike trains."""
    st = segment.spiketrains[0]
    return _seconds(st.t_start), _seconds(st.t_stop)
