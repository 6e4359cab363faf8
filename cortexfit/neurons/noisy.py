"""The f-I curve of a neuron under background noise: what rate training uses when every
neuron receives independent white noise (``RLSFit(noise=...)``).

A neuron whose mean input ``x`` sits below threshold still fires when it receives noise,
and the rate it fires at is a smooth function of ``x`` that depends on the noise's
strength. When the network is simulated with that noise, in training and in every trial
afterwards, this curve is the rate the spiking neuron actually fires at (for inputs that
change slowly compared with the membrane): rate training's ``phi`` and the network then
agree at every rate, including the low rates (0.5-3 Hz) at which the smooth curve of
:mod:`.base` (a softplus of the sharp curve) overestimates the firing by 2-5x and leaves
model neurons silent.

The noise is ``sigma * xi(t)`` added to the input, ``xi`` Gaussian white noise per model
time unit (:class:`cortexfit.simulate.Noise` with ``kind="white"``).

**Theta neuron** (QIF in phase form). With ``V = tan(θ/2)`` the model is
``dV/dt = V² + x + sigma xi``, whose mean inter-spike interval under white noise of
intensity ``D = sigma²/2`` is (Lindner, Longtin & Bulsara 2003, Neural Comput 15:1761)::

    T(x) = sqrt(π) ∫_0^∞ z^(-1/2) exp(-x z - D² z³ / 12) dz

(``π / sqrt(x)`` without noise). The rate ``1/T`` matches the simulator's measured rate
(tests/unit/test_noisy.py) and is tabulated on a fine grid with its derivative
``dT/dx = -sqrt(π) ∫ z^(1/2) exp(...) dz``.

Models without a closed form have no noisy curve yet (an error names them).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from ..exceptions import ConfigError

__all__ = ["NoisyFICurve", "noisy_fi_curve", "theta_noisy_rate"]

_GRID_STEP = 0.0005
"""Input spacing of the table (input scales)."""
_TABLE_TOP = 6.0
"""Above this many input scales over threshold the noise's effect is below 0.3 % and the
sharp curve is used."""
_FLOOR_RATE = 1e-5
"""The table starts where the rate falls below this (Hz); below it the rate and slope are 0."""


def _lindner_integrals(x: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """``∫ z^(-1/2) e^(-x z - D² z³/12) dz`` and ``∫ z^(1/2) e^(...) dz`` for every ``x``,
    by the trapezoid rule in ``s = log z`` (exact to ~1e-8 relative on this grid)."""
    d2 = (0.5 * sigma * sigma) ** 2
    s = np.linspace(-25.0, 12.0, 3701)
    z = np.exp(s)
    out0 = np.empty(x.size)
    out1 = np.empty(x.size)
    for lo in range(0, x.size, 512):
        xs = x[lo:lo + 512, None]
        expo = -xs * z - d2 * z ** 3 / 12.0
        with np.errstate(over="ignore", under="ignore"):
            e = np.exp(np.minimum(expo, 700.0))
        # dz = z ds: z^(-1/2) dz = z^(1/2) ds, z^(1/2) dz = z^(3/2) ds
        out0[lo:lo + 512] = np.trapezoid(e * np.sqrt(z), s, axis=1)
        out1[lo:lo + 512] = np.trapezoid(e * z ** 1.5, s, axis=1)
    return out0, out1


def theta_noisy_rate(x: Any, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The theta neuron's rate under white noise ``sigma`` (spikes per tau) and its
    derivative in ``x``, computed directly (see the module docstring)."""
    x = np.atleast_1d(np.asarray(x, dtype=float))
    if sigma <= 0:
        rate = np.sqrt(np.maximum(x, 0.0)) / np.pi
        slope = np.where(x > 0, 0.5 / (np.pi * np.sqrt(np.maximum(x, 1e-300))), 0.0)
        return rate, slope
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        i0, i1 = _lindner_integrals(x, sigma)
        period = np.sqrt(np.pi) * i0
        rate = 1.0 / period
        slope = np.sqrt(np.pi) * i1 * rate * rate  # d(1/T)/dx = -T'/T², T' = -sqrt(π) i1
    # far below threshold with weak noise the period overflows: the neuron is silent
    bad = ~(np.isfinite(rate) & np.isfinite(slope))
    rate[bad], slope[bad] = 0.0, 0.0
    return rate, slope


@functools.lru_cache(maxsize=16)
def _theta_table(sigma: float) -> tuple[float, np.ndarray, np.ndarray]:
    """(x0, rate, slope) on the grid x0 + k * _GRID_STEP up to _TABLE_TOP, spikes per tau."""
    # the rate falls like exp(-4 |x|^1.5 / (3 D)) below threshold: find where it hits the floor
    lo = -0.05
    while theta_noisy_rate(lo, sigma)[0][0] * 100.0 > _FLOOR_RATE and lo > -50:
        lo *= 1.5
    x = np.arange(lo, _TABLE_TOP + _GRID_STEP, _GRID_STEP)
    rate, slope = theta_noisy_rate(x, sigma)
    return float(x[0]), rate, slope


@dataclass(frozen=True)
class NoisyFICurve:
    """A model's f-I curve under white noise ``sigma`` (model units), for ``n`` neurons of
    identical parameters: the same interface as :class:`~.base.FICurve` (``phi`` and
    ``dphi`` in spikes per model time unit, ``hz``), plus the table the compiled training
    signal reads (:attr:`x0`, :attr:`step`, :attr:`rates`, :attr:`slopes`; above the table
    the model's sharp curve)."""

    model: Any
    params: Any
    sigma: float
    threshold: np.ndarray
    x0: float
    step: float
    rates: np.ndarray
    slopes: np.ndarray

    @property
    def width(self) -> np.ndarray:
        """No softplus: the compiled signal reads the table (kept for the FICurve interface)."""
        return np.zeros_like(self.threshold)

    def phi(self, x) -> np.ndarray:
        rate, _ = _lookup(np.asarray(x, dtype=np.float64), self.x0, self.step, self.rates,
                          self.slopes)
        return rate

    def dphi(self, x) -> np.ndarray:
        _, slope = _lookup(np.asarray(x, dtype=np.float64), self.x0, self.step, self.rates,
                           self.slopes)
        return slope

    def hz(self, x) -> np.ndarray:
        return self.phi(x) / self.model.time_unit


def _lookup(x: np.ndarray, x0: float, step: float, rates: np.ndarray,
            slopes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    shape = np.shape(x)
    flat = np.ravel(x)
    rate = np.empty(flat.size)
    slope = np.empty(flat.size)
    _lookup_kernel(flat, x0, step, rates, slopes, rate, slope)
    return rate.reshape(shape), slope.reshape(shape)


@numba.njit(cache=True)
def table_point(x, x0, step, rates, slopes):
    """Rate and slope at ``x`` by linear interpolation of the table; 0 below it, the sharp
    theta curve above it."""
    k = (x - x0) / step
    if k <= 0.0:
        return 0.0, 0.0
    last = rates.size - 1
    if k >= last:
        root = np.sqrt(x)
        return root / np.pi, 0.5 / (np.pi * root)
    i = int(k)
    w = k - i
    return (rates[i] * (1.0 - w) + rates[i + 1] * w,
            slopes[i] * (1.0 - w) + slopes[i + 1] * w)


@numba.njit(cache=True)
def _lookup_kernel(x, x0, step, rates, slopes, rate, slope):
    for i in range(x.size):
        rate[i], slope[i] = table_point(x[i], x0, step, rates, slopes)


def noisy_fi_curve(model: Any, params: Any, n: int, sigma: float) -> NoisyFICurve:
    """The f-I curve of ``model`` under white noise ``sigma`` (model units)."""
    if model.name != "theta":
        raise ConfigError("background noise has no f-I curve for this neuron model yet",
                          field="noise", found=f"noise > 0 with neuron_model {model.name!r}",
                          expected="neuron_model 'theta', or noise = 0")
    x0, rates, slopes = _theta_table(float(sigma))
    return NoisyFICurve(model, params, float(sigma), np.asarray(model.threshold(params, n)),
                        x0, _GRID_STEP, rates, slopes)
