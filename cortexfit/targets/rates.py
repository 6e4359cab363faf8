"""Spike times -> binned, smoothed rates in Hz: the kernels and the one way they are applied.

:func:`rates_from_spike_times` does it for plain arrays (model spikes, say);
:func:`cortexfit.targets.make_targets` does exactly the same for the trials of a recording.

How the rates are computed
--------------------------
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
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple, get_args

import numpy as np
import quantities as pq

from ..exceptions import ConfigError, TargetError
from .checks import _TIME_TOL, _check_window, _n_bins, _seconds

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
_REACH_TOL = 0.0015           # kernel mass beyond its reach, on each side (3 SD: Gaussian)


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

    def reach(self) -> tuple[int, int]:
        """How many whole bins before and after a bin its rate draws on: the fewest bins
        beyond which the discrete kernel holds at most ``_REACH_TOL`` (0.15 %) of its mass
        on that side (a 50 ms Gaussian at 20 ms bins: 7 bins, ~3 SD, on each side; a causal
        kernel reaches back only)."""
        offset = np.arange(self.weights.size) - self.half  # spike this many bins earlier
        mass = self.weights * self.bin_size

        def side(far: np.ndarray) -> int:
            return next(k for k in range(self.half + 1)
                        if mass[far > k].sum() <= _REACH_TOL)

        return side(offset), side(-offset)

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


class _Binning(NamedTuple):
    """Checked window, bins and kernel: what :func:`_check_binning` returns."""

    start: float
    stop: float
    bin_size: float
    n_time: int
    kernel: str
    kernel_width: float


def _check_binning(window: Any, bin_size: Any, kernel: Any, kernel_width: Any) -> _Binning:
    """The window, bin size and kernel checked (ConfigError), in seconds, kernel canonical."""
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
    return _Binning(start, stop, bin_size, n_time, kernel, kernel_width)


def _binned_rates(
    times_of: Callable[[int], Sequence[np.ndarray]],
    window_starts: Sequence[float],
    n_units: int,
    n_time: int,
    bin_size: float,
    smoother: _Smoother | None,
    spans: Sequence[tuple[float, float]] | None = None,
    count_bins: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Rates ``(trial, unit, time)`` in Hz (clipped at 0) of trials ``j = 0, 1, ...``.

    ``times_of(j)``: trial ``j``'s sorted spike times of each unit, in seconds, on a clock
    where its window starts at ``window_starts[j]``. Also returns each unit's spike count
    inside the windows (in bins ``count_bins[0] <= k < count_bins[1]`` when given) and the
    number of trials whose span (``spans[j]``, when given) cuts the kernel's padding.
    """
    # Bin every trial on the window extended by the kernel's reach (``half`` bins each
    # side; bins beyond the trial span simply hold no spikes), then smooth all trials
    # at once with the kernel Elephant discretised, and crop to the window.
    n_trials = len(window_starts)
    half = 0 if smoother is None else smoother.half
    n_ext = n_time + 2 * half
    rates = np.empty((n_trials, n_units, n_time), dtype=np.float64)
    spike_counts = np.zeros(n_units, dtype=np.float64)
    short_padding = 0
    tol = _TIME_TOL * bin_size
    c_lo, c_hi = (0, n_time) if count_bins is None else count_bins
    chunk = max(1, int(4_000_000 // (n_units * n_ext)))
    for c0 in range(0, n_trials, chunk):
        members = range(c0, min(c0 + chunk, n_trials))
        binned = np.empty((len(members), n_units, n_ext), dtype=np.float64)
        for m, j in enumerate(members):
            lo = window_starts[j] - half * bin_size
            edges = lo + bin_size * np.arange(n_ext + 1)
            if spans is not None:
                t0, t1 = spans[j]
                if half and (edges[0] < t0 - tol or edges[-1] > t1 + tol):
                    short_padding += 1
            binned[m] = _bin_counts(times_of(j), edges)
        spike_counts += binned[:, :, half + c_lo:half + c_hi].sum(axis=(0, 2))
        if smoother is None:
            rates[c0:c0 + len(members)] = binned / bin_size
        else:
            rates[c0:c0 + len(members)] = smoother.smooth(binned)[:, :, half:half + n_time]
    np.maximum(rates, 0.0, out=rates)
    return rates, spike_counts, short_padding


def _smoother(kernel: str, kernel_width: float, bin_size: float) -> _Smoother | None:
    """The smoother of a checked kernel; None for ``"none"`` (counts / bin_size)."""
    return None if kernel == "none" else _Smoother(kernel, kernel_width, bin_size)


def _spike_times(values: Any, field: str, *, sort: bool = True) -> np.ndarray:
    """Spike times as a 1-D finite float64 array (sorted unless ``sort=False``), else
    ConfigError."""
    expected = "a 1-D array of finite spike times in seconds"
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError("spike times are not numbers", field=field,
                          found=f"{type(values).__name__}: {values!r}"[:120],
                          expected=expected) from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ConfigError("spike times must be one-dimensional", field=field,
                          found=f"an array of shape {arr.shape}", expected=expected)
    if not np.all(np.isfinite(arr)):
        raise ConfigError("spike times contain NaN or infinite values", field=field,
                          found=f"{int(np.sum(~np.isfinite(arr)))} non-finite values",
                          expected=expected)
    return np.sort(arr) if sort else arr


def _trial_items(trial: Any, field: str) -> list[Any]:
    if isinstance(trial, (str, bytes)) or not isinstance(trial, (Sequence, np.ndarray)):
        raise ConfigError("a trial must be a sequence", field=field,
                          found=f"{type(trial).__name__}: {trial!r}"[:120],
                          expected="spike times per unit, or (times, unit_ids) with units=")
    return list(trial)


def _per_unit(spikes: Any, units: list[Any] | None) -> list[list[np.ndarray]]:
    """Each trial's sorted spike times per unit, from per-unit arrays or (times, ids) pairs."""
    if isinstance(spikes, (str, bytes)) or not isinstance(spikes, (Sequence, np.ndarray)):
        raise ConfigError("spikes must be a sequence of trials", field="spikes",
                          found=type(spikes).__name__,
                          expected="one item per trial (a list or tuple)")
    trials: list[list[np.ndarray]] = []
    for j, trial in enumerate(spikes):
        items = _trial_items(trial, f"spikes[{j}]")
        if units is None:
            trials.append([_spike_times(t, f"spikes[{j}][{u}]") for u, t in enumerate(items)])
            continue
        if len(items) != 2:
            raise ConfigError("a trial must be a pair (times, unit_ids) when units is given",
                              field=f"spikes[{j}]", found=f"{len(items)} items",
                              expected="(times, unit_ids): two 1-D arrays of the same length")
        times = _spike_times(items[0], f"spikes[{j}][0]", sort=False)
        ids = np.asarray(items[1]).reshape(-1)
        if ids.size != times.size:
            raise ConfigError("times and unit_ids differ in length", field=f"spikes[{j}]",
                              found=f"{times.size} times, {ids.size} unit ids",
                              expected="one unit id per spike time")
        trials.append([np.sort(times[ids == u]) for u in units])
    return trials


def rates_from_spike_times(
    spikes: Sequence[Any],
    *,
    window: Sequence[float],
    bin_size: float,
    kernel: Kernel,
    kernel_width: float,
    units: Sequence[Any] | None = None,
) -> np.ndarray:
    """Single-trial rates in Hz from plain spike times, binned and smoothed exactly as
    :func:`~cortexfit.targets.make_targets` bins and smooths the trials of a recording.

    For spikes that are not in a ``neo.Block`` (a model's, say): the result is what
    ``make_targets`` would put in ``trial_rate`` for these trials (before its float32
    cast and its ``min_rate`` unit selection), with the same checks of the arguments.

    Parameters
    ----------
    spikes
        One item per trial. Without ``units``: the spike times of each unit (a sequence of
        1-D arrays, the same number of units in every trial; unsorted times are sorted).
        With ``units``: a pair ``(times, unit_ids)`` of 1-D arrays of the same length,
        every spike of the trial and the id of its unit.
    window
        ``(start, stop)`` in seconds on the clock of the spike times, ``start < stop``:
        ``(0, duration)`` for times relative to the window start; the targets'
        ``(window_start, window_stop)`` for times relative to the alignment event. Bins
        are half-open ``[start + k*bin_size, start + (k+1)*bin_size)``. Spikes outside the
        window count within the kernel's reach (whole bins covering at least 5 SD on each
        side), as ``make_targets`` uses a trial's spikes around its window: pass them when
        you have them.
    bin_size, kernel, kernel_width
        As in ``make_targets`` (one of :data:`KERNELS`; ``kernel_width`` is the kernel's
        SD in seconds, ignored for ``"none"``); e.g. ``targets.attrs["bin_size"]``,
        ``["kernel"]``, ``["kernel_width"]`` to match a targets Dataset.
    units
        The unit ids of the output rows, in order, when every trial is a
        ``(times, unit_ids)`` pair; spikes of other ids are ignored.

    Returns
    -------
    numpy.ndarray
        ``(trial, unit, time)``, float64, Hz, >= 0; bin centres
        ``start + bin_size * (arange(n_time) + 0.5)``. How the rates are computed: see
        :mod:`cortexfit.targets.rates`.

    Raises
    ------
    ConfigError
        An argument of the wrong type or out of range (the window, bins and kernel are
        checked as by ``make_targets``, with the same messages).
    """
    grid = _check_binning(window, bin_size, kernel, kernel_width)
    if units is not None:
        units = list(units)
        if not units:
            raise ConfigError("units is empty", field="units", found=units,
                              expected="the unit ids of the output rows")
    trials = _per_unit(spikes, units)
    if units is not None:
        n_units = len(units)
    elif trials and trials[0]:
        n_units = len(trials[0])
    else:
        raise ConfigError("spikes holds no unit", field="spikes",
                          found=f"{len(trials)} trial(s), no spike train",
                          expected="at least one trial with one unit (or pass units=)")
    bad = [j for j, unit_times in enumerate(trials) if len(unit_times) != n_units]
    if bad:
        raise ConfigError("trials hold different numbers of units", field=f"spikes[{bad[0]}]",
                          found=f"{len(trials[bad[0]])} units",
                          expected=f"{n_units} units, as in spikes[0]")
    smoother = _smoother(grid.kernel, grid.kernel_width, grid.bin_size)
    rates, _, _ = _binned_rates(trials.__getitem__, [grid.start] * len(trials), n_units,
                                grid.n_time, grid.bin_size, smoother)
    return rates
