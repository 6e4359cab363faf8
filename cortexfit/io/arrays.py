"""Plain arrays -> the trial convention: the library API for a user's own dataset.

Three shapes of data are accepted:

* :func:`from_spike_times`: spike times per trial per unit, with condition labels and
  event times per trial;
* :func:`from_spike_matrix`: binary (or count) spike matrices ``(unit, time bin)`` per
  trial;
* rates only (trial-averaged PSTHs, no trials) are not a recording: they go straight to a
  targets Dataset with :func:`cortexfit.targets.targets_from_rates` (there are no trials
  to hold out).

Every trial has its own clock: ``t_start`` (default 0) to ``t_stop``; spikes and events of
a trial are on that clock, in seconds unless ``time_units`` says otherwise.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import neo
import numpy as np
import quantities as pq

from ..exceptions import DataError
from .convention import Trial, clean_spike_times, make_block

__all__ = ["from_spike_times", "from_spike_matrix"]

_SOURCE = "arrays"


def _time_scale(time_units: Any) -> float:
    """Seconds per given time unit (``"s"``, ``"ms"``, a quantities unit)."""
    try:
        unit = pq.Quantity(1.0, time_units) if isinstance(time_units, str) else time_units
        return float(pq.Quantity(unit).rescale(pq.s).magnitude)
    except (LookupError, ValueError, TypeError, AttributeError):
        raise DataError(
            "time_units is not a unit of time", field="time_units", found=repr(time_units),
            expected="'s', 'ms' or another time unit",
        ) from None


def _as_seconds(values: Any, scale: float, *, field: str) -> Any:
    """Convert a number / array (or quantities array) to seconds."""
    if isinstance(values, pq.Quantity):
        try:
            return values.rescale(pq.s).magnitude
        except ValueError:
            raise DataError(
                "times are not in units of time", field=field,
                found=str(values.units.dimensionality), expected="a time unit such as s or ms",
            ) from None
    if scale == 1.0:
        return values
    return np.asarray(values, dtype=np.float64) * scale


def _is_sequence(value: Any) -> bool:
    """True for lists, tuples, arrays (not strings, not 0-d arrays)."""
    if isinstance(value, (str, bytes)):
        return False
    if isinstance(value, np.ndarray):
        return value.ndim > 0
    return hasattr(value, "__len__") and hasattr(value, "__getitem__")


def _per_trial(value: Any, n_trials: int, *, field: str, default: Any = None) -> list[Any]:
    if value is None:
        return [default] * n_trials
    if not _is_sequence(value):
        return [value] * n_trials
    seq = list(value)
    if len(seq) != n_trials:
        raise DataError(
            "one value per trial is needed", field=field, found=f"{len(seq)} values",
            expected=f"{n_trials} (the number of trials)",
        )
    return seq


def _events_per_trial(events: Mapping[str, Any] | None, n_trials: int, scale: float) -> list[dict]:
    out: list[dict[str, float]] = [{} for _ in range(n_trials)]
    for name, times in (events or {}).items():
        times = _as_seconds(times, scale, field=f"events[{name!r}]")
        seq = _per_trial(times, n_trials, field=f"events[{name!r}]")
        for i, value in enumerate(seq):
            if value is None:
                continue
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise DataError(
                    "an event time is not a number", field=f"events[{name!r}] trial {i}",
                    found=repr(value), expected="a time in the given time_units, or NaN",
                ) from None
            out[i][str(name)] = value
    return out


def _annotations_per_trial(
    conditions: Any, trial_annotations: Mapping[str, Any] | None, n_trials: int,
    trial_ids: Sequence[Any] | None,
) -> list[dict[str, Any]]:
    ann: list[dict[str, Any]] = [{} for _ in range(n_trials)]
    ids = _per_trial(trial_ids, n_trials, field="trial_ids") if trial_ids is not None \
        else list(range(n_trials))
    for i in range(n_trials):
        ann[i]["trial_id"] = ids[i] if not isinstance(ids[i], np.generic) else ids[i].item()
    if conditions is not None:
        for i, label in enumerate(_per_trial(conditions, n_trials, field="conditions")):
            ann[i]["condition"] = label if isinstance(label, (int, float, bool)) else str(label)
    for key, values in (trial_annotations or {}).items():
        for i, value in enumerate(_per_trial(values, n_trials, field=f"trial_annotations[{key!r}]")):
            ann[i][str(key)] = value
    return ann


def from_spike_times(
    spike_times: Sequence[Sequence[Any]],
    *,
    t_stop: Any,
    t_start: Any = 0.0,
    conditions: Sequence[Any] | None = None,
    events: Mapping[str, Any] | None = None,
    unit_ids: Sequence[Any] | None = None,
    unit_annotations: Sequence[Mapping[str, Any]] | None = None,
    trial_annotations: Mapping[str, Sequence[Any]] | None = None,
    trial_ids: Sequence[Any] | None = None,
    time_units: Any = "s",
    unsorted: str = "error",
    source: str = _SOURCE,
) -> neo.Block:
    """Spike times per trial per unit -> Block.

    Parameters
    ----------
    spike_times
        ``spike_times[trial][unit]``: the spike times of one unit in one trial (any
        1-D array-like, possibly empty), on the trial's clock.
    t_start, t_stop
        Trial start and stop: one number for all trials or one per trial.
    conditions
        One condition label per trial (stored as the ``condition`` annotation).
    events
        ``{name: times}`` with one time per trial (NaN where a trial lacks the event),
        e.g. ``{"go_cue": [1.2, 1.3, ...]}``.
    unit_ids, unit_annotations
        Unit labels (default ``"0"``, ``"1"``...) and per-unit attributes
        (e.g. ``[{"cell_type": "pyramidal"}, ...]``).
    trial_annotations
        ``{key: one value per trial}``, e.g. ``{"outcome": [...]}``.
    time_units
        Unit of all times given as plain numbers (``"s"`` or ``"ms"``...). Quantities
        arrays are converted from their own units.
    unsorted
        ``"error"`` (default), ``"warn"`` or ``"sort"``: what to do with out-of-order spikes.

    Raises :class:`DataError` when trials have different numbers of units, spikes fall
    outside their trial, times are NaN, unsorted, or not times.
    """
    scale = _time_scale(time_units)
    if isinstance(spike_times, np.ndarray) and spike_times.dtype != object:
        raise DataError(
            "spike_times must be nested per trial and unit", field="spike_times",
            found=f"a numeric array of shape {spike_times.shape}",
            expected="spike_times[trial][unit] = 1-D array of times (use from_spike_matrix "
            "for binary matrices)",
        )
    try:
        trials_in = list(spike_times)
    except TypeError:
        raise DataError(
            "spike_times is not a sequence of trials", field="spike_times",
            found=type(spike_times).__name__, expected="spike_times[trial][unit]",
        ) from None
    n_trials = len(trials_in)
    if n_trials == 0:
        raise DataError("no trials were given", field="spike_times", found="0 trials",
                        expected="at least one trial")
    per_trial_units = []
    for i, trial in enumerate(trials_in):
        if not _is_sequence(trial):
            raise DataError(
                "a trial is not a list of spike trains", field=f"spike_times[{i}]",
                found=repr(trial)[:80], expected="one array of spike times per unit",
            )
        per_trial_units.append(list(trial))
    n_units = len(per_trial_units[0])
    for i, trial in enumerate(per_trial_units):
        if len(trial) != n_units:
            raise DataError(
                "trials have different numbers of units", field=f"spike_times[{i}]",
                found=f"{len(trial)} units", expected=f"{n_units} (as in trial 0)",
            )
    ids = list(unit_ids) if unit_ids is not None else [str(k) for k in range(n_units)]
    if len(ids) != n_units:
        raise DataError("unit_ids do not match the units", field="unit_ids",
                        found=f"{len(ids)} ids", expected=f"{n_units}")
    starts = _per_trial(_as_seconds(t_start, scale, field="t_start"), n_trials, field="t_start")
    stops = _per_trial(_as_seconds(t_stop, scale, field="t_stop"), n_trials, field="t_stop")
    ann = _annotations_per_trial(conditions, trial_annotations, n_trials, trial_ids)
    evs = _events_per_trial(events, n_trials, scale)
    trials = []
    for i, units in enumerate(per_trial_units):
        spikes = []
        for k, times in enumerate(units):
            times = _as_seconds(times, scale, field=f"spike_times[{i}][{k}]")
            spikes.append(clean_spike_times(
                times, source=source, field=f"spike_times[{i}][{k}] (unit {ids[k]})",
                unsorted=unsorted))
        try:
            t0, t1 = float(starts[i]), float(stops[i])
        except (TypeError, ValueError):
            raise DataError(
                "trial start/stop is not a number", field=f"t_start/t_stop trial {i}",
                found=(starts[i], stops[i]), expected="numbers in time_units",
            ) from None
        trials.append(Trial(t0, t1, spikes, annotations=ann[i], events=evs[i]))
    return make_block(trials, ids, unit_annotations=unit_annotations, source=source,
                      block_annotations={"loader": "from_spike_times"})


def from_spike_matrix(
    matrices: Any,
    *,
    bin_size: float,
    t_start: Any = 0.0,
    conditions: Sequence[Any] | None = None,
    events: Mapping[str, Any] | None = None,
    unit_ids: Sequence[Any] | None = None,
    unit_annotations: Sequence[Mapping[str, Any]] | None = None,
    trial_annotations: Mapping[str, Sequence[Any]] | None = None,
    trial_ids: Sequence[Any] | None = None,
    time_units: Any = "s",
    source: str = _SOURCE,
) -> neo.Block:
    """Binary (or count) spike matrices -> Block.

    ``matrices`` is a 3-D array ``(trial, unit, bin)`` or a list of 2-D ``(unit, bin)``
    arrays (trials may differ in length). A count c in bin b gives c spikes at the bin's
    centre, ``t_start + (b + 1/2) * bin_size``. Each trial lasts ``n_bins * bin_size``.
    ``bin_size``, ``t_start`` and event times are in ``time_units``.
    """
    scale = _time_scale(time_units)
    try:
        bin_s = float(bin_size) * scale
    except (TypeError, ValueError):
        raise DataError("bin_size is not a number", field="bin_size", found=repr(bin_size),
                        expected="a positive number in time_units") from None
    if not np.isfinite(bin_s) or bin_s <= 0:
        raise DataError("bin_size must be positive", field="bin_size", found=bin_size,
                        expected="> 0")
    if isinstance(matrices, np.ndarray) and matrices.dtype != object:
        if matrices.ndim == 2:
            matrices = matrices[None]
        if matrices.ndim != 3:
            raise DataError("spike matrices have the wrong shape", field="matrices",
                            found=f"shape {matrices.shape}", expected="(trial, unit, bin)")
        mats = list(matrices)
    else:
        mats = list(matrices)
    n_trials = len(mats)
    if n_trials == 0:
        raise DataError("no trials were given", field="matrices", found="0 trials",
                        expected="at least one (unit, bin) matrix")
    starts = _per_trial(_as_seconds(t_start, scale, field="t_start"), n_trials, field="t_start")
    ann = _annotations_per_trial(conditions, trial_annotations, n_trials, trial_ids)
    evs = _events_per_trial(events, n_trials, scale)
    n_units = None
    trials = []
    for i, mat in enumerate(mats):
        try:
            arr = np.asarray(mat)
            if arr.dtype == object or arr.dtype.kind not in "biuf":
                raise TypeError(arr.dtype)
        except (TypeError, ValueError):
            raise DataError("a spike matrix is not numeric", field=f"matrices[{i}]",
                            found=type(mat).__name__, expected="a (unit, bin) array of counts") \
                from None
        if arr.ndim != 2:
            raise DataError("a spike matrix is not 2-D", field=f"matrices[{i}]",
                            found=f"shape {arr.shape}", expected="(unit, bin)")
        if n_units is None:
            n_units = arr.shape[0]
        if arr.shape[0] != n_units:
            raise DataError("trials have different numbers of units", field=f"matrices[{i}]",
                            found=f"{arr.shape[0]} units", expected=f"{n_units} (as in trial 0)")
        if arr.shape[1] == 0:
            raise DataError("a trial has zero length", field=f"matrices[{i}]",
                            found="0 bins", expected="at least one bin")
        if arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                raise DataError("spike counts must be whole numbers", field=f"matrices[{i}]",
                                found="non-integer or non-finite values",
                                expected="0/1 (or whole spike counts) per bin")
        counts = arr.astype(np.int64)
        if np.any(counts < 0):
            raise DataError("spike counts are negative", field=f"matrices[{i}]",
                            found=f"minimum {counts.min()}", expected="counts >= 0")
        t0 = float(starts[i])
        spikes = []
        for k in range(n_units):
            bins = np.repeat(np.arange(counts.shape[1]), counts[k])
            spikes.append(t0 + (bins + 0.5) * bin_s)
        trials.append(Trial(t0, t0 + counts.shape[1] * bin_s, spikes,
                            annotations=ann[i], events=evs[i]))
    ids = list(unit_ids) if unit_ids is not None else [str(k) for k in range(n_units)]
    if len(ids) != n_units:
        raise DataError("unit_ids do not match the units", field="unit_ids",
                        found=f"{len(ids)} ids", expected=f"{n_units}")
    return make_block(trials, ids, unit_annotations=unit_annotations, source=source,
                      block_annotations={"loader": "from_spike_matrix", "bin_size": bin_s})
