"""Settings chosen on validation trials: a small search over candidate settings
(``[tune]`` in a run config, :func:`tune` from Python).

Every candidate is a whole fit: the recording's targets with the candidate's auxiliary
neurons, trained with the candidate's network and training settings, scored every
``validate_every`` loops against the **validation** trials (the mean Pearson r of the model's
trial average, :func:`cortexfit.evaluate.validation_score`); a candidate's score is its best
loop's. The candidate with the highest score is chosen; the held-out test trials are never
looked at, so the final test score is honest.

Two searches:

* ``"grid"``: every combination of the values given (``len(v1) x len(v2) x ...`` fits).
* ``"sequential"``: one setting at a time, in the order given: all values of the first with
  the others at their starting point (the base settings' value when it is among the
  candidates, else the first value), keep the best, then the next setting; a point already
  fitted is not fitted again (``1 + sum(len(v) - 1)`` fits at most).

Candidates run in parallel on Dask (:mod:`cortexfit.parallel`): a local cluster of one
process per core by default, or the running scheduler named by ``scheduler``.

Setting names are ``RLSFit`` parameters (``tau_s``, ``lam``, ``noise``, ``stim_amplitude``,
...) and :func:`cortexfit.add_auxiliary` parameters (``aux_ratio``, ``min_neurons``,
``amplitude``, ``tau_c``); a run config names them by section (``network.tau_s``,
``auxiliary.min_neurons``). The auxiliary targets' ``tau_s`` follows the network's.

The result is an :class:`xarray.Dataset` over ``candidate`` (what the report's "Settings
search" shows and a run writes as ``tune.nc``): ``validation`` (the score), ``best_loop``,
``pearson_train`` (the training-target fit of the last loop), ``model_rate``,
``n_neurons``, ``seconds``, ``error`` ("" when it ran), ``value(candidate, setting)`` (each
setting's value as JSON text), ``round`` (sequential search); attrs ``chosen`` (index),
``chosen_settings`` (JSON: the winning values by setting name), ``method``, ``loops``,
``where`` (the cluster) and ``metric``.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .auxiliary import add_auxiliary
from .evaluate import validation_judge
from .exceptions import ConfigError, TrainingDiverged
from .fit import RLSFit
from .parallel import dask_client, local_workers, run_jobs

__all__ = ["AUX_SETTINGS", "METHODS", "fit_candidate", "search", "tune"]

#: the settings of :func:`cortexfit.add_auxiliary` a search may vary (the rest are RLSFit's)
AUX_SETTINGS = ("aux_ratio", "min_neurons", "amplitude", "tau_c")
METHODS = ("grid", "sequential")
METRIC = ("mean Pearson r over (condition, unit) of the model's trial average with the "
          "validation trials' average, at the best loop")


# ---------------------------------------------------------------------- one candidate
def fit_candidate(targets: xr.Dataset, settings: dict[str, Any], auxiliary: dict[str, Any],
                  eval_seed: int, n_trials: int, keep_model: bool = False) -> dict[str, Any]:
    """Fit one candidate (on a Dask worker, or anywhere): ``targets`` of the recorded units
    with validation trials; ``settings`` RLSFit's keyword arguments; ``auxiliary``
    :func:`~cortexfit.add_auxiliary`'s. Returns its scores as plain numbers, and with
    ``keep_model`` the fitted model as the bytes of its NPZ file (``"model"``)."""
    start = time.perf_counter()
    model_targets = add_auxiliary(targets, **auxiliary)
    judge = validation_judge(model_targets, seed=eval_seed, n_trials=n_trials)
    fitted = RLSFit(**settings, progress=False, validator=judge).fit(model_targets)
    history = fitted.history_
    last = history.isel(loop=-1)
    out = {"validation": float(history.attrs["best_validation"]),
           "best_loop": int(history.attrs["best_loop"]),
           "pearson_train": float(last["pearson"]), "model_rate": float(last["rate"]),
           "n_neurons": int(fitted.network_.n_neurons),
           "seconds": time.perf_counter() - start}
    if keep_model:
        with tempfile.TemporaryDirectory(prefix="cortexfit-candidate-") as tmp:
            out["model"] = fitted.save(Path(tmp) / "model.npz").read_bytes()
    return out


# ---------------------------------------------------------------------- the search
def _key(point: dict[str, Any], context: str) -> str:
    text = json.dumps([sorted(point.items()), context], default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_grid(grid: dict[str, list[Any]], method: str, field: str) -> None:
    if method not in METHODS:
        raise ConfigError("unknown search method", field=f"{field}.method", found=method,
                          expected=" or ".join(repr(m) for m in METHODS))
    if not isinstance(grid, dict) or not grid:
        raise ConfigError("the search has no candidate settings", field=f"{field}.grid",
                          found=grid, expected="a table of setting -> list of values, e.g. "
                          "{\"network.tau_s\" = [0.025, 0.05]}")
    for name, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError("a searched setting needs a list of candidate values",
                              field=f"{field}.grid.{name}", found=values,
                              expected="a non-empty list")
        if len({json.dumps(v, default=str) for v in values}) != len(values):
            raise ConfigError("a searched setting lists a value twice",
                              field=f"{field}.grid.{name}", found=values,
                              expected="distinct values")


def search(targets: xr.Dataset, grid: dict[str, list[Any]],
           make: Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]], *,
           start: dict[str, Any] | None = None, method: str = "sequential",
           eval_seed: int = 0, n_trials: int = 4, scheduler: str | None = None,
           n_workers: int | None = None, store: str | Path | None = None,
           progress: bool = True, field: str = "tune",
           models: dict[str, Any] | None = None) -> xr.Dataset:
    """The search engine behind :func:`tune` and ``[tune]``: ``make(point)`` turns a
    candidate (setting name -> value, the grid's keys) into ``(RLSFit settings,
    add_auxiliary settings)`` (and raises :class:`ConfigError` for a bad value, before any
    fit); ``start`` is the sequential search's starting point (default: each setting's first
    value). ``store``: a folder where each finished candidate is kept, so that an interrupted
    search runs only the missing ones. ``field`` names the settings in errors. ``models``: a
    dict that receives the chosen candidate's fit as NPZ bytes under ``"chosen"`` (with its
    settings under ``"settings"``), when it was fitted in this call (not read back from
    ``store``), so that the caller need not fit it again."""
    _check_grid(grid, method, field)
    if "rate_validation" not in targets:
        raise ConfigError(
            "a settings search needs validation trials", field=f"{field}",
            found="targets without rate_validation",
            expected="targets made with validation_fraction > 0",
            hint="Set [targets] validation_fraction (e.g. 0.2; make_targets(..., "
                 "validation_fraction=0.2) from Python)")
    names = list(grid)
    made: dict[str, tuple[dict, dict]] = {}

    def prepare(point: dict[str, Any]) -> str:
        settings, aux = make(point)
        key = _key(point, json.dumps([settings, aux, eval_seed, n_trials], sort_keys=True,
                                     default=str))
        made[key] = (settings, aux)
        return key

    # every candidate's settings are made (so checked) before anything runs
    first = {n: (start[n] if start and n in start and start[n] in grid[n] else grid[n][0])
             for n in names}
    if method == "grid":
        for values in itertools.product(*grid.values()):
            prepare(dict(zip(names, values)))
    else:
        for name in names:
            for value in grid[name]:
                prepare({**first, name: value})
    points: list[dict[str, Any]] = []
    keys: list[str] = []
    round_of: list[int] = []
    results: dict[str, Any] = {}
    fitted_models: dict[str, bytes] = {}
    where = scheduler or f"local cluster of {local_workers(n_workers)} processes"
    with dask_client(scheduler, n_workers, field=f"{field}.scheduler") as client:

        def run(round_points: list[dict[str, Any]], number: int) -> list[str]:
            """Fit the round's points not fitted yet; their keys, in order."""
            todo, order = [], []
            for point in round_points:
                key = prepare(point)
                order.append(key)
                if key in keys:
                    continue
                points.append(point)
                keys.append(key)
                round_of.append(number)
                todo.append(key)
            outcomes = run_jobs(
                client, fit_candidate,
                [{"settings": made[k][0], "auxiliary": made[k][1],
                  "keep_model": models is not None} for k in todo], todo,
                shared={"targets": targets, "eval_seed": eval_seed, "n_trials": n_trials},
                store=store, progress=progress,
                desc=f"{field} {number + 1}/{len(names)}" if method == "sequential" else field)
            for o in outcomes:
                if o.ok and o.result is not None and "model" in o.result:
                    fitted_models[o.key] = o.result.pop("model")
            results.update({o.key: o for o in outcomes})
            # keep only the best model so far (memory: one network, not one per candidate)
            if fitted_models:
                best_key = max(fitted_models, key=lambda k: np.nan_to_num(
                    results[k].result["validation"], nan=-np.inf))
                for k in [k for k in fitted_models if k != best_key]:
                    del fitted_models[k]
            return order

        if method == "grid":
            run([dict(zip(names, v)) for v in itertools.product(*grid.values())], 0)
        else:
            best = dict(first)
            for number, name in enumerate(names):
                order = run([{**best, name: value} for value in grid[name]], number)
                ok = [(results[k].result["validation"], -i) for i, k in enumerate(order)
                      if results[k].ok and np.isfinite(results[k].result["validation"])]
                if ok:
                    best[name] = grid[name][-max(ok)[1]]
    result = _as_dataset(points, keys, round_of, results, names, method, where)
    chosen_key = keys[int(result.attrs["chosen"])]
    if models is not None and chosen_key in fitted_models:
        models["chosen"] = fitted_models[chosen_key]
        models["settings"] = made[chosen_key][0]
        models["auxiliary"] = made[chosen_key][1]
    return result


def _as_dataset(points, keys, round_of, results, names, method, where) -> xr.Dataset:
    n = len(points)
    fields = ("validation", "best_loop", "pearson_train", "model_rate", "n_neurons", "seconds")
    values = {f: np.full(n, np.nan) for f in fields}
    errors = []
    for i, key in enumerate(keys):
        outcome = results[key]
        errors.append(outcome.error or "")
        if outcome.ok:
            for f in fields:
                values[f][i] = outcome.result[f]
    ok = [i for i in range(n) if not errors[i] and np.isfinite(values["validation"][i])]
    if not ok:
        raise TrainingDiverged(
            "every candidate of the settings search failed", field="tune",
            found="; ".join(f"{json.dumps(points[i], default=str)}: {errors[i]}"
                            for i in range(n))[:1500],
            expected="at least one candidate that trains",
            hint="Change the candidate values (see each error)")
    chosen = max(ok, key=lambda i: (values["validation"][i], -i))
    ds = xr.Dataset(
        {f: ("candidate", values[f]) for f in fields},
        coords={"candidate": np.arange(n), "setting": names})
    ds["validation"].attrs["long_name"] = METRIC
    ds["seconds"].attrs["units"] = "s"
    ds["model_rate"].attrs["units"] = "Hz"
    ds["error"] = ("candidate", np.array(errors, dtype=str))
    ds["round"] = ("candidate", np.array(round_of, dtype=np.int32))
    ds["value"] = (("candidate", "setting"), np.array(
        [[json.dumps(p[name], default=str) for name in names] for p in points], dtype=str))
    ds.attrs.update(chosen=int(chosen), chosen_settings=json.dumps(points[chosen],
                                                                   default=str),
                    method=method, where=where, metric=METRIC)
    return ds


def chosen_settings(result: xr.Dataset) -> dict[str, Any]:
    """The winning candidate's values, by setting name (from :func:`tune`'s result)."""
    return json.loads(result.attrs["chosen_settings"])


# ---------------------------------------------------------------------- library call
def tune(targets: xr.Dataset, grid: dict[str, list[Any]], *,
         settings: dict[str, Any] | None = None, auxiliary: dict[str, Any] | None = None,
         method: str = "sequential", loops: int | None = None, eval_seed: int = 0,
         n_trials: int = 4, scheduler: str | None = None, n_workers: int | None = None,
         store: str | Path | None = None, progress: bool = True) -> xr.Dataset:
    """Choose settings on the validation trials of ``targets`` (the recorded units' targets,
    made with ``validation_fraction > 0``, without auxiliary neurons).

    ``grid``: setting name -> candidate values, e.g. ``{"tau_s": [0.025, 0.05],
    "min_neurons": [300, 600]}`` (RLSFit's parameters and add_auxiliary's
    :data:`AUX_SETTINGS`). ``settings``: RLSFit's other keyword arguments (default: the
    recordings preset, :meth:`RLSFit.for_recordings`); ``auxiliary``: add_auxiliary's
    (default: its own defaults with ``min_neurons = 300``, as a run's). ``loops``
    overrides ``settings['loops']`` for every candidate. Returns the Dataset described in
    the module docstring; :func:`chosen_settings` reads the winner.

    Example::

        result = tune(targets, {"tau_s": [0.025, 0.05, 0.1]}, loops=10)
        best = chosen_settings(result)          # e.g. {"tau_s": 0.05}
        fit = RLSFit.for_recordings(**best).fit(add_auxiliary(targets, min_neurons=300,
                                                              tau_s=best["tau_s"]))
    """
    base = RLSFit.for_recordings().settings() if settings is None else \
        {**RLSFit.for_recordings().settings(), **settings}
    for k in ("checkpoint", "progress"):
        base.pop(k, None)
    if loops is not None:
        base["loops"] = int(loops)
    aux_base = {"min_neurons": 300, **(auxiliary or {})}
    aux_base.setdefault("seed", base.get("seed", 0))
    aux_base.setdefault("neuron_model", base.get("neuron_model", "theta"))

    def make(point: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        fit_kw = {**base, **{k: v for k, v in point.items() if k not in AUX_SETTINGS}}
        aux_kw = {**aux_base, **{k: v for k, v in point.items() if k in AUX_SETTINGS},
                  "tau_s": fit_kw["tau_s"]}
        unknown = [k for k in point if k not in AUX_SETTINGS and k not in base]
        if unknown:
            raise ConfigError("unknown setting in the search", field=f"grid.{unknown[0]}",
                              expected="an RLSFit parameter or one of "
                              + ", ".join(AUX_SETTINGS))
        RLSFit(**fit_kw)._check()
        return fit_kw, aux_kw

    start = {k: base[k] for k in grid if k in base}
    start.update({k: aux_base[k] for k in grid if k in aux_base})
    return search(targets, grid, make, start=start, method=method, eval_seed=eval_seed,
                  n_trials=n_trials, scheduler=scheduler, n_workers=n_workers, store=store,
                  progress=progress, field="grid")
