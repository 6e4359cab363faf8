"""make_targets: a recording (neo.Block) -> trial-averaged rates, in named steps.

Check the arguments, then the Block; choose the trials (:mod:`.selection`); extend the
window by the margin (:func:`_margins`); bin and smooth them (:mod:`.rates`); drop the units
below ``min_rate``; average each condition's training, validation and held-out trials;
write the Dataset (:mod:`.schema`).
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import xarray as xr

from .. import __version__
from ..exceptions import ConfigError, TargetError
from ..io.convention import check_block, unit_annotations, unit_ids
from .checks import _TIME_TOL, _check_int, _check_real
from .rates import (
    _CAUSAL_KERNELS,
    Kernel,
    _binned_rates,
    _Binning,
    _check_binning,
    _Smoother,
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
    validation_fraction: float = 0.0,
    margin: float | Literal["auto"] = 0.0,
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
        Dataset has no ``rate_heldout`` and ``n_trials`` is 0 for ``"heldout"``. The
        held-out trials are the **test** trials: nothing is fitted or chosen on them.
    min_trials
        Minimum number of training trials per condition (>= 1). A condition with fewer,
        or with no held-out trial while ``heldout_fraction > 0``, or with no validation
        trial while ``validation_fraction > 0``, is an error.
    seed
        Seed (int >= 0) of the split. Each condition's trials are put in a random order,
        a permutation drawn by ``numpy.random.default_rng([seed, crc32(label)])``: its
        first ``n_heldout`` trials are held out, the next ``n_validation`` are validation
        trials, the rest are training trials. So a condition's split depends only on the
        seed, its label and its trials (in Block order), not on the other conditions or
        the ``where`` filter applied to them; the held-out trials do not depend on
        ``validation_fraction``, and with ``validation_fraction = 0`` the split is exactly
        the two-way split of earlier versions.
    keep_trials
        Keep the single-trial rates ``trial_rate(trial, unit, time)`` (float32, Hz).
    validation_fraction
        Fraction of each condition's trials set aside for validation (choosing among fits,
        e.g. the best training loop: :func:`cortexfit.evaluate.validation_score`), in
        ``[0, 1)`` with ``heldout_fraction + validation_fraction < 1``: per condition
        ``n_validation = round(validation_fraction * n)`` (halves rounded up). Their
        average is ``rate_validation``; they are in neither ``rate`` (the training targets)
        nor ``rate_heldout`` (the test average), and ``n_trials`` gains the split
        ``"validation"`` (``["train", "validation", "heldout"]``). The default 0 sets no
        trial aside (the library's behaviour before validation existed); the run config's
        default ``[targets] validation_fraction`` is 0.2.
    margin
        How far the time axis (the trained window) extends beyond ``window`` on each side,
        in seconds (>= 0, rounded up to whole bins), or ``"auto"``: the kernel's reach
        (:meth:`_Smoother.reach`: the bins holding all but 0.15 % of its mass on that side,
        3 SD for the Gaussian; a causal kernel reaches back only) plus one bin (a model's
        trial starts at the first bin's centre: :class:`cortexfit.protocol.TrialProtocol`),
        on each side clipped to what every trial covers. ``window`` itself is the
        **scoring window**, ``attrs["score_start"]`` / ``["score_stop"]``; a model trained
        on the longer axis has its own activity within the kernel's reach of every scored
        bin, as the data have theirs, so scoring it on the scoring window only has no edge
        bias (:mod:`cortexfit.targets.schema`, "The scoring window"). A number asks for that
        margin: every trial must cover the extended window. The default 0 keeps the time
        axis on ``window`` (as before); the run config's default ``[targets] margin`` is
        ``"auto"``.

    Returns
    -------
    xarray.Dataset
        As in :mod:`.schema`: ``rate``, ``rate_heldout`` and ``rate_validation``
        (float64, Hz), ``n_trials(condition, split)``, ``trial_rate`` when ``keep_trials``,
        coords ``mean_rate(unit)`` (over the scoring window) and any unit attribute that
        every kept unit has (a name that clashes with the schema gets a ``unit_`` prefix).
        ``time`` spans the trained window ``[window_start, window_stop]`` (``window``
        extended by the margin); ``score_start`` / ``score_stop`` are ``window``. Besides
        the schema's attrs it records ``n_trials_selected`` (after ``where``),
        ``n_trials_missing_event``, ``n_trials_used``, ``n_trials_short_padding`` (see
        :mod:`.rates`), ``min_trials``, ``kernel_causal`` (0/1), ``margin`` (the margin
        aimed at, s, after rounding: the kernel's reach for ``"auto"``), ``margin_auto``
        (0/1), ``margin_before`` / ``margin_after`` (the margins made, s) and ``report`` (a
        readable summary, also logged at INFO). ``condition_key`` is the key, or the keys
        joined by ``"|"``. Everything is NetCDF-writable (``engine="h5netcdf"``).

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
    validation_fraction = _check_validation(validation_fraction, heldout_fraction)
    margin = _check_margin(margin)
    block = check_block(block)
    src = block.annotations.get("source")
    trials = _trial_selection(
        block, align=align, condition=condition, where=where, window=(grid.start, grid.stop),
        bin_size=grid.bin_size, heldout_fraction=heldout_fraction, min_trials=min_trials,
        seed=seed, src=src, validation_fraction=validation_fraction,
    )
    smoother = _smoother(grid.kernel, grid.kernel_width, grid.bin_size)
    aim, before, after = _margins(margin, grid, smoother, trials, block, align, src)
    axis = grid._replace(start=grid.start - before * grid.bin_size,
                         stop=grid.stop + after * grid.bin_size,
                         n_time=grid.n_time + before + after)
    all_units = unit_ids(block)
    rates, spike_counts, short_padding = _recorded_rates(
        block, trials, axis, len(all_units), src, smoother,
        count_bins=(before, before + grid.n_time))
    keep_unit, mean_rate, dropped = _select_units(all_units, spike_counts, len(trials.kept),
                                                  grid, min_rate, src)
    units = [u for u, k in zip(all_units, keep_unit) if k]
    rates = rates[:, keep_unit]
    rate, rate_held, rate_val = _condition_means(rates, trials, heldout_fraction,
                                                 validation_fraction)

    report = _report(block, trials, align, units, all_units, mean_rate, dropped, min_rate)
    if before or after:
        report += (f"; the time axis extends the window by {before * grid.bin_size:g} s "
                   f"before and {after * grid.bin_size:g} s after (margin"
                   f"{' auto' if margin == 'auto' else ''}), scored on the window only")
    logger.info("make_targets: %s", report)
    attrs = _attrs(src, align, axis, trials, heldout_fraction, seed, min_rate, min_trials,
                   dropped, short_padding, report)
    attrs.update({
        "validation_fraction": float(validation_fraction),
        "score_start": float(grid.start),
        "score_stop": float(grid.stop),
        "margin": float(aim * grid.bin_size),
        "margin_auto": int(margin == "auto"),
        "margin_before": float(before * grid.bin_size),
        "margin_after": float(after * grid.bin_size),
    })
    return _trial_targets(
        rate, rate_held, counts=trials.counts, splits=trials.splits,
        rate_validation=rate_val, conditions=trials.cond_order, units=units,
        time=axis.start + axis.bin_size * (np.arange(axis.n_time) + 0.5), align=align,
        mean_rate=mean_rate[keep_unit],
        unit_ann=[a for a, k in zip(unit_annotations(block), keep_unit) if k],
        heldout_fraction=heldout_fraction, trial_rates=rates,
        trial_ids=[_trial_label(block.segments[i], i) for i in trials.kept]
        if keep_trials else None,
        trial_conditions=trials.kept_labels, trial_split=trials.trial_split, attrs=attrs,
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


def _check_validation(validation_fraction: Any, heldout_fraction: float) -> float:
    """``validation_fraction`` in [0, 1), and with ``heldout_fraction`` below 1."""
    value = _check_real(validation_fraction, "validation_fraction", lo=0.0, hi=1.0,
                        expected="a fraction in [0, 1)")
    if heldout_fraction + value >= 1:
        raise ConfigError(
            "heldout_fraction + validation_fraction leaves no training trials",
            field="validation_fraction",
            found=f"validation_fraction {value:g} + heldout_fraction {heldout_fraction:g}",
            expected="heldout_fraction + validation_fraction < 1",
        )
    return value


def _check_margin(margin: Any) -> float | str:
    """``"auto"`` or a number of seconds >= 0."""
    if isinstance(margin, str):
        if margin != "auto":
            raise ConfigError("unknown margin", field="margin", found=repr(margin)[:120],
                              expected="'auto' or a margin in seconds >= 0")
        return margin
    return _check_real(margin, "margin", lo=0.0, hi=None,
                       expected="'auto' or a margin in seconds >= 0")


def _margins(margin: float | str, grid: _Binning, smoother: _Smoother | None,
             trials: _TrialSelection, block: Any, align: str,
             src: Any) -> tuple[int, int, int]:
    """The margin aimed at and the margins made before and after the window, in bins.

    ``"auto"``: the kernel's reach on each side plus one bin, clipped to the whole bins
    every trial covers beyond the window on that side (the aim is the larger side). A
    number: that many seconds rounded up to whole bins on both sides, which every trial
    must cover (else TargetError)."""
    bin_size = grid.bin_size
    tol = _TIME_TOL * bin_size
    cover_before = min(ev + grid.start - t0 for ev, (t0, _) in zip(trials.events,
                                                                    trials.spans))
    cover_after = min(t1 - (ev + grid.stop) for ev, (_, t1) in zip(trials.events,
                                                                   trials.spans))
    fit_before = max(0, math.floor((cover_before + tol) / bin_size))
    fit_after = max(0, math.floor((cover_after + tol) / bin_size))
    if margin == "auto":
        reach_before, reach_after = (0, 0) if smoother is None else smoother.reach()
        aim_before, aim_after = reach_before + 1, reach_after + 1
        return (max(aim_before, aim_after), min(aim_before, fit_before),
                min(aim_after, fit_after))
    aim = math.ceil(float(margin) / bin_size - 1e-9)
    short = [
        (_trial_label(block.segments[i], i), ev, t0, t1)
        for i, ev, (t0, t1) in zip(trials.kept, trials.events, trials.spans)
        if ev + grid.start - aim * bin_size < t0 - tol
        or ev + grid.stop + aim * bin_size > t1 + tol
    ]
    if short:
        tid, ev, t0, t1 = short[0]
        lo, hi = grid.start - aim * bin_size, grid.stop + aim * bin_size
        raise TargetError(
            "the window extended by the margin falls outside some trials", file=src,
            field="margin",
            found=f"margin {aim * bin_size:g} s: {len(short)} trial(s), trial ids "
            f"{[o[0] for o in short[:5]]}; e.g. trial {tid!r}: [{ev + lo:g}, {ev + hi:g}] s "
            f"({align} {ev:g} s {lo:+g}/{hi:+g} s) vs trial span [{t0:g}, {t1:g}] s",
            expected=f"at most {min(fit_before, fit_after) * bin_size:g} s (what every "
            "selected trial covers beyond the window on both sides)",
            hint="Use margin = 'auto' (clipped to what the trials cover), a smaller margin, "
                 "or filter these trials out with where=",
        )
    return aim, aim, aim


def _recorded_rates(block: Any, trials: _TrialSelection, grid: _Binning, n_units: int,
                    src: Any, smoother: _Smoother | None,
                    count_bins: tuple[int, int] | None = None,
                    ) -> tuple[np.ndarray, np.ndarray, int]:
    """Single-trial rates ``(trial, unit, time)`` of the trials used on ``grid``, each
    unit's spike count in its bins (those of ``count_bins``), and how many trials' spans
    cut the kernel's padding."""
    segments = [block.segments[i] for i in trials.kept]

    def times_of(j: int) -> list[np.ndarray]:
        return [np.asarray(st.magnitude, dtype=np.float64) for st in segments[j].spiketrains]

    rates, spike_counts, short_padding = _binned_rates(
        times_of, [ev + grid.start for ev in trials.events], n_units, grid.n_time,
        grid.bin_size, smoother, spans=trials.spans, count_bins=count_bins,
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


def _condition_means(rates: np.ndarray, trials: _TrialSelection, heldout_fraction: float,
                     validation_fraction: float = 0.0,
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Each condition's average of its training, held-out and validation trials (the
    last None without validation trials)."""
    cond_order, kept_labels = trials.cond_order, trials.kept_labels
    split = trials.trial_split
    n_time = rates.shape[2]
    n_cond = len(cond_order)
    cond_index = np.array([cond_order.index(lab) for lab in kept_labels])
    rate = np.zeros((n_cond, rates.shape[1], n_time))
    rate_held = np.zeros_like(rate)
    rate_val = np.zeros_like(rate) if validation_fraction > 0 else None
    for c in range(n_cond):
        rate[c] = rates[(cond_index == c) & (split == "train")].mean(axis=0)
        if heldout_fraction > 0:
            rate_held[c] = rates[(cond_index == c) & (split == "heldout")].mean(axis=0)
        if rate_val is not None:
            rate_val[c] = rates[(cond_index == c) & (split == "validation")].mean(axis=0)
    return rate, rate_held, rate_val


def _report(block: Any, trials: _TrialSelection, align: str, units: list[str],
            all_units: list[str], mean_rate: np.ndarray, dropped: list[str],
            min_rate: float) -> str:
    """A readable summary of the trials and units used (``attrs["report"]``, logged)."""
    n_selected, selection, n_missing_event = (trials.n_selected, trials.selection,
                                              trials.n_missing_event)
    kept, n_cond, counts = trials.kept, len(trials.cond_order), trials.counts
    n_units = len(all_units)
    total = dict(zip(trials.splits, counts.sum(axis=0).tolist()))
    validation = (f"{total['validation']} validation, " if "validation" in total else "")
    report = (
        f"{n_selected} of {len(block.segments)} trials selected ({selection}); "
        f"{n_missing_event} lacked event {align!r}; {len(kept)} used in {n_cond} "
        f"condition(s) ({total['train']} train, {validation}{total['heldout']} held "
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
