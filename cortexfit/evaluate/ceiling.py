"""The noise ceiling: how well a perfect, noiseless model could correlate with the data's
trial averages, given their trial-to-trial noise.

:func:`split_half_reliability` (split-half reliability, Spearman-Brown corrected to each
average's trial count; the derivation is in its Notes) and :func:`noise_ceiling` (one
split's ceiling).
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from .. import seeds
from ..exceptions import ConfigError, TargetError
from ..metrics import DIMENSIONLESS, pearson_kernel, spearman_brown
from .checks import _check_int_arg

CEILING_TRIALS = ("all", "train")
"""Which trials :func:`split_half_reliability` splits: every trial of the condition, or
only its training trials."""

_CHUNK_VALUES = 2_000_000  # float64 values per half-average block (memory bound, ~16 MB)

_CEILING_METHOD = (
    "split-half reliability per (condition, unit): {n_splits} random splits of the "
    "condition's {trials} trials into two disjoint halves of h = floor(n/2) trials; "
    "Pearson r over time of the two half-averages, averaged over splits (raw r, negative "
    "means taken as 0) = R_h; Spearman-Brown to the split's trial count n_s: "
    "R_s = (n_s/h) R_h / (1 + (n_s/h - 1) R_h); noise_ceiling = sqrt(R_s), the expected "
    "correlation of a noiseless prediction equal to the true mean rate with the n_s-trial "
    "average; splits drawn by numpy default_rng([seed, crc32(condition label)])"
)


def _trial_sets(targets: xr.Dataset, trials: str) -> tuple[list[str], list[np.ndarray],
                                                              np.ndarray, list[str]]:
    """Per condition: the indices of the trials to split; the data trial counts
    ``(condition, split)`` and the splits present."""
    if not isinstance(targets, xr.Dataset) or "rate" not in targets.data_vars:
        raise TargetError("the targets are not a targets Dataset", field="targets",
                          found=type(targets).__name__,
                          expected="the Dataset of cortexfit.targets.make_targets")
    if trials not in CEILING_TRIALS:
        raise ConfigError("unknown trial set for the noise ceiling", field="trials",
                          found=repr(trials)[:80], expected=f"one of {list(CEILING_TRIALS)}")
    src = targets.attrs.get("source")
    if int(targets.attrs.get("has_trials", 0)) == 0:
        raise TargetError(
            "the noise ceiling needs single trials, and these targets have none",
            file=src, field="has_trials", found=targets.attrs.get("has_trials"),
            expected="targets made from trials (has_trials = 1), e.g. by make_targets",
            hint="Rates without trials (targets_from_rates, published PSTHs) carry no "
            "trial-to-trial variability to estimate a ceiling from; score() accepts "
            "n_splits=0 to skip the ceiling",
        )
    missing = [v for v in ("trial_rate", "trial_condition", "trial_split")
               if v not in targets.variables]
    if missing:
        raise TargetError(
            "the noise ceiling needs the single-trial rates", file=src, field="trial_rate",
            found=f"missing {missing}", expected="trial_rate(trial, unit, time) with "
            "coords trial_condition and trial_split",
            hint="Make the targets with make_targets(..., keep_trials=True) (the default); "
            "score() accepts n_splits=0 to skip the ceiling",
        )
    conditions = [str(c) for c in targets["condition"].values]
    trial_cond = np.array([str(c) for c in targets["trial_condition"].values], dtype=object)
    trial_split = np.array([str(s) for s in targets["trial_split"].values], dtype=object)
    counts = np.array([[np.sum((trial_cond == c) & (trial_split == s))
                        for s in ("train", "heldout")] for c in conditions], dtype=np.int64)
    if "n_trials" in targets.data_vars:
        stated = targets["n_trials"].sel(condition=targets["condition"]).transpose(
            "condition", "split").sel(split=["train", "heldout"]).values
        if not np.array_equal(stated, counts):
            raise TargetError(
                "the single trials do not match n_trials", file=src, field="trial_rate",
                found=f"trials per (condition, [train, heldout]) {counts.tolist()}",
                expected=f"n_trials {np.asarray(stated).tolist()}",
                hint="Select conditions or units, not trials, on a targets Dataset",
            )
    splits = ["train"]
    if "rate_heldout" in targets.data_vars and np.all(counts[:, 1] >= 1):
        splits.append("heldout")
    sets, few = [], []
    for c, label in enumerate(conditions):
        use = (trial_cond == label) if trials == "all" else \
            ((trial_cond == label) & (trial_split == "train"))
        idx = np.flatnonzero(use)
        if idx.size < 2:
            few.append(f"{label!r}: {idx.size}")
        sets.append(idx)
    if few:
        raise TargetError(
            "the noise ceiling needs at least 2 trials per condition", file=src,
            field="trial_condition", found=f"{trials} trials per condition: " + ", ".join(
                few[:10]), expected=">= 2 trials in every condition (two halves of >= 1)",
            hint="Drop those conditions (targets.sel(condition=[...])), or use trials='all'",
        )
    return conditions, sets, counts[:, : len(splits)], splits


def split_half_reliability(targets: xr.Dataset, n_splits: int = 100, seed: int = 0, *,
                           trials: str = "all") -> xr.Dataset:
    """Split-half reliability of the data and the noise ceiling it implies.

    Parameters
    ----------
    targets
        A targets Dataset with single trials (``make_targets(..., keep_trials=True)``, the
        default; ``add_auxiliary`` output works too): ``trial_rate(trial, unit, time)``
        with coords ``trial_condition`` and ``trial_split``.
    n_splits
        Random splits per condition (>= 1). The Monte-Carlo error of the average over
        splits falls as ``1/sqrt(n_splits)``; 100 makes it small against the sampling
        error of the data itself.
    seed
        Seed (>= 0) of the splits; condition ``c`` uses
        ``numpy.random.default_rng([seed, zlib.crc32(c.encode())])`` (purpose
        ``"ceiling_split"`` of :mod:`cortexfit.seeds`), so its splits do not depend on the
        other conditions.
    trials
        ``"all"`` (default): split every trial of the condition, training and held-out
        (they are exchangeable: the held-out split is random, so all trials estimate the
        same noise-to-signal ratio, and more trials estimate it better). ``"train"``: only
        the training trials (``trial_split == "train"``), e.g. to keep the held-out trials
        untouched. On the synthetic recording both agree to < 0.005 on average.

    Returns
    -------
    xarray.Dataset
        * ``split_half_r(condition, unit)``: R_h, the mean over splits of the Pearson r
          over time of the two half-averages (units ``"1"``).
        * ``half_size(condition)``: h, trials in each half.
        * ``n_data_trials(condition, split)``: n_s, the trials averaged in the data's
          ``rate`` (split ``"train"``) and ``rate_heldout`` (``"heldout"``).
        * ``reliability(condition, unit, split)``: R_s, the reliability of an n_s-trial
          average (Spearman-Brown from R_h), in [0, 1].
        * ``noise_ceiling(condition, unit, split)``: sqrt(R_s), in [0, 1].

        ``split`` is ``["train", "heldout"]``, or ``["train"]`` when the targets have no
        ``rate_heldout``. ``attrs``: ``n_splits``, ``seed``, ``trials``, ``method``.

    Raises
    ------
    TargetError
        Targets without single trials (``attrs["has_trials"] == 0``, or no
        ``trial_rate``), or a condition with fewer than 2 trials to split.
    ConfigError
        ``n_splits`` < 1, ``seed`` < 0, unknown ``trials``.

    Notes
    -----
    **What is estimated.** Model each single-trial rate of a unit in a condition as
    ``y_k(t) = mu(t) + e_k(t)``: the true mean rate ``mu`` plus noise ``e_k`` that is
    independent across trials (spike-count noise, and any trial-to-trial variability in
    gain or timing). Over the time bins of the window let ``S`` be the variance of
    ``mu`` and ``N`` the mean noise variance of one trial. An average of m trials is
    ``mu`` plus noise of variance ``N/m``, so (to leading order in the number of time
    bins, i.e. as ratios of expected sums of squares)

    * two independent m-trial averages correlate at ``R_m = S / (S + N/m)``: the
      reliability of an m-trial average;
    * ``R_m = 1 / (1 + rho/m)`` with ``rho = N/S``, so ``R_h`` measured at m = h gives
      every other m = k h by the Spearman-Brown formula
      ``R_kh = k R_h / (1 + (k - 1) R_h)`` (k = 2: ``2 r / (1 + r)``; k may be < 1);
    * a prediction ``f`` whose errors are independent of the trials' noise (e.g. any
      prediction scored on held-out trials) has ``cov(f, ybar_n) = cov(f, mu)`` and
      ``var(ybar_n) = S + N/n = S / R_n``, so
      ``corr(f, ybar_n) = corr(f, mu) * sqrt(R_n) <= sqrt(R_n)``, with equality for the
      noiseless prediction ``f = mu``. **The noise ceiling of a split is sqrt(R_n) with n
      the number of trials averaged in that split's data**: the expected correlation of a
      perfect, noiseless model with that trial average.

    The held-out average has fewer trials than the training average (8 against 32 with
    the default 20 % split of 40 trials), so its ceiling is lower; a model scored against
    ``rate_heldout`` must be compared with ``noise_ceiling(split="heldout")``. On the
    training average a model fitted to those very trials can exceed the ceiling by
    fitting their noise. A model whose rates are themselves an average of m simulated
    trials carries noise of its own and, even when perfect, reaches only
    ``sqrt(R_n R_model_m)``; the ceiling does not include that (it is a property of the
    data).

    **Estimator.** Per condition the trials are split ``n_splits`` times into two
    disjoint random halves of ``h = floor(n / 2)`` trials (with odd n one random trial
    sits out each split); per unit the Pearson r over time of the two half-averages
    (:func:`cortexfit.metrics.pearson_kernel`, 0 where a half-average is constant) is
    averaged over the splits as **raw r**: the splits are resamplings of the same
    trials, not independent samples, and their plain mean is a Monte-Carlo estimate of
    the average over all splits (averaging Fisher z instead raised the held-out ceiling
    by ~0.005 on the synthetic recording, away from the truth). A mean <= 0 (no reliable
    signal) gives reliability 0 and ceiling 0. The reliability for the split's trial
    count n_s is ``spearman_brown(R_h, n_s / h)``.

    Two approximations: the formulas are ratios of expectations (the sample correlation
    over the window's ~T/kernel-width effective samples is biased by O(1/samples)), and
    "noise" is everything that varies from trial to trial (spike counts, and here also
    gain and timing). **Measured** on 20 synthetic recordings with known truth (seeds
    0-19, 80 units, 2 conditions, 40 trials = 32 train + 8 held out), the ceiling minus
    the correlation of the true expected data average (the truth binned and smoothed like
    the data) with the data, averaged over (condition, unit): train -0.003 +- 0.002,
    held-out +0.006 +- 0.009 (s.d. across recordings; per (condition, unit) the s.d. is
    0.02 and 0.07). Typical values there: ceiling 0.96 (32 trials), 0.88 (8 trials).
    Units with little reliable signal have noisy ceilings (a split-half r near 0 gives a
    ceiling near 0 while the truth may still correlate at 0.3 with the data).
    """
    n_splits = _check_int_arg(n_splits, "n_splits", 1)
    seed = _check_int_arg(seed, "seed", 0)
    conditions, sets, counts, splits = _trial_sets(targets, trials)
    split_r, half = _split_half_r(targets, conditions, sets, n_splits, seed)
    factor = counts / half[:, None]                               # (condition, split)
    reliability = spearman_brown(split_r[:, :, None], factor[:, None, :])
    return _reliability_dataset(targets, split_r, half, counts, reliability, splits,
                                n_splits=n_splits, seed=seed, trials=trials)


def _split_half_r(targets: xr.Dataset, conditions: list[str], sets: list[np.ndarray],
                  n_splits: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """R_h ``(condition, unit)``: the mean over ``n_splits`` random splits of the Pearson r
    over time of the two half-averages of each condition's trials ``sets[c]``; and h, the
    trials in each half ``(condition,)``."""
    rates = targets["trial_rate"].transpose("trial", "unit", "time")
    n_units, n_time = rates.sizes["unit"], rates.sizes["time"]
    split_r = np.empty((len(conditions), n_units))
    half = np.empty(len(conditions), dtype=np.int64)
    chunk = max(1, _CHUNK_VALUES // max(1, n_units * n_time))
    for c, (label, idx) in enumerate(zip(conditions, sets)):
        n = idx.size
        h = n // 2
        half[c] = h
        x = np.asarray(rates.values[idx], dtype=np.float64).reshape(n, n_units * n_time)
        rng = seeds.rng(seed, "ceiling_split", label)
        perms = rng.permuted(np.tile(np.arange(n), (n_splits, 1)), axis=1)
        total = np.zeros(n_units)
        for s0 in range(0, n_splits, chunk):
            p = perms[s0:s0 + chunk]
            rows = np.arange(p.shape[0])[:, None]
            wa = np.zeros((p.shape[0], n))
            wb = np.zeros((p.shape[0], n))
            wa[rows, p[:, :h]] = 1.0 / h
            wb[rows, p[:, h:2 * h]] = 1.0 / h
            a = (wa @ x).reshape(-1, n_units, n_time)
            b = (wb @ x).reshape(-1, n_units, n_time)
            total += pearson_kernel(a, b).sum(axis=0)
        split_r[c] = total / n_splits
    return split_r, half


def _reliability_dataset(targets: xr.Dataset, split_r: np.ndarray, half: np.ndarray,
                         counts: np.ndarray, reliability: np.ndarray, splits: list[str], *,
                         n_splits: int, seed: int, trials: str) -> xr.Dataset:
    """The Dataset :func:`split_half_reliability` returns."""
    ceiling = np.sqrt(reliability)
    one = {"units": DIMENSIONLESS}
    coords = {"condition": targets["condition"].values, "unit": targets["unit"].values,
              "split": np.array(splits, dtype=object)}
    return xr.Dataset(
        {
            "split_half_r": (("condition", "unit"), split_r, {
                **one, "long_name": "mean split-half correlation over time of two "
                "half-averages of h trials (R_h)"}),
            "half_size": ("condition", half, {
                **one, "long_name": "trials in each half (h = floor(n / 2))"}),
            "n_data_trials": (("condition", "split"), counts, {
                **one, "long_name": "trials averaged in the data rate of each split"}),
            "reliability": (("condition", "unit", "split"), reliability, {
                **one, "long_name": "Spearman-Brown reliability of the split's trial "
                "average: correlation of two independent such averages"}),
            "noise_ceiling": (("condition", "unit", "split"), ceiling, {
                **one, "long_name": "expected correlation of the true mean rate with the "
                "split's trial average: sqrt(reliability)"}),
        },
        coords=coords,
        attrs={"n_splits": n_splits, "seed": seed, "trials": trials,
               "method": _CEILING_METHOD.format(n_splits=n_splits, trials=trials)},
    )


def noise_ceiling(targets: xr.Dataset, n_splits: int = 100, seed: int = 0, *,
                  split: str = "train", trials: str = "all") -> xr.DataArray:
    """Noise ceiling ``(condition, unit)`` of the data's trial average of ``split``.

    ``split="train"`` (default): ``ceiling_train``, the expected correlation between a
    perfect noiseless prediction (the true mean rate) and ``targets["rate"]``, the
    average of the training trials. ``split="heldout"``: ``ceiling_heldout``, the same for
    ``targets["rate_heldout"]`` (fewer trials, so lower). Computed by
    :func:`split_half_reliability` (see its Notes for the derivation:
    ``sqrt(Spearman-Brown(split-half r, n_split / h))``); the result has a scalar coord
    ``split``, ``units = "1"`` and the method in ``attrs``.
    """
    ds = split_half_reliability(targets, n_splits, seed, trials=trials)
    if split not in ds["split"].values:
        raise ConfigError("no such split for these targets", field="split",
                          found=repr(split)[:80],
                          expected=f"one of {[str(s) for s in ds['split'].values]}")
    out = ds["noise_ceiling"].sel(split=split)
    out.attrs = {**out.attrs, **ds.attrs}
    return out

