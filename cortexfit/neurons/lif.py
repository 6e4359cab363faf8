"""Leaky integrate-and-fire neuron (the paper's Figure 3 supplement 2).

``tau dv/dt = -(v - v_rest) + x``, a spike when v reaches ``v_thr``, then ``v = v_reset``
for ``t_ref``. Time unit: 1 ms; v and the input x in mV (x is the total input: bias,
stimulus, noise and synaptic drive u, all in mV of steady-state depolarisation).

Integration is exact for an input held fixed over the step, including the threshold
crossing inside the step: the neuron resets at the exact crossing time and integrates
the rest of the step, so the firing rate has no time-step bias.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from .base import NeuronModel, register

CODE = 1
TIME_UNIT = 0.001


@dataclass(frozen=True)
class LIFParams:
    """LIF parameters (mV, ms). The paper gives tau, v_thr, v_reset; v_rest and t_ref are ours."""

    tau: float = 10.0
    v_rest: float = -65.0
    v_thr: float = -50.0
    v_reset: float = -65.0
    t_ref: float = 0.0

    def as_array(self, n: int) -> np.ndarray:
        row = [self.tau, self.v_rest, self.v_thr, self.v_reset, self.t_ref]
        return np.repeat(np.array(row, dtype=float)[:, None], n, axis=1)


def init_state(n: int, rng: np.random.Generator, params: LIFParams | None = None) -> np.ndarray:
    """v uniform between reset and threshold; no neuron refractory at the start."""
    p = params or LIFParams()
    state = np.zeros((2, n))
    state[0] = rng.uniform(p.v_reset, p.v_thr, size=n)
    return state


def rate(x, params: LIFParams | None = None):
    """f-I curve in Hz: ``1 / (t_ref + tau ln((v_inf - v_reset) / (v_inf - v_thr)))`` for
    ``v_inf = v_rest + x`` above threshold, else 0."""
    p = params or LIFParams()
    x = np.asarray(x, dtype=float)
    v_inf = p.v_rest + x
    out = np.zeros_like(v_inf)
    above = v_inf > p.v_thr
    period = p.t_ref + p.tau * np.log((v_inf[above] - p.v_reset) / (v_inf[above] - p.v_thr))
    out[above] = 1.0 / (period * TIME_UNIT)
    return out


@numba.njit(cache=True)
def step(state, params, i, x, dt):
    """Advance neuron ``i`` by ``dt`` ms under fixed input ``x`` (mV); True on a spike."""
    tau = params[0, i]
    v_inf = params[1, i] + x
    v_thr = params[2, i]
    remaining = dt
    refractory = state[1, i]
    if refractory > np.float32(0.0):
        if refractory >= remaining:
            state[1, i] = refractory - remaining
            return False
        remaining -= refractory
        state[1, i] = np.float32(0.0)
    v = state[0, i]
    v_next = v_inf + (v - v_inf) * np.exp(-remaining / tau)
    if v_next < v_thr:
        state[0, i] = v_next
        return False
    # crossing time inside the step, then reset and integrate what is left
    t_cross = tau * np.log((v - v_inf) / (v_thr - v_inf))
    left = remaining - t_cross
    t_ref = params[4, i]
    v = params[3, i]
    if left > t_ref:
        left -= t_ref
        v = v_inf + (v - v_inf) * np.exp(-left / tau)
        # a second spike in one step is not resolved: dt must be << the period
        if v >= v_thr:
            v = params[3, i]
    else:
        state[1, i] = t_ref - left
    state[0, i] = v
    return True


MODEL = register(NeuronModel(
    name="lif",
    code=CODE,
    time_unit=TIME_UNIT,
    n_state=2,
    params=LIFParams(),
    init_state=init_state,
    rate=rate,
    description="leaky integrate-and-fire, tau = 10 ms, threshold -50 mV, reset -65 mV",
))
