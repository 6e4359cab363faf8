"""The targets Dataset: its schema, the coordinates and attrs every producer writes, and
:func:`targets_from_rates` for rates that come without trials.

The targets Dataset (the schema every producer follows)
------------------------------------------------------
dims ``condition``, ``unit``, ``time`` (and ``split``, ``trial`` when made from trials)

* ``rate(condition, unit, time)``: trial-averaged rate of the training trials, Hz.
* ``rate_heldout(condition, unit, time)``: same from the held-out (test) trials (only with
  trials).
* ``rate_validation(condition, unit, time)``: same from the validation trials (only when
  some trials are set aside for validation); they are in neither ``rate`` nor
  ``rate_heldout``.
* ``n_trials(condition, split)``: trials per condition in ``split = ["train", "heldout"]``,
  or ``["train", "validation", "heldout"]`` with validation trials.
* ``trial_rate(trial, unit, time)``: single-trial rates, float32, Hz (optional); coords
  ``trial_condition(trial)``, ``trial_split(trial)`` (``"train"``, ``"validation"`` or
  ``"heldout"``), ``trial_id(trial)``.
* coords: ``condition`` (str labels), ``unit`` (str ids), ``time`` (s, relative to the
  alignment event, bin centres), ``mean_rate(unit)`` (Hz, over the selected trials and
  the scoring window), plus any unit attribute such as ``cell_type(unit)``.
* attrs (NetCDF-safe: str / int / float; lists are JSON strings): ``source``,
  ``align_event``, ``window_start``, ``window_stop`` (the edges of the time axis: the
  trained window), ``bin_size``, ``kernel``, ``kernel_width``, ``condition_key``,
  ``has_trials`` (0/1), ``cortexfit_version``, and for trial targets ``selection``,
  ``heldout_fraction``, ``validation_fraction``, ``seed``, ``min_rate``,
  ``dropped_units``, ``score_start``, ``score_stop``.

The scoring window
------------------
``attrs["score_start"]`` / ``["score_stop"]`` (s) is the window that is **scored**: the
window asked for. :func:`~cortexfit.targets.make_targets` with a ``margin`` extends the
time axis (the trained window, ``window_start`` / ``window_stop``) beyond it on both sides,
so that a model, whose trial starts at the trained window, has its spikes within the
kernel's reach of every scored bin, as the data have theirs. Every score (held-out r,
noise ceiling, R², validation score, the report's comparisons) uses the bins whose centres
lie in ``[score_start, score_stop]`` only (:func:`score_window`,
:func:`crop_to_score_window`). Targets without these attrs (older files,
:func:`targets_from_rates`) are scored on their whole time axis.

:func:`make_targets` makes trial targets from a Block (see its docstring for the extra
attrs it records); :func:`targets_from_rates` wraps rates that come without trials.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from .. import __version__
from ..exceptions import TargetError

_RESERVED = {"condition", "unit", "time", "split", "trial", "mean_rate", "trial_id",
             "trial_condition", "trial_split", "rate", "rate_heldout", "rate_validation",
             "n_trials", "trial_rate", "neuron", "role", "recorded_unit", "target_rate"}


def score_window(targets: xr.Dataset) -> tuple[float, float]:
    """The scored window ``(start, stop)`` in s of a targets Dataset (or of any Dataset
    with their attrs): ``attrs["score_start"]``, ``["score_stop"]`` when present, else the
    whole time axis (``window_start`` / ``window_stop``, else the bins' edges)."""
    attrs = targets.attrs
    if "score_start" in attrs and "score_stop" in attrs:
        return float(attrs["score_start"]), float(attrs["score_stop"])
    if "window_start" in attrs and "window_stop" in attrs:
        return float(attrs["window_start"]), float(attrs["window_stop"])
    time = np.asarray(targets["time"].values, dtype=np.float64)
    half = float(np.median(np.diff(time))) / 2 if time.size > 1 else 0.0
    return float(time[0] - half), float(time[-1] + half)


def scored_bins(time: Any, window: tuple[float, float]) -> np.ndarray:
    """Which bins of ``time`` (bin centres, s) are scored: those whose centre lies inside
    ``window`` (a bin is either wholly inside the scored window or wholly outside it)."""
    t = np.asarray(time, dtype=np.float64)
    return (t > window[0]) & (t < window[1])


def crop_to_score_window(obj: Any, targets: xr.Dataset | None = None) -> Any:
    """``obj`` (a Dataset or DataArray over ``time``) cut to the scored window of
    ``targets`` (default: ``obj`` itself). A cropped Dataset's ``window_start`` /
    ``window_stop`` become the scored window; unchanged when every bin is scored."""
    window = score_window(obj if targets is None else targets)
    keep = scored_bins(obj["time"].values, window)
    if keep.all():
        return obj
    if not keep.any():
        raise TargetError("no bin of the time axis lies in the scoring window",
                          field="time", found=f"{obj.sizes['time']} bins from "
                          f"{float(obj['time'][0]):g} to {float(obj['time'][-1]):g} s",
                          expected=f"bin centres inside [{window[0]:g}, {window[1]:g}] s")
    out = obj.isel(time=keep)
    if isinstance(out, xr.Dataset) and "window_start" in out.attrs:
        out.attrs = {**out.attrs, "window_start": window[0], "window_stop": window[1]}
    return out


def _time_coord(time: np.ndarray, align_event: str) -> xr.Variable:
    return xr.Variable(
        "time", np.asarray(time, dtype=np.float64),
        attrs={"units": "s", "long_name": f"time relative to {align_event}"},
    )


def _add_unit_coords(coords: dict[str, Any], unit_ann: list[dict[str, Any]]) -> None:
    """Add to ``coords`` the unit attributes that every unit has as a scalar (a name that
    clashes with the schema gets a ``unit_`` prefix; keys that are not NetCDF names are
    skipped)."""
    for key in unit_ann[0] if unit_ann else []:
        if not isinstance(key, str) or not key or "/" in key:  # not a NetCDF name
            continue
        values = [a.get(key) for a in unit_ann]
        if not all(isinstance(v, (str, int, float, bool, np.generic)) for v in values):
            continue  # missing for some unit, or not a scalar
        values = [v.item() if isinstance(v, np.generic) else v for v in values]
        if len({type(v) for v in values}) > 1 or isinstance(values[0], str):
            values = np.array([str(v) for v in values], dtype=object)
        name = f"unit_{key}" if key in _RESERVED else str(key)
        if name in coords:
            continue
        coords[name] = ("unit", values)


def _trial_targets(
    rate: np.ndarray,
    rate_held: np.ndarray,
    *,
    counts: np.ndarray,
    splits: Sequence[str] = ("train", "heldout"),
    rate_validation: np.ndarray | None = None,
    conditions: list[str],
    units: list[str],
    time: np.ndarray,
    align: str,
    mean_rate: np.ndarray,
    unit_ann: list[dict[str, Any]],
    heldout_fraction: float,
    trial_rates: np.ndarray,
    trial_ids: list[Any] | None,
    trial_conditions: list[str],
    trial_split: Sequence[str],
    attrs: dict[str, Any],
) -> xr.Dataset:
    """The targets Dataset of trials: ``rate`` / ``rate_heldout`` / ``rate_validation``
    (condition, unit, time), ``n_trials`` over ``splits``, and with ``trial_ids`` the
    single-trial rates and their coords (``trial_split``: each trial's split label)."""
    coords: dict[str, Any] = {
        "condition": ("condition", np.array(conditions, dtype=object)),
        "unit": ("unit", np.array(units, dtype=object)),
        "time": _time_coord(time, align),
        "split": ("split", np.array(list(splits), dtype=object)),
        "mean_rate": ("unit", mean_rate,
                      {"units": "Hz", "long_name": "mean rate over selected trials and window"}),
    }
    _add_unit_coords(coords, unit_ann)

    data_vars: dict[str, Any] = {
        "rate": (("condition", "unit", "time"), rate,
                 {"units": "Hz", "long_name": "trial-averaged rate (training trials)"}),
        "n_trials": (("condition", "split"), counts,
                     {"long_name": "trials per condition and split"}),
    }
    if heldout_fraction > 0:
        data_vars["rate_heldout"] = (
            ("condition", "unit", "time"), rate_held,
            {"units": "Hz", "long_name": "trial-averaged rate (held-out trials)"},
        )
    if rate_validation is not None:
        data_vars["rate_validation"] = (
            ("condition", "unit", "time"), rate_validation,
            {"units": "Hz", "long_name": "trial-averaged rate (validation trials)"},
        )
    if trial_ids is not None:
        tids = trial_ids
        if all(isinstance(t, (int, np.integer)) and not isinstance(t, (bool, np.bool_))
               for t in tids):
            tid_arr = np.array(tids, dtype=np.int64)
        else:
            tid_arr = np.array([str(t) for t in tids], dtype=object)
        data_vars["trial_rate"] = (
            ("trial", "unit", "time"), trial_rates.astype(np.float32),
            {"units": "Hz", "long_name": "single-trial rate"},
        )
        coords["trial_id"] = ("trial", tid_arr)
        coords["trial_condition"] = ("trial", np.array(trial_conditions, dtype=object))
        coords["trial_split"] = ("trial", np.array([str(s) for s in trial_split],
                                                   dtype=object))
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def targets_from_rates(
    rates: Any,
    time: Sequence[float],
    *,
    unit_ids: Sequence[Any] | None = None,
    conditions: Sequence[Any] | None = None,
    align_event: str = "time zero",
    bin_size: float | None = None,
    kernel: str = "as given",
    kernel_width: float = 0.0,
    source: str = "in-memory arrays",
    unit_coords: dict[str, Sequence[Any]] | None = None,
) -> xr.Dataset:
    """Targets from trial-averaged rates with no single trials (e.g. published PSTHs).

    Parameters
    ----------
    rates
        Array ``(condition, unit, time)`` in Hz (a 2-D ``(unit, time)`` array is one
        condition).
    time
        Bin centres in seconds relative to ``align_event``, strictly increasing.
    unit_ids, conditions
        Labels; default ``"0", "1", ...`` and ``"c0", "c1", ...``.

    No held-out trials exist for such targets: ``rate_heldout`` and ``n_trials`` are
    absent and ``attrs["has_trials"] == 0``.
    """
    arr = np.asarray(rates, dtype=np.float64) if not isinstance(rates, np.ndarray) else rates
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise TargetError(
            "rates have the wrong number of dimensions", field="rates",
            found=f"shape {np.shape(rates)}", expected="(condition, unit, time) or (unit, time)",
        )
    arr = arr.astype(np.float64, copy=False)
    n_cond, n_units, n_time = arr.shape
    t = np.asarray(time, dtype=np.float64)
    if t.ndim != 1 or t.size != n_time:
        raise TargetError(
            "time does not match the rates", field="time", found=f"{t.size} time points",
            expected=f"{n_time} (the last axis of rates)",
        )
    if n_time < 2 or not np.all(np.isfinite(t)) or not np.all(np.diff(t) > 0):
        raise TargetError(
            "time must be finite and strictly increasing, with at least 2 points",
            field="time", found=t[:5], expected="increasing bin centres in seconds",
        )
    if not np.all(np.isfinite(arr)):
        raise TargetError(
            "rates contain NaN or infinite values", field="rates",
            found=f"{int(np.sum(~np.isfinite(arr)))} non-finite values", expected="finite rates in Hz",
        )
    if np.any(arr < 0):
        raise TargetError(
            "rates are negative", field="rates", found=f"minimum {arr.min():g}",
            expected="rates >= 0 in Hz",
        )
    units = [str(u) for u in (unit_ids if unit_ids is not None else range(n_units))]
    conds = [str(c) for c in (conditions if conditions is not None else [f"c{i}" for i in range(n_cond)])]
    if len(units) != n_units or len(set(units)) != n_units:
        raise TargetError(
            "unit_ids do not match the rates", field="unit_ids", found=f"{len(units)} ids "
            f"({len(set(units))} unique)", expected=f"{n_units} unique ids",
        )
    if len(conds) != n_cond or len(set(conds)) != n_cond:
        raise TargetError(
            "conditions do not match the rates", field="conditions", found=conds[:10],
            expected=f"{n_cond} unique labels",
        )
    step = float(np.median(np.diff(t))) if bin_size is None else float(bin_size)
    coords: dict[str, Any] = {
        "condition": ("condition", conds),
        "unit": ("unit", units),
        "time": _time_coord(t, align_event),
        "mean_rate": ("unit", arr.mean(axis=(0, 2)), {"units": "Hz", "long_name": "mean rate"}),
    }
    for name, values in (unit_coords or {}).items():
        coords[name] = ("unit", list(values))
    ds = xr.Dataset(
        {"rate": (("condition", "unit", "time"), arr,
                  {"units": "Hz", "long_name": "trial-averaged rate"})},
        coords=coords,
        attrs={
            "source": str(source),
            "align_event": align_event,
            "window_start": float(t[0] - step / 2),
            "window_stop": float(t[-1] + step / 2),
            "bin_size": step,
            "kernel": kernel,
            "kernel_width": float(kernel_width),
            "condition_key": "condition",
            "has_trials": 0,
            "dropped_units": json.dumps([]),
            "cortexfit_version": __version__,
        },
    )
    return ds
