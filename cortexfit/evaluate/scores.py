"""Scores: Pearson r, RMSE (Hz) and R² of the model's trial-averaged rates against the data's
training and held-out averages per (condition, unit), with the noise ceiling of each and the
fraction of it reached, as one NetCDF-ready Dataset (:func:`score`, or
:func:`score_model_rates` for rates already made); :func:`summarize` turns it into plain
numbers; :func:`validation_score` scores against the validation trials.

Every score uses the bins of the targets' **scoring window** only
(:func:`cortexfit.targets.score_window`: ``attrs["score_start"]`` / ``["score_stop"]``,
else the whole time axis), where the model's rates are made from its own spikes within the
kernel's reach, exactly as the data's are.

**Fraction of the ceiling** (one definition, here, in ``scores.nc`` and in the report):
the mean held-out Pearson r divided by the mean noise ceiling, both over the same
(condition, unit) pairs, those with a defined (finite) ceiling: :func:`ceiling_fraction`.
A ratio of means, not a mean of per-pair ratios, which tiny ceilings (units with little
reliable signal) would dominate.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr

from .. import __version__
from ..exceptions import ConfigError, TargetError
from ..metrics import DIMENSIONLESS, pearson, pearson_kernel, r2, rmse
from ..targets import crop_to_score_window, score_window
from .ceiling import split_half_reliability
from .checks import _check_int_arg
from .model_rates import DEFAULT_N_TRIALS, model_rates

SCORE_VARIABLES = ("pearson", "rmse", "r2", "noise_ceiling", "fraction_of_ceiling",
                   "model_rate", "split_half_r", "n_data_trials")
"""The data variables of a :func:`score` Dataset."""


def ceiling_fraction(pearson_r: Any, ceiling: Any) -> float:
    """The fraction of the noise ceiling a model reaches: ``mean(r) / mean(ceiling)`` over
    the (condition, unit) pairs whose ceiling is defined (finite) and whose r is finite.

    The one definition of "fraction of the ceiling" (``score``'s ``fraction_of_ceiling``,
    :func:`summarize`, ``scores.nc`` and the report): a ratio of means, so a pair with a
    tiny ceiling (little reliable signal, its r mostly noise) weighs by its ceiling, not
    by ``1 / ceiling``. NaN when no pair has a ceiling or the mean ceiling is 0.
    """
    r = np.asarray(getattr(pearson_r, "values", pearson_r), dtype=np.float64).ravel()
    c = np.asarray(getattr(ceiling, "values", ceiling), dtype=np.float64).ravel()
    if r.shape != c.shape:
        raise ConfigError("pearson and ceiling differ in shape", field="ceiling",
                          found=f"{r.size} r, {c.size} ceilings",
                          expected="one ceiling per (condition, unit) pair")
    ok = np.isfinite(r) & np.isfinite(c)
    if not ok.any():
        return math.nan
    mean_ceiling = float(np.mean(c[ok]))
    return float(np.mean(r[ok])) / mean_ceiling if mean_ceiling > 0 else math.nan


def validation_score(model_rates_ds: xr.Dataset | xr.DataArray, targets: xr.Dataset) -> float:
    """Mean Pearson r over (condition, unit) of the model's rates against the validation
    trials' average ``rate_validation``, on the scoring window.

    ``model_rates_ds``: :func:`model_rates` output (or any Dataset with ``rate``, or a
    DataArray, over ``(condition, unit, time)`` in Hz) on the targets' time axis or on
    its scored bins; ``targets``: made with ``validation_fraction > 0`` (with or without
    ``add_auxiliary``). Only the targets' units (the recorded ones) and conditions are
    scored; a unit whose rate is constant scores 0 (:func:`cortexfit.metrics.pearson_kernel`).
    For choosing among fits (e.g. the best training loop) without touching the held-out
    test trials.
    """
    if not isinstance(targets, xr.Dataset) or "rate_validation" not in targets.data_vars:
        raise TargetError(
            "the targets have no validation trials", field="rate_validation",
            found="no rate_validation" if isinstance(targets, xr.Dataset)
            else type(targets).__name__,
            expected="targets made with validation_fraction > 0",
            hint="Make the targets with make_targets(..., validation_fraction=0.2) "
                 "([targets] validation_fraction in a run config)")
    model = model_rates_ds["rate"] if isinstance(model_rates_ds, xr.Dataset) else \
        model_rates_ds
    data = crop_to_score_window(targets["rate_validation"], targets)
    model = _on_grid(model, data, targets).values
    return float(np.mean(pearson_kernel(model, data.transpose(
        "condition", "unit", "time").values)))


VALIDATION_TRIALS = 4
"""Model trials per condition behind each validation score (the best loop's choice, the
settings search's score)."""
VALIDATION_SEED_OFFSET = 104_729
"""Validation trials are seeded ``[evaluate] seed + this``: never the test trials' seeds."""


def validation_judge(targets: xr.Dataset, *, seed: int = 0,
                     n_trials: int = VALIDATION_TRIALS):
    """The judge of a fit by its validation trials (``RLSFit(validator=...)``): a function
    of a fitted network returning the mean r of the model's trial average (``n_trials``
    fresh trials per condition, seeded ``seed +`` :data:`VALIDATION_SEED_OFFSET`, never the
    test trials' seeds) with the validation trials' average (:func:`validation_score`).
    ``seed`` is the evaluation's seed (``[evaluate] seed``). ``None`` when ``targets`` has
    no validation trials (then a fit keeps its last loop)."""
    if "rate_validation" not in targets:
        return None
    trial_seed = int(seed) + VALIDATION_SEED_OFFSET

    def judge(fitted) -> float:
        return validation_score(model_rates(fitted, targets, n_trials=n_trials,
                                            seed=trial_seed), targets)

    return judge


def _on_grid(model: xr.DataArray, data: xr.DataArray, targets: xr.Dataset) -> xr.DataArray:
    """``model`` (condition, unit, time) on ``data``'s conditions, units and (scored) time
    bins: its time axis is the targets' whole axis or their scored bins."""
    conditions = [str(c) for c in data["condition"].values]
    known = {str(c) for c in model["condition"].values}
    absent = [c for c in conditions if c not in known]
    if absent:
        raise ConfigError("the model has no rates for some conditions of the targets",
                          field="condition", found=absent[:10],
                          expected=f"conditions among {sorted(known)}")
    units = [str(u) for u in data["unit"].values]
    have = {str(u) for u in model["unit"].values}
    missing = [u for u in units if u not in have]
    if missing:
        raise ConfigError("the model has no rates for some units of the targets",
                          field="unit", found=missing[:10], expected="the targets' units")
    model = model.sel(condition=data["condition"].values, unit=data["unit"].values)
    model = crop_to_score_window(model.transpose("condition", "unit", "time"), targets)
    if model.sizes["time"] != data.sizes["time"] or not np.allclose(
            model["time"].values, data["time"].values, rtol=0, atol=1e-9):
        raise ConfigError("the model's time grid differs from the targets'", field="time",
                          found=f"{model.sizes['time']} scored bins",
                          expected=f"{data.sizes['time']} (the targets' scored bins)")
    return model


def score(fitted, targets: xr.Dataset, *, n_trials: int = DEFAULT_N_TRIALS, seed: int = 1000,
          n_splits: int = 100) -> xr.Dataset:
    """Score a fitted network against the data: per (condition, unit, split) metrics and
    the data's noise ceiling, as one NetCDF-ready Dataset, on the targets' scoring window.

    :func:`model_rates` of ``n_trials`` test trials per condition, then
    :func:`score_model_rates`.

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
        ``seed + 7919 c + k``: :func:`cortexfit.seeds.trial_seed`), and of the ceiling's
        random splits.
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
        when the targets have no ``rate_heldout``), ``time`` (the scored bins: those of
        the targets' scoring window, :func:`cortexfit.targets.score_window`).

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
        fraction_of_ceiling  (split)                   1      mean pearson / mean
                                                              noise_ceiling over the pairs
                                                              with a ceiling
                                                              (:func:`ceiling_fraction`);
                                                              NaN when skipped
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
        targets'), ``score_start`` / ``score_stop`` (the scored window, s),
        ``cortexfit_version``. Writes with ``to_netcdf(path, engine="h5netcdf")``.

    A model scored on the held-out trials cannot beat ``noise_ceiling`` (split
    ``"heldout"``) except by sampling error; on the training trials it can, by fitting
    their noise. A model's rates averaged over ``n_trials`` simulated trials carry noise
    of their own, so even a perfect model scores somewhat below the ceiling. See
    :func:`split_half_reliability` for the derivation.
    """
    n_trials = _check_int_arg(n_trials, "n_trials", 1)
    seed = _check_int_arg(seed, "seed", 0)
    n_splits = _check_int_arg(n_splits, "n_splits", 0)
    _check_targets(targets)
    # the ceiling first: it is cheap and fails fast on targets it cannot use
    scored = crop_to_score_window(targets)
    ceiling = split_half_reliability(scored, n_splits, seed) if n_splits else None
    model = model_rates(fitted, targets, n_trials=n_trials, seed=seed)
    return _score(model, targets, scored, ceiling, n_trials=n_trials, seed=seed,
                  n_splits=n_splits)


def score_model_rates(model_rates_ds: xr.Dataset, targets: xr.Dataset, *, seed: int = 1000,
                      n_splits: int = 100) -> xr.Dataset:
    """:func:`score` of model rates already made: ``model_rates_ds`` is
    :func:`model_rates` or :func:`~cortexfit.evaluate.model_rates_from_spikes` output
    (any Dataset with ``rate(condition, unit, time)`` in Hz on the targets' time axis or
    their scored bins, and ``attrs["n_model_trials"]``). ``seed`` seeds the ceiling's
    splits. Returns the Dataset :func:`score` returns."""
    seed = _check_int_arg(seed, "seed", 0)
    n_splits = _check_int_arg(n_splits, "n_splits", 0)
    _check_targets(targets)
    if not isinstance(model_rates_ds, xr.Dataset) or "rate" not in model_rates_ds.data_vars:
        raise ConfigError("the model rates are not a rates Dataset", field="model_rates_ds",
                          found=type(model_rates_ds).__name__,
                          expected="the Dataset of cortexfit.evaluate.model_rates")
    scored = crop_to_score_window(targets)
    ceiling = split_half_reliability(scored, n_splits, seed) if n_splits else None
    n_trials = int(model_rates_ds.attrs.get("n_model_trials", -1))
    return _score(model_rates_ds, targets, scored, ceiling, n_trials=n_trials, seed=seed,
                  n_splits=n_splits)


def _check_targets(targets: Any) -> None:
    if not isinstance(targets, xr.Dataset) or "rate" not in targets.data_vars:
        raise TargetError("the targets are not a targets Dataset", field="targets",
                          found=type(targets).__name__,
                          expected="the Dataset of cortexfit.targets.make_targets")


def _score(model: xr.Dataset, targets: xr.Dataset, scored: xr.Dataset,
           ceiling: xr.Dataset | None, *, n_trials: int, seed: int,
           n_splits: int) -> xr.Dataset:
    """The score Dataset of ``model`` against ``scored`` (the targets on their scoring
    window), with ``ceiling`` (of ``scored``, or None)."""
    model_rate = _model_rate(model, targets, scored, n_trials)
    splits = ["train"]
    if "rate_heldout" in scored.data_vars:
        splits.append("heldout")
    if ceiling is not None and list(ceiling["split"].values) != splits:
        splits = [str(s) for s in ceiling["split"].values]
    ds = _score_dataset(model_rate, _data_averages(scored, splits), ceiling, scored,
                        splits, n_trials=n_trials, seed=seed, n_splits=n_splits)
    start, stop = score_window(targets)
    ds.attrs.update(score_start=start, score_stop=stop)
    return ds


def _model_rate(model: xr.Dataset, targets: xr.Dataset, scored: xr.Dataset,
                n_trials: int) -> xr.DataArray:
    """The model's trial-averaged ``rate`` on the targets' conditions, units and scored
    time bins (their coords), as ``model_rate(condition, unit, time)``."""
    model_rate = _on_grid(model["rate"], scored["rate"], targets)
    return xr.DataArray(
        model_rate.values, dims=("condition", "unit", "time"),
        coords={"condition": scored["condition"], "unit": scored["unit"],
                "time": scored["time"]},
        name="model_rate",
        attrs={"units": "Hz", "long_name": f"model rate, average of {n_trials} test "
               "trials per condition, binned and smoothed like the data"},
    )


def _data_averages(targets: xr.Dataset, splits: list[str]) -> xr.DataArray:
    """The data's trial averages ``(split, condition, unit, time)``: ``rate`` (split
    ``"train"``) and ``rate_heldout`` (``"heldout"``)."""
    data = xr.concat(
        [targets["rate" if s == "train" else "rate_heldout"].transpose(
            "condition", "unit", "time").drop_vars(
            [k for k in targets["rate"].coords if k not in ("condition", "unit", "time")],
            errors="ignore")
         for s in splits],
        dim=xr.DataArray(np.array(splits, dtype=object), dims="split", name="split"),
    )
    data.attrs = {"units": "Hz"}
    return data


def _score_dataset(model_rate: xr.DataArray, data: xr.DataArray, ceiling: xr.Dataset | None,
                   targets: xr.Dataset, splits: list[str], *, n_trials: int, seed: int,
                   n_splits: int) -> xr.Dataset:
    """The metrics of ``model_rate`` against ``data``, with the ceiling (NaN when
    ``ceiling`` is None): the Dataset :func:`score` returns."""
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
    fraction = np.array([ceiling_fraction(r.values[..., s], ceil[..., s])
                         for s in range(len(splits))])
    dims3 = ("condition", "unit", "split")
    ds = xr.Dataset(
        {
            "pearson": r,
            "rmse": e,
            "r2": det,
            "noise_ceiling": (dims3, ceil, {
                **one, "long_name": "noise ceiling: expected r of a perfect noiseless model "
                "with the split's data trial average, sqrt(reliability)"}),
            "fraction_of_ceiling": ("split", fraction, {
                **one, "long_name": "fraction of the noise ceiling reached: mean pearson / "
                "mean noise_ceiling over the (condition, unit) pairs with a ceiling (NaN "
                "when not computed)"}),
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
    ``fraction_of_ceiling_s`` (:func:`ceiling_fraction`: mean pearson over mean ceiling,
    the pairs with a ceiling; the value of ``scores["fraction_of_ceiling"]``),
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
        has_ceiling = bool(np.all(np.isfinite(c)))
        out[f"pearson_{split}"] = float(np.mean(r))
        out[f"pearson_median_{split}"] = float(np.median(r))
        out[f"rmse_{split}"] = float(np.mean(s["rmse"].values))
        out[f"r2_{split}"] = float(np.mean(s["r2"].values))
        out[f"noise_ceiling_{split}"] = float(np.mean(c)) if has_ceiling else math.nan
        out[f"fraction_of_ceiling_{split}"] = ceiling_fraction(r, c)
        out[f"above_ceiling_{split}"] = float(np.mean(r > c)) if has_ceiling else math.nan
        out[f"pearson_minus_ceiling_{split}"] = (
            float(np.mean(r - c)) if has_ceiling else math.nan)
    return out
