"""Simulate a fitted network on fresh trials and turn its spikes into rates exactly as the
data's were made, so model and data can be compared bin for bin.

:func:`model_rates` runs ``n_trials`` test trials per condition (fresh random initial
conditions, the condition's stimulus, then the trained window), builds a ``neo.Block`` of the
recorded units' model spike trains with the data's alignment (time zero = the targets' time
zero) and passes it through :func:`cortexfit.targets.make_targets` with the **same** window,
bin size and kernel as the targets. The result is a targets-shaped Dataset: ``rate``
(condition, unit, time) in Hz, trial-averaged over the model's trials, plus ``trial_rate``.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from .exceptions import ConfigError

__all__ = ["model_rates"]


def model_rates(fitted, targets: xr.Dataset, *, n_trials: int = 10, seed: int = 1000,
                keep_trials: bool = False) -> xr.Dataset:
    """Trial-averaged model rates of the recorded units, binned and smoothed like ``targets``.

    ``fitted`` is a fitted :class:`cortexfit.fit.RLSFit`; ``targets`` the Dataset it was
    trained on (from ``make_targets``, optionally with ``add_auxiliary``).
    """
    from .io.arrays import from_spike_times
    from .targets import make_targets

    if not hasattr(fitted, "network_"):
        raise ConfigError("the model is not fitted", field="fitted", found="no network_",
                          expected="a fitted RLSFit")
    if n_trials < 1:
        raise ConfigError("n_trials must be >= 1", field="n_trials", found=n_trials,
                          expected=">= 1")
    tg = fitted.targets_
    units = [str(u) for u in targets["unit"].values]
    recorded = {unit: k for k, (unit, role) in enumerate(zip(tg.recorded_unit, tg.roles))
                if role == "recorded"}
    missing = [u for u in units if u not in recorded]
    if missing:
        raise ConfigError("the model has no neuron for some recorded units", field="unit",
                          found=missing[:10], expected="units the model was trained on")
    neurons = np.array([recorded[u] for u in units])
    start = float(targets.attrs["window_start"])
    stop = float(targets.attrs["window_stop"])
    t_first = float(fitted.update_times_[0] - fitted.update_every)  # window start on the
    # model's clock, in target time; the model has no activity to show before it
    t0 = min(start, t_first)
    trials, conditions = [], []
    for c, condition in enumerate(tg.conditions):
        for k in range(n_trials):
            run = fitted.run_trial(c, seed=seed + 7919 * c + k)
            times = run["spike_time"].values
            ids = run["spike_neuron"].values
            keep = (times >= t0) & (times <= stop)
            times, ids = times[keep], ids[keep]
            trials.append([np.sort(times[ids == n]) for n in neurons])
            conditions.append(condition)
    block = from_spike_times(trials, t_start=t0, t_stop=stop, conditions=conditions,
                             events={"model_zero": [0.0] * len(trials)}, unit_ids=units,
                             source="model")
    rates = make_targets(
        block, align="model_zero", window=(start, stop), bin_size=float(targets.attrs["bin_size"]),
        kernel=str(targets.attrs["kernel"]), kernel_width=float(targets.attrs["kernel_width"]),
        min_rate=0.0, heldout_fraction=0.0, min_trials=1, keep_trials=keep_trials,
    )
    rates.attrs["source"] = "model"
    rates.attrs["n_model_trials"] = n_trials
    return rates
