"""Theta neuron (quadratic integrate-and-fire in phase form): the f-I curve.

``tau dθ/dt = 1 - cos θ + (I + u)(1 + cos θ)``, tau = 10 ms, a spike when θ crosses π.
Rates from the f-I curve are in spikes per tau (the model's own unit); multiply by
``1 / TAU`` (= 100) for Hz. The simulation kernel comes with the engine issue.
"""
from __future__ import annotations

import numpy as np

TAU = 0.010
"""Membrane time constant in seconds: the theta neuron's unit of time."""

SMOOTH_C = 0.1
"""Smoothing constant c of the noisy-input f-I curve (Brunel & Latham 2003; the paper)."""


def rate_sharp(x):
    """f-I curve for constant input: ``φ1(x) = sqrt([x]+) / π``, spikes per tau."""
    x = np.asarray(x, dtype=float)
    return np.sqrt(np.maximum(x, 0.0)) / np.pi


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


def rate_hz(x, smooth: bool = False):
    """The f-I curve in Hz (spikes per second)."""
    return (rate_smooth(x) if smooth else rate_sharp(x)) / TAU
