"""Izhikevich neurons (Izhikevich 2003), RS / IB / CH / FS / LTS cell types: the cell.

The f-I curve is measured and tabulated in :mod:`.fi_table`; the package builds the model.

``dv/dt = 0.04 v² + 5 v + 140 - w + x``, ``dw/dt = a (b v - w)``; a spike when v >= 30 mV,
then ``v = c``, ``w += d``. Time unit: 1 ms; x is the total input (bias, stimulus, noise,
synaptic drive u) in the model's current units.

Integration: forward Euler (dt << 1 ms), with the reset placed inside the step: the time
at which v reaches 30 mV is interpolated linearly between the two ends of the step, the
reset applied there and the rest of the step integrated from (c, w + d). Resetting at the
end of the step instead locks every inter-spike interval to a whole number of steps: the
f-I curve becomes a staircase (FS at dt = 0.1 ms: 526.3 Hz for every input from 36.1 to
38, then a jump to 555.6 Hz) and the rates are biased low, the reset coming up to a whole
step late (FS at x = 40: -8.5 % against dt -> 0; -5 % with the interpolated reset; RS
-0.8 % and -0.5 %).
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from ...exceptions import ConfigError

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


@numba.njit(inline="always")
def _derivatives(v, w, a, b, x):
    dv = np.float32(0.04) * v * v + np.float32(5.0) * v + np.float32(140.0) - w + x
    return dv, a * (b * v - w)


@numba.njit(cache=True)
def step(state, params, i, x, dt):
    """Advance neuron ``i`` by ``dt`` ms under fixed input ``x``; True on a spike.

    Forward Euler; when v reaches the peak inside the step, the crossing time is
    interpolated linearly, the reset applied there and the rest of the step integrated
    from the reset state."""
    a = params[0, i]
    b = params[1, i]
    v = state[0, i]
    w = state[1, i]
    dv, dw = _derivatives(v, w, a, b, x)
    v_next = v + dt * dv
    if v_next >= np.float32(V_PEAK):  # (a NaN state does not spike: simulate reports it)
        frac = np.float32(0.0)  # fraction of the step before the peak
        if v < np.float32(V_PEAK):
            frac = (np.float32(V_PEAK) - v) / (v_next - v)
        w = w + frac * dt * dw + params[3, i]
        v = params[2, i]
        left = (np.float32(1.0) - frac) * dt
        dv, dw = _derivatives(v, w, a, b, x)
        state[0, i] = v + left * dv
        state[1, i] = w + left * dw
        return True
    state[0, i] = v_next
    state[1, i] = w + dt * dw
    return False
