"""Example model spikes: the spikes of the recorded units in a few test trials of the
fitted network, for the report's model rasters."""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..exceptions import ConfigError
from ..fit.fitted import as_fitted
from ..seeds import trial_seed
from .checks import _check_int_arg, _recorded_neurons


def example_model_spikes(fitted, targets: xr.Dataset, *, seed: int,
                         n_per_condition: int = 1) -> xr.Dataset:
    """Spikes of the recorded units in a few test trials of the fitted network, for rasters.

    Runs ``n_per_condition`` test trials per condition of ``targets`` with
    ``fitted.run_trial`` (trial k of condition c uses ``seed + 7919 c + k``, as in
    :func:`model_rates` and :func:`score`: :func:`cortexfit.seeds.trial_seed`; so with the
    same ``seed`` these are the first of the scored trials) and keeps the spikes of the model neurons of the recorded units,
    between the start of the model's trained window and ``targets.attrs["window_stop"]``,
    in seconds from the targets' time zero.

    Returns a Dataset over ``model_spike``: ``model_spike_time`` (s),
    ``model_spike_unit`` (index into ``targets["unit"]``) and ``model_spike_trial`` (index
    into ``model_example_trial``), with coordinates ``model_example_condition`` and
    ``model_example_seed`` over ``model_example_trial``; ``model_spike_time``'s
    ``attrs["window"]`` is the [start, stop] of the window kept (s).
    """
    fitted = as_fitted(fitted)
    n_per_condition = _check_int_arg(n_per_condition, "n_per_condition", 1)
    tg = fitted.targets
    units, neurons = _recorded_neurons(fitted, targets)
    # model neuron index -> position in the targets' unit order (-1: not a recorded unit)
    unit_of_neuron = np.full(len(tg.neuron_ids), -1, dtype=np.int64)
    unit_of_neuron[neurons] = np.arange(len(units))
    start = fitted.protocol.window_start
    stop = float(targets.attrs.get("window_stop", fitted.protocol.update_times[-1]))
    times, spike_units, trials, labels, seeds = [], [], [], [], []
    for condition in (str(c) for c in targets["condition"].values):
        if condition not in tg.conditions:
            raise ConfigError("the model was not trained on a condition of the targets",
                              field="condition", found=condition, expected=tg.conditions)
        c = tg.conditions.index(condition)
        for k in range(n_per_condition):
            seed_k = trial_seed(int(seed), c, k)
            run = fitted.run_trial(c, seed=seed_k)
            t = np.asarray(run["spike_time"].values, dtype=np.float64)
            u = unit_of_neuron[np.asarray(run["spike_neuron"].values, dtype=np.int64)]
            keep = (u >= 0) & (t >= start) & (t <= stop)
            times.append(t[keep])
            spike_units.append(u[keep].astype(np.int32))
            trials.append(np.full(int(keep.sum()), len(labels), dtype=np.int32))
            labels.append(condition)
            seeds.append(seed_k)
    return xr.Dataset(
        {
            "model_spike_time": ("model_spike", np.concatenate(times),
                                 {"units": "s", "window": [start, stop],
                                  "long_name": "model spike time from the targets' time zero "
                                  "(the alignment event)"}),
            "model_spike_unit": ("model_spike", np.concatenate(spike_units),
                                 {"long_name": "index of the recorded unit in the unit "
                                  "dimension (targets' order)"}),
            "model_spike_trial": ("model_spike", np.concatenate(trials),
                                  {"long_name": "index into model_example_trial"}),
        },
        coords={"model_example_trial": np.arange(len(labels), dtype=np.int32),
                "model_example_condition": ("model_example_trial", labels),
                "model_example_seed": ("model_example_trial", np.array(seeds, np.int64))},
    )
