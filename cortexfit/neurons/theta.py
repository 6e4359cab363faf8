"""Theta neuron (quadratic integrate-and-fire in phase form), the default model.

``tau dθ/dt = 1 - cos θ + (I + u)(1 + cos θ)``, tau = 10 ms, a spike when θ crosses π.
The model's time unit is tau: the simulation runs in units of 10 ms, so rates from the f-I
curve and filtered spike trains are in spikes per tau; divide by ``TAU`` (multiply by 100)
for Hz. θ is kept in (-π, π]: a spike is the step where θ passes π, after which 2π is
subtracted.

Integration: classic RK4 with the total input held fixed over the step (the authors' code),
in float32.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from .base import NeuronModel

TAU = 0.010
"""Membrane time constant in seconds: the theta neuron's unit of time."""

SMOOTH_C = 0.1
"""Smoothing constant c of the noisy-input f-I curve (Brunel & Latham 2003; the paper)."""

def rate_sharp(x):
    """f-I curve for constant input: ``φ1(x) = sqrt([x]+) / π``, spikes per tau."""
    x = np.asarray(x, dtype=float)
    return np.sqrt(np.maximum(x, 0.0)) / np.pi


def rate_sharp_derivative(x):
    """``φ1'(x) = 1 / (2π sqrt(x))`` for x > 0, else 0 (spikes per tau per unit input)."""
    x = np.asarray(x, dtype=float)
    out = np.zeros_like(x)
    positive = x > 0
    out[positive] = 0.5 / (np.pi * np.sqrt(x[positive]))
    return out


def rate_smooth(x, c: float = SMOOTH_C):
    """f-I curve for noisy input: ``φ2(x) = sqrt(c log(1 + e^{x/c})) / π``, spikes per tau."""
    x = np.asarray(x, dtype=float)
    return np.sqrt(c * np.logaddexp(0.0, x / c)) / np.pi


def rate_smooth_derivative(x, c: float = SMOOTH_C):
    """``φ2'(x) = σ(x/c) / (2π sqrt(c log(1 + e^{x/c})))`` with σ the logistic function."""
    x = np.asarray(x, dtype=float)
    softplus = c * np.logaddexp(0.0, x / c)
    logistic = 0.5 * (1.0 + np.tanh(x / (2.0 * c)))
    return logistic / (2.0 * np.pi * np.sqrt(softplus))


def rate_hz(x, params=None, *, smooth: bool = False):
    """The f-I curve in Hz (spikes per second). ``params`` (a :class:`ThetaParams`) is
    accepted for the common model interface; the theta neuron has no parameters."""
    return (rate_smooth(x) if smooth else rate_sharp(x)) / TAU


def rate_derivative_hz(x, params=None, *, smooth: bool = False):
    """Derivative of :func:`rate_hz` with respect to the input, Hz per unit input."""
    return (rate_smooth_derivative(x) if smooth else rate_sharp_derivative(x)) / TAU


@dataclass(frozen=True)
class ThetaParams:
    """The theta neuron has no free parameters: tau is its unit of time."""

    def as_array(self, n: int) -> np.ndarray:
        return np.zeros((1, n))


def init_state(n: int, rng: np.random.Generator, params: ThetaParams | None = None) -> np.ndarray:
    """θ0 uniform on [-π, π) (the same as the paper's [0, 2π) modulo 2π)."""
    return rng.uniform(-np.pi, np.pi, size=(1, n))


@numba.njit(inline="always")
def _dtheta(theta, x):
    cos = np.cos(theta)
    return np.float32(1.0) - cos + x * (np.float32(1.0) + cos)


@numba.njit(cache=True)
def step(state, params, i, x, dt):
    """Advance neuron ``i`` by ``dt`` (units of tau) under fixed input ``x``; True on a spike."""
    theta = state[0, i]
    half = np.float32(0.5) * dt
    k1 = _dtheta(theta, x)
    k2 = _dtheta(theta + half * k1, x)
    k3 = _dtheta(theta + half * k2, x)
    k4 = _dtheta(theta + dt * k3, x)
    theta = theta + dt / np.float32(6.0) * (k1 + np.float32(2.0) * (k2 + k3) + k4)
    if theta > np.float32(np.pi):
        state[0, i] = theta - np.float32(2.0 * np.pi)
        return True
    if theta < np.float32(-np.pi):  # strong negative input can push θ back past -π
        theta += np.float32(2.0 * np.pi)
    state[0, i] = theta
    return False


@numba.njit(cache=True)
def phi_point(x, params, i):
    """``φ1(x)`` and its derivative, spikes per tau (the compiled form of
    :func:`rate_sharp` / :func:`rate_sharp_derivative`)."""
    if x > 0.0:
        root = np.sqrt(x)
        return root / np.pi, 0.5 / (np.pi * root)
    return 0.0, 0.0


def threshold(params=None, n: int = 1) -> np.ndarray:
    """The theta neuron fires for any input above 0."""
    return np.zeros(n)


def input_scale(params=None, n: int = 1) -> np.ndarray:
    """One unit of input: the reference of every model's input scale (see ``base``)."""
    return np.ones(n)


MODEL = NeuronModel(
    name="theta",
    time_unit=TAU,
    n_state=1,
    params=ThetaParams(),
    init_state=init_state,
    step=step,
    rate=rate_hz,
    rate_derivative=rate_derivative_hz,
    threshold=threshold,
    scale=input_scale,
    phi_point=phi_point,
    state_label=("theta phase", "rad"),
    phase_speed_at_spike=2.0,  # 1 - cos π + x (1 + cos π) = 2, whatever x
    description="theta neuron (QIF), tau = 10 ms; the paper's model",
)
