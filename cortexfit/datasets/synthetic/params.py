"""The checks of :func:`~cortexfit.datasets.synthetic.make_synthetic_recording`'s settings:
out-of-range values raise :class:`~cortexfit.exceptions.ConfigError`."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...exceptions import ConfigError
from .model import _RAMP_START

# ---------------------------------------------------------------------------------------
# parameter checks


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(
            f"{name} must be an integer >= {minimum}", field=name, found=value,
            expected=f"an integer >= {minimum}",
        )
    return int(value)


def _check_float(name: str, value: Any, *, low: float, high: float = math.inf,
                 low_open: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    ok = math.isfinite(v) and (v > low if low_open else v >= low) and v <= high
    if isinstance(value, bool) or not ok:
        bound = f"{'>' if low_open else '>='} {low:g}"
        if high < math.inf:
            bound += f" and <= {high:g}"
        raise ConfigError(f"{name} is out of range", field=name, found=value,
                          expected=f"a number {bound}")
    return v


def _check_params(
    seed, n_units, n_trials_per_condition, conditions, trial_duration, stimulus_time, delay,
    delay_jitter, inter_trial_gap, gain_sd, fraction_fs, fraction_incorrect, dt,
) -> dict[str, Any]:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError("seed must be a non-negative integer", field="seed", found=seed,
                          expected="an integer >= 0")
    p: dict[str, Any] = {"seed": int(seed)}
    p["n_units"] = _check_int("n_units", n_units, 1)
    p["n_trials_per_condition"] = _check_int("n_trials_per_condition", n_trials_per_condition, 1)
    if isinstance(conditions, str) or not isinstance(conditions, Sequence) or len(conditions) == 0:
        raise ConfigError("conditions must be a non-empty sequence of labels", field="conditions",
                          found=conditions, expected='labels such as ("left", "right")')
    conds = [str(c) for c in conditions]
    if len(set(conds)) != len(conds) or any(not c for c in conds):
        raise ConfigError("condition labels must be unique and non-empty", field="conditions",
                          found=conds, expected="unique, non-empty labels")
    p["conditions"] = conds
    p["dt"] = _check_float("dt", dt, low=0.0, high=0.01, low_open=True)
    p["trial_duration"] = _check_float("trial_duration", trial_duration, low=0.0, low_open=True)
    n_bins = int(round(p["trial_duration"] / p["dt"]))
    mismatch = abs(n_bins * p["dt"] - p["trial_duration"])
    if n_bins < 2 or mismatch > 1e-9 * max(1.0, p["trial_duration"]):
        raise ConfigError(
            "trial_duration must be a whole number (>= 2) of simulation steps dt",
            field="trial_duration", found=f"{p['trial_duration']:g} s with dt = {p['dt']:g} s",
            expected="trial_duration = n * dt",
        )
    p["n_bins"] = n_bins
    p["stimulus_time"] = _check_float("stimulus_time", stimulus_time, low=0.0)
    p["delay"] = _check_float("delay", delay, low=0.0, low_open=True)
    p["delay_jitter"] = _check_float("delay_jitter", delay_jitter, low=0.0)
    if p["delay"] - p["delay_jitter"] <= _RAMP_START:
        raise ConfigError(
            "the shortest delay must be longer than the ramp onset", field="delay/delay_jitter",
            found=f"delay {p['delay']:g} s - jitter {p['delay_jitter']:g} s",
            expected=f"delay - delay_jitter > {_RAMP_START:g} s",
        )
    latest_go = p["stimulus_time"] + p["delay"] + p["delay_jitter"]
    if latest_go >= p["trial_duration"]:
        raise ConfigError(
            "the go cue can fall after the end of the trial", field="trial_duration",
            found=f"{p['trial_duration']:g} s, latest go cue at {latest_go:g} s after trial start",
            expected="trial_duration > stimulus_time + delay + delay_jitter",
        )
    try:
        gap_lo, gap_hi = (float(inter_trial_gap), float(inter_trial_gap)) \
            if np.ndim(inter_trial_gap) == 0 else tuple(float(g) for g in inter_trial_gap)
    except (TypeError, ValueError):
        gap_lo = gap_hi = math.nan
    if not (math.isfinite(gap_lo) and math.isfinite(gap_hi) and 0.0 <= gap_lo <= gap_hi):
        raise ConfigError(
            "inter_trial_gap must be a duration or a (min, max) range", field="inter_trial_gap",
            found=inter_trial_gap, expected="0 <= min <= max, in seconds",
        )
    p["inter_trial_gap"] = (gap_lo, gap_hi)
    p["gain_sd"] = _check_float("gain_sd", gain_sd, low=0.0, high=2.0)
    p["fraction_fs"] = _check_float("fraction_fs", fraction_fs, low=0.0, high=1.0)
    p["fraction_incorrect"] = _check_float("fraction_incorrect", fraction_incorrect,
                                           low=0.0, high=1.0)
    return p
