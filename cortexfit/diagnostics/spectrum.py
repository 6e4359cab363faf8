"""Eigenvalue spectrum of the recurrent weights before and after training (Figure 4h).

Theory for the initial matrix (circular law with a variance profile; INFERRED here and
checked in ``tests/unit/test_diagnostics.py``): for an N x N matrix with independent entries
whose variance depends only on the column j, ``s_j^2``, the bulk of the eigenvalues fills a
disc of radius ``sqrt(sum_j s_j^2)``; a nonzero mean adds outliers (a rank-one mean
``1 m^T`` adds one at ``sum_j m_j``).

* **Gaussian network** (the paper's Figures 1-3, 5; :func:`cortexfit.network.gaussian_network`):
  ``W_ij = b_ij x_ij`` with ``b ~ Bernoulli(p)``, ``x ~ N(0, sigma^2 / (N p))``: mean 0,
  variance ``p sigma^2 / (N p) = sigma^2 / N``, so the radius is **sigma**, whatever p
  (not ``sigma sqrt(1 - p)``: the weights have zero mean, so sparsity adds no mean to
  subtract). ``zero_row_sum`` removes each row's mean of ~Np entries: ``sigma sqrt(1 - 1/(Np))``.
* **E/I network under Dale's law** (Figure 4; :func:`cortexfit.network.ei_network`): the
  weights of column j are ``b_ij w_j`` with a fixed ``w_j`` (``J/sqrt(Np)`` or
  ``-gJ/sqrt(Np)``), variance ``p (1 - p) w_j^2``, so the bulk radius is
  ``sqrt((1 - p) [(1 - f) J^2 + f (g J)^2])`` with f the inhibitory fraction: exactly the
  paper's Figure 4h normalisation. The column means add one real outlier at
  ``sqrt(N p) J (1 - f - f g)`` (0 when balanced, ``g = (1 - f) / f``).

``normalize=True`` divides the eigenvalues (and radii) by that theoretical bulk radius of
the **initial** network, computed from the network's settings (``network_.info``) when they
are known, else estimated from the initial matrix itself as ``sqrt(sum_j var_i(W0_ij))``
(a model file of format version 1, written before the settings were saved, has none).

Eigenvalues come from a dense ``numpy.linalg.eigvals`` (exact, O(N^3)); networks larger than
``max_neurons`` (5000 by default, ~1-2 min and 400 MB here) raise a :class:`ConfigError`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import xarray as xr

from ..exceptions import ConfigError
from ..fit.fitted import as_fitted

__all__ = ["spectrum", "eigenvalues", "theory_radius"]

MAX_NEURONS = 5000


def eigenvalues(weights: Any, *, max_neurons: int = MAX_NEURONS) -> np.ndarray:
    """All eigenvalues of a square (sparse or dense) matrix, sorted by decreasing modulus."""
    shape = weights.shape
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ConfigError("the weight matrix is not square", field="weights", found=shape,
                          expected="an N x N matrix")
    if shape[0] > max_neurons:
        raise ConfigError("the network is too large for a dense eigendecomposition",
                          field="max_neurons", found=f"{shape[0]} neurons",
                          expected=f"<= {max_neurons}",
                          hint="Raise max_neurons if the memory (8 N^2 bytes) and time "
                               "(O(N^3)) are acceptable")
    dense = weights.toarray() if sp.issparse(weights) else np.asarray(weights)
    values = np.linalg.eigvals(dense.astype(np.float64))
    return values[np.argsort(-np.abs(values), kind="stable")]


def theory_radius(network: Any, initial: Any) -> tuple[float, str]:
    """The bulk radius the initial matrix should have, and how it was obtained."""
    info = getattr(network, "info", {}) or {}
    n = initial.shape[0]
    kind = info.get("kind")
    if kind == "ei" and info.get("k_plastic", "all") == "all" and {"p", "J", "g"} <= set(info):
        f = 1.0 - float(info.get("frac_exc", 0.8))
        p, J, g = float(info["p"]), float(info["J"]), float(info["g"])
        return (float(np.sqrt((1 - p) * ((1 - f) * J**2 + f * (g * J) ** 2))),
                "Figure 4h: sqrt((1 - p) [(1 - f) J^2 + f (g J)^2]), f = inhibitory fraction")
    if kind == "gaussian" and {"p", "sigma"} <= set(info):
        sigma, p = float(info["sigma"]), float(info["p"])
        if info.get("zero_row_sum"):
            return (sigma * float(np.sqrt(max(0.0, 1.0 - 1.0 / (n * p)))),
                    "Gaussian network with zero row sums: sigma sqrt(1 - 1 / (N p))")
        return sigma, "Gaussian network: sigma"
    w = sp.csc_array(initial, dtype=np.float64)
    mean = np.asarray(w.sum(axis=0)).ravel() / n
    mean_sq = np.asarray(w.multiply(w).sum(axis=0)).ravel() / n
    return (float(np.sqrt(np.sum(np.maximum(mean_sq - mean**2, 0.0)))),
            "estimated from the initial matrix: sqrt(sum_j var_i(W0_ij))")


def spectrum(fitted: Any, *, normalize: bool | float = False,
             max_neurons: int = MAX_NEURONS) -> xr.Dataset:
    """Eigenvalues of W before (``initial_weights_``) and after training (``network_``).

    ``normalize``: False (raw), True (divide by the initial network's theoretical bulk
    radius, the Figure 4h normalisation; see the module docstring) or a number to divide by.

    Returns ``eig_real``, ``eig_imag`` (stage, eigen) with ``stage = ["before", "after"]``
    and ``eigen`` the rank by decreasing modulus (0 = largest), ``spectral_radius(stage)``,
    ``radius_theory`` (scalar, in the same scale) and the scale used in
    ``attrs["normalization"]``.
    """
    fitted = as_fitted(fitted)
    before = fitted.initial_weights
    after = fitted.network.weights()
    radius0, how = theory_radius(fitted.network, before)
    if isinstance(normalize, bool):
        scale = radius0 if normalize else 1.0
        if normalize and not radius0 > 0:
            raise ConfigError("cannot normalise by the initial bulk radius: it is zero",
                              field="normalize", found=radius0,
                              expected="a network with nonzero initial weights, or a number")
        label = f"divided by the initial bulk radius {radius0:.6g} ({how})" if normalize \
            else "none"
    else:
        try:
            scale = float(normalize)
        except (TypeError, ValueError):
            scale = float("nan")
        if not (np.isfinite(scale) and scale > 0):
            raise ConfigError("normalize must be True, False or a positive number",
                              field="normalize", found=normalize, expected="bool or > 0")
        label = f"divided by {scale:.6g}"
    values = np.stack([eigenvalues(before, max_neurons=max_neurons),
                       eigenvalues(after, max_neurons=max_neurons)]) / scale
    units = "model input per (spike per model time unit)" if normalize is False else "1"
    ds = xr.Dataset(
        {
            "eig_real": (("stage", "eigen"), values.real,
                         {"long_name": "real part of the eigenvalues of W", "units": units}),
            "eig_imag": (("stage", "eigen"), values.imag,
                         {"long_name": "imaginary part of the eigenvalues of W", "units": units}),
            "spectral_radius": ("stage", np.abs(values[:, 0]),
                                {"long_name": "largest eigenvalue modulus", "units": units}),
            "radius_theory": ((), radius0 / scale, {
                "long_name": "theoretical bulk radius of the initial network", "units": units,
                "method": how}),
        },
        coords={"stage": ("stage", ["before", "after"],
                          {"long_name": "before or after training"}),
                "eigen": ("eigen", np.arange(values.shape[1]),
                          {"long_name": "rank by decreasing modulus (0 = largest)"})},
        attrs={"diagnostic": "spectrum", "normalization": label, "scale": float(scale),
               "n_neurons": int(before.shape[0])},
    )
    return ds
