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

**No on-disk cache for the kernel.** numba's cache of a function is keyed on its own
source file only; the kernel (:func:`_make_run`) inlines the neuron model' ``step`` functions from other files,
so a cached kernel would keep running an old step after a neuron module changed (an
upgrade, an edit). It is compiled once per process instead (about 2 s).

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

from .exceptions import ConfigError, TrainingDiverged
from .network import Network
from .neurons.base import NeuronModel

__all__ = ["Stimulus", "Noise", "SimState", "SimResult", "Simulator", "simulate", "initial_state"]

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


@numba.njit(inline="always")
def _normal_pair(seed, counter, neuron):
    """Two independent standard normals from one counter (both halves of Box-Muller)."""
    u1 = _uniform(seed, counter, neuron, 1)
    u2 = _uniform(seed, counter, neuron, 2)
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = 2.0 * np.pi * u2
    return radius * np.cos(angle), radius * np.sin(angle)


_KERNELS: dict[Any, Any] = {}


def kernel_for(model: NeuronModel):
    """The simulation kernel of one neuron model: :func:`_make_run` around its ``step``,
    compiled on first use and kept for the process."""
    run = _KERNELS.get(model.step)
    if run is None:
        run = _KERNELS[model.step] = _make_run(model.step)
    return run


def _make_run(step):
    """A kernel specialised to one model's ``step``: numba treats the closure's ``step`` as
    a constant and inlines it into the neuron loop, as fast as a kernel written for that
    model alone."""

    @numba.njit  # not cache=True: see "No on-disk cache" in the module docstring
    def run(state, params, r, u, noise_state,
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
        xs = np.empty(n, dtype=r.dtype)
        n_rec = rec_idx.shape[0]
        sqrt_dt = np.float32(np.sqrt(dt))
        for k in range(n_steps):
            if n_spikes + n > capacity:
                return k, n_spikes
            now = step0 + k  # (not "step": that is the model's)
            stim_active = stim_on <= now < stim_off
            # one loop per task, with the branches outside: the neuron loop then vectorises
            for i in range(n):
                xs[i] = u[i] + bias[i]
            if stim_active:
                for i in range(n):
                    xs[i] += stim_amp[i]
            if noise_kind == 1:
                # Box-Muller gives two normals: the pair of steps 2m, 2m + 1 comes from one
                # draw (counter m); the odd step's half waits in noise_state (recomputed
                # when a call starts on an odd step, so any split of a run gives the same)
                scale = noise_sigma / sqrt_dt
                if now % 2 == 0 or k == 0:
                    for i in range(n):
                        z0, z1 = _normal_pair(noise_seed, now // 2, i)
                        noise_state[i] = np.float32(z1)
                        xs[i] += scale * np.float32(z0 if now % 2 == 0 else z1)
                else:
                    for i in range(n):
                        xs[i] += scale * noise_state[i]
            elif noise_kind == 2:
                for i in range(n):
                    noise_state[i] = noise_decay * noise_state[i] + noise_sigma * np.float32(
                        np.sqrt(1.0 - noise_decay * noise_decay) * _normal(noise_seed, now, i))
                    xs[i] += noise_state[i]
            for i in range(n):
                spiked[i] = step(state, params, i, xs[i], dt)
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
                    spike_step[n_spikes] = now
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

    return run


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


class Simulator:
    """A network prepared for simulation, advanced chunk by chunk (as a trainer does between
    two RLS updates). Its state arrays (``neuron``, ``r``, ``u``) are live: a trainer may
    change ``u`` after a weight update. Plastic weights are read from the network's
    out-lists, so :meth:`Network.set_plastic_weights` takes effect on the next step."""

    def __init__(
        self,
        network: Network,
        *,
        dt: float = DEFAULT_DT,
        bias: float | np.ndarray = 0.0,
        noise: Noise | None = None,
        seed: int = 0,
        state: SimState | None = None,
        precision: str = "float32",
    ) -> None:
        if precision not in ("float32", "float64"):
            raise ConfigError("unknown precision", field="precision", found=precision,
                              expected="'float32' or 'float64'")
        if not np.isfinite(dt) or dt <= 0:
            raise ConfigError("dt out of range", field="dt", found=dt, expected="> 0 seconds")
        real = np.float32 if precision == "float32" else np.float64
        self.real, self.network, self.dt, self.seed = real, network, float(dt), seed
        model = network.neuron_model
        n = network.n_neurons
        self.model, self.n = model, n
        start = state if state is not None else initial_state(network, seed)
        self.neuron = start.neuron.astype(real, copy=True)
        self.r = start.r.astype(real, copy=True)
        self.u = start.u.astype(real, copy=True)
        self.noise_state = start.noise.astype(real, copy=True)
        self.step = int(start.step)
        self.noise_kind, noise_sigma, noise_decay, self.noise_seed = 0, 0.0, 0.0, 0
        if noise is not None and noise.sigma != 0:
            kinds = {"white": 1, "ou": 2}
            if noise.kind not in kinds:
                raise ConfigError("unknown noise kind", field="noise.kind", found=noise.kind,
                                  expected="'white' or 'ou'")
            self.noise_kind, noise_sigma = kinds[noise.kind], float(noise.sigma)
            noise_decay = float(np.exp(-dt / noise.tau)) if noise.kind == "ou" else 0.0
            self.noise_seed = int(noise.seed if noise.seed is not None else seed + 0x5EED)
        self.noise_sigma, self.noise_decay = real(noise_sigma), real(noise_decay)
        self.out = network.out_lists()
        self._run = kernel_for(model)
        self.params = np.ascontiguousarray(model.param_array(n, network.params), dtype=real)
        self.dt_model = real(dt / model.time_unit)
        self.decay = real(np.exp(-dt / network.tau_s))
        self.jump = real(model.time_unit / network.tau_s)
        self.bias = _per_neuron(bias, n, "bias").astype(real)
        self.no_stimulus = np.zeros(n, dtype=real)
        empty = np.zeros((0, 0), dtype=real)
        self._no_record = (np.zeros(0, dtype=np.int64), empty, empty, empty)
        self._spike_step = np.empty(max(4 * n, 1024), dtype=np.int64)
        self._spike_neuron = np.empty(max(4 * n, 1024), dtype=np.int32)

    def state(self) -> SimState:
        """A copy of the current state (to continue later)."""
        return SimState(neuron=self.neuron.copy(), r=self.r.copy(), u=self.u.copy(),
                        noise=self.noise_state.copy(), step=self.step)

    def advance(
        self,
        n_steps: int,
        *,
        stimulus: np.ndarray | None = None,
        stim_steps: tuple[int, int] | None = None,
        rec_every: int = 0,
        rec_idx: np.ndarray | None = None,
        rec_u: np.ndarray | None = None,
        rec_r: np.ndarray | None = None,
        rec_v: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Run ``n_steps`` steps; returns (step index from the start of this call, neuron) of
        every spike. ``stimulus`` (per neuron) is applied on ``stim_steps`` (first, last+1,
        counted from this call's start; the whole call by default). Recording buffers, when
        given, receive a row every ``rec_every`` steps."""
        real = self.real
        stim = self.no_stimulus if stimulus is None else stimulus.astype(real, copy=False)
        on, off = stim_steps if stim_steps is not None else (0, n_steps)
        if rec_idx is None:
            rec_idx, rec_u_, rec_r_, rec_v_ = self._no_record
            rec_every = 0
        else:
            empty = self._no_record[1]
            rec_u_ = rec_u if rec_u is not None else empty
            rec_r_ = rec_r if rec_r is not None else empty
            rec_v_ = rec_v if rec_v is not None else empty
        out = self.out
        step0 = self.step
        n_spikes = done = 0
        while done < n_steps:
            steps, n_spikes = self._run(
                self.neuron, self.params, self.r, self.u, self.noise_state,
                out.static_indptr, out.static_post, out.static_weights,
                out.plastic_indptr, out.plastic_post, out.plastic_weights,
                self.bias, stim, step0 + on, step0 + off,
                self.noise_kind, self.noise_sigma, self.noise_decay, self.noise_seed,
                step0 + done, done, n_steps - done, self.dt_model, self.decay, self.jump,
                rec_every, rec_idx, rec_u_, rec_r_, rec_v_,
                self._spike_step, self._spike_neuron, n_spikes,
            )
            done += steps
            if done < n_steps:  # the spike buffer is full: grow it and go on
                self._spike_step = np.concatenate([self._spike_step, np.empty_like(self._spike_step)])
                self._spike_neuron = np.concatenate(
                    [self._spike_neuron, np.empty_like(self._spike_neuron)])
        self.step = step0 + n_steps
        return self._spike_step[:n_spikes] - step0, self._spike_neuron[:n_spikes].astype(np.int64)

    def check_finite(self) -> np.ndarray:
        """Indices of neurons whose drive or state is not finite (empty when all is well)."""
        bad = ~np.isfinite(self.u) | ~np.all(np.isfinite(self.neuron), axis=0)
        return np.flatnonzero(bad)


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
    duration = float(duration)
    if not np.isfinite(duration) or duration <= 0:
        raise ConfigError("duration must be positive", field="duration", found=duration,
                          expected="> 0 seconds")
    if not np.isfinite(dt) or dt <= 0 or dt > duration:
        raise ConfigError("dt out of range", field="dt", found=dt,
                          expected=f"0 < dt <= duration ({duration} s)")
    sim = Simulator(network, dt=dt, bias=bias, noise=noise, seed=seed, state=state,
                    precision=precision)
    n, real, model = sim.n, sim.real, sim.model
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

    def buffer(name: str) -> np.ndarray | None:
        return np.zeros((n_rows, rec_idx.size), dtype=real) if name in record else None

    rec_u, rec_r, rec_v = buffer("u"), buffer("r"), buffer("v")
    stim_amp, stim_steps = None, None
    if stimulus is not None:
        stim_amp = _per_neuron(stimulus.amplitude, n, "stimulus.amplitude")
        if not 0 <= stimulus.t_start <= stimulus.t_stop:
            raise ConfigError("stimulus window out of order", field="stimulus",
                              found=(stimulus.t_start, stimulus.t_stop),
                              expected="0 <= t_start <= t_stop (s)")
        stim_steps = (int(round(stimulus.t_start / dt)), int(round(stimulus.t_stop / dt)))
    else:
        stim_steps = (0, 0)
    spike_steps, spike_neurons = sim.advance(
        n_steps, stimulus=stim_amp, stim_steps=stim_steps,
        rec_every=rec_every if record else 0, rec_idx=rec_idx if record else None,
        rec_u=rec_u, rec_r=rec_r, rec_v=rec_v,
    )
    bad = sim.check_finite()
    if bad.size:
        raise TrainingDiverged(
            "the simulation produced NaN or infinite values", field="state",
            found=f"{bad.size} neurons with non-finite state (first: {bad[:5].tolist()})",
            expected="finite state", hint="Reduce dt or the coupling strength",
        )
    spike_times = (spike_steps + 1) * dt
    times = (np.arange(1, n_rows + 1) * rec_every) * dt
    unit = model.time_unit
    data_vars = {}
    if rec_u is not None:
        data_vars["u"] = (("time", "neuron"), rec_u,
                          {"long_name": "synaptic drive u = W r", "units": "model input"})
    if rec_r is not None:
        data_vars["r"] = (("time", "neuron"), rec_r / real(unit),
                          {"long_name": "filtered spike train", "units": "Hz"})
    if rec_v is not None:
        data_vars["v"] = (("time", "neuron"), rec_v,
                          {"long_name": model.state_label[0], "units": model.state_label[1]})
    traces = xr.Dataset(data_vars, coords={
        "time": ("time", times, {"units": "s"}), "neuron": ("neuron", rec_idx)})
    return SimResult(
        spike_times=spike_times, spike_neurons=spike_neurons.copy(),
        duration=n_steps * dt, n_neurons=n, traces=traces, state=sim.state(),
        info={"dt": dt, "n_steps": n_steps, "neuron_model": model.name, "seed": seed},
    )
