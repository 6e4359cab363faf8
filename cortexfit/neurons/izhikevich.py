"""Izhikevich neurons (Izhikevich 2003), RS / IB / CH / FS / LTS cell types.

``dv/dt = 0.04 v² + 5 v + 140 - w + x``, ``dw/dt = a (b v - w)``; a spike when v >= 30 mV,
then ``v = c``, ``w += d``. Time unit: 1 ms; x is the total input (bias, stimulus, noise,
synaptic drive u) in the model's current units. Integration: forward Euler (dt << 1 ms).
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from ..exceptions import ConfigError
from .base import NeuronModel, register

CODE = 2
TIME_UNIT = 0.001

CELL_TYPES: dict[str, tuple[float, float, float, float]] = {
    "RS": (0.02, 0.2, -65.0, 8.0),
    "IB": (0.02, 0.2, -55.0, 4.0),
    "CH": (0.02, 0.2, -50.0, 2.0),
    "FS": (0.1, 0.2, -65.0, 2.0),
    "LTS": (0.02, 0.25, -65.0, 2.0),
}
"""(a, b, c, d) of Izhikevich (2003), Fig. 2."""

V_PEAK = 30.0


@dataclass(frozen=True)
class IzhikevichParams:
    """Cell types, assigned in turn to neurons 0, 1, 2, ... (``"mix"``: equal numbers of all
    five, the paper's Figure 3 supplement 2)."""

    cell_types: tuple[str, ...] | str = "RS"

    def types(self) -> tuple[str, ...]:
        names = tuple(CELL_TYPES) if self.cell_types == "mix" else (
            (self.cell_types,) if isinstance(self.cell_types, str) else tuple(self.cell_types))
        unknown = [t for t in names if t not in CELL_TYPES]
        if unknown or not names:
            raise ConfigError("unknown Izhikevich cell type", field="cell_types",
                              found=unknown or names, expected=f"some of {list(CELL_TYPES)} or 'mix'")
        return names

    def as_array(self, n: int) -> np.ndarray:
        names = self.types()
        table = np.array([CELL_TYPES[t] for t in names], dtype=float).T  # (4, n_types)
        return table[:, np.arange(n) % len(names)]


def init_state(n: int, rng: np.random.Generator, params: IzhikevichParams | None = None) -> np.ndarray:
    """v uniform on [-70, -50] mV, w = b v."""
    p = (params or IzhikevichParams()).as_array(n)
    state = np.zeros((2, n))
    state[0] = rng.uniform(-70.0, -50.0, size=n)
    state[1] = p[1] * state[0]
    return state


def rate(x, cell_type: str = "RS"):
    """f-I curve in Hz, measured by simulation and tabulated (see :mod:`.fi_table`)."""
    from .fi_table import izhikevich_rate

    return izhikevich_rate(x, cell_type)


@numba.njit(cache=True)
def step(state, params, i, x, dt):
    """Advance neuron ``i`` by ``dt`` ms under fixed input ``x``; True on a spike."""
    v = state[0, i]
    w = state[1, i]
    dv = np.float32(0.04) * v * v + np.float32(5.0) * v + np.float32(140.0) - w + x
    dw = params[0, i] * (params[1, i] * v - w)
    v = v + dt * dv
    w = w + dt * dw
    if v >= np.float32(V_PEAK):
        state[0, i] = params[2, i]
        state[1, i] = w + params[3, i]
        return True
    state[0, i] = v
    state[1, i] = w
    return False


MODEL = register(NeuronModel(
    name="izhikevich",
    code=CODE,
    time_unit=TIME_UNIT,
    n_state=2,
    params=IzhikevichParams(),
    init_state=init_state,
    rate=rate,
    description="Izhikevich (2003) neurons: RS, IB, CH, FS, LTS or an equal mix",
))
