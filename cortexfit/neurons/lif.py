"""Leaky integrate-and-fire neuron (the paper's Figure 3 supplement 2).

``tau dv/dt = -(v - v_rest) + x``, a spike when v reaches ``v_thr``, then ``v = v_reset``
for ``t_ref``. Time unit: 1 ms; v and the input x in mV (x is the total input: bias,
stimulus, noise and synaptic drive u, all in mV of steady-state depolarisation).

Integration is exact for an input held fixed over the step, including the threshold
crossing inside the step: the neuron resets at the exact crossing time and integrates
the rest of the step, so the firing rate has no time-step bias. The refractory period may
start and end inside a step too. One limit: a second crossing inside the same step (an
interval shorter than dt, above 1 kHz at dt = 1 ms) is not resolved; that spike is lost
and the neuron stays at reset.

The paper writes ``dv/dt = -(v - I)/tau + u``; this is the same equation with
``x = I - v_rest + tau u``: the input is expressed as the steady-state depolarisation it
causes, and the f-I curve is a function of that one number.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from ..exceptions import ConfigError
from .base import NeuronModel

TIME_UNIT = 0.001


@dataclass(frozen=True)
class LIFParams:
    """LIF parameters (mV, ms). The paper gives tau, v_thr, v_reset; v_rest and t_ref are ours."""

    tau: float = 10.0
    v_rest: float = -65.0
    v_thr: float = -50.0
    v_reset: float = -65.0
    t_ref: float = 0.0

    def __post_init__(self) -> None:
        values = {"tau": self.tau, "v_rest": self.v_rest, "v_thr": self.v_thr,
                  "v_reset": self.v_reset, "t_ref": self.t_ref}
        for name, value in values.items():
            if not isinstance(value, (int, float, np.floating, np.integer)) \
                    or not np.isfinite(value):
                raise ConfigError("LIF parameter is not a finite number", field=name,
                                  found=repr(value), expected="a finite number (mV or ms)")
        if self.tau <= 0:
            raise ConfigError("LIF time constant must be positive", field="tau",
                              found=self.tau, expected="> 0 ms")
        if self.t_ref < 0:
            raise ConfigError("LIF refractory period must not be negative", field="t_ref",
                              found=self.t_ref, expected=">= 0 ms")
        if self.v_reset >= self.v_thr:
            raise ConfigError("LIF reset must lie below the threshold", field="v_reset",
                              found=self.v_reset, expected=f"< v_thr = {self.v_thr} mV")

    def as_array(self, n: int) -> np.ndarray:
        row = [self.tau, self.v_rest, self.v_thr, self.v_reset, self.t_ref]
        return np.repeat(np.array(row, dtype=float)[:, None], n, axis=1)


def init_state(n: int, rng: np.random.Generator, params: LIFParams | None = None) -> np.ndarray:
    """v uniform between reset and threshold; no neuron refractory at the start."""
    p = params or LIFParams()
    state = np.zeros((2, n))
    state[0] = rng.uniform(p.v_reset, p.v_thr, size=n)
    return state


def _period(v_inf: np.ndarray, p: LIFParams) -> np.ndarray:
    """Inter-spike interval (ms) for ``v_inf > v_thr``."""
    return p.t_ref + p.tau * np.log((v_inf - p.v_reset) / (v_inf - p.v_thr))


def rate(x, params: LIFParams | None = None):
    """f-I curve in Hz: ``1 / (t_ref + tau ln((v_inf - v_reset) / (v_inf - v_thr)))`` for
    ``v_inf = v_rest + x`` above threshold, else 0."""
    p = params or LIFParams()
    x = np.asarray(x, dtype=float)
    v_inf = p.v_rest + x
    out = np.zeros_like(v_inf)
    above = v_inf > p.v_thr
    out[above] = 1.0 / (_period(v_inf[above], p) * TIME_UNIT)
    return out


def rate_derivative(x, params: LIFParams | None = None):
    """d rate / d x in Hz per mV: ``tau (v_thr - v_reset) / ((v_inf - v_reset)(v_inf - v_thr)
    T²)`` with tau and the period T in seconds, above threshold; 0 at and below it (the
    true derivative grows without bound as v_inf comes down to v_thr)."""
    p = params or LIFParams()
    x = np.asarray(x, dtype=float)
    v_inf = p.v_rest + x
    out = np.zeros_like(v_inf)
    above = v_inf > p.v_thr
    v = v_inf[above]
    period = _period(v, p)  # ms
    # dT/dx = -tau (v_thr - v_reset) / ((v - v_reset)(v - v_thr)); d(1/T)/dx = -dT/dx / T²
    slope = p.tau * (p.v_thr - p.v_reset) / ((v - p.v_reset) * (v - p.v_thr)) / period ** 2
    out[above] = slope / TIME_UNIT
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
    if not v_next >= v_thr:  # (so that a NaN state does not spike: simulate reports it)
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


@numba.njit(cache=True)
def phi_point(x, params, i):
    """The f-I curve and its derivative at ``x`` for neuron ``i``, spikes per ms (the
    compiled form of :func:`rate` / :func:`rate_derivative`, times the time unit)."""
    tau, v_rest, v_thr, v_reset, t_ref = (params[0, i], params[1, i], params[2, i],
                                          params[3, i], params[4, i])
    v_inf = v_rest + x
    if not v_inf > v_thr:
        return 0.0, 0.0
    period = t_ref + tau * np.log((v_inf - v_reset) / (v_inf - v_thr))
    slope = tau * (v_thr - v_reset) / ((v_inf - v_reset) * (v_inf - v_thr)) / period ** 2
    return 1.0 / period, slope


def threshold(params: LIFParams | None = None, n: int = 1) -> np.ndarray:
    """The rheobase ``v_thr - v_rest`` (mV): the neuron fires for inputs above it."""
    p = params or LIFParams()
    return np.full(n, p.v_thr - p.v_rest)


MODEL = NeuronModel(
    name="lif",
    time_unit=TIME_UNIT,
    n_state=2,
    params=LIFParams(),
    init_state=init_state,
    step=step,
    rate=rate,
    rate_derivative=rate_derivative,
    threshold=threshold,
    phi_point=phi_point,
    description="leaky integrate-and-fire, tau = 10 ms, threshold -50 mV, reset -65 mV",
)
