"""The neuron-model interface, the f-I curve every part of cortexfit uses, and the registry.

A neuron model is one module (or package) that builds a :class:`NeuronModel`, plus one
registry line in :mod:`cortexfit.neurons`. The model gives:

* a parameter record (a frozen dataclass) whose ``as_array(n)`` gives the per-neuron
  parameter rows ``(n_params, n)`` the kernel reads;
* a numba ``step(state, params, i, x, dt) -> bool`` that advances neuron ``i`` by ``dt``
  (in the model's own time unit) under total input ``x`` held fixed over the step, applies
  the reset and returns whether it spiked; :mod:`cortexfit.simulate` compiles one kernel per
  model around it;
* ``init_state(n, rng, params)``: the random initial state ``(n_state, n)``;
* its f-I curve ``rate(x, params)`` in spikes per second for a constant input ``x``, its
  derivative, and ``threshold(params, n)``: per neuron, the largest input at which the
  neuron is silent (the rheobase).

From these, :meth:`NeuronModel.fi_curve` makes the :class:`FICurve` that rate training
(:mod:`cortexfit.fit`), the auxiliary targets (:mod:`cortexfit.auxiliary`) and the
quasi-static check (:mod:`cortexfit.diagnostics.quasistatic`) all use, so that a model's
own curve is used everywhere and nothing branches on a model's name.

**The smooth f-I curve.** Rate training needs a curve whose slope is not zero below
threshold (the paper: the theta neuron's ``φ2(x) = sqrt(c log(1 + e^{x/c}))/π``, the rate
under noisy input). For every model it is built the same way, by passing the input through
a softplus of width ``c`` above the threshold ``θ``::

    φ_c(x) = rate(θ + c log(1 + e^{(x - θ)/c}))

For the theta neuron (θ = 0, ``rate = sqrt(x)/π``) this is exactly the paper's ``φ2``. The
width ``c`` is ``smoothing x input_scale``, where the **input scale** of a model is the input
above threshold that makes it fire at ``1/(π tau)`` = 31.8 Hz, the rate one unit of input
above threshold gives the theta neuron (theta: 1; LIF with the default parameters: 0.68 mV;
Izhikevich RS: 10.8). A smoothing of 0.1 therefore means the same thing, in rate terms,
for every model; the paper's c = 0.1 for theta is unchanged.

Every model has its own natural **time unit** (the theta neuron's is tau = 10 ms, LIF and
Izhikevich run in ms); :mod:`cortexfit.simulate` converts seconds to it in one place. The
filtered spike trains ``r`` and so the synaptic drive ``u = W r`` are per model time unit,
and :class:`FICurve` gives rates in spikes per model time unit as well.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..exceptions import ConfigError

__all__ = ["NeuronModel", "FICurve", "register", "get_model", "model_names", "REFERENCE_RATE"]

REFERENCE_RATE = 1.0 / (np.pi * 0.010)
"""31.8 Hz: the theta neuron's rate one unit of input above threshold; defines a model's
input scale (see the module docstring)."""


@dataclass(frozen=True)
class NeuronModel:
    """What the simulator, the trainer and the diagnostics need to know about a model."""

    name: str
    time_unit: float
    """The model's unit of time in seconds (theta: 0.01, LIF/Izhikevich: 0.001)."""
    n_state: int
    params: Any
    """The default parameter record."""
    init_state: Callable[[int, np.random.Generator, Any], np.ndarray]
    step: Any
    """The numba step function (see the module docstring)."""
    rate: Callable[..., np.ndarray]
    """f-I curve ``rate(x, params)``: constant input -> rate in Hz."""
    rate_derivative: Callable[..., np.ndarray]
    """``d rate / dx`` in Hz per unit input (0 at and below threshold)."""
    threshold: Callable[[Any, int], np.ndarray]
    """``threshold(params, n)``: per neuron, the largest input at which it is silent."""
    phi_point: Any = None
    """Optional numba ``phi_point(x, params, i) -> (rate, d rate / dx)`` of neuron ``i`` (the
    sharp curve, spikes per model time unit; ``params`` the float64 array of
    :meth:`param_array`): lets rate training compute its signal in a compiled loop; without
    it training uses :class:`FICurve` (the same numbers, slower)."""
    scale: Callable[[Any, int], np.ndarray] | None = None
    """``scale(params, n)``: the input scale in closed form (else solved on the curve)."""
    state_label: tuple[str, str] = ("membrane potential", "mV")
    """Long name and units of the first state variable (recorded as ``v``)."""
    phase_speed_at_spike: float | None = None
    """For a phase model (the first state variable an angle, a spike at π, wrapped to
    [-π, π)): its speed dθ/dt at the spike in radians per model time unit, the same for
    every input (theta: 2). None: not a phase model. Read by the perturbation diagnostics
    (phase differences are wrapped) and the Lyapunov exponent (spike-timing shifts)."""
    description: str = ""

    def param_array(self, n: int, params: Any = None) -> np.ndarray:
        """Per-neuron parameters ``(n_params, n)`` as float64 (the kernel casts)."""
        return (params if params is not None else self.params).as_array(n)

    def input_scale(self, params: Any, n: int) -> np.ndarray:
        """Per neuron, the input above threshold at which the model fires at
        :data:`REFERENCE_RATE` (see the module docstring)."""
        params = params if params is not None else self.params
        if self.scale is not None:
            return np.asarray(self.scale(params, n), dtype=float)
        return _input_scale(self, params, n)

    def fi_curve(self, params: Any = None, n: int = 1, *, smoothing: float = 0.0) -> "FICurve":
        """The f-I curve of ``n`` neurons with ``params``, smoothed by ``smoothing`` input
        scales (0: the sharp curve), in spikes per model time unit."""
        if not (np.isfinite(smoothing) and smoothing >= 0):
            raise ConfigError("the f-I smoothing must be >= 0", field="fi_smoothing",
                              found=smoothing, expected="a number >= 0")
        params = params if params is not None else self.params
        theta = np.asarray(self.threshold(params, n), dtype=float)
        width = smoothing * self.input_scale(params, n) if smoothing > 0 else np.zeros(n)
        return FICurve(self, params, theta, np.asarray(width, dtype=float))


@dataclass(frozen=True)
class FICurve:
    """A model's f-I curve for a given set of neurons (the last axis of every input is the
    neuron, or the input is a scalar for a single-neuron curve). Rates in spikes per model
    time unit, ``phi`` and its derivative ``dphi`` per unit input."""

    model: NeuronModel
    params: Any
    threshold: np.ndarray
    """Per neuron: the largest input at which it is silent."""
    width: np.ndarray
    """Per neuron: the softplus width c (0: sharp)."""

    def _shifted(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``θ + c softplus((x - θ)/c)`` and its derivative in x (sharp where c = 0)."""
        x = np.asarray(x, dtype=float)
        c = np.broadcast_to(self.width, x.shape) if x.ndim else self.width[0]
        theta = np.broadcast_to(self.threshold, x.shape) if x.ndim else self.threshold[0]
        sharp = np.asarray(c) <= 0
        safe_c = np.where(sharp, 1.0, c)
        z = (x - theta) / safe_c
        soft = theta + safe_c * np.logaddexp(0.0, z)
        slope = 0.5 * (1.0 + np.tanh(0.5 * z))
        return np.where(sharp, x, soft), np.where(sharp, 1.0, slope)

    def phi(self, x) -> np.ndarray:
        """Rate in spikes per model time unit."""
        return self.hz(x) * self.model.time_unit

    def dphi(self, x) -> np.ndarray:
        """Derivative of :meth:`phi` with respect to the input."""
        shifted, slope = self._shifted(x)
        return (np.asarray(self.model.rate_derivative(shifted, self.params)) * slope
                * self.model.time_unit)

    def hz(self, x) -> np.ndarray:
        """Rate in Hz."""
        shifted, _ = self._shifted(x)
        return np.asarray(self.model.rate(shifted, self.params), dtype=float)


def _input_scale(model: NeuronModel, params: Any, n: int) -> np.ndarray:
    """Per neuron, solved on the model's own curve (bisection, to 1e-9 relative)."""
    types = _param_groups(params, n)
    out = np.empty(n)
    for key, members in types.items():
        out[members] = _scale_of(model, params, key, n)
    return out


def _param_groups(params: Any, n: int) -> dict[int, np.ndarray]:
    """Neurons grouped by identical parameter columns (a mixed network has several)."""
    columns = np.asarray(params.as_array(n), dtype=float)
    _, first, inverse = np.unique(columns.T, axis=0, return_index=True, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    return {int(first[k]): np.flatnonzero(inverse == k) for k in range(first.size)}


@functools.lru_cache(maxsize=64)
def _scale_of(model: NeuronModel, params: Any, neuron: int, n: int) -> float:
    def rate_at(s: float) -> float:
        x = np.full(n, theta + s)
        return float(np.asarray(model.rate(x, params))[neuron])

    theta = float(np.asarray(model.threshold(params, n))[neuron])
    lo, hi = 0.0, 1.0
    while rate_at(hi) < REFERENCE_RATE:
        lo, hi = hi, 2.0 * hi
        if hi > 1e6:
            raise ConfigError("the neuron model never reaches the reference rate",
                              field="neuron_model", found=model.name,
                              expected=f"a rate of {REFERENCE_RATE:.1f} Hz at some input")
    while hi - lo > 1e-9 * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if rate_at(mid) < REFERENCE_RATE else (lo, mid)
    return 0.5 * (lo + hi)


_REGISTRY: dict[str, NeuronModel] = {}


def register(model: NeuronModel) -> NeuronModel:
    """Add a model to the registry (by its name); :mod:`cortexfit.neurons` registers the
    built-in ones."""
    _REGISTRY[model.name] = model
    return model


def model_names() -> list[str]:
    """The names of all registered models."""
    return sorted(_REGISTRY)


def get_model(name: str | NeuronModel) -> NeuronModel:
    """The model registered under ``name``; a :class:`ConfigError` lists the valid names."""
    if isinstance(name, NeuronModel):
        return name
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ConfigError(
            "unknown neuron model", field="neuron_model", found=repr(name),
            expected=" or ".join(repr(n) for n in sorted(_REGISTRY)),
        ) from None
