"""Units: the one home of every conversion between the user's units and a neuron model's.

What a user gives is in seconds, Hz and **model-neutral input units**; the simulator runs in
the neuron model's own units (:mod:`cortexfit.neurons.base`). The conversions:

* **time**: seconds -> simulator steps, :func:`steps` (rounded to the nearest step);
* **rates**: Hz <-> spikes per model time unit, :func:`to_model_rate` / :func:`to_hz`
  (theta: per tau = 10 ms; LIF and Izhikevich: per ms);
* **inputs** (:class:`InputScale`): a training setting's bias, stimulus amplitude and
  network strength (J, sigma) are in units of the theta neuron, the paper's model, and are
  carried to any other model by its own f-I curve: an input ``x`` becomes
  ``threshold + scale * x``, where ``scale`` is the input above threshold at which the model
  fires at the rate one unit above threshold gives the theta neuron (31.8 Hz; LIF: 0.68 mV,
  Izhikevich RS: 10.8). A synaptic weight becomes ``scale * (TAU / time_unit) * w``, because
  the filtered trains a weight multiplies are per model time unit (a LIF neuron's are per
  ms, ten times smaller numbers than the theta neuron's per 10 ms). For the theta neuron
  every conversion is the identity, so the paper's settings mean what the paper says, and
  the same settings give every model the same operating point: at bias 0 a neuron sits at
  its threshold, a drive of 1 makes it fire at about 32 Hz.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .neurons.base import NeuronModel
from .neurons.theta import TAU

__all__ = ["steps", "to_model_rate", "to_hz", "InputScale"]


def steps(seconds: float, dt: float) -> int:
    """Seconds -> a whole number of simulator steps of ``dt`` (rounded)."""
    return int(round(float(seconds) / float(dt)))


def to_model_rate(rate_hz: Any, time_unit: float) -> np.ndarray:
    """Hz -> spikes per model time unit (theta: per 10 ms)."""
    return np.asarray(rate_hz, dtype=np.float64) * time_unit


def to_hz(rate_model: Any, time_unit: float) -> np.ndarray:
    """Spikes per model time unit -> Hz (the trainer's readout, test trials, diagnostics)."""
    return np.asarray(rate_model) / time_unit


@dataclass(frozen=True)
class InputScale:
    """Model-neutral inputs -> one network's model units, per neuron (see the module
    docstring). ``identity`` when the model is the theta neuron (nothing is converted, so
    results stay bit for bit those of the paper's units)."""

    threshold: np.ndarray
    scale: np.ndarray
    time_ratio: float
    """``TAU / time_unit``: how many model time units make the theta neuron's one."""

    @classmethod
    def of(cls, model: NeuronModel, params: Any, n: int) -> "InputScale":
        return cls(threshold=np.asarray(model.threshold(params, n), dtype=float),
                   scale=np.asarray(model.input_scale(params, n), dtype=float),
                   time_ratio=TAU / model.time_unit)

    @property
    def identity(self) -> bool:
        return bool(np.all(self.threshold == 0) and np.all(self.scale == 1)
                    and self.time_ratio == 1)

    def level(self, x: Any) -> np.ndarray:
        """A constant input (bias): ``threshold + scale * x`` per neuron."""
        if self.identity:
            return np.broadcast_to(np.asarray(x, dtype=float), self.scale.shape).copy()
        return self.threshold + self.scale * np.asarray(x, dtype=float)

    def amplitude(self, x: Any) -> np.ndarray:
        """An input change (stimulus amplitude, drive): ``scale * x`` (neurons on the last
        axis)."""
        if self.identity:
            return np.asarray(x, dtype=float)
        return self.scale * np.asarray(x, dtype=float)

    def weight_rows(self) -> np.ndarray:
        """The factor of each row of W (postsynaptic neuron): ``scale * TAU / time_unit``."""
        return self.scale * self.time_ratio

    def rls_lambda(self, lam: float, rate_form: bool) -> float | np.ndarray:
        """The RLS regulariser, per neuron, that makes RLS in model units take the steps it
        takes in the theta neuron's units. The regressor of neuron i scales by
        ``a_i = 1 / time_ratio`` (drive form: the filtered trains) or
        ``1 / (time_ratio² scale_i)`` (rate form: times the curve's slope, per unit of model
        input), and ``(a² XᵀX + a² lam)⁻¹`` then gives the same weights scaled as
        :meth:`weight_rows` says: lambda scales by ``a_i²``. The identity for theta."""
        if self.identity:
            return lam
        a = 1.0 / (self.time_ratio ** 2 * self.scale) if rate_form else \
            np.full(self.scale.shape, 1.0 / self.time_ratio)
        return lam * a * a
