"""What the recordings of the development set share: the description of a recording
(:class:`_Spec`), its random streams, the trial layout on the session clock, Poisson spikes
from rates, and the assembly of the :class:`neo.Block` and of the ground-truth Dataset."""
from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import neo
import numpy as np
import xarray as xr

from ... import __version__
from ...io.convention import Trial, make_block
from ..synthetic.simulation import _spikes_one_trial

DT = 0.001  #: s: the grid of the rates, of the ground truth and of the LIF simulation
PAD = 0.5  #: s: every trial covers its targets window plus this much on either side
CONDITION_KEY = "condition"
INTER_TRIAL_GAP = (1.0, 2.0)  #: s: uniform range of the gap before each trial
SIZES = ("full", "small")


@dataclass(frozen=True)
class _Spec:
    """One recording of the set: its name, the events, the targets call that suits it, the
    conditions and the sizes; ``simulate(spec, p, with_spikes)`` makes it."""

    name: str
    description: str
    model: str  # the generative model, one line (block annotation, truth attrs)
    align: str
    window: tuple[float, float]
    conditions: tuple[str, ...]
    unit_prefix: str
    #: size -> {"n_units": ..., "n_trials_per_condition": ...} (and model-specific keys)
    sizes: Mapping[str, Mapping[str, int]]
    simulate: Callable[..., _Generated]
    expected_rate_method: str  # how truth["expected_rate"] is computed (truth attrs)

    @property
    def span(self) -> tuple[float, float]:
        """The trial, relative to the alignment event: the window plus :data:`PAD`."""
        return self.window[0] - PAD, self.window[1] + PAD

    @property
    def targets_kwargs(self) -> dict[str, Any]:
        return {"align": self.align, "window": tuple(self.window), "condition": CONDITION_KEY}


@dataclass
class _Generated:
    """A simulated recording before it becomes a Block and a Dataset.

    ``spikes[k][u]``: spike times of unit u in trial k (session order), in seconds from the
    trial's start; ``events[k]``: the trial's events besides the alignment event (which every
    trial has), in seconds from the alignment event;
    ``expected``: ``(condition, unit, time)`` in Hz on the :data:`DT` grid of the trial;
    ``unit_vars`` / ``trial_vars``: extra ground truth per unit / per trial.
    """

    cond_index: np.ndarray
    spikes: list[list[np.ndarray]] | None
    events: list[dict[str, float]]
    expected: np.ndarray
    unit_annotations: list[dict[str, Any]]
    unit_vars: dict[str, tuple] = field(default_factory=dict)
    trial_vars: dict[str, tuple] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)


def _streams(name: str, seed: int) -> tuple[np.random.Generator, ...]:
    """Three independent generators (population, trials, spikes) for this recording and
    seed: the recording's name is part of the entropy, so two recordings of one seed share
    no stream."""
    ss = np.random.SeedSequence([int(seed), zlib.crc32(name.encode())])
    return tuple(np.random.default_rng(s) for s in ss.spawn(3))


def _time_grid(spec: _Spec) -> np.ndarray:
    """Bin centres of the trial's :data:`DT` grid, relative to the alignment event."""
    start, stop = spec.span
    n_bins = round((stop - start) / DT)
    return start + (np.arange(n_bins) + 0.5) * DT


def _condition_order(rng: np.random.Generator, n_cond: int, n_per: int) -> np.ndarray:
    """Each condition ``n_per`` times, shuffled across the session."""
    return rng.permutation(np.repeat(np.arange(n_cond), n_per))


def _poisson_trials(rng: np.random.Generator, rate_of: Callable[[int], np.ndarray],
                    n_trials: int, duration: float) -> list[list[np.ndarray]]:
    """Exact inhomogeneous-Poisson spikes (rates constant within each :data:`DT` bin) of
    every trial, in seconds from the trial's start."""
    return [_spikes_one_trial(rng, rate_of(k), DT, 0.0, duration) for k in range(n_trials)]


def _unit_ids(prefix: str, n_units: int) -> list[str]:
    width = max(3, len(str(n_units - 1)))
    return [f"{prefix}{i:0{width}d}" for i in range(n_units)]


def _session(rng: np.random.Generator, n_trials: int, duration: float) -> np.ndarray:
    """Trial start times on the session clock: trials one after another, each after a
    random gap (:data:`INTER_TRIAL_GAP`)."""
    gaps = rng.uniform(*INTER_TRIAL_GAP, n_trials)
    return np.cumsum(gaps) + np.arange(n_trials) * duration


def _block(spec: _Spec, p: Mapping[str, Any], gen: _Generated,
           starts: np.ndarray) -> neo.Block:
    t0, t1 = spec.span
    units = _unit_ids(spec.unit_prefix, gen.expected.shape[1])
    trials = []
    for k, c in enumerate(gen.cond_index):
        zero = starts[k] - t0  # the alignment event, absolute
        trials.append(Trial(
            t_start=float(starts[k]), t_stop=float(starts[k] + (t1 - t0)),
            spikes=[starts[k] + s for s in gen.spikes[k]],
            annotations={"trial_id": k, CONDITION_KEY: spec.conditions[c]},
            events={name: float(zero + rel)
                    for name, rel in {spec.align: 0.0, **gen.events[k]}.items()},
        ))
    return make_block(
        trials, units, unit_annotations=gen.unit_annotations,
        source=f"cortexfit development recording {spec.name} (seed={p['seed']}, "
               f"size={p['size']})",
        block_annotations={
            "generator": "cortexfit.datasets.devset.make_dev_recording",
            "variant": spec.name, "seed": p["seed"], "size": p["size"],
            "model": spec.model, "parameters": json.dumps(p, default=str),
            "cortexfit_version": __version__,
        },
        name=f"devset_{spec.name}_seed{p['seed']}",
    )


def _truth(spec: _Spec, p: Mapping[str, Any], gen: _Generated, tau: np.ndarray,
           starts: np.ndarray) -> xr.Dataset:
    units = _unit_ids(spec.unit_prefix, gen.expected.shape[1])
    in_window = (tau >= spec.window[0]) & (tau < spec.window[1])
    t0 = spec.span[0]
    data_vars: dict[str, Any] = {
        "expected_rate": (("condition", "unit", "time"), gen.expected,
                          {"units": "Hz", "long_name": "what the trial-averaged rates of "
                           "this recording estimate", "method": spec.expected_rate_method}),
        "mean_rate": ("unit", gen.expected[:, :, in_window].mean(axis=(0, 2)),
                      {"units": "Hz", "long_name": "mean of expected_rate over the "
                       "conditions and the targets window"}),
        "trial_start": ("trial", starts, {"units": "s"}),
        "trial_stop": ("trial", starts + (spec.span[1] - t0), {"units": "s"}),
        spec.align: ("trial", starts - t0, {"units": "s"}),
    }
    data_vars.update(gen.unit_vars)
    data_vars.update(gen.trial_vars)
    coords: dict[str, Any] = {
        "condition": ("condition", list(spec.conditions)),
        "unit": ("unit", units),
        "time": ("time", tau, {"units": "s", "long_name": f"time relative to {spec.align}"}),
        "trial": ("trial", np.arange(gen.cond_index.size)),
        "trial_condition": ("trial", np.asarray(spec.conditions)[gen.cond_index]),
    }
    types = [a.get("cell_type") for a in gen.unit_annotations]
    if all(isinstance(t, str) for t in types):
        coords["cell_type"] = ("unit", np.asarray(types))
    return xr.Dataset(data_vars, coords=coords, attrs={
        "description": f"ground truth of cortexfit's development recording {spec.name!r}: "
                       f"{spec.description}",
        "generator": "cortexfit.datasets.devset.make_dev_recording",
        "variant": spec.name, "model": spec.model, "seed": p["seed"], "size": p["size"],
        "align_event": spec.align, "window_start": spec.window[0],
        "window_stop": spec.window[1], "dt": DT,
        "expected_rate_method": spec.expected_rate_method,
        "parameters": json.dumps(p, default=str), "cortexfit_version": __version__,
        **gen.attrs,
    })


def _stratified_log_uniform(rng: np.random.Generator, n: int, low: float,
                            high: float) -> np.ndarray:
    """``n`` values log-uniform in ``[low, high]``, one in each of ``n`` equal quantile
    strata (in random order): the sample's median and range follow the distribution's
    closely even for small ``n``."""
    u = (rng.permutation(n) + rng.random(n)) / n
    return low * (high / low) ** u


def _smooth_noise(rng: np.random.Generator, shape: Sequence[int], length: float,
                  pad: int | None = None) -> np.ndarray:
    """Samples of a stationary Gaussian process with a squared-exponential covariance
    ``exp(-dt^2 / (2 length^2))`` and unit variance on the :data:`DT` grid (the last axis):
    white noise smoothed with a Gaussian of s.d. ``length / sqrt(2)``, padded so that the
    ends are not special."""
    from scipy.ndimage import gaussian_filter1d

    sigma = length / np.sqrt(2.0) / DT  # in bins
    pad = int(np.ceil(4 * sigma)) if pad is None else pad
    *lead, n = shape
    white = rng.standard_normal((*lead, n + 2 * pad))
    out = gaussian_filter1d(white, sigma, axis=-1, mode="constant", truncate=4.0)
    out *= np.sqrt(2.0 * np.sqrt(np.pi) * sigma)  # unit variance
    return out[..., pad:pad + n]


def _alpha(t: np.ndarray, peak: float) -> np.ndarray:
    """Alpha function peaking at 1 at ``t = peak``; 0 for t <= 0."""
    x = np.clip(t, 0.0, None) / peak
    return x * np.exp(1.0 - x)
