"""Evaluate a fitted network against the data.

* :func:`model_rates`: simulate a fitted network on fresh trials and turn its spikes into
  rates exactly as the data's were made, so model and data can be compared bin for bin.
  It runs ``n_trials`` test trials per condition (fresh random initial conditions, the
  condition's stimulus, then the trained window), builds a ``neo.Block`` of the recorded
  units' model spike trains with the data's alignment (time zero = the targets' time zero)
  and passes it through :func:`cortexfit.targets.make_targets` with the **same** window, bin
  size and kernel as the targets. The result is a targets-shaped Dataset: ``rate``
  (condition, unit, time) in Hz, trial-averaged over the model's trials (plus
  ``trial_rate`` with ``keep_trials=True``).
* :func:`split_half_reliability` / :func:`noise_ceiling`: how well a perfect, noiseless
  model could correlate with the data's trial averages, given their trial-to-trial noise
  (split-half reliability, Spearman-Brown corrected to each average's trial count; the
  derivation is in :func:`split_half_reliability`).
* :func:`score`: Pearson r, RMSE (Hz) and R² of the model's trial-averaged rates against the
  training and held-out averages per (condition, unit), with the noise ceiling of each and
  the fraction of it reached, as one NetCDF-ready Dataset; :func:`summarize` turns it into
  plain numbers.
"""
from __future__ import annotations

import math
import numbers
import zlib

import numpy as np
import xarray as xr

from .exceptions import ConfigError, TargetError
from .fit.fitted import as_fitted
from .metrics import DIMENSIONLESS, pearson, pearson_kernel, r2, rmse, spearman_brown

__all__ = ["model_rates", "score", "summarize", "noise_ceiling", "split_half_reliability",
           "example_model_spikes",
           "CEILING_TRIALS", "SCORE_VARIABLES", "DEFAULT_N_TRIALS"]

DEFAULT_N_TRIALS = 12
"""Model test trials per condition that :func:`score` and :func:`model_rates` average (the
run config's ``[evaluate] n_trials`` default; it was 10 here and 12 in the config)."""


def model_rates(fitted, targets: xr.Dataset, *, n_trials: int = DEFAULT_N_TRIALS,
                seed: int = 1000,
                keep_trials: bool = False) -> xr.Dataset:
    """Trial-averaged model rates of the recorded units, binned and smoothed like ``targets``.

    ``fitted`` is a fitted :class:`cortexfit.fit.RLSFit`; ``targets`` the Dataset it was
    trained on (from ``make_targets``, optionally with ``add_auxiliary``).
    """
    from .io.arrays import from_spike_times
    from .targets import make_targets

    fitted = as_fitted(fitted)
    if n_trials < 1:
        raise ConfigError("n_trials must be >= 1", field="n_trials", found=n_trials,
                          expected=">= 1")
    tg = fitted.targets
    units, neurons = _recorded_neurons(fitted, targets)
    start = float(targets.attrs["window_start"])
    stop = float(targets.attrs["window_stop"])
    t_first = fitted.protocol.window_start  # window start on the
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


# --------------------------------------------------------------------------------------
# noise ceiling
# --------------------------------------------------------------------------------------

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


def _recorded_neurons(fitted, targets: xr.Dataset) -> tuple[list[str], np.ndarray]:
    """The targets' units and the index of each one's model neuron."""
    tg = fitted.targets
    units = [str(u) for u in targets["unit"].values]
    recorded = {unit: k for k, (unit, role) in enumerate(zip(tg.recorded_unit, tg.roles))
                if role == "recorded"}
    missing = [u for u in units if u not in recorded]
    if missing:
        raise ConfigError("the model has no neuron for some recorded units", field="unit",
                          found=missing[:10], expected="units the model was trained on")
    return units, np.array([recorded[u] for u in units], dtype=np.int64)


def _check_int_arg(value, name: str, lo: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
            or int(value) < lo:
        raise ConfigError(f"{name} must be an integer >= {lo}", field=name,
                          found=repr(value)[:80], expected=f"an integer >= {lo}")
    return int(value)


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
        ``numpy.random.default_rng([seed, zlib.crc32(c.encode())])``, so its splits do not
        depend on the other conditions.
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
        rng = np.random.default_rng([seed, zlib.crc32(label.encode("utf-8"))])
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
    factor = counts / half[:, None]                               # (condition, split)
    reliability = spearman_brown(split_r[:, :, None], factor[:, None, :])
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


# --------------------------------------------------------------------------------------
# score
# --------------------------------------------------------------------------------------

SCORE_VARIABLES = ("pearson", "rmse", "r2", "noise_ceiling", "fraction_of_ceiling",
                   "model_rate", "split_half_r", "n_data_trials")
"""The data variables of a :func:`score` Dataset."""


def score(fitted, targets: xr.Dataset, *, n_trials: int = DEFAULT_N_TRIALS, seed: int = 1000,
          n_splits: int = 100) -> xr.Dataset:
    """Score a fitted network against the data: per (condition, unit, split) metrics and
    the data's noise ceiling, as one NetCDF-ready Dataset.

    Parameters
    ----------
    fitted
        A fitted :class:`cortexfit.fit.RLSFit` (rate form) whose recorded units include
        every unit of ``targets``.
    targets
        The targets Dataset the model was fitted to (``make_targets`` output, with or
        without ``add_auxiliary``); only the recorded units are scored.
    n_trials
        Model test trials per condition (:func:`model_rates`; their average is scored).
    seed
        Seed of the model's test trials (trial k of condition c uses
        ``seed + 7919 c + k``), and of the ceiling's random splits.
    n_splits
        Random splits for the noise ceiling (:func:`split_half_reliability`, all trials of
        each condition). ``0`` skips the ceiling: ``noise_ceiling``,
        ``fraction_of_ceiling`` and ``split_half_r`` are then NaN and
        ``attrs["ceiling_method"]`` says so (the only way to score targets without single
        trials). With ``n_splits >= 1`` such targets raise :class:`TargetError`.

    Returns
    -------
    xarray.Dataset
        dims ``condition``, ``unit``, ``split`` (``["train", "heldout"]``, or ``["train"]``
        when the targets have no ``rate_heldout``), ``time``.

        ===================  ========================  =====  =============================
        variable             dims                      units  meaning
        ===================  ========================  =====  =============================
        pearson              (condition, unit, split)  1      Pearson r over time of the
                                                              model's trial-averaged rate
                                                              and the split's data average
                                                              (``rate`` / ``rate_heldout``)
        rmse                 (condition, unit, split)  Hz     root-mean-square difference
                                                              over time
        r2                   (condition, unit, split)  1      R² of the model (prediction)
                                                              for the data average (1 -
                                                              SS_res / SS_tot); 0/1 for a
                                                              constant data rate (see
                                                              :func:`~cortexfit.metrics.r2_kernel`)
        noise_ceiling        (condition, unit, split)  1      sqrt(reliability) of the
                                                              split's data average: the
                                                              expected r of a perfect
                                                              noiseless model
        fraction_of_ceiling  (condition, unit, split)  1      pearson / noise_ceiling; NaN
                                                              where the ceiling is 0 (no
                                                              reliable signal) or skipped
        model_rate           (condition, unit, time)   Hz     the model's trial-averaged
                                                              rate (binned/smoothed like
                                                              the data)
        split_half_r         (condition, unit)         1      mean split-half r of the data
        n_data_trials        (condition, split)        1      trials in each data average
                                                              (0 if the targets do not say)
        ===================  ========================  =====  =============================

        Coords: ``condition``, ``unit`` (the targets' labels), ``split``, ``time`` (s,
        relative to the alignment event), and the targets' per-unit coords
        (``mean_rate`` of the data in Hz, ``cell_type``, ...). Attrs: ``n_trials`` (model
        trials per condition), ``seed``, ``n_splits``, ``ceiling_trials`` (``"all"``, or
        ``"none"`` when skipped),
        ``ceiling_method`` (the recipe), ``metric_dim`` (``"time"``), ``source`` (the
        targets'), ``cortexfit_version``. Writes with
        ``to_netcdf(path, engine="h5netcdf")``.

    A model scored on the held-out trials cannot beat ``noise_ceiling`` (split
    ``"heldout"``) except by sampling error; on the training trials it can, by fitting
    their noise. A model's rates averaged over ``n_trials`` simulated trials carry noise
    of their own, so even a perfect model scores somewhat below the ceiling. See
    :func:`split_half_reliability` for the derivation.
    """
    from . import __version__

    n_trials = _check_int_arg(n_trials, "n_trials", 1)
    seed = _check_int_arg(seed, "seed", 0)
    n_splits = _check_int_arg(n_splits, "n_splits", 0)
    if not isinstance(targets, xr.Dataset) or "rate" not in targets.data_vars:
        raise TargetError("the targets are not a targets Dataset", field="targets",
                          found=type(targets).__name__,
                          expected="the Dataset of cortexfit.targets.make_targets")
    # the ceiling first: it is cheap and fails fast on targets it cannot use
    ceiling = split_half_reliability(targets, n_splits, seed) if n_splits else None
    model = model_rates(fitted, targets, n_trials=n_trials, seed=seed)

    conditions = targets["condition"].values
    known = {str(c) for c in model["condition"].values}
    absent = [str(c) for c in conditions if str(c) not in known]
    if absent:
        raise ConfigError("the model was not trained on some conditions of the targets",
                          field="condition", found=absent[:10],
                          expected=f"conditions among {sorted(known)}")
    model_rate = model["rate"].sel(condition=conditions, unit=targets["unit"].values)
    model_rate = model_rate.transpose("condition", "unit", "time")
    if model_rate.sizes["time"] != targets.sizes["time"] or not np.allclose(
            model_rate["time"].values, targets["time"].values, rtol=0, atol=1e-9):
        raise ConfigError("the model's time grid differs from the targets'", field="time",
                          found=model_rate.sizes["time"], expected=targets.sizes["time"])
    model_rate = xr.DataArray(
        model_rate.values, dims=("condition", "unit", "time"),
        coords={"condition": targets["condition"], "unit": targets["unit"],
                "time": targets["time"]},
        name="model_rate",
        attrs={"units": "Hz", "long_name": f"model rate, average of {n_trials} test "
               "trials per condition, binned and smoothed like the data"},
    )

    splits = ["train"]
    if "rate_heldout" in targets.data_vars:
        splits.append("heldout")
    if ceiling is not None and list(ceiling["split"].values) != splits:
        splits = [str(s) for s in ceiling["split"].values]
    data = xr.concat(
        [targets["rate" if s == "train" else "rate_heldout"].transpose(
            "condition", "unit", "time").drop_vars(
            [k for k in targets["rate"].coords if k not in ("condition", "unit", "time")],
            errors="ignore")
         for s in splits],
        dim=xr.DataArray(np.array(splits, dtype=object), dims="split", name="split"),
    )
    data.attrs = {"units": "Hz"}
    r = pearson(model_rate, data).transpose("condition", "unit", "split")
    e = rmse(model_rate, data).transpose("condition", "unit", "split")
    det = r2(model_rate, data).transpose("condition", "unit", "split")
    r.attrs["long_name"] = "Pearson r over time, model vs data trial average"
    e.attrs["long_name"] = "root-mean-square difference over time, model vs data " \
        "trial average"
    det.attrs["long_name"] = "R² of the model rate (prediction) for the data trial " \
        "average (1 - SS_res / SS_tot; 1 or 0 where the data rate is constant)"

    one = {"units": DIMENSIONLESS}
    if ceiling is not None:
        ceil = ceiling["noise_ceiling"].transpose("condition", "unit", "split").values
        shr = ceiling["split_half_r"].values
        counts = ceiling["n_data_trials"].values
        method = ceiling.attrs["method"]
    else:
        ceil = np.full(r.shape, np.nan)
        shr = np.full(r.shape[:2], np.nan)
        counts = _data_counts(targets, splits)
        method = "not computed (n_splits = 0): noise_ceiling, fraction_of_ceiling and " \
            "split_half_r are NaN"
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(ceil > 0, r.values / ceil, np.nan)
    dims3 = ("condition", "unit", "split")
    ds = xr.Dataset(
        {
            "pearson": r,
            "rmse": e,
            "r2": det,
            "noise_ceiling": (dims3, ceil, {
                **one, "long_name": "noise ceiling: expected r of a perfect noiseless model "
                "with the split's data trial average, sqrt(reliability)"}),
            "fraction_of_ceiling": (dims3, fraction, {
                **one, "long_name": "pearson / noise_ceiling (NaN where the ceiling is 0 or "
                "not computed)"}),
            "model_rate": model_rate,
            "split_half_r": (("condition", "unit"), shr, {
                **one, "long_name": "mean split-half correlation of the data (R_h)"}),
            "n_data_trials": (("condition", "split"), counts, {
                **one, "long_name": "trials averaged in the data rate of each split"}),
        },
        attrs={
            "n_trials": n_trials,
            "seed": seed,
            "n_splits": n_splits,
            "ceiling_trials": "all" if ceiling is not None else "none",
            "ceiling_method": method,
            "metric_dim": "time",
            "source": str(targets.attrs.get("source", "")),
            "cortexfit_version": __version__,
        },
    )
    ds = ds.assign_coords(split=("split", np.array(splits, dtype=object)))
    for name, coord in targets.coords.items():
        if coord.dims == ("unit",) and name != "unit":
            ds = ds.assign_coords({name: coord.variable.copy()})
    return ds


def _data_counts(targets: xr.Dataset, splits: list[str]) -> np.ndarray:
    if "n_trials" in targets.data_vars:
        return targets["n_trials"].transpose("condition", "split").sel(
            split=splits).values.astype(np.int64)
    return np.zeros((targets.sizes["condition"], len(splits)), dtype=np.int64)


def summarize(scores: xr.Dataset) -> dict[str, float | int]:
    """Plain-number summary of a :func:`score` Dataset (or one read back from NetCDF).

    Means over all (condition, unit) pairs, one key per split ``s``:
    ``pearson_s``, ``pearson_median_s``, ``rmse_s`` (Hz), ``r2_s``, ``noise_ceiling_s``,
    ``fraction_of_ceiling_s`` (mean over the pairs where it is defined),
    ``above_ceiling_s`` (fraction of pairs with pearson > noise_ceiling; expected near 0
    on held-out trials) and ``pearson_minus_ceiling_s`` (mean of pearson - ceiling);
    plus ``n_conditions``, ``n_units`` and ``n_trials`` (model trials per condition).
    Ceiling keys are NaN when the ceiling was not computed.
    """
    missing = [v for v in ("pearson", "rmse", "r2", "noise_ceiling", "fraction_of_ceiling")
               if v not in scores.data_vars]
    if missing:
        raise ConfigError("not a score Dataset", field="scores", found=f"missing {missing}",
                          expected="the Dataset returned by cortexfit.evaluate.score")
    out: dict[str, float | int] = {
        "n_conditions": int(scores.sizes["condition"]),
        "n_units": int(scores.sizes["unit"]),
        "n_trials": int(scores.attrs.get("n_trials", -1)),
    }
    for split in scores["split"].values:
        s = scores.sel(split=split)
        r = s["pearson"].values
        c = s["noise_ceiling"].values
        f = s["fraction_of_ceiling"].values
        has_ceiling = bool(np.all(np.isfinite(c)))
        out[f"pearson_{split}"] = float(np.mean(r))
        out[f"pearson_median_{split}"] = float(np.median(r))
        out[f"rmse_{split}"] = float(np.mean(s["rmse"].values))
        out[f"r2_{split}"] = float(np.mean(s["r2"].values))
        out[f"noise_ceiling_{split}"] = float(np.mean(c)) if has_ceiling else math.nan
        out[f"fraction_of_ceiling_{split}"] = (
            float(np.mean(f[np.isfinite(f)])) if np.isfinite(f).any() else math.nan)
        out[f"above_ceiling_{split}"] = float(np.mean(r > c)) if has_ceiling else math.nan
        out[f"pearson_minus_ceiling_{split}"] = (
            float(np.mean(r - c)) if has_ceiling else math.nan)
    return out


# --------------------------------------------------------------------------------------
# example model spikes (the report's model rasters)
# --------------------------------------------------------------------------------------

def example_model_spikes(fitted, targets: xr.Dataset, *, seed: int,
                         n_per_condition: int = 1) -> xr.Dataset:
    """Spikes of the recorded units in a few test trials of the fitted network, for rasters.

    Runs ``n_per_condition`` test trials per condition of ``targets`` with
    ``fitted.run_trial`` (trial k of condition c uses ``seed + 7919 c + k``, the seeds of
    :func:`model_rates` and :func:`score`, so with the same ``seed`` these are the first of
    the scored trials) and keeps the spikes of the model neurons of the recorded units,
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
            trial_seed = int(seed) + 7919 * c + k
            run = fitted.run_trial(c, seed=trial_seed)
            t = np.asarray(run["spike_time"].values, dtype=np.float64)
            u = unit_of_neuron[np.asarray(run["spike_neuron"].values, dtype=np.int64)]
            keep = (u >= 0) & (t >= start) & (t <= stop)
            times.append(t[keep])
            spike_units.append(u[keep].astype(np.int32))
            trials.append(np.full(int(keep.sum()), len(labels), dtype=np.int32))
            labels.append(condition)
            seeds.append(trial_seed)
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
