"""Lesion test (the paper's Figure 3d): remove a fraction of neurons by cutting every
synapse *from* them, then score the network's recorded units against the data again.

"Remove a fraction of neurons ... eliminating all the synaptic connections from the lost
neurons" (Kim & Chow 2018, Figure 3d; METHOD.md §4): the **outgoing** weights of each
lesioned neuron, i.e. its column of ``W = W_static + W_plastic``, are set to zero. The
lesioned neurons keep their inputs and keep firing; they just no longer act on the
network. Their own rates are still scored (they are what the network gives them); the mask
``unit_lesioned`` selects the spared units when only those are wanted.

Decisions where the paper is silent:

* **Nested sets.** Repeat ``k`` draws one random order of the population (generator
  ``default_rng([seed, k])``) and lesions its first ``n(f)`` neurons for every fraction
  ``f``: within a repeat the 40 % set contains the 10 % set, which contains the 5 % set, so
  differences between fractions are not blurred by different draws (common random numbers).
  ``n(f) = round(f * n_population)``, at least 1; the count is in ``n_lesioned``.
* **Same test trials.** The intact network and every lesioned copy are evaluated on the same
  trial seeds (the same initial conditions), so a difference of scores is the lesion's, not
  trial-to-trial noise.
* **Score.** :func:`cortexfit.evaluate.score`: trial-averaged model rates binned and
  smoothed like the data, Pearson r over time per (condition, unit) against the training
  targets ``rate`` (split ``"train"``) and, when present, ``rate_heldout`` (split
  ``"heldout"``). Its noise ceiling is left out (it depends on the data only:
  :func:`cortexfit.evaluate.noise_ceiling`).

The fit is never modified: each lesion works on ``network.copy()`` inside a
shallow copy of the estimator.

This module also holds the helpers that :mod:`cortexfit.diagnostics.shuffle` shares.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from .. import seeds
from ..evaluate import score
from ..exceptions import ConfigError, TargetError
from ..fit.fitted import FittedNetwork, as_fitted
from ..network import Network

__all__ = ["lesion", "cut_outputs"]

POPULATIONS = ("all", "recorded", "auxiliary")
DEFAULT_N_TRIALS = 3
"""Model trials per condition for each evaluation of :func:`lesion` and
:func:`~cortexfit.diagnostics.shuffle` (the run config's ``[diagnostics] n_trials``; it was 5
here and 3 in the config, which the pipeline has always used. See
benchmarks/bench_diagnostics.py: the mean score over units moves by < 0.01 between 5 and 10
trials, and evaluation is nearly all of the cost)."""
DEFAULT_N_REPEATS = 3
"""Random draws per fraction in :func:`lesion` and :func:`~cortexfit.diagnostics.shuffle`
(the run config's ``[diagnostics] n_repeats``; it was 5 here and 3 in the config)."""


# ----------------------------------------------------------------------------- helpers


def _check_targets(fitted: Any, targets: Any) -> None:
    if not isinstance(targets, xr.Dataset) or "rate" not in targets.data_vars:
        raise TargetError("targets must be the Dataset the model was fitted on",
                          field="targets", found=type(targets).__name__ if not isinstance(
                              targets, xr.Dataset) else list(targets.data_vars),
                          expected="an xarray Dataset with 'rate' (make_targets / add_auxiliary)")
    if fitted.targets.form != "rate":
        raise ConfigError("the diagnostics score rates: the model was trained on drives",
                          field="fitted", found=f"form {fitted.targets.form!r}",
                          expected="a model fitted to rate targets")


def _check_fractions(fractions: Any) -> np.ndarray:
    try:
        values = np.atleast_1d(np.asarray(fractions, dtype=np.float64))
    except (TypeError, ValueError):
        raise ConfigError("fractions must be numbers", field="fractions", found=fractions,
                          expected="numbers in (0, 1]") from None
    if values.ndim != 1 or values.size == 0:
        raise ConfigError("fractions must be a non-empty list", field="fractions",
                          found=fractions, expected="a sequence of numbers in (0, 1]")
    bad = ~np.isfinite(values) | (values <= 0) | (values > 1)
    if bad.any():
        raise ConfigError("fraction out of range", field="fractions",
                          found=values[bad].tolist(), expected="every fraction in (0, 1]")
    if np.unique(values).size != values.size:
        raise ConfigError("fractions repeat a value", field="fractions", found=values.tolist(),
                          expected="distinct fractions")
    return values


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}", field=name, found=value,
                          expected=f"an integer >= {minimum}")
    return int(value)


def _check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ConfigError(f"unknown {name}", field=name, found=value,
                          expected=" or ".join(repr(c) for c in choices))
    return str(value)


def _count(fraction: float, size: int) -> int:
    """round(fraction * size) (halves up), at least 1, at most size."""
    return int(min(size, max(1, math.floor(fraction * size + 0.5))))


def _with_network(fitted: FittedNetwork, network: Network) -> FittedNetwork:
    """The same fit running ``network`` (the original is untouched)."""
    return fitted.with_network(network)


def _evaluate(fitted: Any, targets: xr.Dataset, n_trials: int, seed: int) -> xr.DataArray:
    """Pearson r of trial-averaged model rates with the data: (condition, unit, split), from
    :func:`cortexfit.evaluate.score` (without its noise ceiling, which does not depend on
    the model: ``cortexfit.evaluate.noise_ceiling(targets)`` gives it once)."""
    scores = score(fitted, targets, n_trials=n_trials, seed=seed, n_splits=0)
    return scores["pearson"].transpose("condition", "unit", "split")


def _unit_neurons(fitted: Any, targets: xr.Dataset) -> np.ndarray:
    """The model neuron index of each unit of ``targets`` (in ``targets['unit']`` order)."""
    tg = fitted.targets
    index = {u: k for k, (u, role) in enumerate(zip(tg.recorded_unit, tg.roles))
             if role == "recorded"}
    units = [str(u) for u in targets["unit"].values]
    missing = [u for u in units if u not in index]
    if missing:
        raise ConfigError("the model has no neuron for some recorded units", field="unit",
                          found=missing[:10], expected="units the model was trained on")
    return np.array([index[u] for u in units], dtype=np.int64)


def _score_vars(scores: np.ndarray, intact: xr.DataArray, extra_dims: tuple[str, ...]) -> dict:
    """The shared score variables of lesion and shuffle."""
    dims = extra_dims + ("condition", "unit", "split")
    pearson = xr.DataArray(scores, dims=dims, attrs={
        "long_name": "Pearson r over time of trial-averaged model and data rates",
        "units": "1"})
    return {
        "pearson": pearson,
        "pearson_intact": intact.assign_attrs(
            long_name="Pearson r of the intact fitted network (same test trials)", units="1"),
        "mean_pearson": pearson.mean(("condition", "unit")).assign_attrs(
            long_name="pearson averaged over conditions and units", units="1"),
        "mean_pearson_intact": intact.mean(("condition", "unit")).assign_attrs(
            long_name="pearson_intact averaged over conditions and units", units="1"),
    }


def _base_coords(fitted: Any, intact: xr.DataArray, fractions: np.ndarray,
                 n_repeats: int) -> dict:
    tg = fitted.targets
    return {
        "fraction": ("fraction", fractions, {"long_name": "fraction perturbed", "units": "1"}),
        "repeat": ("repeat", np.arange(n_repeats), {"long_name": "random draw"}),
        "condition": ("condition", [str(c) for c in intact["condition"].values]),
        "unit": ("unit", [str(u) for u in intact["unit"].values]),
        "split": ("split", [str(s) for s in intact["split"].values],
                  {"long_name": "data the model is compared with: training or held-out trials"}),
        "neuron": ("neuron", list(tg.neuron_ids)),
        "role": ("neuron", list(tg.roles), {"long_name": "recorded or auxiliary"}),
    }


# ----------------------------------------------------------------------------- lesion
def cut_outputs(network: Network, neurons: Any) -> Network:
    """A copy of ``network`` in which every synapse *from* ``neurons`` (their columns of W,
    static and plastic) has weight 0. The sparsity pattern is kept (zero-weight slots);
    ``network`` itself is not modified."""
    neurons = np.asarray(neurons, dtype=np.int64).ravel()
    if neurons.size and (neurons.min() < 0 or neurons.max() >= network.n_neurons):
        raise ConfigError("neuron index out of range", field="neurons",
                          found=(int(neurons.min()), int(neurons.max())),
                          expected=f"0..{network.n_neurons - 1}")
    net = network.copy()
    net.static.data[np.isin(net.static.indices, neurons)] = 0.0
    plastic = net.plastic.data.copy()
    plastic[np.isin(net.plastic.indices, neurons)] = 0.0
    net.set_plastic_weights(plastic)
    return net


def lesion(fitted: Any, targets: xr.Dataset, *, fractions: Sequence[float] = (0.05, 0.1, 0.4),
           n_repeats: int = DEFAULT_N_REPEATS, population: str = "all",
           n_trials: int = DEFAULT_N_TRIALS,
           seed: int = 0, eval_seed: int = 1000) -> xr.Dataset:
    """Cut all outgoing synapses of a random fraction of neurons and score the fit again.

    Parameters
    ----------
    fitted
        A fitted :class:`cortexfit.fit.RLSFit` (rate targets). Not modified.
    targets
        The targets Dataset it was fitted on (``rate``, optional ``rate_heldout``).
    fractions
        Fractions of ``population`` to lesion, each in (0, 1] (the paper: 5, 10, 40 %).
    n_repeats
        Random sets per fraction (nested across fractions within a repeat).
    population
        ``"all"`` neurons, only ``"recorded"`` ones, or only ``"auxiliary"`` ones.
    n_trials
        Model trials per condition for every evaluation.
    seed
        The random sets; ``eval_seed`` the test trials (shared by all evaluations).

    Returns
    -------
    xarray.Dataset
        ``pearson(fraction, repeat, condition, unit, split)``, ``mean_pearson(fraction,
        repeat, split)``, ``pearson_intact(condition, unit, split)``,
        ``mean_pearson_intact(split)``, ``lesioned(fraction, repeat, neuron)`` (bool),
        ``unit_lesioned(fraction, repeat, unit)`` (bool), ``n_lesioned(fraction)``.
    """
    fitted = as_fitted(fitted)
    _check_targets(fitted, targets)
    fractions = _check_fractions(fractions)
    n_repeats = _check_int("n_repeats", n_repeats, 1)
    n_trials = _check_int("n_trials", n_trials, 1)
    population = _check_choice("population", population, POPULATIONS)
    tg = fitted.targets
    roles = np.asarray(tg.roles)
    pool = np.arange(roles.size) if population == "all" else np.flatnonzero(roles == population)
    if pool.size == 0:
        raise ConfigError("the population to lesion is empty", field="population",
                          found=population, expected="a population the model has neurons of")
    unit_neuron = _unit_neurons(fitted, targets)
    base = fitted.network
    n = base.n_neurons

    intact = _evaluate(fitted, targets, n_trials, eval_seed)
    counts = np.array([_count(f, pool.size) for f in fractions])
    mask = np.zeros((fractions.size, n_repeats, n), dtype=bool)
    scores = np.empty((fractions.size, n_repeats) + intact.shape)
    for r in range(n_repeats):
        order = seeds.rng(seed, "lesion_order", r).permutation(pool)
        for f, k in enumerate(counts):
            gone = order[:k]
            mask[f, r, gone] = True
            net = cut_outputs(base, gone)
            scores[f, r] = _evaluate(_with_network(fitted, net), targets, n_trials,
                                     eval_seed).transpose(*intact.dims).values

    coords = _base_coords(fitted, intact, fractions, n_repeats)
    ds = xr.Dataset(_score_vars(scores, intact, ("fraction", "repeat")), coords=coords)
    ds["lesioned"] = xr.DataArray(mask, dims=("fraction", "repeat", "neuron"), attrs={
        "long_name": "neuron whose outgoing synapses were cut", "units": "1"})
    ds["unit_lesioned"] = xr.DataArray(mask[:, :, unit_neuron], dims=("fraction", "repeat", "unit"),
                                       attrs={"long_name": "the unit's model neuron was lesioned",
                                              "units": "1"})
    ds["n_lesioned"] = xr.DataArray(counts, dims="fraction", attrs={
        "long_name": "neurons lesioned per repeat", "units": "1"})
    ds.attrs.update({
        "diagnostic": "lesion",
        "description": "outgoing synapses (columns of W, static and plastic) of a random "
                       "fraction of the population set to zero; Kim & Chow 2018 Figure 3d",
        "population": population, "population_size": int(pool.size), "n_trials": n_trials,
        "seed": int(seed), "eval_seed": int(eval_seed),
        "sets": "nested: within a repeat the sets of larger fractions contain the smaller",
    })
    return ds
