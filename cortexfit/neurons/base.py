"""The neuron-model interface and the registry of models by name.

A neuron model is one module with:

* a parameter record (a frozen dataclass) whose ``as_array(n)`` gives the per-neuron
  parameter rows ``(n_params, n)`` the kernel reads;
* a numba ``step(state, params, i, x, dt) -> bool`` that advances neuron ``i`` by ``dt``
  (in the model's own time unit) under total input ``x`` held fixed over the step, applies
  the reset and returns whether it spiked;
* ``init_state(n, rng)``: the random initial state ``(n_state, n)``;
* the f-I curve ``rate(x)`` in spikes per second for a constant input ``x`` (and its
  derivative where it exists), used for rate targets and the quasi-static analysis.

Every model has its own natural **time unit** (the theta neuron's is tau = 10 ms, LIF and
Izhikevich run in ms); :mod:`cortexfit.simulate` converts seconds to it in one place. The
filtered spike trains ``r`` and so the synaptic drive ``u = W r`` are per model time unit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..exceptions import ConfigError

__all__ = ["NeuronModel", "register", "get_model", "model_names"]


@dataclass(frozen=True)
class NeuronModel:
    """What the simulator needs to know about a neuron model."""

    name: str
    code: int
    """Dispatch code inside the simulation kernel."""
    time_unit: float
    """The model's unit of time in seconds (theta: 0.01, LIF/Izhikevich: 0.001)."""
    n_state: int
    params: Any
    """The default parameter record."""
    init_state: Callable[[int, np.random.Generator, Any], np.ndarray]
    rate: Callable[..., np.ndarray]
    """f-I curve: constant input -> rate in Hz."""
    rate_derivative: Callable[..., np.ndarray] | None = None
    description: str = ""

    def param_array(self, n: int, params: Any = None) -> np.ndarray:
        """Per-neuron parameters ``(n_params, n)`` as float64 (the kernel casts)."""
        return (params if params is not None else self.params).as_array(n)


_REGISTRY: dict[str, NeuronModel] = {}


def register(model: NeuronModel) -> NeuronModel:
    """Add a model to the registry (by its name)."""
    _REGISTRY[model.name] = model
    return model


def model_names() -> list[str]:
    """The names of all registered models."""
    _load_builtin()
    return sorted(_REGISTRY)


def get_model(name: str | NeuronModel) -> NeuronModel:
    """The model registered under ``name``; a :class:`ConfigError` lists the valid names."""
    if isinstance(name, NeuronModel):
        return name
    _load_builtin()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ConfigError(
            "unknown neuron model", field="neuron_model", found=repr(name),
            expected=" or ".join(repr(n) for n in sorted(_REGISTRY)),
        ) from None


def _load_builtin() -> None:
    from . import izhikevich, lif, theta  # noqa: F401  (registration on import)
