"""make_targets: a recording (neo.Block) -> trial-averaged rates, in named steps.

Check the arguments, then the Block; choose the trials (:mod:`.selection`); bin and smooth
them (:mod:`.rates`); drop the units below ``min_rate``; average each condition's training
and held-out trials; write the Dataset (:mod:`.schema`).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from .. import __version__
from ..exceptions import ConfigError, TargetError
from ..io.convention import check_block, unit_annotations, unit_ids
from .checks import _check_int, _check_real
from .rates import (
    _CAUSAL_KERNELS,
    Kernel,
    _binned_rates,
    _Binning,
    _check_binning,
    _smoother,
)
from .schema import _trial_targets
from .selection import _trial_label, _trial_selection, _TrialSelection

logger = logging.getLogger(__package__)  # "cortexfit.targets", as before the split


def make_targets(
    block: Any,
    *,
    align: str,
    window: Sequence[float],
    condition: str | Sequence[str] = "condition",
    where: Mapping[str, Any] | Callable[[dict[str, Any]], bool] | None = None,
    bin_size: float = 0.02,
    kernel: Kernel = "gaussian",
    kernel_width: float = 0.05,
    min_rate: float = 1.0,
    heldout_fraction: float = 0.2,
    min_trials: int = 2,
    seed: int = 0,
    keep_trials: bool = True,
) -> xr.Dataset:
    """Trial-averaged target rates from a recording, following :mod:`.schema`.

    Parameters
    ----------
    block
        A ``neo.Block`` following :mod:`cortexfit.io.convention` (checked first; spike
        trains in other time units are rescaled to seconds in place).
    align
        Name of the trial event to align on (one of :func:`event_names`). Trials that lack
        it are dropped and counted in ``attrs["n_trials_missing_event"]``.
    window
        ``(start, stop)`` in seconds relative to the event, ``start < stop``. Every
        selected trial must cover ``[event + start, event + stop]`` (to 1e-6 bin).
    condition
        Trial annotation key whose values label the conditions, or a list of keys (the
        label is the values joined by ``"|"``, e.g. ``"left|correct"``). Conditions are
        sorted by their values.
    where
        Trial filter applied first: ``{annotation: value or list of values}`` (a trial
        passes when, for every key, its value equals one of the accepted values or has
        the same string form, so ``"1"`` matches ``1``), or a function of the trial's
        annotation dict returning True/False. An accepted value that no trial has is an
        error (it is most likely a typo), as is a filter that keeps no trial.
    bin_size
        Bin width in seconds; it must divide the window into at least 2 whole bins (to
        1e-9 relative).
    kernel, kernel_width
        Smoothing kernel (one of :data:`KERNELS`) and its standard deviation in seconds
        (from ``bin_size / 1000`` to the window length), as in :mod:`elephant.kernels`
        (for ``"exponential"`` the SD is the time constant; for ``"rectangular"``, alias
        ``"boxcar"``, the half-width is ``sqrt(3)`` SD). ``"none"`` means plain
        spike counts per bin divided by ``bin_size`` (``kernel_width`` is then ignored and
        recorded as 0). ``"exponential"`` and ``"alpha"`` are **causal** (the rate at
        ``t`` depends only on spikes before ``t``, up to the bin resolution: a spike counts
        from its own bin on), like the model's filtered spike train; the other kernels are
        symmetric and centred on the spike. How the rates are computed (half-open bins,
        Elephant's kernels, the padding, two corrections): :mod:`cortexfit.targets.rates`.
    min_rate
        Units whose mean rate over the selected trials and the window (spike count /
        (trials x window length), Hz) is below ``min_rate`` are dropped and listed in
        ``attrs["dropped_units"]`` (JSON list of ids) and ``attrs["report"]``.
    heldout_fraction
        Fraction of each condition's trials held out, in ``[0, 1)``: per condition
        ``n_heldout = round(heldout_fraction * n)`` (halves rounded up). With 0, the
        Dataset has no ``rate_heldout`` and ``n_trials`` is 0 for ``"heldout"``.
    min_trials
        Minimum number of training trials per condition (>= 1). A condition with fewer,
        or with no held-out trial while ``heldout_fraction > 0``, is an error.
    seed
        Seed (int >= 0) of the split. Each condition's held-out trials are a random
        permutation drawn by ``numpy.random.default_rng([seed, crc32(label)])``, so a
        condition's split depends only on the seed, its label and its trials (in Block
        order), not on the other conditions or the ``where`` filter applied to them.
    keep_trials
        Keep the single-trial rates ``trial_rate(trial, unit, time)`` (float32, Hz).

    Returns
    -------
    xarray.Dataset
        As in :mod:`.schema`: ``rate`` and ``rate_heldout`` (float64, Hz),
        ``n_trials(condition, split)``, ``trial_rate`` when ``keep_trials``, coords
        ``mean_rate(unit)`` and any unit attribute that every kept unit has (a name that
        clashes with the schema gets a ``unit_`` prefix). Besides the schema's attrs it
        records ``n_trials_selected`` (after ``where``), ``n_trials_missing_event``,
        ``n_trials_used``, ``n_trials_short_padding`` (see :mod:`.rates`), ``min_trials``,
        ``kernel_causal`` (0/1) and ``report`` (a readable summary, also logged at INFO).
        ``condition_key`` is the key, or the keys joined by ``"|"``. Everything is
        NetCDF-writable (``engine="h5netcdf"``).

    Raises
    ------
    ConfigError
        An argument of the wrong type or out of range.
    TargetError
        The targets cannot be made from this recording as asked: unknown event or
        annotation, window outside a trial, too few trials, every unit below ``min_rate``.
    DataError
        The Block does not follow the convention.
    """
    # ---- arguments (checked before the Block, which is slower) ---------------------
    grid = _check_binning(window, bin_size, kernel, kernel_width)
    min_rate, heldout_fraction, min_trials, seed = _check_options(
        min_rate, heldout_fraction, min_trials, seed, keep_trials)
    block = check_block(block)
    src = block.annotations.get("source")
    trials = _trial_selection(
        block, align=align, condition=condition, where=where, window=(grid.start, grid.stop),
        bin_size=grid.bin_size, heldout_fraction=heldout_fraction, min_trials=min_trials,
        seed=seed, src=src,
    )
    all_units = unit_ids(block)
    rates, spike_counts, short_padding = _recorded_rates(block, trials, grid, len(all_units),
                                                         src)
    keep_unit, mean_rate, dropped = _select_units(all_units, spike_counts, len(trials.kept),
                                                  grid, min_rate, src)
    units = [u for u, k in zip(all_units, keep_unit) if k]
    rates = rates[:, keep_unit]
    rate, rate_held = _condition_means(rates, trials, heldout_fraction)

    report = _report(block, trials, align, units, all_units, mean_rate, dropped, min_rate)
    logger.info("make_targets: %s", report)
    attrs = _attrs(src, align, grid, trials, heldout_fraction, seed, min_rate, min_trials,
                   dropped, short_padding, report)
    return _trial_targets(
        rate, rate_held, counts=trials.counts, conditions=trials.cond_order, units=units,
        time=grid.start + grid.bin_size * (np.arange(grid.n_time) + 0.5), align=align,
        mean_rate=mean_rate[keep_unit],
        unit_ann=[a for a, k in zip(unit_annotations(block), keep_unit) if k],
        heldout_fraction=heldout_fraction, trial_rates=rates,
        trial_ids=[_trial_label(block.segments[i], i) for i in trials.kept]
        if keep_trials else None,
        trial_conditions=trials.kept_labels, is_heldout=trials.is_heldout, attrs=attrs,
    )


def _check_options(min_rate: Any, heldout_fraction: Any, min_trials: Any, seed: Any,
                   keep_trials: Any) -> tuple[float, float, int, int]:
    """``min_rate``, ``heldout_fraction``, ``min_trials``, ``seed`` checked (ConfigError),
    and ``keep_trials`` a bool."""
    min_rate = _check_real(min_rate, "min_rate", lo=0.0, hi=None,
                           expected="a rate in Hz >= 0")
    heldout_fraction = _check_real(heldout_fraction, "heldout_fraction", lo=0.0, hi=1.0,
                                   expected="a fraction in [0, 1)")
    min_trials = _check_int(min_trials, "min_trials", lo=1, expected="an integer >= 1")
    seed = _check_int(seed, "seed", lo=0, expected="an integer >= 0")
    if not isinstance(keep_trials, (bool, np.bool_)):
        raise ConfigError("keep_trials must be True or False", field="keep_trials",
                          found=repr(keep_trials)[:120], expected="a bool")
    return min_rate, heldout_fraction, min_trials, seed


def _recorded_rates(block: Any, trials: _TrialSelection, grid: _Binning, n_units: int,
                    src: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """Single-trial rates ``(trial, unit, time)`` of the trials used, each unit's spike
    count in the window, and how many trials' spans cut the kernel's padding."""
    segments = [block.segments[i] for i in trials.kept]

    def times_of(j: int) -> list[np.ndarray]:
        return [np.asarray(st.magnitude, dtype=np.float64) for st in segments[j].spiketrains]

    smoother = _smoother(grid.kernel, grid.kernel_width, grid.bin_size)
    rates, spike_counts, short_padding = _binned_rates(
        times_of, [ev + grid.start for ev in trials.events], n_units, grid.n_time,
        grid.bin_size, smoother, spans=trials.spans,
    )
    if not np.all(np.isfinite(rates)):  # pragma: no cover - defensive
        raise TargetError("non-finite rates were computed", file=src, field="rate",
                          found=f"{int(np.sum(~np.isfinite(rates)))} values",
                          expected="finite rates")
    return rates, spike_counts, short_padding


def _select_units(all_units: list[str], spike_counts: np.ndarray, n_trials: int,
                  grid: _Binning, min_rate: float, src: Any):
    """Which units reach ``min_rate`` (a bool mask), every unit's mean rate over the trials
    and the window (Hz), and the ids of the units dropped."""
    start, stop = grid.start, grid.stop
    mean_rate = spike_counts / (n_trials * (stop - start))
    keep_unit = mean_rate >= min_rate
    dropped = [u for u, k in zip(all_units, keep_unit) if not k]
    if not keep_unit.any():
        top = np.argsort(-mean_rate)[:5]
        raise TargetError(
            "every unit is below min_rate", file=src, field="min_rate",
            found="highest mean rates: " + ", ".join(
                f"{all_units[k]} {mean_rate[k]:.3g} Hz" for k in top),
            expected=f"at least one unit with a mean rate >= {min_rate:g} Hz over the "
            "selected trials and window",
            hint="Lower min_rate, or check the window and trial selection",
        )
    return keep_unit, mean_rate, dropped


def _condition_means(rates: np.ndarray, trials: _TrialSelection,
                     heldout_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Each condition's average of its training trials and of its held-out trials."""
    cond_order, kept_labels = trials.cond_order, trials.kept_labels
    is_heldout = trials.is_heldout
    n_time = rates.shape[2]
    n_cond = len(cond_order)
    cond_index = np.array([cond_order.index(lab) for lab in kept_labels])
    rate = np.zeros((n_cond, rates.shape[1], n_time))
    rate_held = np.zeros_like(rate)
    for c in range(n_cond):
        tr = (cond_index == c) & ~is_heldout
        rate[c] = rates[tr].mean(axis=0)
        if heldout_fraction > 0:
            rate_held[c] = rates[(cond_index == c) & is_heldout].mean(axis=0)
    return rate, rate_held


def _report(block: Any, trials: _TrialSelection, align: str, units: list[str],
            all_units: list[str], mean_rate: np.ndarray, dropped: list[str],
            min_rate: float) -> str:
    """A readable summary of the trials and units used (``attrs["report"]``, logged)."""
    n_selected, selection, n_missing_event = (trials.n_selected, trials.selection,
                                              trials.n_missing_event)
    kept, n_cond, counts = trials.kept, len(trials.cond_order), trials.counts
    n_units = len(all_units)
    report = (
        f"{n_selected} of {len(block.segments)} trials selected ({selection}); "
        f"{n_missing_event} lacked event {align!r}; {len(kept)} used in {n_cond} "
        f"condition(s) ({int(counts[:, 0].sum())} train, {int(counts[:, 1].sum())} held "
        f"out); {len(units)} of {n_units} units kept"
    )
    if dropped:
        report += f"; dropped below {min_rate:g} Hz: " + ", ".join(
            f"{u} ({r:.3g} Hz)" for u, r in zip(all_units, mean_rate) if r < min_rate)
    return report


def _attrs(src: Any, align: str, grid: _Binning, trials: _TrialSelection,
           heldout_fraction: float, seed: int, min_rate: float, min_trials: int,
           dropped: list[str], short_padding: int, report: str) -> dict[str, Any]:
    """The Dataset's attrs: the schema's and those of trial targets (make_targets)."""
    start, stop, bin_size = grid.start, grid.stop, grid.bin_size
    kernel, kernel_width = grid.kernel, grid.kernel_width
    keys, selection, kept = trials.keys, trials.selection, trials.kept
    n_selected, n_missing_event = trials.n_selected, trials.n_missing_event
    return {
        "source": str(src if src is not None else "in-memory Block"),
        "align_event": align,
        "window_start": float(start),
        "window_stop": float(stop),
        "bin_size": float(bin_size),
        "kernel": kernel,
        "kernel_width": float(kernel_width),
        "kernel_causal": int(kernel in _CAUSAL_KERNELS),
        "condition_key": "|".join(keys),
        "has_trials": 1,
        "cortexfit_version": __version__,
        "selection": selection,
        "heldout_fraction": float(heldout_fraction),
        "seed": int(seed),
        "min_rate": float(min_rate),
        "min_trials": int(min_trials),
        "dropped_units": json.dumps(dropped),
        "n_trials_selected": int(n_selected),
        "n_trials_missing_event": int(n_missing_event),
        "n_trials_used": len(kept),
        "n_trials_short_padding": int(short_padding),
        "report": report,
    }
