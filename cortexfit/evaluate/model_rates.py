"""Model rates: simulate a fitted network on fresh test trials and bin and smooth its spikes
exactly as the data's were, so that model and data can be compared bin for bin."""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from .. import __version__
from ..exceptions import ConfigError, TargetError
from ..fit.fitted import as_fitted
from ..seeds import trial_seed
from ..targets import KERNEL_ALIASES, rates_from_spike_times

# The model's rates are a targets Dataset: the targets package's schema builds it, and
# its mean_rate needs the kernel's padding to count spikes on make_targets' exact bin edges
from ..targets.rates import _CAUSAL_KERNELS, _smoother
from ..targets.schema import _trial_targets, score_window, scored_bins
from .checks import _recorded_neurons

DEFAULT_N_TRIALS = 12
"""Model test trials per condition that :func:`score` and :func:`model_rates` average (the
run config's ``[evaluate] n_trials`` default; it was 10 here and 12 in the config)."""

_ALIGN = "model_zero"  # the alignment event of the model's trials: the targets' time zero


def model_rates(fitted, targets: xr.Dataset, *, n_trials: int = DEFAULT_N_TRIALS,
                seed: int = 1000,
                keep_trials: bool = False) -> xr.Dataset:
    """Trial-averaged model rates of the recorded units, binned and smoothed like ``targets``.

    ``fitted`` is a fitted :class:`cortexfit.fit.RLSFit`; ``targets`` the Dataset it was
    trained on (from ``make_targets``, optionally with ``add_auxiliary``).

    Runs ``n_trials`` test trials per condition (trial k of condition c with seed
    ``seed + 7919 c + k``: :func:`cortexfit.seeds.trial_seed`), keeps the recorded units'
    spikes from the start of the model's trained window (or the targets' window, if it
    starts earlier) to the targets' ``window_stop``, in target time, and bins and smooths
    them with :func:`model_rates_from_spikes`. The result is what
    :func:`cortexfit.targets.make_targets` makes of these trials with ``min_rate=0``,
    ``heldout_fraction=0``, ``min_trials=1``: a targets Dataset with ``rate`` (condition,
    unit, time) in Hz on the targets' whole time axis, the average of the model's trials
    (plus ``trial_rate`` with ``keep_trials=True``), conditions sorted,
    ``attrs["source"] == "model"``, ``attrs["n_model_trials"]`` and the targets' scoring
    window (``score_start`` / ``score_stop``, when they have one).
    """
    fitted = as_fitted(fitted)
    if n_trials < 1:
        raise ConfigError("n_trials must be >= 1", field="n_trials", found=n_trials,
                          expected=">= 1")
    _, neurons = _recorded_neurons(fitted, targets)
    start = float(targets.attrs["window_start"])
    stop = float(targets.attrs["window_stop"])
    # the window start on the model's clock, in target time; the model has no activity to
    # show before it
    t0 = min(start, fitted.protocol.window_start)
    spikes, labels = _test_trial_spikes(fitted, n_trials, seed, t0, stop)
    unit_of = np.full(len(fitted.targets.neuron_ids), -1, dtype=np.int64)
    unit_of[neurons] = np.arange(neurons.size)
    spikes = [(times, unit_of[np.asarray(ids, dtype=np.int64)]) for times, ids in spikes]
    out = model_rates_from_spikes(spikes, labels, targets, keep_trials=keep_trials)
    out.attrs["n_model_trials"] = n_trials
    return out


def model_rates_from_spikes(spikes: Sequence[Any], conditions: Sequence[Any],
                            targets: xr.Dataset, *,
                            keep_trials: bool = False) -> xr.Dataset:
    """Rates of any spiking trials of the targets' units, binned and smoothed like
    ``targets``: what :func:`model_rates` makes of a fitted network's test trials.

    Parameters
    ----------
    spikes
        One ``(times, units)`` pair per trial: the spike times in seconds from the
        targets' time zero (the alignment event) and, per spike, the index of its unit in
        ``targets["unit"]`` (other indices, e.g. -1, are ignored). Give every spike the
        trial has within the kernel's reach of the time axis, as a recording does; a
        model's trial has none before its window starts (which is why ``make_targets``
        has a ``margin``).
    conditions
        Each trial's condition label (one of ``targets["condition"]``).
    targets
        The targets Dataset: its time axis (``window_start``, ``window_stop``), bin size,
        kernel and units, and its scoring window.
    keep_trials
        Keep the single-trial rates ``trial_rate``.

    Returns
    -------
    xarray.Dataset
        A targets Dataset over the conditions present (sorted), the targets' units and
        time axis: ``rate`` (condition, unit, time) in Hz, the average of each
        condition's trials, ``n_trials``, ``mean_rate`` (over the scoring window), attrs
        as :func:`make_targets` would record (``source = "model"``, every trial training)
        with the targets' ``score_start`` / ``score_stop`` when they have them, and
        ``n_model_trials`` (trials per condition, the smallest count).
    """
    units = [str(u) for u in targets["unit"].values]
    labels = [str(c) for c in conditions]
    if len(labels) != len(spikes) or not labels:
        raise ConfigError("give one condition label per trial", field="conditions",
                          found=f"{len(labels)} labels for {len(spikes)} trials",
                          expected="as many labels as trials, at least one")
    known = {str(c) for c in targets["condition"].values}
    unknown = sorted(set(labels) - known)
    if unknown:
        raise ConfigError("trials of conditions the targets do not have", field="conditions",
                          found=unknown[:10], expected=f"conditions among {sorted(known)}")
    start = float(targets.attrs["window_start"])
    stop = float(targets.attrs["window_stop"])
    kernel = str(targets.attrs["kernel"])
    kernel_width = float(targets.attrs["kernel_width"])
    bin_size = float(targets.attrs["bin_size"])
    index = list(range(len(units)))
    rates = rates_from_spike_times(spikes, window=(start, stop), bin_size=bin_size,
                                   kernel=kernel, kernel_width=kernel_width, units=index)
    n_time = rates.shape[-1]
    if n_time != targets.sizes["time"]:
        raise TargetError("the targets' window does not match their time axis",
                          field="window_start", found=f"{n_time} bins from the attrs",
                          expected=f"{targets.sizes['time']} bins (the time axis)")
    # checked by rates_from_spike_times; recorded as make_targets records them
    kernel = KERNEL_ALIASES.get(kernel.lower(), kernel.lower())
    kernel_width = 0.0 if kernel == "none" else kernel_width
    smoother = _smoother(kernel, kernel_width, bin_size)
    half = 0 if smoother is None else smoother.half
    time = start + bin_size * (np.arange(n_time) + 0.5)
    window = score_window(targets)
    scored = np.flatnonzero(scored_bins(time, window))
    if scored.size == 0:
        raise TargetError("no bin of the time axis lies in the scoring window",
                          field="score_start", found=f"[{window[0]:g}, {window[1]:g}] s",
                          expected=f"inside the time axis [{start:g}, {stop:g}] s")
    lo, hi = int(scored[0]), int(scored[-1]) + 1
    counts = _window_spike_counts(spikes, len(units), start, bin_size, n_time, half, lo, hi)
    attrs = _attrs(start, stop, bin_size, kernel, kernel_width,
                   n_all=len(labels), n_conditions=len(set(labels)), n_units=len(units),
                   short_padding=len(labels) if half else 0)
    for name in ("score_start", "score_stop"):
        if name in targets.attrs:
            attrs[name] = float(targets.attrs[name])
    conditions_sorted = sorted(dict.fromkeys(labels))  # make_targets sorts the conditions
    label_arr = np.array(labels, dtype=object)
    n_per = np.array([np.sum(label_arr == label) for label in conditions_sorted])
    attrs["n_model_trials"] = int(n_per.min())
    rate = np.zeros((len(conditions_sorted),) + rates.shape[1:])
    for c, label in enumerate(conditions_sorted):
        rate[c] = rates[label_arr == label].mean(axis=0)
    return _trial_targets(
        rate, np.zeros_like(rate),
        counts=np.stack([n_per, np.zeros_like(n_per)], axis=1).astype(np.int64),
        conditions=conditions_sorted, units=units, time=time, align=_ALIGN,
        mean_rate=counts / (len(labels) * (window[1] - window[0])),
        unit_ann=[{} for _ in units], heldout_fraction=0.0, trial_rates=rates,
        trial_ids=list(range(len(labels))) if keep_trials else None,
        trial_conditions=labels, trial_split=["train"] * len(labels), attrs=attrs,
    )


def _attrs(start: float, stop: float, bin_size: float, kernel: str, kernel_width: float, *,
           n_all: int, n_conditions: int, n_units: int,
           short_padding: int) -> dict:
    """The attrs make_targets gives the model's trials (every trial and unit kept, none
    held out) and ``source = "model"``."""
    selection = json.dumps("all trials")
    return {
        "source": "model",
        "align_event": _ALIGN,
        "window_start": start,
        "window_stop": stop,
        "bin_size": bin_size,
        "kernel": kernel,
        "kernel_width": kernel_width,
        "kernel_causal": int(kernel in _CAUSAL_KERNELS),
        "condition_key": "condition",
        "has_trials": 1,
        "cortexfit_version": __version__,
        "selection": selection,
        "heldout_fraction": 0.0,
        "seed": 0,
        "min_rate": 0.0,
        "min_trials": 1,
        "dropped_units": json.dumps([]),
        "n_trials_selected": n_all,
        "n_trials_missing_event": 0,
        "n_trials_used": n_all,
        # the trials end at the window stop, so the kernel's padding always passes them
        "n_trials_short_padding": short_padding,
        "report": f"{n_all} of {n_all} trials selected ({selection}); 0 lacked event "
                  f"{_ALIGN!r}; {n_all} used in {n_conditions} condition(s) ({n_all} train, "
                  f"0 held out); {n_units} of {n_units} units kept",
    }


def _test_trial_spikes(fitted, n_trials: int, seed: int, t0: float,
                       stop: float) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[str]]:
    """Every test trial's spikes in ``[t0, stop]`` as ``(times, neuron ids)``, and its
    condition label, condition by condition."""
    spikes, labels = [], []
    for c, condition in enumerate(fitted.targets.conditions):
        for k in range(n_trials):
            run = fitted.run_trial(c, seed=trial_seed(seed, c, k))
            times = run["spike_time"].values
            ids = run["spike_neuron"].values
            keep = (times >= t0) & (times <= stop)
            spikes.append((times[keep], ids[keep]))
            labels.append(condition)
    return spikes, labels


def _window_spike_counts(spikes, n_units: int, start: float, bin_size: float, n_time: int,
                         half: int, lo: int, hi: int) -> np.ndarray:
    """Each unit's spikes in bins ``lo <= k < hi`` (the scored window) over all trials
    (float64), counted on the bin edges make_targets uses,
    ``start - half * bin_size + bin_size * k`` with the kernel's padding of ``half`` bins,
    so that ``mean_rate`` is make_targets' bit for bit."""
    edges = (start - half * bin_size) + bin_size * np.arange(n_time + 2 * half + 1)
    t_lo, t_hi = edges[half + lo], edges[half + hi]
    counts = np.zeros(n_units, dtype=np.int64)
    for times, ids in spikes:
        times = np.asarray(times, dtype=np.float64)
        unit = np.asarray(ids, dtype=np.int64)[(times >= t_lo) & (times < t_hi)]
        counts += np.bincount(unit[(unit >= 0) & (unit < n_units)], minlength=n_units)
    return counts.astype(np.float64)
