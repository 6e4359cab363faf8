"""Simulate a :class:`~cortexfit.network.Network`: numba kernels that run many steps per call.

Each step, for every neuron i (the authors' scheme):

1. total input ``x_i = u_i + bias_i + stimulus_i(t) + noise_i(t)``, with the synaptic drive
   ``u`` from the previous step, held fixed over the step;
2. the neuron model advances its state by ``dt`` and reports a spike;
3. filtered spike trains decay exactly, ``r *= exp(-dt / tau_s)``, and each spike adds
   ``1 / tau_s``; the drive follows event by event, ``u = decay * u + (1/tau_s) sum_j W_:j``
   over the neurons j that spiked, scattered over the out-lists. So ``u = W r`` holds at every
   step (up to float32 round-off) without an N x N product.

**Units.** Everything a user passes is in seconds; the kernel runs in the neuron model's time
unit (theta: tau = 10 ms; LIF, Izhikevich: 1 ms), converted here and nowhere else. ``r`` is in
spikes per model time unit (``r / time_unit`` is Hz); inputs (bias, stimulus, noise
amplitude) are in the model's input units (dimensionless for theta, mV for LIF).

**Time step.** ``dt = 0.1 ms`` by default: 1 % of the theta neuron's tau (its RK4 error is then
far below the 2 % rate tolerance even at 100 Hz) and fine enough for Euler-integrated
Izhikevich neurons; the paper's own code used 1 ms with RK4, which ``dt=1e-3`` reproduces.

**State** is float32 (tests check rates against a float64 run). **Noise** comes from a
counter-based generator (a hash of seed, step and neuron), so it is identical however the
run is split into calls, and "frozen" noise is just the same noise seed on every trial.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numba
import numpy as np
import xarray as xr

from .exceptions import ConfigError
from .network import Network
from .neurons import izhikevich, lif, theta

__all__ = ["Stimulus", "Noise", "SimState", "SimResult", "simulate", "initial_state"]

DEFAULT_DT = 1e-4


# --------------------------------------------------------------------------------------
# Inputs and state
# --------------------------------------------------------------------------------------


@dataclass
class Stimulus:
    """A per-neuron constant amplitude applied from ``t_start`` to ``t_stop`` (s, from the
    start of the call)."""

    amplitude: np.ndarray
    t_start: float
    t_stop: float


@dataclass
class Noise:
    """External noise added to every neuron's input.

    ``kind``: ``"white"`` (``sigma * xi / sqrt(dt)`` in model time units, i.e. a Wiener
    increment of variance ``sigma^2 dt`` per step) or ``"ou"`` (stationary SD ``sigma``,
    correlation time ``tau`` seconds). ``seed``: the same seed gives the same realisation
    (frozen noise); None draws it from the run's seed (fresh noise).
    """

    sigma: float
    kind: str = "white"
    tau: float = 0.01
    seed: int | None = None


@dataclass
class SimState:
    """Everything needed to continue a run: neuron state, filtered trains, drive, noise."""

    neuron: np.ndarray
    r: np.ndarray
    u: np.ndarray
    noise: np.ndarray
    step: int = 0


@dataclass
class SimResult:
    """Spikes (times in s from the start of the call, neuron index), recorded traces as an
    ``xarray.Dataset`` over (time, neuron), and the final state."""

    spike_times: np.ndarray
    spike_neurons: np.ndarray
    duration: float
    n_neurons: int
    traces: xr.Dataset
    state: SimState
    info: dict[str, Any] = field(default_factory=dict)

    def rates(self) -> np.ndarray:
        """Mean rate of every neuron over the run, Hz."""
        return np.bincount(self.spike_neurons, minlength=self.n_neurons) / self.duration

    def plot_raster(self, ax=None, *, neurons: Sequence[int] | None = None, excitatory=None):
        """A spike raster on a matplotlib Axes (made if None); E in blue, I in red when
        ``excitatory`` (one bool per neuron) is given. Returns the Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(8, 4))
        keep = np.ones(self.spike_neurons.size, dtype=bool) if neurons is None else \
            np.isin(self.spike_neurons, np.asarray(neurons))
        times, ids = self.spike_times[keep], self.spike_neurons[keep]
        if excitatory is None:
            ax.plot(times, ids, "|", color="k", markersize=2)
        else:
            exc = np.asarray(excitatory)[ids]
            ax.plot(times[exc], ids[exc], "|", color="tab:blue", markersize=2, label="E")
            ax.plot(times[~exc], ids[~exc], "|", color="tab:red", markersize=2, label="I")
            ax.legend(loc="upper right", fontsize=8)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("neuron")
        ax.set_xlim(0, self.duration)
        return ax

    def spike_trains(self) -> list[np.ndarray]:
        """Spike times (s) per neuron."""
        order = np.argsort(self.spike_neurons, kind="stable")
        counts = np.bincount(self.spike_neurons, minlength=self.n_neurons)
        return np.split(self.spike_times[order], np.cumsum(counts)[:-1])


def initial_state(network: Network, seed: int | np.random.Generator = 0) -> SimState:
    """Random initial conditions (theta: θ0 uniform), r = u = 0."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n = network.n_neurons
    neuron = network.neuron_model.init_state(n, rng, network.params).astype(np.float32)
    zeros = np.zeros(n, dtype=np.float32)
    return SimState(neuron=neuron, r=zeros.copy(), u=zeros.copy(), noise=zeros.copy())


# --------------------------------------------------------------------------------------
# Kernel
# --------------------------------------------------------------------------------------


@numba.njit(inline="always")
def _uniform(seed, step, neuron, stream):
    """A uniform (0, 1) number from a counter: splitmix64 of (seed, step, neuron, stream)."""
    z = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
    z ^= np.uint64(step) * np.uint64(0xBF58476D1CE4E5B9)
    z ^= np.uint64(neuron) * np.uint64(0x94D049BB133111EB)
    z ^= np.uint64(stream) * np.uint64(0xD6E8FEB86659FD93)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (np.float64(z >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@numba.njit(inline="always")
def _normal(seed, step, neuron):
    """A standard normal number from a counter (Box-Muller)."""
    u1 = _uniform(seed, step, neuron, 1)
    u2 = _uniform(seed, step, neuron, 2)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


@numba.njit(cache=True)
def _run(model, state, params, r, u, noise_state,
         s_indptr, s_post, s_weight, p_indptr, p_post, p_weight,
         bias, stim_amp, stim_on, stim_off,
         noise_kind, noise_sigma, noise_decay, noise_seed,
         step0, local0, n_steps, dt, decay, jump,
         rec_every, rec_idx, rec_u, rec_r, rec_v,
         spike_step, spike_neuron, n_spikes):
    """Advance the network ``n_steps`` steps. Returns (steps done, spikes recorded); stops
    early, before the step that could overflow the spike buffer."""
    n = r.shape[0]
    capacity = spike_step.shape[0]
    spiked = np.empty(n, dtype=np.bool_)
    n_rec = rec_idx.shape[0]
    sqrt_dt = np.float32(np.sqrt(dt))
    for k in range(n_steps):
        if n_spikes + n > capacity:
            return k, n_spikes
        step = step0 + k
        stim_active = stim_on <= step < stim_off
        for i in range(n):
            x = u[i] + bias[i]
            if stim_active:
                x += stim_amp[i]
            if noise_kind == 1:
                x += noise_sigma * np.float32(_normal(noise_seed, step, i)) / sqrt_dt
            elif noise_kind == 2:
                noise_state[i] = noise_decay * noise_state[i] + noise_sigma * np.float32(
                    np.sqrt(1.0 - noise_decay * noise_decay) * _normal(noise_seed, step, i))
                x += noise_state[i]
            if model == 0:
                spiked[i] = theta.step(state, params, i, x, dt)
            elif model == 1:
                spiked[i] = lif.step(state, params, i, x, dt)
            else:
                spiked[i] = izhikevich.step(state, params, i, x, dt)
        for i in range(n):
            r[i] *= decay
            u[i] *= decay
        for j in range(n):
            if spiked[j]:
                r[j] += jump
                for idx in range(s_indptr[j], s_indptr[j + 1]):
                    u[s_post[idx]] += s_weight[idx] * jump
                for idx in range(p_indptr[j], p_indptr[j + 1]):
                    u[p_post[idx]] += p_weight[idx] * jump
                spike_step[n_spikes] = step
                spike_neuron[n_spikes] = j
                n_spikes += 1
        local = local0 + k + 1  # steps done in this simulate() call
        if rec_every > 0 and local % rec_every == 0:
            row = local // rec_every - 1
            if row < rec_u.shape[0] or row < rec_r.shape[0] or row < rec_v.shape[0]:
                for m in range(n_rec):
                    if rec_u.shape[1] > 0:
                        rec_u[row, m] = u[rec_idx[m]]
                    if rec_r.shape[1] > 0:
                        rec_r[row, m] = r[rec_idx[m]]
                    if rec_v.shape[1] > 0:
                        rec_v[row, m] = state[0, rec_idx[m]]
    return n_steps, n_spikes


# --------------------------------------------------------------------------------------
# Python API
# --------------------------------------------------------------------------------------

_RECORDABLE = ("u", "r", "v")


def _per_neuron(value: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise ConfigError(f"{name} must be a finite number or one value per neuron", field=name,
                          found=f"shape {arr.shape}", expected=f"a scalar or shape ({n},)")
    return arr.astype(np.float32)


def simulate(
    network: Network,
    duration: float,
    *,
    dt: float = DEFAULT_DT,
    stimulus: Stimulus | None = None,
    bias: float | np.ndarray = 0.0,
    noise: Noise | None = None,
    seed: int = 0,
    state: SimState | None = None,
    record: Sequence[str] = (),
    record_every: float = 1e-3,
    record_neurons: Sequence[int] | None = None,
    precision: str = "float32",
) -> SimResult:
    """Run ``network`` for ``duration`` seconds.

    Parameters
    ----------
    stimulus
        Condition-specific input: per-neuron amplitude on a time window.
    bias
        Constant input, a scalar or one value per neuron (model input units).
    noise
        :class:`Noise`, or None for a deterministic run.
    seed
        Initial conditions (when ``state`` is None) and fresh noise.
    state
        Continue from a previous run's :attr:`SimResult.state` (it is not modified).
    record
        Any of ``"u"`` (synaptic drive), ``"r"`` (filtered spike trains, Hz in the output),
        ``"v"`` (the first state variable: θ or membrane potential), sampled every
        ``record_every`` seconds for ``record_neurons`` (default all). Spikes are always kept.
    precision
        ``"float32"`` (default, fast) or ``"float64"`` (a reference to check float32 against).
    """
    if precision not in ("float32", "float64"):
        raise ConfigError("unknown precision", field="precision", found=precision,
                          expected="'float32' or 'float64'")
    real = np.float32 if precision == "float32" else np.float64
    model = network.neuron_model
    unit = model.time_unit
    n = network.n_neurons
    duration = float(duration)
    if not np.isfinite(duration) or duration <= 0:
        raise ConfigError("duration must be positive", field="duration", found=duration,
                          expected="> 0 seconds")
    if not np.isfinite(dt) or dt <= 0 or dt > duration:
        raise ConfigError("dt out of range", field="dt", found=dt,
                          expected=f"0 < dt <= duration ({duration} s)")
    n_steps = int(round(duration / dt))
    for name in record:
        if name not in _RECORDABLE:
            raise ConfigError("cannot record that", field="record", found=name,
                              expected=f"some of {_RECORDABLE}")
    rec_every = max(1, int(round(record_every / dt))) if record else 0
    rec_idx = (np.arange(n) if record_neurons is None
               else np.asarray(record_neurons, dtype=np.int64)).astype(np.int64)
    if rec_idx.size and (rec_idx.min() < 0 or rec_idx.max() >= n):
        raise ConfigError("record_neurons out of range", field="record_neurons",
                          found=(int(rec_idx.min()), int(rec_idx.max())), expected=f"0..{n - 1}")
    n_rows = n_steps // rec_every if rec_every else 0

    def buffer(name: str) -> np.ndarray:
        cols = rec_idx.size if name in record else 0
        return np.zeros((n_rows if cols else 0, cols), dtype=real)

    rec_u, rec_r, rec_v = buffer("u"), buffer("r"), buffer("v")

    start = state if state is not None else initial_state(network, seed)
    neuron = start.neuron.astype(real, copy=True)
    r = start.r.astype(real, copy=True)
    u = start.u.astype(real, copy=True)
    noise_state = start.noise.astype(real, copy=True)

    stim_amp = np.zeros(n, dtype=real)
    stim_on = stim_off = 0
    if stimulus is not None:
        stim_amp = _per_neuron(stimulus.amplitude, n, "stimulus.amplitude").astype(real)
        if not 0 <= stimulus.t_start <= stimulus.t_stop:
            raise ConfigError("stimulus window out of order", field="stimulus",
                              found=(stimulus.t_start, stimulus.t_stop),
                              expected="0 <= t_start <= t_stop (s)")
        stim_on, stim_off = int(round(stimulus.t_start / dt)), int(round(stimulus.t_stop / dt))
    noise_kind, noise_sigma, noise_decay, noise_seed = 0, 0.0, 0.0, 0
    if noise is not None and noise.sigma != 0:
        kinds = {"white": 1, "ou": 2}
        if noise.kind not in kinds:
            raise ConfigError("unknown noise kind", field="noise.kind", found=noise.kind,
                              expected="'white' or 'ou'")
        noise_kind, noise_sigma = kinds[noise.kind], float(noise.sigma)
        noise_decay = float(np.exp(-dt / noise.tau)) if noise.kind == "ou" else 0.0
        noise_seed = int(noise.seed if noise.seed is not None else seed + 0x5EED)

    out = network.out_lists()
    params = np.ascontiguousarray(model.param_array(n, network.params), dtype=real)
    dt_model = real(dt / unit)
    tau_s = network.tau_s / unit
    decay = real(np.exp(-dt / network.tau_s))
    jump = real(1.0 / tau_s)
    bias_arr = _per_neuron(bias, n, "bias").astype(real)
    s_weights = out.static_weights.astype(real, copy=False)
    p_weights = out.plastic_weights.astype(real, copy=False)
    capacity = max(4 * n, int(n * duration * 50) + n)
    spike_step = np.empty(capacity, dtype=np.int64)
    spike_neuron = np.empty(capacity, dtype=np.int32)
    n_spikes = 0
    done = 0
    step0 = start.step
    while done < n_steps:
        steps, n_spikes = _run(
            model.code, neuron, params, r, u, noise_state,
            out.static_indptr, out.static_post, s_weights,
            out.plastic_indptr, out.plastic_post, p_weights,
            bias_arr, stim_amp, stim_on + step0, stim_off + step0,
            noise_kind, real(noise_sigma), real(noise_decay), noise_seed,
            step0 + done, done, n_steps - done, dt_model, decay, jump,
            rec_every, rec_idx, rec_u, rec_r, rec_v,
            spike_step, spike_neuron, n_spikes,
        )
        done += steps
        if done < n_steps:  # the spike buffer is full: grow it and go on
            spike_step = np.concatenate([spike_step, np.empty_like(spike_step)])
            spike_neuron = np.concatenate([spike_neuron, np.empty_like(spike_neuron)])
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(neuron))):
        from .exceptions import TrainingDiverged

        raise TrainingDiverged(
            "the simulation produced NaN or infinite values", field="state",
            found=f"{int(np.sum(~np.isfinite(u)))} neurons with non-finite drive",
            expected="finite state", hint="Reduce dt or the coupling strength",
        )
    spike_times = (spike_step[:n_spikes] - step0 + 1) * dt
    times = (np.arange(1, n_rows + 1) * rec_every) * dt
    data_vars = {}
    if "u" in record:
        data_vars["u"] = (("time", "neuron"), rec_u,
                          {"long_name": "synaptic drive u = W r", "units": "model input"})
    if "r" in record:
        data_vars["r"] = (("time", "neuron"), rec_r / real(unit),
                          {"long_name": "filtered spike train", "units": "Hz"})
    if "v" in record:
        data_vars["v"] = (("time", "neuron"), rec_v,
                          {"long_name": "theta phase" if model.name == "theta"
                           else "membrane potential",
                           "units": "rad" if model.name == "theta" else "mV"})
    traces = xr.Dataset(data_vars, coords={
        "time": ("time", times, {"units": "s"}), "neuron": ("neuron", rec_idx)})
    final = SimState(neuron=neuron, r=r, u=u, noise=noise_state, step=step0 + n_steps)
    return SimResult(
        spike_times=spike_times, spike_neurons=spike_neuron[:n_spikes].astype(np.int64),
        duration=n_steps * dt, n_neurons=n, traces=traces, state=final,
        info={"dt": dt, "n_steps": n_steps, "neuron_model": model.name, "seed": seed},
    )
