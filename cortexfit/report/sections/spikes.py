"""Spike rasters as CSV rows (:data:`SPIKE_COLUMNS`): the recording's example trials and
the model's test trials, downloadable under the Recording and Fit rasters."""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..runfiles import RunFiles

#: the columns of a raster's CSV: one row per trial and unit, its spike times space-separated
SPIKE_COLUMNS = ["trial", "condition", "unit", "n_spikes", "spike_times_s"]


def _spike_rows(times: np.ndarray, units: np.ndarray, trials: np.ndarray,
                unit_labels: dict[int, str], trial_labels, condition_labels):
    """Spikes (time, unit index, trial index) as CSV rows of :data:`SPIKE_COLUMNS`, one per
    trial and unit of ``unit_labels`` (unit index -> label; silent units included), times
    in s to 0.1 ms: a raster's data in a quarter of the bytes of one row per spike."""
    n_units = max(unit_labels, default=-1) + 1
    key = trials.astype(np.int64) * n_units + units
    order = np.lexsort((times, key))
    key, times = key[order], times[order]
    for j, (trial, condition) in enumerate(zip(trial_labels, condition_labels)):
        for u, label in unit_labels.items():
            lo, hi = np.searchsorted(key, [j * n_units + u, j * n_units + u + 1])
            yield [trial, condition, label, int(hi - lo),
                   " ".join(f"{t:.4f}" for t in times[lo:hi])]


def _data_spike_rows(recording: xr.Dataset, units: set[str] | None = None,
                     conditions: list[str] | None = None):
    """recording.nc's example spikes as :func:`_spike_rows` (only ``units`` and
    ``conditions`` when given)."""
    labels = ([str(u) for u in recording["unit"].values] if "unit" in recording.coords else
              [str(u) for u in range(int(recording["spike_unit"].max()) + 1)])
    trials = [str(t) for t in recording["example_trial"].values]
    shown = [str(c) for c in recording["example_condition"].values]
    keep = [j for j, c in enumerate(shown) if conditions is None or c in conditions]
    index = np.full(len(trials), -1)
    index[keep] = np.arange(len(keep))
    spike_trial = index[recording["spike_trial"].values]
    inside = spike_trial >= 0
    yield from _spike_rows(
        recording["spike_time"].values[inside], recording["spike_unit"].values[inside],
        spike_trial[inside], {k: u for k, u in enumerate(labels) if units is None or u in units},
        [trials[j] for j in keep], [shown[j] for j in keep])


def _model_spike_rows(run: RunFiles):
    """scores.nc's model example spikes as :func:`_spike_rows`."""
    scores = run.scores
    conditions = [str(c) for c in scores["model_example_condition"].values]
    yield from _spike_rows(
        scores["model_spike_time"].values, scores["model_spike_unit"].values,
        scores["model_spike_trial"].values,
        dict(enumerate(str(u) for u in run.targets["unit"].values)),
        [str(t) for t in scores["model_example_trial"].values], conditions)
