"""Targets: a recording (neo.Block) -> trial-averaged rates as an ``xarray.Dataset``.

The targets Dataset (the schema every producer follows)
------------------------------------------------------
dims ``condition``, ``unit``, ``time`` (and ``split``, ``trial`` when made from trials)

* ``rate(condition, unit, time)``: trial-averaged rate of the training trials, Hz.
* ``rate_heldout(condition, unit, time)``: same from the held-out trials (only with trials).
* ``n_trials(condition, split)``: trials per condition in ``split = ["train", "heldout"]``.
* ``trial_rate(trial, unit, time)``: single-trial rates, float32, Hz (optional); coords
  ``trial_condition(trial)``, ``trial_split(trial)``, ``trial_id(trial)``.
* coords: ``condition`` (str labels), ``unit`` (str ids), ``time`` (s, relative to the
  alignment event, bin centres), ``mean_rate(unit)`` (Hz, over the selected trials and
  window), plus any unit attribute such as ``cell_type(unit)``.
* attrs (NetCDF-safe: str / int / float; lists are JSON strings): ``source``,
  ``align_event``, ``window_start``, ``window_stop``, ``bin_size``, ``kernel``,
  ``kernel_width``, ``condition_key``, ``has_trials`` (0/1), ``cortexfit_version``, and
  for trial targets ``selection``, ``heldout_fraction``, ``seed``, ``min_rate``,
  ``dropped_units``.

:func:`make_targets` makes trial targets from a Block (see its docstring for the extra
attrs it records); :func:`targets_from_rates` wraps rates that come without trials.
"""
from __future__ import annotations

import json
import logging
import math
import numbers
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, get_args

import numpy as np
import quantities as pq
import xarray as xr

from . import __version__
from .exceptions import ConfigError, TargetError

# cortexfit.io imports this module (io.arrays uses targets_from_rates), so the Block
# convention helpers are imported inside the functions that need them.

__all__ = ["make_targets", "targets_from_rates", "KERNELS", "KERNEL_ALIASES", "Kernel"]

logger = logging.getLogger(__name__)

Kernel = Literal["gaussian", "exponential", "alpha", "rectangular", "boxcar", "triangular",
                 "epanechnikov", "none"]
"""Kernel names accepted by :func:`make_targets` (the run config's ``[targets] kernel``
offers exactly these)."""
KERNELS: tuple[str, ...] = get_args(Kernel)
"""Kernel names accepted by :func:`make_targets`, as a tuple."""
KERNEL_ALIASES = {"boxcar": "rectangular"}
"""Other names of a kernel: ``"boxcar"`` is Elephant's RectangularKernel (``kernel_width``
is its standard deviation, like every kernel's: the box is ``2 sqrt(3) kernel_width`` wide).
The targets' attrs record the canonical name."""

_CAUSAL_KERNELS = ("exponential", "alpha")
_CUTOFF_SIGMAS = 5.0          # kernel support kept on each side, in kernel SDs
_MAX_BINS = 100_000           # per window; a guard against absurd bin sizes
_TIME_TOL = 1e-6              # tolerance on window/trial edges, as a fraction of a bin
_DIVIDE_TOL = 1e-9            # relative tolerance for "bin_size divides the window"
_RESERVED = {"condition", "unit", "time", "split", "trial", "mean_rate", "trial_id",
             "trial_condition", "trial_split", "rate", "rate_heldout", "n_trials",
             "trial_rate", "neuron", "role", "recorded_unit", "target_rate"}


def _time_coord(time: np.ndarray, align_event: str) -> xr.Variable:
    return xr.Variable(
        "time", np.asarray(time, dtype=np.float64),
        attrs={"units": "s", "long_name": f"time relative to {align_event}"},
    )


# --------------------------------------------------------------------------------------
# argument checking
# --------------------------------------------------------------------------------------

def _seconds(value: Any, name: str, expected: str) -> float:
    """A finite real number of seconds (a quantities time is rescaled), else ConfigError."""
    if isinstance(value, pq.Quantity):
        try:
            value = float(value.rescale(pq.s).magnitude)
        except (ValueError, TypeError):
            raise ConfigError(
                f"{name} is not a time", field=name, found=str(value), expected=expected,
            ) from None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ConfigError(
            f"{name} is not a number", field=name,
            found=f"{type(value).__name__}: {value!r}"[:120], expected=expected,
        )
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"{name} is not finite", field=name, found=value, expected=expected)
    return value


def _check_window(window: Any) -> tuple[float, float]:
    expected = "(start, stop) in seconds relative to the alignment event, start < stop"
    if isinstance(window, (str, bytes, Mapping)) or not hasattr(window, "__len__"):
        raise ConfigError(
            "window must be a pair (start, stop)", field="window",
            found=f"{type(window).__name__}: {window!r}"[:120], expected=expected,
        )
    try:
        items = list(window)
    except TypeError:
        raise ConfigError(
            "window must be a pair (start, stop)", field="window",
            found=f"{type(window).__name__}", expected=expected,
        ) from None
    if len(items) != 2:
        raise ConfigError(
            "window must have exactly two values", field="window",
            found=f"{len(items)} values: {items!r}"[:120], expected=expected,
        )
    start = _seconds(items[0], "window start", expected)
    stop = _seconds(items[1], "window stop", expected)
    if not start < stop:
        raise ConfigError(
            "window start must be before window stop", field="window",
            found=(start, stop), expected=expected,
        )
    return start, stop


def _n_bins(start: float, stop: float, bin_size: float) -> int:
    length = stop - start
    exact = length / bin_size
    if not math.isfinite(length) or not exact <= _MAX_BINS + 0.5:
        raise ConfigError(
            "the window holds too many bins", field="bin_size",
            found=f"{exact:.3g} bins of {bin_size:g} s in a window of {length:g} s",
            expected=f"at most {_MAX_BINS} bins", hint="Use a larger bin_size",
        )
    n = int(round(exact))
    if n < 2:
        raise ConfigError(
            "the window holds fewer than 2 bins", field="bin_size",
            found=f"bin_size {bin_size:g} s for a window of {length:g} s ({exact:.3g} bins)",
            expected="at least 2 bins per window",
            hint="Use a smaller bin_size or a longer window",
        )
    if abs(n * bin_size - length) > _DIVIDE_TOL * length:
        raise ConfigError(
            "bin_size does not divide the window into a whole number of bins",
            field="bin_size",
            found=f"window ({start:g}, {stop:g}) s is {exact:.6g} bins of {bin_size:g} s",
            expected="(stop - start) / bin_size a whole number (to 1e-9 relative)",
            hint="Choose a bin_size that divides the window length, or adjust the window",
        )
    if n > _MAX_BINS:
        raise ConfigError(
            "the window holds too many bins", field="bin_size",
            found=f"{n} bins of {bin_size:g} s", expected=f"at most {_MAX_BINS} bins",
            hint="Use a larger bin_size",
        )
    return n


def _check_real(value: Any, name: str, *, lo: float, hi: float | None = None,
                lo_open: bool = False, hi_open: bool = True, expected: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ConfigError(
            f"{name} is not a number", field=name,
            found=f"{type(value).__name__}: {value!r}"[:120], expected=expected,
        )
    value = float(value)
    bad = not math.isfinite(value) or value < lo or (lo_open and value == lo)
    if hi is not None:
        bad = bad or value > hi or (hi_open and value == hi)
    if bad:
        raise ConfigError(f"{name} is out of range", field=name, found=value, expected=expected)
    return value


def _check_int(value: Any, name: str, *, lo: int, expected: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ConfigError(
            f"{name} is not an integer", field=name,
            found=f"{type(value).__name__}: {value!r}"[:120], expected=expected,
        )
    if int(value) < lo:
        raise ConfigError(f"{name} is out of range", field=name, found=int(value),
                          expected=expected)
    return int(value)


# --------------------------------------------------------------------------------------
# trial selection and conditions
# --------------------------------------------------------------------------------------

def _matches(value: Any, accepted: Any) -> bool:
    """Annotation ``value`` matches ``accepted``: equal, or equal as strings ('1' ~ 1)."""
    if value is None:
        return False
    try:
        if bool(value == accepted):
            return True
    except Exception:  # noqa: BLE001 - exotic types: fall back to the string form
        pass
    return str(value) == str(accepted)


def _sorted_values(values: Sequence[Any]) -> list[Any]:
    distinct: list[Any] = []
    for v in values:
        if v is not None and not any(_matches(v, d) and type(v) is type(d) for d in distinct):
            distinct.append(v)
    try:
        return sorted(distinct)
    except TypeError:
        return sorted(distinct, key=str)


def _trial_label(seg: Any, index: int) -> Any:
    return seg.annotations.get("trial_id", index)


def _select_trials(block, where, ann: dict[str, list[Any]], src) -> tuple[list[int], str]:
    """Indices of the segments that pass ``where``, and a JSON description of it."""
    n = len(block.segments)
    if where is None:
        return list(range(n)), json.dumps("all trials")
    if callable(where) and not isinstance(where, Mapping):
        name = getattr(where, "__qualname__", None) or getattr(where, "__name__", None) \
            or type(where).__name__
        keep = []
        for i, seg in enumerate(block.segments):
            try:
                ok = bool(where(dict(seg.annotations)))
            except Exception as exc:  # noqa: BLE001 - the user's function failed
                raise TargetError(
                    "the where filter raised an error", file=src, field="where",
                    found=f"{type(exc).__name__}: {exc} (on trial {_trial_label(seg, i)!r})",
                    expected="a function of a trial's annotations (dict) returning True/False",
                ) from exc
            if ok:
                keep.append(i)
        description = json.dumps(f"callable: {name}")
        if not keep:
            raise TargetError(
                "no trial passes the where filter", file=src, field="where",
                found=f"0 of {n} trials pass {name}", expected="at least one trial",
            )
        return keep, description
    if not isinstance(where, Mapping):
        raise ConfigError(
            "where must be a dict or a function", field="where",
            found=f"{type(where).__name__}: {where!r}"[:120],
            expected="{annotation: value or list of values}, or a function of the "
            "trial annotations returning True/False",
        )
    mask = np.ones(n, dtype=bool)
    description: dict[str, list[Any]] = {}
    for key, accepted in where.items():
        if key not in ann:
            raise TargetError(
                "unknown trial annotation in where", file=src, field=f"where[{key!r}]",
                found=key, expected=f"one of the trial annotations {sorted(map(str, ann))}",
            )
        if isinstance(accepted, (list, tuple, set, frozenset, np.ndarray)):
            values = list(accepted)
        else:
            values = [accepted]
        if not values:
            raise ConfigError(
                "where lists no accepted value", field=f"where[{key!r}]", found=accepted,
                expected="a value or a non-empty list of values",
            )
        column = ann[key]
        present = _sorted_values(column)
        for v in values:
            if not any(_matches(p, v) for p in present):
                raise TargetError(
                    "no trial has this value", file=src, field=f"where[{key!r}]",
                    found=repr(v), expected=f"one of the values present: {present[:30]}",
                )
        mask &= np.array([any(_matches(p, v) for v in values) for p in column], dtype=bool)
        description[str(key)] = values
    keep = [int(i) for i in np.flatnonzero(mask)]
    text = json.dumps(description, default=str)
    if not keep:
        raise TargetError(
            "no trial passes all the where conditions together", file=src, field="where",
            found=f"0 of {n} trials match {text}", expected="at least one trial",
        )
    return keep, text


def _condition_keys(condition: Any) -> list[str]:
    expected = "a trial annotation key, or a non-empty list of keys"
    keys = [condition] if isinstance(condition, str) else condition
    if isinstance(keys, (bytes, Mapping)) or not isinstance(keys, Sequence) or not keys:
        raise ConfigError("condition must name trial annotations", field="condition",
                          found=f"{type(condition).__name__}: {condition!r}"[:120],
                          expected=expected)
    keys = list(keys)
    if not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys):
        raise ConfigError("condition must name trial annotations", field="condition",
                          found=repr(condition)[:120], expected=expected + " (unique strings)")
    return keys


# --------------------------------------------------------------------------------------
# rates
# --------------------------------------------------------------------------------------

def _kernel_object(kernel: str, width: float):
    from elephant import kernels as ek

    cls = {
        "gaussian": ek.GaussianKernel,
        "exponential": ek.ExponentialKernel,
        "alpha": ek.AlphaKernel,
        "rectangular": ek.RectangularKernel,
        "boxcar": ek.RectangularKernel,
        "triangular": ek.TriangularKernel,
        "epanechnikov": ek.EpanechnikovLikeKernel,
    }[kernel]
    return cls(sigma=width * pq.s)


class _Smoother:
    """A kernel discretised by Elephant on the bin grid, normalised to unit mass.

    ``weights[m]`` (``m = 0 .. 2*half``, centre at ``half``) is the rate in Hz that one
    spike in bin ``j`` adds to bin ``j + m - half``; ``sum(weights) * bin_size == 1``.
    """

    def __init__(self, kernel: str, width: float, bin_size: float) -> None:
        import neo
        from elephant.statistics import instantaneous_rate

        self.kernel = kernel
        self.bin_size = bin_size
        self.obj = _kernel_object(kernel, width)
        self.center = kernel not in _CAUSAL_KERNELS
        # Elephant samples the kernel on 2*ceil(cutoff*sigma/bin)+1 points spread over
        # +-cutoff*sigma, i.e. NOT on the bin grid unless cutoff*sigma/bin is a whole
        # number; otherwise the kernel is squeezed in time and its mass is off (4% for a
        # 50 ms Gaussian at 20 ms bins). So pick the cutoff that makes it whole (>= 5 SD).
        self.half = max(1, math.ceil(_CUTOFF_SIGMAS * width / bin_size - 1e-9))
        self.cutoff = (self.half - 1e-6) * bin_size / width
        # The discrete kernel as Elephant applies it: the rate of a single spike.
        n = 2 * self.half + 3
        st = neo.SpikeTrain(np.array([(self.half + 1.5) * bin_size]) * pq.s,
                            t_start=0 * pq.s, t_stop=n * bin_size * pq.s)
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="The 'copy' argument in Quantity is deprecated")
            probe = instantaneous_rate(
                st, sampling_period=bin_size * pq.s, kernel=self.obj, cutoff=self.cutoff,
                t_start=0 * pq.s, t_stop=(n + 0.5) * bin_size * pq.s,
                center_kernel=self.center,
            )
        probe = np.asarray(probe.magnitude, dtype=np.float64).ravel()
        if probe.size != n:  # pragma: no cover - defensive
            raise TargetError("elephant returned rates of an unexpected length",
                              field="instantaneous_rate", found=probe.size, expected=n)
        weights = probe[1:n - 1].copy()
        weights[weights < 1e-12 * weights.max(initial=0.0)] = 0.0  # FFT round-off
        # The discrete kernel's mass (sum * bin) differs from 1 when the kernel is not
        # much wider than a bin (25% for a causal 50 ms exponential at 20 ms bins; 8x for
        # a 1 ms Gaussian at 20 ms bins): divide it out, so that every spike contributes
        # exactly one spike to the time integral of the rate.
        self.mass = float(weights.sum() * bin_size)
        if not (math.isfinite(self.mass) and self.mass > 0):  # pragma: no cover - defensive
            raise TargetError(
                "the smoothing kernel could not be discretised", field="kernel_width",
                found=f"{kernel} kernel, width {width:g} s, bin {bin_size:g} s",
                expected="a kernel with positive mass on the bin grid",
            )
        self.weights = weights / self.mass

    def smooth(self, counts: np.ndarray) -> np.ndarray:
        """Rates in Hz from counts ``(..., bin)``: the same-size convolution Elephant does."""
        from scipy.signal import fftconvolve

        kernel = self.weights.reshape((1,) * (counts.ndim - 1) + (-1,))
        out = fftconvolve(counts, kernel, mode="same", axes=-1)
        # FFT round-off leaves +-1e-16-ish values where no spike is within reach: zero
        # them, so that silence is exactly 0 (and causal kernels exactly causal)
        out[np.abs(out) < 1e-12 * self.weights.max()] = 0.0
        return out


def _bin_counts(times_per_unit: Sequence[np.ndarray], edges: np.ndarray) -> np.ndarray:
    """Spike counts (unit, bin) in half-open bins ``[edges[k], edges[k+1])``."""
    out = np.empty((len(times_per_unit), edges.size - 1), dtype=np.float64)
    for u, times in enumerate(times_per_unit):
        idx = np.searchsorted(times, edges, side="left")
        out[u] = np.diff(idx)
    return out


def _convention():
    from .io import convention

    return convention


def _trial_span(seg) -> tuple[float, float]:
    """The trial window (the convention's: that of its spike trains), in seconds."""
    return _convention().trial_window(seg)


# --------------------------------------------------------------------------------------
# make_targets
# --------------------------------------------------------------------------------------

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
    """Trial-averaged target rates from a recording, following the module's schema.

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
        symmetric and centred on the spike. See Notes for how the rates are computed.
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
        As in the module docstring: ``rate`` and ``rate_heldout`` (float64, Hz),
        ``n_trials(condition, split)``, ``trial_rate`` when ``keep_trials``, coords
        ``mean_rate(unit)`` and any unit attribute that every kept unit has (a name that
        clashes with the schema gets a ``unit_`` prefix). Besides the schema's attrs it
        records ``n_trials_selected`` (after ``where``), ``n_trials_missing_event``,
        ``n_trials_used``, ``n_trials_short_padding`` (see Notes), ``min_trials``,
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

    Notes
    -----
    Bins are half-open ``[event + start + k*bin_size, event + start + (k+1)*bin_size)``
    and the ``time`` coordinate holds their centres relative to the event.

    Smoothing uses Elephant's kernels as :func:`elephant.statistics.instantaneous_rate`
    discretises and applies them (histogram, then a same-size FFT convolution with the
    kernel sampled on the bin grid, then clipping at 0). For speed, Elephant is called
    once, on a single spike, to obtain the discrete kernel; every trial and unit is then
    binned with :func:`numpy.searchsorted` and convolved in one batch with
    :func:`scipy.signal.fftconvolve`, which is what ``instantaneous_rate`` does per trial
    (the tests check that both agree). Calling it per trial costs ~0.1 ms of
    ``quantities`` overhead per spike train and dominated the run time.

    To avoid edge artefacts the trial is binned on the window extended on each side by
    the kernel's reach (whole bins covering at least 5 SD), and the result is cropped to
    the window. Bins of that padding beyond the trial's span hold no spikes, so where
    the trial span cuts the padding the rate in the first/last few bins is
    underestimated; the number of such trials is ``attrs["n_trials_short_padding"]``.

    Two corrections to Elephant's discretisation are applied: the cutoff (>= 5 SD) is
    chosen so that the kernel is sampled exactly on the bin grid (otherwise Elephant
    squeezes it slightly), and the kernel is divided by its discrete mass, so that every
    spike adds exactly one spike to the time integral of the rate (without this, a 50 ms
    causal exponential at 20 ms bins overestimates rates by 21%, a 50 ms Gaussian by 4%,
    a kernel much narrower than a bin by a large factor; with it, such a kernel reduces
    to counts / bin_size). FFT round-off (values below 1e-12 of the kernel's peak) is
    set to 0 and the result is checked to be finite and non-negative.
    """
    # ---- arguments (checked before the Block, which is slower) ---------------------
    start, stop = _check_window(window)
    bin_size = _seconds(bin_size, "bin_size", "a bin width in seconds > 0")
    if bin_size <= 0:
        raise ConfigError("bin_size must be positive", field="bin_size", found=bin_size,
                          expected="a bin width in seconds > 0")
    n_time = _n_bins(start, stop, bin_size)
    if not isinstance(kernel, str) or kernel.lower() not in KERNELS:
        raise ConfigError("unknown smoothing kernel", field="kernel", found=repr(kernel),
                          expected=f"one of {list(KERNELS)}")
    kernel = KERNEL_ALIASES.get(kernel.lower(), kernel.lower())
    if kernel == "none":
        kernel_width = 0.0
    else:
        kernel_width = _seconds(kernel_width, "kernel_width",
                                "the kernel's standard deviation in seconds, > 0")
        if not bin_size / 1000 <= kernel_width <= (stop - start):
            raise ConfigError(
                "kernel_width is out of range", field="kernel_width", found=kernel_width,
                expected=f"the kernel SD in seconds, from bin_size / 1000 "
                f"({bin_size / 1000:g} s) to the window length ({stop - start:g} s)",
                hint="For no smoothing use kernel='none'",
            )
    min_rate = _check_real(min_rate, "min_rate", lo=0.0, hi=None,
                           expected="a rate in Hz >= 0")
    heldout_fraction = _check_real(heldout_fraction, "heldout_fraction", lo=0.0, hi=1.0,
                                   expected="a fraction in [0, 1)")
    min_trials = _check_int(min_trials, "min_trials", lo=1, expected="an integer >= 1")
    seed = _check_int(seed, "seed", lo=0, expected="an integer >= 0")
    if not isinstance(keep_trials, (bool, np.bool_)):
        raise ConfigError("keep_trials must be True or False", field="keep_trials",
                          found=repr(keep_trials)[:120], expected="a bool")
    conv = _convention()
    block = conv.check_block(block)
    src = block.annotations.get("source")
    event_names, event_time = conv.event_names, conv.event_time

    if not isinstance(align, str):
        raise ConfigError("align must be an event name", field="align",
                          found=f"{type(align).__name__}: {align!r}"[:120],
                          expected=f"one of {event_names(block)}")
    keys = _condition_keys(condition)

    # ---- trial selection ----------------------------------------------------------
    ann = conv.trial_annotations(block)
    missing_keys = [k for k in keys if k not in ann]
    if missing_keys:
        raise TargetError(
            "unknown condition annotation", file=src, field="condition",
            found=missing_keys, expected=f"trial annotations among {sorted(map(str, ann))}",
            hint="Pass condition= one of these keys (or a list of them)",
        )
    selected, selection = _select_trials(block, where, ann, src)
    n_selected = len(selected)

    labels: list[str] = []
    raw_values: dict[str, tuple] = {}
    lacking = []
    for i in selected:
        vals = tuple(ann[k][i] for k in keys)
        if any(v is None for v in vals):
            lacking.append(_trial_label(block.segments[i], i))
            labels.append("")
            continue
        label = "|".join(str(v) for v in vals)
        labels.append(label)
        raw_values.setdefault(label, vals)
    if lacking:
        raise TargetError(
            "some selected trials lack the condition annotation", file=src,
            field=f"condition {'|'.join(keys)}",
            found=f"{len(lacking)} trial(s), e.g. trial ids {lacking[:5]}",
            expected="a value for every selected trial",
            hint="Filter those trials out with where=",
        )

    # ---- alignment ----------------------------------------------------------------
    names = event_names(block)
    if align not in names:
        raise TargetError("unknown alignment event", file=src, field="align",
                          found=align, expected=f"one of the events {names}")
    events: list[float] = []
    kept: list[int] = []
    kept_labels: list[str] = []
    for i, label in zip(selected, labels):
        t = event_time(block.segments[i], align)
        if t is None:
            continue
        events.append(t)
        kept.append(i)
        kept_labels.append(label)
    n_missing_event = n_selected - len(kept)
    if not kept:
        raise TargetError(
            "none of the selected trials has the alignment event", file=src,
            field="align", found=f"{align!r} absent from all {n_selected} selected trials",
            expected="the event in at least one trial",
        )
    spans = [_trial_span(block.segments[i]) for i in kept]
    tol = _TIME_TOL * bin_size
    outside = [
        (_trial_label(block.segments[i], i), ev, t0, t1)
        for i, ev, (t0, t1) in zip(kept, events, spans)
        if ev + start < t0 - tol or ev + stop > t1 + tol
    ]
    if outside:
        tid, ev, t0, t1 = outside[0]
        raise TargetError(
            "the window falls outside some trials", file=src, field="window",
            found=f"{len(outside)} trial(s), trial ids {[o[0] for o in outside[:5]]}; "
            f"e.g. trial {tid!r}: window [{ev + start:g}, {ev + stop:g}] s "
            f"({align} {ev:g} s {start:+g}/{stop:+g} s) vs trial span [{t0:g}, {t1:g}] s",
            expected="the window inside every selected trial",
            hint="Shorten the window, or filter these trials out with where=",
        )

    # ---- conditions and split (cheap, so checked before the rates) -------------------
    cond_order = list(raw_values)
    try:
        cond_order.sort(key=lambda lab: raw_values[lab])
    except TypeError:
        cond_order.sort()
    label_arr = np.array(kept_labels, dtype=object)
    is_heldout = np.zeros(len(kept), dtype=bool)
    counts = np.zeros((len(cond_order), 2), dtype=np.int64)
    problems = []
    for c, label in enumerate(cond_order):
        idx = np.flatnonzero(label_arr == label)
        n = idx.size
        n_held = int(math.floor(heldout_fraction * n + 0.5))
        n_train = n - n_held
        counts[c] = (n_train, n_held)
        if n_train < min_trials or (heldout_fraction > 0 and n_held < 1):
            problems.append(f"{label!r}: {n} trials -> {n_train} train, {n_held} held out")
        # one generator per condition, so a condition's split does not depend on the others
        rng = np.random.default_rng([seed, zlib.crc32(label.encode("utf-8"))])
        is_heldout[idx[rng.permutation(n)[:n_held]]] = True
    if problems:
        need = f"at least {min_trials} training trial(s)"
        if heldout_fraction > 0:
            need += " and 1 held-out trial"
        raise TargetError(
            "too few trials in some conditions", file=src, field=f"condition {'|'.join(keys)}",
            found="; ".join(problems[:10]),
            expected=f"{need} per condition (heldout_fraction {heldout_fraction:g}, "
            f"min_trials {min_trials})",
            hint="Lower min_trials or heldout_fraction, relax where=, or merge conditions",
        )

    # ---- rates ----------------------------------------------------------------------
    # Bin every trial on the window extended by the kernel's reach (``half`` bins each
    # side; bins beyond the trial span simply hold no spikes), then smooth all trials
    # at once with the kernel Elephant discretised, and crop to the window.
    all_units = conv.unit_ids(block)
    n_units = len(all_units)
    smoother = None if kernel == "none" else _Smoother(kernel, kernel_width, bin_size)
    half = 0 if smoother is None else smoother.half
    n_ext = n_time + 2 * half
    rates = np.empty((len(kept), n_units, n_time), dtype=np.float64)
    spike_counts = np.zeros(n_units, dtype=np.float64)
    short_padding = 0
    chunk = max(1, int(4_000_000 // (n_units * n_ext)))
    for c0 in range(0, len(kept), chunk):
        members = range(c0, min(c0 + chunk, len(kept)))
        binned = np.empty((len(members), n_units, n_ext), dtype=np.float64)
        for m, j in enumerate(members):
            seg = block.segments[kept[j]]
            ev = events[j]
            t0, t1 = spans[j]
            lo = ev + start - half * bin_size
            edges = lo + bin_size * np.arange(n_ext + 1)
            if half and (edges[0] < t0 - tol or edges[-1] > t1 + tol):
                short_padding += 1
            times = [np.asarray(st.magnitude, dtype=np.float64) for st in seg.spiketrains]
            binned[m] = _bin_counts(times, edges)
        spike_counts += binned[:, :, half:half + n_time].sum(axis=(0, 2))
        if smoother is None:
            rates[c0:c0 + len(members)] = binned / bin_size
        else:
            rates[c0:c0 + len(members)] = smoother.smooth(binned)[:, :, half:half + n_time]
    np.maximum(rates, 0.0, out=rates)
    if not np.all(np.isfinite(rates)):  # pragma: no cover - defensive
        raise TargetError("non-finite rates were computed", file=src, field="rate",
                          found=f"{int(np.sum(~np.isfinite(rates)))} values",
                          expected="finite rates")

    # ---- unit selection ---------------------------------------------------------------
    mean_rate = spike_counts / (len(kept) * (stop - start))
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
    units = [u for u, k in zip(all_units, keep_unit) if k]
    rates = rates[:, keep_unit]

    # ---- Dataset --------------------------------------------------------------------
    n_cond = len(cond_order)
    cond_index = np.array([cond_order.index(lab) for lab in kept_labels])
    rate = np.zeros((n_cond, len(units), n_time))
    rate_held = np.zeros_like(rate)
    for c in range(n_cond):
        tr = (cond_index == c) & ~is_heldout
        rate[c] = rates[tr].mean(axis=0)
        if heldout_fraction > 0:
            rate_held[c] = rates[(cond_index == c) & is_heldout].mean(axis=0)

    time = start + bin_size * (np.arange(n_time) + 0.5)
    coords: dict[str, Any] = {
        "condition": ("condition", np.array(cond_order, dtype=object)),
        "unit": ("unit", np.array(units, dtype=object)),
        "time": _time_coord(time, align),
        "split": ("split", np.array(["train", "heldout"], dtype=object)),
        "mean_rate": ("unit", mean_rate[keep_unit],
                      {"units": "Hz", "long_name": "mean rate over selected trials and window"}),
    }
    unit_ann = [a for a, k in zip(conv.unit_annotations(block), keep_unit) if k]
    for key in unit_ann[0] if unit_ann else []:
        if not isinstance(key, str) or not key or "/" in key:  # not a NetCDF name
            continue
        values = [a.get(key) for a in unit_ann]
        if not all(isinstance(v, (str, int, float, bool, np.generic)) for v in values):
            continue  # missing for some unit, or not a scalar
        values = [v.item() if isinstance(v, np.generic) else v for v in values]
        if len({type(v) for v in values}) > 1 or isinstance(values[0], str):
            values = np.array([str(v) for v in values], dtype=object)
        name = f"unit_{key}" if key in _RESERVED else str(key)
        if name in coords:
            continue
        coords[name] = ("unit", values)

    data_vars: dict[str, Any] = {
        "rate": (("condition", "unit", "time"), rate,
                 {"units": "Hz", "long_name": "trial-averaged rate (training trials)"}),
        "n_trials": (("condition", "split"), counts,
                     {"long_name": "trials per condition and split"}),
    }
    if heldout_fraction > 0:
        data_vars["rate_heldout"] = (
            ("condition", "unit", "time"), rate_held,
            {"units": "Hz", "long_name": "trial-averaged rate (held-out trials)"},
        )
    if keep_trials:
        tids = [_trial_label(block.segments[i], i) for i in kept]
        if all(isinstance(t, (int, np.integer)) and not isinstance(t, (bool, np.bool_))
               for t in tids):
            tid_arr = np.array(tids, dtype=np.int64)
        else:
            tid_arr = np.array([str(t) for t in tids], dtype=object)
        data_vars["trial_rate"] = (
            ("trial", "unit", "time"), rates.astype(np.float32),
            {"units": "Hz", "long_name": "single-trial rate"},
        )
        coords["trial_id"] = ("trial", tid_arr)
        coords["trial_condition"] = ("trial", np.array(kept_labels, dtype=object))
        coords["trial_split"] = (
            "trial", np.array(["heldout" if h else "train" for h in is_heldout], dtype=object))

    report = (
        f"{n_selected} of {len(block.segments)} trials selected ({selection}); "
        f"{n_missing_event} lacked event {align!r}; {len(kept)} used in {n_cond} "
        f"condition(s) ({int(counts[:, 0].sum())} train, {int(counts[:, 1].sum())} held "
        f"out); {len(units)} of {n_units} units kept"
    )
    if dropped:
        report += f"; dropped below {min_rate:g} Hz: " + ", ".join(
            f"{u} ({r:.3g} Hz)" for u, r in zip(all_units, mean_rate) if r < min_rate)
    logger.info("make_targets: %s", report)

    attrs = {
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
        "n_trials_used": int(len(kept)),
        "n_trials_short_padding": int(short_padding),
        "report": report,
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def targets_from_rates(
    rates: Any,
    time: Sequence[float],
    *,
    unit_ids: Sequence[Any] | None = None,
    conditions: Sequence[Any] | None = None,
    align_event: str = "time zero",
    bin_size: float | None = None,
    kernel: str = "as given",
    kernel_width: float = 0.0,
    source: str = "in-memory arrays",
    unit_coords: dict[str, Sequence[Any]] | None = None,
) -> xr.Dataset:
    """Targets from trial-averaged rates with no single trials (e.g. published PSTHs).

    Parameters
    ----------
    rates
        Array ``(condition, unit, time)`` in Hz (a 2-D ``(unit, time)`` array is one
        condition).
    time
        Bin centres in seconds relative to ``align_event``, strictly increasing.
    unit_ids, conditions
        Labels; default ``"0", "1", ...`` and ``"c0", "c1", ...``.

    No held-out trials exist for such targets: ``rate_heldout`` and ``n_trials`` are
    absent and ``attrs["has_trials"] == 0``.
    """
    arr = np.asarray(rates, dtype=np.float64) if not isinstance(rates, np.ndarray) else rates
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise TargetError(
            "rates have the wrong number of dimensions", field="rates",
            found=f"shape {np.shape(rates)}", expected="(condition, unit, time) or (unit, time)",
        )
    arr = arr.astype(np.float64, copy=False)
    n_cond, n_units, n_time = arr.shape
    t = np.asarray(time, dtype=np.float64)
    if t.ndim != 1 or t.size != n_time:
        raise TargetError(
            "time does not match the rates", field="time", found=f"{t.size} time points",
            expected=f"{n_time} (the last axis of rates)",
        )
    if n_time < 2 or not np.all(np.isfinite(t)) or not np.all(np.diff(t) > 0):
        raise TargetError(
            "time must be finite and strictly increasing, with at least 2 points",
            field="time", found=t[:5], expected="increasing bin centres in seconds",
        )
    if not np.all(np.isfinite(arr)):
        raise TargetError(
            "rates contain NaN or infinite values", field="rates",
            found=f"{int(np.sum(~np.isfinite(arr)))} non-finite values", expected="finite rates in Hz",
        )
    if np.any(arr < 0):
        raise TargetError(
            "rates are negative", field="rates", found=f"minimum {arr.min():g}",
            expected="rates >= 0 in Hz",
        )
    units = [str(u) for u in (unit_ids if unit_ids is not None else range(n_units))]
    conds = [str(c) for c in (conditions if conditions is not None else [f"c{i}" for i in range(n_cond)])]
    if len(units) != n_units or len(set(units)) != n_units:
        raise TargetError(
            "unit_ids do not match the rates", field="unit_ids", found=f"{len(units)} ids "
            f"({len(set(units))} unique)", expected=f"{n_units} unique ids",
        )
    if len(conds) != n_cond or len(set(conds)) != n_cond:
        raise TargetError(
            "conditions do not match the rates", field="conditions", found=conds[:10],
            expected=f"{n_cond} unique labels",
        )
    step = float(np.median(np.diff(t))) if bin_size is None else float(bin_size)
    coords: dict[str, Any] = {
        "condition": ("condition", conds),
        "unit": ("unit", units),
        "time": _time_coord(t, align_event),
        "mean_rate": ("unit", arr.mean(axis=(0, 2)), {"units": "Hz", "long_name": "mean rate"}),
    }
    for name, values in (unit_coords or {}).items():
        coords[name] = ("unit", list(values))
    ds = xr.Dataset(
        {"rate": (("condition", "unit", "time"), arr,
                  {"units": "Hz", "long_name": "trial-averaged rate"})},
        coords=coords,
        attrs={
            "source": str(source),
            "align_event": align_event,
            "window_start": float(t[0] - step / 2),
            "window_stop": float(t[-1] + step / 2),
            "bin_size": step,
            "kernel": kernel,
            "kernel_width": float(kernel_width),
            "condition_key": "condition",
            "has_trials": 0,
            "dropped_units": json.dumps([]),
            "cortexfit_version": __version__,
        },
    )
    return ds
