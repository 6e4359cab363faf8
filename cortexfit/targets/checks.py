"""Argument checks of the targets: seconds, the window, its bins, numbers in a range."""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import quantities as pq

from ..exceptions import ConfigError

_MAX_BINS = 100_000           # per window; a guard against absurd bin sizes
_TIME_TOL = 1e-6              # tolerance on window/trial edges, as a fraction of a bin
_DIVIDE_TOL = 1e-9            # relative tolerance for "bin_size divides the window"


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
    n = round(exact)
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
