"""Metric kernels (plain numpy, over the last axis) and xarray wrappers over a named dim."""
from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["pearson_kernel", "pearson"]


def pearson_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of a and b along the last axis (broadcasting the others).
    Where either side is constant the correlation is undefined: 0 is returned."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    denom = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (a * b).sum(-1) / denom
    return np.where(denom > 0, out, 0.0)


def pearson(a: xr.DataArray, b: xr.DataArray, dim: str = "time") -> xr.DataArray:
    """Pearson correlation of two DataArrays along ``dim`` (other dims aligned/broadcast)."""
    return xr.apply_ufunc(pearson_kernel, a, b, input_core_dims=[[dim], [dim]],
                          output_core_dims=[[]], join="exact")
