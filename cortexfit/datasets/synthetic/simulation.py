"""The simulation: single-trial rates of every trial and their Poisson spikes (exact for
rates constant within each ``dt`` bin), from the seed's three random streams."""
from __future__ import annotations

from typing import Any

import numpy as np

from .model import _latents, _population, _rate_of, _trial_structure


def _spikes_one_trial(rng: np.random.Generator, rate: np.ndarray, dt: float,
                      t_start: float, t_stop: float) -> list[np.ndarray]:
    """Exact Poisson spikes for rates ``(unit, bin)`` constant within each bin of width dt.

    Counts per unit are Poisson(integrated rate); times are drawn by inverting the
    cumulative rate of all units laid end to end (one sort, one searchsorted).
    """
    n_units, n_bins = rate.shape
    mass = rate.astype(np.float64).ravel()
    mass *= dt
    cum = np.cumsum(mass)
    ends = cum[n_bins - 1 :: n_bins]  # cumulative mass at the end of each unit
    totals = np.diff(ends, prepend=0.0)
    counts = rng.poisson(totals)
    unit_of = np.repeat(np.arange(n_units), counts)
    starts = ends - totals
    targets = starts[unit_of] + rng.random(unit_of.size) * totals[unit_of]
    order = np.argsort(targets, kind="stable")
    targets, unit_of = targets[order], unit_of[order]
    # targets in unit u lie in [starts[u], ends[u]): sorting keeps units in order
    idx = np.searchsorted(cum, targets, side="right")
    lo, hi = unit_of * n_bins, unit_of * n_bins + n_bins - 1
    idx = np.clip(idx, lo, hi)
    before = np.where(idx > 0, cum[np.maximum(idx - 1, 0)], 0.0)
    frac = np.clip((targets - before) / np.maximum(mass[idx], 1e-300), 0.0, 1.0 - 1e-12)
    times = t_start + (idx - lo + frac) * dt
    np.minimum(times, t_stop, out=times)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return [times[bounds[u] : bounds[u + 1]] for u in range(n_units)]


def _simulate(p: dict[str, Any], with_spikes: bool = True):
    """Everything but the Block: population, trials, spike times and truth arrays.
    ``with_spikes=False`` skips the spike draws (their stream is separate, so the truth is
    the same) and returns no spikes."""
    ss = np.random.SeedSequence(p["seed"])
    rng_pop, rng_trials, rng_spikes = (np.random.default_rng(s) for s in ss.spawn(3))
    dt, n_bins = p["dt"], p["n_bins"]
    tau = (np.arange(n_bins) + 0.5) * dt - p["stimulus_time"]
    pop = _population(rng_pop, p, tau)
    tr = _trial_structure(rng_trials, p)

    n_cond = len(p["conditions"])
    expected = np.zeros((n_cond, p["n_units"], n_bins))
    spikes: list[list[np.ndarray]] = []
    # single trials in float32 (fast vector maths), summed in a fixed order (no BLAS) so
    # that results do not depend on the linear-algebra library; cumulative sums in float64
    loading = pop["loading"].astype(np.float32)
    offset = pop["offset"].astype(np.float32)[:, None]
    for k in range(tr["cond_index"].size):
        c = tr["cond_index"][k]
        x = _latents(tau, tr["delay"][k], pop["prep_dirs"][c], pop["rot_dirs"][c])
        x = x.astype(np.float32)
        h = offset + loading[:, :1] * x[0]
        for f in range(1, x.shape[0]):
            h += loading[:, f : f + 1] * x[f]
        rate = _rate_of(h)
        rate *= np.float32(tr["gain"][k])
        expected[c] += rate
        if with_spikes:
            spikes.append(_spikes_one_trial(rng_spikes, rate, dt, tr["start"][k],
                                            tr["stop"][k]))
    expected /= np.bincount(tr["cond_index"], minlength=n_cond)[:, None, None]
    return tau, pop, tr, expected, spikes
