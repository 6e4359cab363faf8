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
time unit (:class:`cortexfit.simulate.Noise` with ``kind="white"``): the simulator adds
``sigma z / sqrt(dt)`` (``z`` standard normal, ``dt`` in model time units) to the input and
holds it over the step. ``sigma`` is in the model's input units times sqrt(model time unit):
theta: per sqrt(tau); LIF: mV sqrt(ms); Izhikevich: current units sqrt(ms).

**Theta neuron** (QIF in phase form). With ``V = tan(θ/2)`` the model is
``dV/dt = V² + x + sigma xi``, whose mean inter-spike interval under white noise of
intensity ``D = sigma²/2`` is (Lindner, Longtin & Bulsara 2003, Neural Comput 15:1761)::

    T(x) = sqrt(π) ∫_0^∞ z^(-1/2) exp(-x z - D² z³ / 12) dz

(``π / sqrt(x)`` without noise). The rate ``1/T`` matches the simulator's measured rate
(tests/unit/test_noisy.py) and is tabulated on a fine grid with its derivative
``dT/dx = -sqrt(π) ∫ z^(1/2) exp(...) dz``; above the table (6 input scales over threshold)
the sharp curve ``sqrt(x)/π``.

**LIF** (:mod:`.lif`, time unit 1 ms, x in mV). With noise the membrane obeys
``tau dv/dt = -(v - v_rest) + x + sigma xi``, i.e. ``tau dv/dt = -v + mu + s sqrt(tau) xi``
with ``mu = v_rest + x`` (mV) and ``s = sigma / sqrt(tau)`` (mV): Brunel's (2000) form, in
which the free membrane potential has mean ``mu`` and SD ``s / sqrt(2) = sigma /
sqrt(2 tau)``. The mean first-passage time from reset to threshold gives the Siegert
formula (Brunel 2000, eq. 21; Fourcaud & Brunel 2002)::

    1/rate = t_ref + tau sqrt(π) ∫_{(v_reset' - mu)/s}^{(v_thr' - mu)/s} e^{u²} (1 + erf u) du

spikes per ms. The integrand is ``erfcx(-u)``; the integral is split at 0: below 0 it is
``∫ erfcx(t) dt`` (Gauss-Legendre in ``log(1 + t)``), above 0 ``sqrt(π) (erfi(b) - erfi(a))
- ∫ erfcx(t) dt``. The derivative is exact: ``d rate/dx = tau sqrt(π) (erfcx(-b) -
erfcx(-a)) / (s T²)``. The simulator holds each noise sample over a step ``dt`` and
resolves threshold crossings inside the step exactly, which is white noise only for
``dt -> 0``; the finite step lowers the rate by an amount that scales with
``sqrt(dt / tau)``, like noise filtered with a short time constant (Fourcaud & Brunel
2002), and is taken into account as they do, by shifting threshold and reset together::

    v_thr' = v_thr + k s sqrt(dt / tau),   v_reset' = v_reset + k s sqrt(dt / tau)

with ``k =`` :data:`LIF_STEP_SHIFT` ``= 0.55``, measured against the simulator: 0.53-0.60
(each +-0.03) at 1-5 Hz, 0.45-0.55 at 100-350 Hz, for sigma = 5 and 10 mV sqrt(ms) at
dt = 0.1 ms, and the same at dt = 0.025 ms (the shift does scale with sqrt(dt)). Without
it the formula is ~20 % high at 0.5-2 Hz for dt = 0.1 ms, tau = 10 ms. Tabulated from far
below threshold (1e-3 Hz) to 60 mV above threshold (~450 Hz with the default parameters)
on a grid of step ``clip(s/20, 0.002, 0.01)`` mV, and extrapolated linearly with the top
slope above it (the LIF rate grows almost linearly there: within 0.1 % at 100 mV above
threshold with the default parameters; with a refractory period the rate saturates and
the extrapolation overestimates it).

**Izhikevich** (:mod:`.izhikevich`): no closed form. The rate is measured with the
project's own simulator (:class:`~cortexfit.simulate.Simulator`: the model's ``step``,
the same noise generator and float32 state) on uncoupled neurons held at constant inputs,
one cell type at a time, with a deterministic noise seed: a coarse pass (10 neurons for
1 s per input, -20 to 40) finds where the neuron starts firing; a second pass measures a
grid of step ``clip(sigma/10, 0.02, 0.25)`` from 1 below there to 6 above it (or to where
it fires at 30 Hz; then step 1 up to 40) for 2 s after 0.3 s of settling, with enough
neurons per input for ~300 spikes (at most 800 neuron-seconds per input, 60 below
~0.2 Hz, and :data:`IZH_BUDGET` neuron-seconds in all). The log-rate is smoothed by a
local quadratic over 7 neighbouring inputs (weights: tricube distance times the spike
count, i.e. the inverse Poisson variance of a log-rate), made monotone, interpolated by
PCHIP onto a grid of step 0.005; below the lowest input with 3 spikes it falls
exponentially (the log-slope of the lowest unit of input); the derivative is by finite
differences of the table. Measured against independent long runs (RS, sigma = 0.5, 1,
2): within 2 % above 5 Hz and 1 % above 10 Hz; at 0.5-2 Hz the table's statistical error
is ~4 % (spread over measuring seeds) and it runs ~3 % low on average. Above the grid
(x > 40) the rate is extrapolated linearly with the slope of its last 5 units of input,
like the noise-free table. The table is valid for the time step it was measured at (``dt`` of
:func:`noisy_fi_curve`; Euler integration makes the rates depend slightly on it) and is
kept in memory for the process only (2-3 s to measure one cell type on a busy core, plus
the simulator's compilation if it is the first Izhikevich run of the process).

**The table** (:class:`NoisyFICurve`): rate and slope in spikes per model time unit on a
uniform grid, one row per distinct parameter set (a mixed Izhikevich network has one per
cell type), read by linear interpolation in compiled code (:func:`table_point`, used by
the training signal): 0 below the grid; above it the sharp theta curve for theta, linear
extrapolation for LIF and Izhikevich (``above``).

Other models have no noisy curve (an error names them).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from scipy.special import erfcx, erfi

from ..exceptions import ConfigError

__all__ = ["NoisyFICurve", "noisy_fi_curve", "theta_noisy_rate", "lif_noisy_rate",
           "izhikevich_noisy_table", "LIF_STEP_SHIFT"]

_GRID_STEP = 0.0005
"""Input spacing of the theta table (input scales)."""
_TABLE_TOP = 6.0
"""Above this many input scales over threshold the noise's effect is below 0.3 % and the
sharp curve is used."""
_FLOOR_RATE = 1e-5
"""The table starts where the rate falls below this (Hz); below it the rate and slope are 0."""

DEFAULT_DT = 1e-4
"""The simulator's default time step (s) (:data:`cortexfit.simulate.DEFAULT_DT`)."""

ABOVE_THETA = 0
"""Above the table: the theta neuron's sharp curve ``sqrt(x)/π``."""
ABOVE_LINEAR = 1
"""Above the table: linear extrapolation with the table's last slope."""

LIF_STEP_SHIFT = 0.55
"""Shift of the LIF threshold and reset, in units of ``s sqrt(dt / tau)``, that accounts for
the simulator's noise being held over each step (measured; see the module docstring)."""
_LIF_TOP = 60.0
"""The LIF table ends this many mV above threshold."""
_LIF_FLOOR = 1e-6
"""The LIF and Izhikevich tables start where the rate falls below this (spikes per ms)."""

IZH_TOP = 40.0
"""The Izhikevich table's last input (the noise-free table's, :data:`.izhikevich.fi_table.GRID`)."""
_IZH_STEP = 0.005
_IZH_SETTLE = 0.3
_IZH_WINDOW = 2.0
_IZH_SPIKES = 300.0
_IZH_MAX_EXPOSURE = 800.0
_IZH_LOW_EXPOSURE = 60.0
IZH_BUDGET = 8000.0
"""Neuron-seconds of simulation per cell type in the Izhikevich measuring pass (~2 s)."""
_IZH_SEED = 0x1F7A


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


# --------------------------------------------------------------------------------------
# LIF: the Siegert formula
# --------------------------------------------------------------------------------------

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(64)


def _erfcx_integral(t1: np.ndarray, t2: np.ndarray) -> np.ndarray:
    """``∫_{t1}^{t2} erfcx(t) dt`` for ``0 <= t1 <= t2`` elementwise: Gauss-Legendre in
    ``r = log(1 + t)``, where the integrand ``erfcx(t) (1 + t)`` is smooth and bounded
    (to ~1e-13 relative)."""
    r1, r2 = np.log1p(t1)[:, None], np.log1p(t2)[:, None]
    half = 0.5 * (r2 - r1)
    r = r1 + half * (_GL_NODES[None, :] + 1.0)
    t = np.expm1(r)
    return half[:, 0] * ((erfcx(t) * (1.0 + t)) @ _GL_WEIGHTS)


def _siegert_integral(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``∫_a^b e^{u²} (1 + erf u) du = ∫_a^b erfcx(-u) du`` for ``a <= b`` elementwise
    (inf where it overflows, far below threshold)."""
    out = np.zeros(a.size)
    neg = a < 0  # the part below 0: u = -t
    if np.any(neg):
        out[neg] += _erfcx_integral(np.maximum(-b[neg], 0.0), -a[neg])
    pos = b > 0  # the part above 0: e^{u²}(1 + erf u) = 2 e^{u²} - erfcx(u)
    if np.any(pos):
        lo, hi = np.maximum(a[pos], 0.0), b[pos]
        with np.errstate(over="ignore", invalid="ignore"):
            out[pos] += np.sqrt(np.pi) * (erfi(hi) - erfi(lo)) - _erfcx_integral(lo, hi)
    return out


def lif_noisy_rate(x: Any, sigma: float, params: Any = None,
                   dt: float = DEFAULT_DT) -> tuple[np.ndarray, np.ndarray]:
    """The LIF neuron's rate under white noise ``sigma`` (mV sqrt(ms)) in spikes per ms and
    its derivative in ``x`` (mV), for the simulator's time step ``dt`` (s): the Siegert
    formula with the finite-step correction of the module docstring."""
    from .lif import TIME_UNIT, LIFParams, phi_point

    p = params if params is not None else LIFParams()
    x = np.atleast_1d(np.asarray(x, dtype=float))
    if sigma <= 0:
        row = np.array([[p.tau], [p.v_rest], [p.v_thr], [p.v_reset], [p.t_ref]])
        pairs = [phi_point(float(v), row, 0) for v in x]
        return np.array([q[0] for q in pairs]), np.array([q[1] for q in pairs])
    s = sigma / np.sqrt(p.tau)
    shift = LIF_STEP_SHIFT * s * np.sqrt(dt / TIME_UNIT / p.tau)
    mu = p.v_rest + x
    a = (p.v_reset + shift - mu) / s
    b = (p.v_thr + shift - mu) / s
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        period = p.t_ref + p.tau * np.sqrt(np.pi) * _siegert_integral(a, b)
        rate = 1.0 / period
        slope = p.tau * np.sqrt(np.pi) * ((erfcx(-b) - erfcx(-a)) / period) / (s * period)
    bad = ~(np.isfinite(rate) & np.isfinite(slope))  # silent far below threshold
    rate[bad], slope[bad] = 0.0, 0.0
    return rate, slope


@functools.lru_cache(maxsize=16)
def _lif_table(params: Any, sigma: float, dt: float) -> tuple[float, float, np.ndarray,
                                                              np.ndarray]:
    """(x0, step, rate, slope) of the LIF curve, spikes per ms."""
    s = sigma / np.sqrt(params.tau)
    step = float(np.clip(s / 20.0, 0.002, 0.01))
    top = params.v_thr - params.v_rest + _LIF_TOP
    lo = params.v_thr - params.v_rest - s
    while lif_noisy_rate(lo, sigma, params, dt)[0][0] > _LIF_FLOOR and lo > top - 1e4:
        lo -= s
    n = int(np.ceil((top - lo) / step))
    x = top - step * np.arange(n, -1, -1)  # ends exactly at top
    rate, slope = lif_noisy_rate(x, sigma, params, dt)
    return float(x[0]), step, rate, slope


# --------------------------------------------------------------------------------------
# Izhikevich: measured by simulation
# --------------------------------------------------------------------------------------


def _izhikevich_counts(cell_type: str, x: np.ndarray, replicas: np.ndarray, sigma: float,
                       dt: float, seconds: float, seed: int) -> np.ndarray:
    """Spike counts over ``seconds`` (after :data:`_IZH_SETTLE` s) of ``replicas[j]``
    uncoupled neurons at constant input ``x[j]`` plus white noise ``sigma``, summed per
    input; run by the simulator every fit uses."""
    import scipy.sparse as sp

    from ..network import Network
    from ..simulate import Noise, Simulator
    from .base import get_model
    from .izhikevich import IzhikevichParams

    n = int(replicas.sum())
    empty = sp.csr_array((n, n), dtype=np.float32)
    net = Network(neuron_model=get_model("izhikevich"), static=empty, plastic=empty.copy(),
                  plastic_sign=np.zeros(0, dtype=np.int8), tau_s=0.05,
                  model_params=IzhikevichParams(cell_types=cell_type))
    sim = Simulator(net, dt=dt, bias=np.repeat(x, replicas), seed=seed,
                    noise=Noise(sigma=sigma, seed=seed))
    sim.advance(int(round(_IZH_SETTLE / dt)))
    _, ids = sim.advance(int(round(seconds / dt)))
    owner = np.repeat(np.arange(x.size), replicas)
    return np.bincount(owner[ids], minlength=x.size).astype(float)


@functools.lru_cache(maxsize=32)
def izhikevich_noisy_table(cell_type: str, sigma: float,
                           dt: float = DEFAULT_DT) -> tuple[float, np.ndarray, np.ndarray]:
    """``(x0, rate, slope)`` of one Izhikevich cell type under white noise ``sigma``, on the
    grid ``x0 + k * 0.005`` up to :data:`IZH_TOP`, spikes per ms (see the module docstring;
    measured once per process)."""
    from scipy.interpolate import PchipInterpolator

    # 1. a coarse look: where does the neuron start firing?
    lo = -20.0
    while True:
        coarse = np.concatenate([np.arange(lo, 12.0, 0.5), np.arange(12.0, IZH_TOP + 1, 2.0)])
        counts = _izhikevich_counts(cell_type, coarse, np.full(coarse.size, 10), sigma, dt,
                                    1.0, _IZH_SEED)
        rough = counts / 10.0  # Hz
        if rough[0] < 0.05 or lo < -500:
            break
        lo -= 30.0
    firing = np.flatnonzero(rough >= 0.1)
    start = coarse[firing[0]] - 1.0 if firing.size else IZH_TOP - 1.0
    fast = np.flatnonzero(rough >= 30.0)  # fine grid up to where the curve flattens out
    fine_top = max(start + 6.0, (coarse[fast[0]] if fast.size else IZH_TOP) + 2.0)
    fine_top = min(fine_top, IZH_TOP)
    h = float(np.clip(sigma / 10.0, 0.02, 0.25))
    x = np.concatenate([np.arange(start, fine_top, h), np.arange(fine_top, IZH_TOP + 0.5, 1.0)])
    x = x[x <= IZH_TOP + 1e-9]
    # 2. exposure (neuron-seconds) per input for ~200 spikes, within the budget
    guess = np.interp(x, coarse, rough)
    exposure = np.clip(_IZH_SPIKES / np.maximum(guess, 0.4), 4.0, _IZH_MAX_EXPOSURE)
    exposure[guess < 0.2] = _IZH_LOW_EXPOSURE  # below ~0.2 Hz only the log-slope matters
    exposure *= min(1.0, IZH_BUDGET / exposure.sum())
    replicas = np.maximum(np.ceil(exposure / _IZH_WINDOW), 2).astype(np.int64)
    counts = _izhikevich_counts(cell_type, x, replicas, sigma, dt, _IZH_WINDOW, _IZH_SEED + 1)
    exposure = replicas * _IZH_WINDOW
    # 3. smooth log-rate (local quadratic, Poisson weights), monotone, on the fine grid
    used = counts >= 3
    if used.sum() < 8:
        raise ConfigError("the Izhikevich neuron hardly fires under this noise",
                          field="noise", found=f"noise {sigma} with cell type {cell_type!r}",
                          expected="a cell type and noise level that fire at the grid's "
                          f"inputs (up to {IZH_TOP})")
    xu, cu = x[used], counts[used]
    yu = _local_quadratic(xu, np.log(cu / exposure[used] * 1e-3), cu)  # spikes per ms
    yu = np.maximum.accumulate(yu)
    low = xu <= xu[0] + 1.0
    down = np.polyfit(xu[low], yu[low], 1)[0] if low.sum() >= 3 else yu[1] - yu[0]
    down = max(float(down), 0.5)  # log-rate per unit input below the data
    floor_x = xu[0] - (yu[0] - np.log(_LIF_FLOOR)) / down
    n = int(np.ceil((IZH_TOP - min(floor_x, xu[0])) / _IZH_STEP))
    grid = IZH_TOP - _IZH_STEP * np.arange(n, -1, -1)
    inside = PchipInterpolator(xu, yu, extrapolate=True)(np.clip(grid, xu[0], xu[-1]))
    logs = np.where(grid >= xu[0], inside, yu[0] + down * (grid - xu[0]))
    rate = np.maximum.accumulate(np.exp(logs))
    slope = np.gradient(rate, _IZH_STEP)
    # above the top: the mean slope of its last few units of input (measured rates)
    top = x >= IZH_TOP - 5.0
    slope[-1] = max(np.polyfit(x[top], counts[top] / exposure[top] * 1e-3, 1)[0], 0.0)
    for arr in (rate, slope):
        arr.setflags(write=False)
    return float(grid[0]), rate, slope


def _local_quadratic(x: np.ndarray, y: np.ndarray, counts: np.ndarray,
                     half: int = 3) -> np.ndarray:
    """``y`` smoothed by a quadratic fitted to each point's ``2 half + 1`` nearest points on
    the grid, weighted by tricube distance and by ``counts`` (1 / Poisson variance of a
    log-rate)."""
    out = np.empty_like(y)
    for j in range(x.size):
        lo, hi = max(0, j - half), min(x.size, j + half + 1)
        xs, ys = x[lo:hi] - x[j], y[lo:hi]
        reach = np.max(np.abs(xs)) * 1.01 + 1e-12
        w = counts[lo:hi] * (1.0 - (np.abs(xs) / reach) ** 3) ** 3
        degree = min(2, xs.size - 1)
        out[j] = np.polyfit(xs, ys, degree, w=np.sqrt(w))[-1]
    return out


def _izhikevich_tables(params: Any, n: int, sigma: float, dt: float):
    """Per cell type of ``params`` one row, on a common grid (zeros in front of a row that
    starts later); the row of every neuron."""
    types = params.types()
    tables = [izhikevich_noisy_table(t, float(sigma), float(dt)) for t in types]
    size = max(t[1].size for t in tables)
    rates, slopes = np.zeros((len(types), size)), np.zeros((len(types), size))
    for k, (_, rate, slope) in enumerate(tables):
        rates[k, size - rate.size:] = rate  # every table ends at IZH_TOP
        slopes[k, size - rate.size:] = slope
    x0 = IZH_TOP - _IZH_STEP * (size - 1)
    rows = np.arange(n, dtype=np.int64) % len(types)
    return x0, rates, slopes, rows


# --------------------------------------------------------------------------------------
# The curve and its table
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoisyFICurve:
    """A model's f-I curve under white noise ``sigma`` (model units) for ``n`` neurons: the
    same interface as :class:`~.base.FICurve` (``phi`` and ``dphi`` in spikes per model time
    unit, ``hz``; with several rows, neurons on the last axis of the input), plus the table
    the compiled training signal reads: :attr:`rates` and :attr:`slopes` of shape
    ``(rows, points)`` on the grid ``x0 + k * step``, :attr:`rows` (per neuron, its row: one
    per distinct parameter set) and :attr:`above` (what lies above the table:
    :data:`ABOVE_THETA` or :data:`ABOVE_LINEAR`)."""

    model: Any
    params: Any
    sigma: float
    threshold: np.ndarray
    x0: float
    step: float
    rates: np.ndarray
    slopes: np.ndarray
    rows: np.ndarray
    above: int

    @property
    def width(self) -> np.ndarray:
        """No softplus: the compiled signal reads the table (kept for the FICurve interface)."""
        return np.zeros_like(self.threshold)

    def _row_of(self, x: np.ndarray) -> np.ndarray:
        if self.rates.shape[0] == 1:
            return np.zeros(x.size, dtype=np.int64)
        if x.ndim == 0 or x.shape[-1] != self.rows.size:
            raise ConfigError("neurons of several kinds need one input per neuron",
                              field="x", found=f"shape {x.shape}",
                              expected=f"neurons ({self.rows.size}) on the last axis")
        return np.ascontiguousarray(np.broadcast_to(self.rows, x.shape)).ravel()

    def phi(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        rate, _ = _lookup(x, self._row_of(x), self.x0, self.step, self.rates, self.slopes,
                          self.above)
        return rate

    def dphi(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        _, slope = _lookup(x, self._row_of(x), self.x0, self.step, self.rates, self.slopes,
                           self.above)
        return slope

    def hz(self, x) -> np.ndarray:
        return self.phi(x) / self.model.time_unit


def _lookup(x: np.ndarray, rows: np.ndarray, x0: float, step: float, rates: np.ndarray,
            slopes: np.ndarray, above: int) -> tuple[np.ndarray, np.ndarray]:
    shape = np.shape(x)
    flat = np.ravel(x)
    rate = np.empty(flat.size)
    slope = np.empty(flat.size)
    _lookup_kernel(flat, rows, x0, step, rates, slopes, above, rate, slope)
    return rate.reshape(shape), slope.reshape(shape)


@numba.njit(cache=True)
def table_point(x, x0, step, rates, slopes, above):
    """Rate and slope at ``x`` by linear interpolation of one row of the table; 0 below it;
    above it the sharp theta curve (``above`` = :data:`ABOVE_THETA`) or the last point
    continued with the last slope (:data:`ABOVE_LINEAR`)."""
    k = (x - x0) / step
    if k <= 0.0:
        return 0.0, 0.0
    last = rates.size - 1
    if k >= last:
        if above == 0:
            root = np.sqrt(x)
            return root / np.pi, 0.5 / (np.pi * root)
        return rates[last] + slopes[last] * (x - (x0 + last * step)), slopes[last]
    i = int(k)
    w = k - i
    return (rates[i] * (1.0 - w) + rates[i + 1] * w,
            slopes[i] * (1.0 - w) + slopes[i + 1] * w)


@numba.njit(cache=True)
def _lookup_kernel(x, rows, x0, step, rates, slopes, above, rate, slope):
    for i in range(x.size):
        rate[i], slope[i] = table_point(x[i], x0, step, rates[rows[i]], slopes[rows[i]],
                                        above)


def noisy_fi_curve(model: Any, params: Any, n: int, sigma: float,
                   dt: float = DEFAULT_DT) -> NoisyFICurve:
    """The f-I curve of ``n`` neurons of ``model`` under white noise ``sigma`` (model units),
    simulated with time step ``dt`` (s; the LIF and Izhikevich curves depend on it)."""
    params = params if params is not None else model.params
    sigma, dt = float(sigma), float(dt)
    threshold = np.asarray(model.threshold(params, n))
    if model.name == "theta":
        x0, rates, slopes = _theta_table(sigma)
        return NoisyFICurve(model, params, sigma, threshold, x0, _GRID_STEP, rates[None, :],
                            slopes[None, :], np.zeros(n, dtype=np.int64), ABOVE_THETA)
    if model.name == "lif":
        x0, step, rates, slopes = _lif_table(params, sigma, dt)
        return NoisyFICurve(model, params, sigma, threshold, x0, step, rates[None, :],
                            slopes[None, :], np.zeros(n, dtype=np.int64), ABOVE_LINEAR)
    if model.name == "izhikevich":
        x0, rates, slopes, rows = _izhikevich_tables(params, n, sigma, dt)
        return NoisyFICurve(model, params, sigma, threshold, x0, _IZH_STEP, rates, slopes,
                            rows, ABOVE_LINEAR)
    raise ConfigError("background noise has no f-I curve for this neuron model",
                      field="noise", found=f"noise > 0 with neuron_model {model.name!r}",
                      expected="neuron_model 'theta', 'lif' or 'izhikevich', or noise = 0")
