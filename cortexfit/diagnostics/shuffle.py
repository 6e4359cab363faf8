"""Shuffle test (the paper's Figure 5f): permute the trained weights of a fraction of the
recurrent connections between recorded neurons, then score the fit again.

"After successful training, [we] randomly shuffled a fraction of recurrent connections
between cortical neurons" (Kim & Chow 2018, Figure 5f; METHOD.md §4). The paper does not
say whether positions or values were shuffled; here the **values** are permuted and the
sparsity pattern is kept (METHOD.md's recommendation):

1. candidates: the plastic synapses with a nonzero weight whose pre- and postsynaptic
   neurons are both recorded (``scope="recorded"``, the N_cor x N_cor block), or any
   (``scope="all"``);
2. repeat ``k`` draws one random order of the candidates (``default_rng([seed, k])``); for
   a fraction ``f`` its first ``n(f) = round(f * n_candidates)`` (at least 1) are selected,
   so within a repeat the selected sets are nested across fractions;
3. the selected weights are randomly permuted among the selected slots.

**Dale's law.** A free permutation would move an excitatory weight into an inhibitory
neuron's column and break Dale's law. When the network is an E/I network the selected
synapses are therefore permuted **within same-sign groups** (presynaptic E with E, I with
I); ``attrs["permutation"]`` says which was done. Gaussian (non-Dale) networks permute all
selected values together.

As in :mod:`cortexfit.diagnostics.lesion`, the intact and the shuffled networks are scored
on the same test trials, and the fitted estimator is never modified.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from .. import seeds
from ..exceptions import ConfigError
from ..fit.fitted import as_fitted
from .lesion import (
    DEFAULT_N_REPEATS,
    DEFAULT_N_TRIALS,
    _base_coords,
    _check_choice,
    _check_fractions,
    _check_int,
    _check_targets,
    _count,
    _evaluate,
    _score_vars,
    _with_network,
)

__all__ = ["shuffle", "shuffle_candidates", "permute_weights"]

SCOPES = ("recorded", "all")


def shuffle_candidates(network, roles: Sequence[str], scope: str = "recorded") -> np.ndarray:
    """Indices into ``network.plastic.data`` of the synapses :func:`shuffle` may permute:
    plastic, nonzero, and (``scope="recorded"``) between two recorded neurons."""
    scope = _check_choice("scope", scope, SCOPES)
    plastic = network.plastic
    post = np.repeat(np.arange(network.n_neurons), np.diff(plastic.indptr))
    keep = plastic.data != 0
    if scope == "recorded":
        recorded = np.asarray(roles) == "recorded"
        keep &= recorded[post] & recorded[plastic.indices]
    return np.flatnonzero(keep)


def permute_weights(network, slots: Any, rng: np.random.Generator) -> np.ndarray:
    """New plastic weights (in-list order): the values at ``slots`` (indices into
    ``network.plastic.data``) randomly permuted among those slots, within same-sign groups
    (presynaptic E / I) when the network follows Dale's law. ``network`` is not modified."""
    slots = np.asarray(slots, dtype=np.int64).ravel()
    data = network.plastic.data
    if slots.size and (slots.min() < 0 or slots.max() >= data.size):
        raise ConfigError("synapse index out of range", field="slots",
                          found=(int(slots.min()), int(slots.max())),
                          expected=f"0..{data.size - 1}")
    new = data.copy()
    if network.dale:
        groups = network.excitatory[network.plastic.indices[slots]]
        for g in (True, False):
            part = slots[groups == g]
            new[part] = data[rng.permutation(part)]
    else:
        new[slots] = data[rng.permutation(slots)]
    return new


def shuffle(fitted: Any, targets: xr.Dataset, *,
            fractions: Sequence[float] = (0.1, 0.25, 0.5, 1.0),
            n_repeats: int = DEFAULT_N_REPEATS,
            scope: str = "recorded", n_trials: int = DEFAULT_N_TRIALS, seed: int = 0,
            eval_seed: int = 1000) -> xr.Dataset:
    """Permute the trained weights of a fraction of recurrent connections; score again.

    Parameters
    ----------
    fitted
        A fitted :class:`cortexfit.fit.RLSFit` (rate targets). Not modified.
    targets
        The targets Dataset it was fitted on (``rate``, optional ``rate_heldout``).
    fractions
        Fractions of the candidate synapses to shuffle, each in (0, 1].
    n_repeats
        Random selections and permutations per fraction.
    scope
        ``"recorded"``: synapses between recorded neurons (the paper); ``"all"``: any
        plastic synapse.
    n_trials
        Model trials per condition for every evaluation.
    seed
        Selections and permutations; ``eval_seed`` the test trials (shared by all).

    Returns
    -------
    xarray.Dataset
        ``pearson(fraction, repeat, condition, unit, split)``, ``mean_pearson(fraction,
        repeat, split)``, ``pearson_intact(condition, unit, split)``,
        ``mean_pearson_intact(split)``, ``n_shuffled(fraction)``, ``weight_change(fraction,
        repeat)`` (||W' - W|| / ||W_candidates||, Frobenius).
    """
    fitted = as_fitted(fitted)
    _check_targets(fitted, targets)
    fractions = _check_fractions(fractions)
    n_repeats = _check_int("n_repeats", n_repeats, 1)
    n_trials = _check_int("n_trials", n_trials, 1)
    scope = _check_choice("scope", scope, SCOPES)
    base = fitted.network
    candidates = shuffle_candidates(base, fitted.targets.roles, scope)
    if candidates.size < 2:
        raise ConfigError("too few trained synapses to shuffle", field="scope", found=(
            f"{candidates.size} nonzero plastic synapses in scope {scope!r}"),
            expected=">= 2 (scope='all' takes every plastic synapse)")
    weights = base.plastic.data.astype(np.float64)
    permutation = ("within sign groups (Dale's law: E weights with E, I with I)" if base.dale
                   else "all selected values together (no Dale constraint)")
    norm = float(np.linalg.norm(weights[candidates]))

    intact = _evaluate(fitted, targets, n_trials, eval_seed)
    counts = np.array([_count(f, candidates.size) for f in fractions])
    change = np.zeros((fractions.size, n_repeats))
    scores = np.empty((fractions.size, n_repeats) + intact.shape)
    for r in range(n_repeats):
        order = seeds.rng(seed, "shuffle_order", r).permutation(candidates)
        for f, k in enumerate(counts):
            new = permute_weights(base, order[:k], seeds.rng(seed, "shuffle_permutation", r, f))
            change[f, r] = np.linalg.norm(new.astype(np.float64) - weights) / norm if norm else 0
            net = base.copy()
            net.set_plastic_weights(new)
            scores[f, r] = _evaluate(_with_network(fitted, net), targets, n_trials,
                                     eval_seed).transpose(*intact.dims).values

    coords = _base_coords(fitted, intact, fractions, n_repeats)
    del coords["neuron"], coords["role"]
    ds = xr.Dataset(_score_vars(scores, intact, ("fraction", "repeat")), coords=coords)
    ds["n_shuffled"] = xr.DataArray(counts, dims="fraction", attrs={
        "long_name": "synapses whose weights were permuted", "units": "1"})
    ds["weight_change"] = xr.DataArray(change, dims=("fraction", "repeat"), attrs={
        "long_name": "||W_shuffled - W|| / ||W over the candidate synapses|| (Frobenius)",
        "units": "1"})
    ds.attrs.update({
        "diagnostic": "shuffle",
        "description": "trained weights of a random fraction of the candidate synapses "
                       "permuted among themselves, sparsity kept; Kim & Chow 2018 Figure 5f",
        "scope": scope, "n_candidates": int(candidates.size), "permutation": permutation,
        "n_trials": n_trials, "seed": int(seed), "eval_seed": int(eval_seed),
        "sets": "nested: within a repeat the sets of larger fractions contain the smaller",
    })
    return ds
