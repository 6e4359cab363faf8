"""Targets: a recording (neo.Block) -> trial-averaged rates as an ``xarray.Dataset``.

The targets Dataset (the schema every producer follows)
------------------------------------------------------
dims ``condition``, ``unit``, ``time`` (and ``split``, ``trial`` when made from trials)

* ``rate(condition, unit, time)``: trial-averaged rate of the training trials, Hz.
* ``rate_heldout(condition, unit, time)``: same from the held-out trials (only with trials).
* ``n_trials(condition, split)``: trials per condition in ``split = ["train", "heldout"]``.
* ``trial_rate(trial, unit, time)``: single-trial rates, float32, Hz (optional); coords
  ``trial_condition(trial)``, ``trial_split(trial)``, ``trial_id(trial)``.
* coords: ``condition`` (str labels), ``unit`` (str ids), ``time`` (s, relative to the
  alignment event, bin centres), ``mean_rate(unit)`` (Hz, over the selected trials and
  window), plus any unit attribute such as ``cell_type(unit)``.
* attrs (NetCDF-safe: str / int / float; lists are JSON strings): ``source``,
  ``align_event``, ``window_start``, ``window_stop``, ``bin_size``, ``kernel``,
  ``kernel_width``, ``condition_key``, ``has_trials`` (0/1), ``cortexfit_version``, and
  for trial targets ``selection``, ``heldout_fraction``, ``seed``, ``min_rate``,
  ``dropped_units``.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from . import __version__
from .exceptions import TargetError

__all__ = ["targets_from_rates"]


def _time_coord(time: np.ndarray, align_event: str) -> xr.Variable:
    return xr.Variable(
        "time", np.asarray(time, dtype=np.float64),
        attrs={"units": "s", "long_name": f"time relative to {align_event}"},
    )


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
