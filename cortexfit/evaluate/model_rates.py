"""Model rates: simulate a fitted network on fresh test trials and bin and smooth its spikes
exactly as the data's were, so that model and data can be compared bin for bin."""
from __future__ import annotations

import json

import numpy as np
import xarray as xr

from .. import __version__
from ..exceptions import ConfigError
from ..fit.fitted import as_fitted
from ..seeds import trial_seed
from ..targets import KERNEL_ALIASES, rates_from_spike_times

# The model's rates are a targets Dataset: the targets package's schema builds it, and
# its mean_rate needs the kernel's padding to count spikes on make_targets' exact bin edges
from ..targets.rates import _CAUSAL_KERNELS, _smoother
from ..targets.schema import _trial_targets
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
    them with :func:`cortexfit.targets.rates_from_spike_times` on the targets' window,
    bin size and kernel. The result is what :func:`cortexfit.targets.make_targets` makes
    of these trials with ``min_rate=0``, ``heldout_fraction=0``, ``min_trials=1``: a
    targets Dataset with ``rate`` (condition, unit, time) in Hz, the average of the
    model's trials (plus ``trial_rate`` with ``keep_trials=True``), conditions sorted,
    ``attrs["source"] == "model"`` and ``attrs["n_model_trials"]``.
    """
    fitted = as_fitted(fitted)
    if n_trials < 1:
        raise ConfigError("n_trials must be >= 1", field="n_trials", found=n_trials,
                          expected=">= 1")
    units, neurons = _recorded_neurons(fitted, targets)
    start = float(targets.attrs["window_start"])
    stop = float(targets.attrs["window_stop"])
    # the window start on the model's clock, in target time; the model has no activity to
    # show before it
    t0 = min(start, fitted.protocol.window_start)
    spikes, labels = _test_trial_spikes(fitted, n_trials, seed, t0, stop)
    kernel = str(targets.attrs["kernel"])
    kernel_width = float(targets.attrs["kernel_width"])
    bin_size = float(targets.attrs["bin_size"])
    rates = rates_from_spike_times(spikes, window=(start, stop), bin_size=bin_size,
                                   kernel=kernel, kernel_width=kernel_width, units=neurons)
    # checked by rates_from_spike_times; recorded as make_targets records them
    kernel = KERNEL_ALIASES.get(kernel.lower(), kernel.lower())
    kernel_width = 0.0 if kernel == "none" else kernel_width
    smoother = _smoother(kernel, kernel_width, bin_size)
    half = 0 if smoother is None else smoother.half
    counts = _window_spike_counts(spikes, neurons, len(fitted.targets.neuron_ids), start,
                                  bin_size, rates.shape[-1], half)
    attrs = _attrs(start, stop, bin_size, kernel, kernel_width, n_trials=n_trials,
                   n_all=len(labels), n_conditions=len(set(labels)), n_units=len(units),
                   short_padding=len(labels) if half else 0)
    conditions = sorted(dict.fromkeys(labels))  # make_targets sorts the conditions
    label_arr = np.array(labels, dtype=object)
    rate = np.zeros((len(conditions),) + rates.shape[1:])
    for c, label in enumerate(conditions):
        rate[c] = rates[label_arr == label].mean(axis=0)
    return _trial_targets(
        rate, np.zeros_like(rate),
        counts=np.array([[np.sum(label_arr == label), 0] for label in conditions],
                        dtype=np.int64),
        conditions=conditions, units=units,
        time=start + bin_size * (np.arange(rates.shape[-1]) + 0.5), align=_ALIGN,
        mean_rate=counts / (len(labels) * (stop - start)), unit_ann=[{} for _ in units],
        heldout_fraction=0.0, trial_rates=rates,
        trial_ids=list(range(len(labels))) if keep_trials else None,
        trial_conditions=labels, is_heldout=np.zeros(len(labels), dtype=bool), attrs=attrs,
    )


def _attrs(start: float, stop: float, bin_size: float, kernel: str, kernel_width: float, *,
           n_trials: int, n_all: int, n_conditions: int, n_units: int,
           short_padding: int) -> dict:
    """The attrs make_targets gives the model's trials (every trial and unit kept, none
    held out), ``source = "model"`` and ``n_model_trials``."""
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
        "n_model_trials": n_trials,
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


def _window_spike_counts(spikes, neurons: np.ndarray, n_neurons: int, start: float,
                         bin_size: float, n_time: int, half: int) -> np.ndarray:
    """Each unit's spikes in the window's bins over all trials (float64), counted on the
    bin edges make_targets uses, ``start - half * bin_size + bin_size * k`` with the
    kernel's padding of ``half`` bins, so that ``mean_rate`` is make_targets' bit for bit."""
    edges = (start - half * bin_size) + bin_size * np.arange(n_time + 2 * half + 1)
    lo, hi = edges[half], edges[half + n_time]
    unit_of = np.full(n_neurons, -1, dtype=np.int64)  # model neuron -> unit (-1: none)
    unit_of[neurons] = np.arange(neurons.size)
    counts = np.zeros(neurons.size, dtype=np.int64)
    for times, ids in spikes:
        times = np.asarray(times, dtype=np.float64)
        unit = unit_of[np.asarray(ids, dtype=np.int64)[(times >= lo) & (times < hi)]]
        counts += np.bincount(unit[unit >= 0], minlength=neurons.size)
    return counts.astype(np.float64)
