"""Metric kernels (plain numpy, over the last axis) and xarray wrappers over a named dim.

Kernels
-------
Every kernel takes two arrays whose **last axes have the same length** (the samples, e.g.
time bins) and whose leading axes broadcast against each other (numpy rules); it returns
the leading (broadcast) shape, float64. NaN or inf in a row gives NaN for that row; no
other input gives NaN.

* :func:`pearson_kernel`: Pearson correlation (symmetric, in [-1, 1]; 0 where either side
  is constant).
* :func:`rmse_kernel`: root-mean-square difference, in the inputs' units (symmetric, >= 0).
* :func:`r2_kernel`: coefficient of determination of a **prediction** ``a`` for the
  **data** ``b`` (not symmetric; 1 is perfect, 0 is no better than b's own mean, negative
  is worse; see its docstring for constant ``b``).
* :func:`spearman_brown`: reliability of an average of ``factor`` times as many trials.

Wrappers
--------
:func:`pearson`, :func:`rmse` and :func:`r2` apply the kernels to two
:class:`xarray.DataArray` along a named dimension (default ``"time"``), aligning the other
coordinates exactly (mismatched labels are a :class:`ConfigError`, never a silent
reindex) and broadcasting missing dimensions. The result carries ``units``: ``"1"``
(dimensionless) for r and R², the inputs' units for the RMSE. RMSE and R² refuse inputs
whose ``units`` attrs differ (r is scale-free and does not look at units).
"""
from __future__ import annotations

import functools

import numpy as np
import xarray as xr

from .exceptions import ConfigError

__all__ = [
    "pearson_kernel",
    "rmse_kernel",
    "r2_kernel",
    "spearman_brown",
    "pearson",
    "rmse",
    "r2",
]

DIMENSIONLESS = "1"
"""The ``units`` attribute of dimensionless metrics (CF convention)."""


# --------------------------------------------------------------------------------------
# numpy kernels
# --------------------------------------------------------------------------------------

def _pair(a, b, name: str) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim == 0 or b.ndim == 0:
        raise ConfigError(f"{name} needs arrays with a sample axis", field="a, b",
                          found=f"shapes {a.shape} and {b.shape}",
                          expected="arrays of at least 1 dimension (samples on the last axis)")
    if a.shape[-1] != b.shape[-1] or a.shape[-1] == 0:
        raise ConfigError(f"{name}: the last axes differ or are empty", field="a, b",
                          found=f"shapes {a.shape} and {b.shape}",
                          expected="the same number (>= 1) of samples on the last axis")
    try:
        np.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    except ValueError:
        raise ConfigError(f"{name}: the leading axes do not broadcast", field="a, b",
                          found=f"shapes {a.shape} and {b.shape}",
                          expected="leading axes that broadcast (numpy rules)") from None
    return a, b


def _quiet(kernel):
    """Run a kernel with floating-point warnings off: non-finite rows give NaN by design."""
    @functools.wraps(kernel)
    def wrapper(a, b):
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return kernel(a, b)
    return wrapper


def _scaled(x: np.ndarray) -> np.ndarray:
    """``x / max|x|`` per row (rows of zeros unchanged): guards sums of squares against
    overflow and underflow without changing any scale-invariant metric."""
    m = np.max(np.abs(x), axis=-1, keepdims=True)
    with np.errstate(invalid="ignore"):
        return x / np.where(m > 0, m, 1.0)


def _constant(x: np.ndarray) -> np.ndarray:
    """Rows whose values are all exactly equal (NaN rows are not constant)."""
    return np.max(x, axis=-1) == np.min(x, axis=-1)


@_quiet
def pearson_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of a and b along the last axis (broadcasting the others).

    ``r = sum(a' b') / sqrt(sum(a'^2) sum(b'^2))`` with ``x' = x - mean(x)``, clipped to
    [-1, 1] (round-off). It is exactly symmetric in ``a`` and ``b`` and invariant to
    positive affine changes of either. Where either side is constant (all its values
    exactly equal) the correlation is undefined: **0** is returned. NaN/inf in a row give
    NaN.
    """
    a, b = _pair(a, b, "pearson_kernel")
    const = _constant(a) | _constant(b)
    a, b = _scaled(a), _scaled(b)
    a = _scaled(a - a.mean(axis=-1, keepdims=True))
    b = _scaled(b - b.mean(axis=-1, keepdims=True))
    num = (a * b).sum(-1)
    denom = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.clip(num / denom, -1.0, 1.0)
    return np.where(const | (denom == 0), 0.0, out)


@_quiet
def rmse_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Root-mean-square difference ``sqrt(mean((a - b)^2))`` along the last axis.

    In the inputs' units; symmetric; >= 0 (0 exactly when a == b). NaN/inf in a row give
    NaN.
    """
    a, b = _pair(a, b, "rmse_kernel")
    d = a - b
    m = np.max(np.abs(d), axis=-1)
    with np.errstate(invalid="ignore"):
        scaled = d / np.where(m > 0, m, 1.0)[..., None]
    return m * np.sqrt((scaled * scaled).mean(-1))


@_quiet
def r2_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Coefficient of determination of the prediction ``a`` for the data ``b``, last axis.

    ``R² = 1 - SS_res / SS_tot`` with ``SS_res = sum((b - a)^2)`` and
    ``SS_tot = sum((b - mean(b))^2)``: 1 for a perfect prediction, 0 for a prediction as
    good as b's own mean, negative (unbounded) for a worse one. Not symmetric.

    **Constant data** (all values of a row of ``b`` exactly equal, ``SS_tot = 0``): R² is
    undefined (0/0 or x/0). Following ``sklearn.metrics.r2_score`` (``force_finite=True``)
    the kernel returns **1.0** when the prediction equals the data exactly and **0.0**
    otherwise, never NaN or -inf: b's mean then predicts b perfectly, so no prediction
    can explain more than it, and a single silent unit cannot turn an average over units
    into -inf. (This is the same choice as :func:`pearson_kernel`, which gives 0 for a
    constant side.) NaN/inf in a row give NaN.
    """
    a, b = _pair(a, b, "r2_kernel")
    const = _constant(b)
    exact = np.all(a == b, axis=-1)
    bc = b - b.mean(axis=-1, keepdims=True)
    res = b - a
    # one common scale for both sums, so their ratio is unchanged
    s = np.max(np.abs(bc), axis=-1, keepdims=True)
    s = np.where(s > 0, s, 1.0)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        bc, res = bc / s, res / s
        out = 1.0 - (res * res).sum(-1) / (bc * bc).sum(-1)
    return np.where(const, np.where(exact, 1.0, 0.0), out)


def spearman_brown(r: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Spearman-Brown prophecy: reliability of an average of ``factor`` times as many
    trials as the one whose reliability is ``r``: ``factor r / (1 + (factor - 1) r)``.

    ``r`` is a reliability (the correlation between two independent averages of m trials
    each); the result is the reliability of averages of ``factor * m`` trials. ``factor``
    may be below 1 (fewer trials). A reliability <= 0 (possible by sampling error when a
    unit carries no reliable signal) is taken as 0 and stays 0; r = 1 stays 1. Arrays
    broadcast.
    """
    r = np.clip(np.asarray(r, dtype=np.float64), 0.0, 1.0)
    k = np.asarray(factor, dtype=np.float64)
    if np.any(~(k > 0)):
        raise ConfigError("spearman_brown needs a positive factor", field="factor",
                          found=k[~(k > 0)][:5] if k.ndim else k, expected="> 0")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(r > 0, k * r / (1.0 + (k - 1.0) * r), 0.0)


# --------------------------------------------------------------------------------------
# xarray wrappers
# --------------------------------------------------------------------------------------

def _apply(kernel, a: xr.DataArray, b: xr.DataArray, dim: str, name: str,
           long_name: str, units: str | None, keep_units: bool = False) -> xr.DataArray:
    for side, x in (("a", a), ("b", b)):
        if not isinstance(x, xr.DataArray):
            raise ConfigError(f"{name}() takes xarray DataArrays", field=side,
                              found=type(x).__name__,
                              expected=f"xarray.DataArray (use {name}_kernel for numpy)")
        if dim not in x.dims:
            raise ConfigError(f"{name}(): dimension {dim!r} missing", field=side,
                              found=f"dims {x.dims}", expected=f"a dimension named {dim!r}")
    if name != "pearson":  # r is scale-free; RMSE and R² need both sides in one unit
        common = _common_units(a, b, name)
        if keep_units:
            units = common
    try:
        a, b = xr.align(a, b, join="exact")
    except ValueError as exc:
        raise ConfigError(f"{name}(): the coordinates of a and b differ", field="a, b",
                          found=str(exc).splitlines()[0][:200],
                          expected="identical labels on shared dimensions "
                          "(select or reindex them first)") from None
    out = xr.apply_ufunc(kernel, a, b, input_core_dims=[[dim], [dim]],
                         output_core_dims=[[]], join="exact", keep_attrs=False)
    out.name = name
    out.attrs = {"long_name": long_name}
    if units is not None:
        out.attrs["units"] = units
    return out


def _common_units(a: xr.DataArray, b: xr.DataArray, name: str) -> str | None:
    ua, ub = a.attrs.get("units"), b.attrs.get("units")
    if ua is not None and ub is not None and str(ua) != str(ub):
        raise ConfigError(f"{name}(): a and b are in different units", field="units",
                          found=f"{ua!r} and {ub!r}", expected="the same units")
    return None if ua is None and ub is None else str(ua if ua is not None else ub)


def pearson(a: xr.DataArray, b: xr.DataArray, dim: str = "time") -> xr.DataArray:
    """Pearson correlation of two DataArrays along ``dim`` (other dims aligned exactly /
    broadcast); ``units = "1"``. See :func:`pearson_kernel` (0 where a side is constant)."""
    return _apply(pearson_kernel, a, b, dim, "pearson",
                  f"Pearson correlation over {dim}", DIMENSIONLESS)


def rmse(a: xr.DataArray, b: xr.DataArray, dim: str = "time") -> xr.DataArray:
    """Root-mean-square difference of two DataArrays along ``dim``, in their ``units``
    (which must agree when both are given; absent when neither has units)."""
    return _apply(rmse_kernel, a, b, dim, "rmse", f"root-mean-square difference over {dim}",
                  None, keep_units=True)


def r2(a: xr.DataArray, b: xr.DataArray, dim: str = "time") -> xr.DataArray:
    """Coefficient of determination of the prediction ``a`` for the data ``b`` along
    ``dim``; ``units = "1"``. See :func:`r2_kernel` (constant data: 1 if exact, else 0)."""
    return _apply(r2_kernel, a, b, dim, "r2",
                  f"coefficient of determination over {dim} (prediction a, data b)",
                  DIMENSIONLESS)
