"""The largest Lyapunov exponent of a theta-neuron network (Benettin's method).

A reference run and a perturbed copy, two :class:`~cortexfit.simulate.Simulator` instances
on the same network, start together; the copy's phases differ by ``eps`` times a random
unit vector (same r and u). Every ``renorm_every`` seconds the distance ``d`` between them
is measured, ``log(d / eps)`` accumulated and the difference scaled back to size ``eps``;
``λ = sum / measured time`` (1/s). Positive: chaos (nearby trajectories separate);
zero: a neutral direction (any free oscillator: a phase shift neither grows nor decays);
negative: a stable state.

Decisions, and why:

* **Distance on the phases only.** ``d = ||wrap(θ2 - θ1)||`` (Euclidean over neurons,
  wrapped to [-π, π)). The filtered spike trains r and the drive u are slaved to the phases
  (r is a filter of spike times, which the phases set, and u = W r), so every growing
  perturbation shows in θ, and the exponent does not depend on the norm. The wrapped phase
  difference is also the one quantity that stays small when the two copies of a neuron
  spike a moment apart (one has wrapped to -π, the other not yet); r differences jump then.
* **Renormalisation scales the whole difference.** θ2 - θ1, r2 - r1 and u2 - u1 are all
  multiplied by the same ``eps / d``: the perturbation keeps its direction in the full state
  space, as in Benettin's method and its event-driven spiking-network versions. Copying r
  and u from the reference instead would erase, every ``renorm_every`` (10 ms, shorter than
  tau_s), the part of the perturbation that is travelling through the synapses, which is
  the only way a perturbation reaches other neurons, and underestimates λ (measured: 9-12
  /s instead of 24-26 /s in the network below).
* **Spike-timing shifts reach the synapses (the time-step correction).** The simulator
  puts every spike at the end of its time step. A phase perturbation of 1e-6 moves a spike
  by 5e-9 s or less and almost never moves it to another step, so in the plain time-stepped
  dynamics the shift reaches nobody: perturbations never cross synapses and λ comes out
  ~0 even in a strongly chaotic network (measured: 0.1 /s where finite perturbations grow
  at ~25 /s). The continuous-time dynamics the simulator approximates do pass the shift on:
  a spike earlier by δt leaves ``r_j`` smaller by ``jump * δt / tau_s`` once it has happened.
  Near θ = π every theta neuron moves at dθ/dt = 2 / tau whatever its input
  (``1 - cos π + x (1 + cos π) = 2``), so after a spike both copies' phases tell exactly how
  long ago it was, and the timing difference is ``δt = -Δθ tau / 2``. So after every step in
  which neuron j spiked, the copy gets ``r_j += -jump² Δθ_j / 2`` and
  ``u += W[:, j] * (that)`` (``jump = tau / tau_s``), the first-order effect of the shift.
  When a spike falls in different steps in the two runs (a "flip", counted in ``n_flips``),
  the copy's spike is moved into the reference's step (its phase shifted by 2π and its
  synaptic effect added or removed), and the same correction then applies: the pair is
  treated as one spike a fraction of a step apart. With this the estimate agrees with the
  growth rate of small finite perturbations (~25 /s both; ``gaussian_network(300, p=0.3,
  sigma=4, tau_s=0.02)``, bias 0.5, ~20 Hz), hardly depends on dt (3-seed means of
  24.3-25.3 /s at dt = 1e-3, 1e-4 and 3e-5 s) nor on eps (1e-6 to 1e-3: the same to
  0.1 /s, also when flips occur). The correction needs the theta model.
* **float64.** The float32 step of θ near π is 2.4e-7 rad, larger than the per-neuron share
  of ``eps = 1e-6``; both runs are simulated in float64.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .. import seeds
from ..exceptions import ConfigError
from ..network import Network
from ..simulate import Simulator, initial_state
from .perturbation import _check_time, _wrap, add_spike_effect, frozen_noise, resolve

__all__ = ["lyapunov", "DEFAULT_N_SEEDS"]

DEFAULT_N_SEEDS = 3
"""Replicates of :func:`lyapunov` (the run config's ``[diagnostics] lyapunov_seeds``; it was
5 here and 3 in the config, which the pipeline has always used)."""


def _one_run(net: Network, *, dt: float, bias: Any, stimulus: np.ndarray | None,
             stim_steps: int, transient_steps: int, n_renorm: int, n_intervals: int,
             eps: float, seed: int, replicate: int, noise: float = 0.0) -> dict:
    """One Benettin estimate of replicate ``replicate`` of ``seed``; returns the log growth
    per interval, flips and spikes."""
    rng = seeds.rng(seed, "lyapunov", replicate)
    shared = frozen_noise(noise, seed + 7919 * replicate)
    ref = Simulator(net, dt=dt, bias=bias, state=initial_state(net, rng), precision="float64",
                    noise=shared)
    direction = rng.standard_normal(net.n_neurons)
    direction /= np.linalg.norm(direction)
    if stim_steps:
        ref.advance(stim_steps, stimulus=stimulus.astype(np.float64))
    if transient_steps:
        ref.advance(transient_steps)
    pert = Simulator(net, dt=dt, bias=bias, state=ref.state(), precision="float64",
                     noise=shared)
    pert.neuron[0] = ref.neuron[0] + eps * direction  # not wrapped: θ > π is a spike to come
    theta_ref, theta_pert = ref.neuron[0], pert.neuron[0]  # live views
    jump = float(ref.jump)
    # r change per unit of phase lead after a spike (theta: speed 2, -jump² / 2)
    shift_gain = -jump * jump / net.neuron_model.phase_speed_at_spike
    logs = np.zeros(n_intervals)
    flips = spikes = 0
    for interval in range(n_intervals):
        for _ in range(n_renorm):
            _, fired = ref.advance(1)
            _, fired_pert = pert.advance(1)
            if not (fired.size or fired_pert.size):
                continue
            spikes += fired.size
            if fired.size != fired_pert.size or not np.array_equal(fired, fired_pert):
                late = np.setdiff1d(fired, fired_pert)  # the copy would spike next step
                early = np.setdiff1d(fired_pert, fired)  # the copy spiked a step too soon
                if late.size:
                    theta_pert[late] -= 2.0 * np.pi
                    add_spike_effect(pert, late, np.full(late.size, jump))
                if early.size:
                    theta_pert[early] += 2.0 * np.pi
                    add_spike_effect(pert, early, np.full(early.size, -jump))
                flips += late.size + early.size
            if fired.size:
                lead = _wrap(theta_pert[fired] - theta_ref[fired])
                add_spike_effect(pert, fired, shift_gain * lead)
        diff = _wrap(theta_pert - theta_ref)
        d = float(np.linalg.norm(diff))
        if not np.isfinite(d) or d == 0.0:
            raise ConfigError("the perturbation vanished or blew up", field="eps", found=eps,
                              expected="a perturbation that stays finite and nonzero over "
                              "renorm_every; change eps or renorm_every")
        logs[interval] = np.log(d / eps)
        scale = eps / d
        pert.neuron[0] = theta_ref + scale * diff
        pert.r[:] = ref.r + scale * (pert.r - ref.r)
        pert.u[:] = ref.u + scale * (pert.u - ref.u)
    return {"logs": logs, "flips": flips, "spikes": spikes}


def lyapunov(
    network_or_fitted: Any,
    *,
    duration: float = 2.0,
    transient: float = 0.5,
    renorm_every: float = 0.01,
    eps: float = 1e-6,
    seed: int = 0,
    n_seeds: int = DEFAULT_N_SEEDS,
    bias: float | np.ndarray | None = None,
    stimulus: Any = None,
    stim_duration: float | None = None,
    dt: float | None = None,
    before_after: bool = True,
) -> xr.Dataset:
    """The largest Lyapunov exponent (1/s) of a theta-neuron network, by Benettin's method
    on the phases (see the module docstring for the method and its choices).

    Each replicate ``k`` uses seed ``seed + k`` for its initial state (θ0 uniform, r = u = 0)
    and perturbation direction: ``seed=2, n_seeds=1`` repeats the third replicate of
    ``seed=0, n_seeds=5``. A run is: the stimulus (if any), ``transient`` s, then
    ``duration`` s of measurement, renormalising every ``renorm_every`` s.

    Parameters
    ----------
    network_or_fitted
        A :class:`~cortexfit.network.Network` (stage ``"network"``) or a fitted
        :class:`~cortexfit.fit.RLSFit` (stages ``"before"``, its initial weights, and
        ``"after"``; ``before_after=False`` keeps ``"after"``). ``dt`` and ``bias`` default
        to the fit's, or 0.1 ms and 0 for a network. Theta neurons only.
    stimulus
        None: spontaneous dynamics (the exponent of the autonomous network). For a fitted
        model, a condition (index or name): its stimulus is applied for the fit's
        ``stim_duration`` at the start (with ``transient=0`` and ``duration`` the targets'
        length this is the finite-time exponent of the trained response). For a network,
        one amplitude per neuron, applied for ``stim_duration`` s (default 50 ms). A
        sustained input is a ``bias`` (scalar or one value per neuron).
    eps
        Size of the phase perturbation (rad, Euclidean norm over neurons), at most 1e-3:
        the spike pairing assumes per-neuron phase differences far below a step's advance.

    Returns
    -------
    xarray.Dataset with ``lyapunov`` (stage, seed) in 1/s, its ``lyapunov_mean`` and
    ``lyapunov_std`` (sample standard deviation over seeds; NaN for one seed) over stage,
    ``running`` (stage, seed, time): the estimate over the first ``time`` s of measurement
    (to judge convergence), ``rate`` (stage, seed): the reference run's mean rate during the
    measurement (Hz), and ``n_flips`` (stage, seed): spikes that fell in different time
    steps in the two runs.
    """
    duration = _check_time("duration", duration, allow_zero=False)
    transient = _check_time("transient", transient, allow_zero=True)
    renorm_every = _check_time("renorm_every", renorm_every, allow_zero=False)
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        raise ConfigError("eps is not a number", field="eps", found=repr(eps),
                          expected="0 < eps <= 1e-3") from None
    if not (np.isfinite(eps) and 0 < eps <= 1e-3):
        raise ConfigError("eps out of range", field="eps", found=eps, expected="0 < eps <= 1e-3")
    if not (isinstance(n_seeds, (int, np.integer)) and n_seeds >= 1):
        raise ConfigError("n_seeds must be a positive integer", field="n_seeds", found=n_seeds,
                          expected=">= 1")
    is_network = isinstance(network_or_fitted, Network)
    spec = resolve(network_or_fitted, before_after=before_after,
                   condition=None if is_network else stimulus,
                   stimulus=stimulus if is_network else None,
                   stim_duration=stim_duration, bias=bias, dt=dt)
    model = spec["stages"][0][1].neuron_model
    if model.phase_speed_at_spike is None:
        raise ConfigError("the Lyapunov exponent is computed for phase models only",
                          field="neuron_model", found=model.name,
                          expected="a phase model such as 'theta' (the spike-timing "
                                   "correction reads the phase speed at the spike)")
    dt = spec["dt"]
    n_renorm = max(1, int(round(renorm_every / dt)))
    n_intervals = max(1, int(round(duration / (n_renorm * dt))))
    interval = n_renorm * dt
    transient_steps = int(round(transient / dt))
    seeds = np.arange(seed, seed + int(n_seeds))
    n = spec["stages"][0][1].n_neurons
    lam = np.zeros((len(spec["stages"]), seeds.size))
    running = np.zeros((len(spec["stages"]), seeds.size, n_intervals))
    rate = np.zeros_like(lam)
    flips = np.zeros(lam.shape, dtype=np.int64)
    elapsed = np.arange(1, n_intervals + 1) * interval
    for s, (_, net) in enumerate(spec["stages"]):
        for k in range(seeds.size):
            res = _one_run(net, dt=dt, bias=spec["bias"], stimulus=spec["stimulus"],
                           stim_steps=spec["stim_steps"], transient_steps=transient_steps,
                           n_renorm=n_renorm, n_intervals=n_intervals, eps=eps,
                           seed=seed, replicate=k, noise=spec["noise"])
            running[s, k] = np.cumsum(res["logs"]) / elapsed
            lam[s, k] = running[s, k, -1]
            rate[s, k] = res["spikes"] / (n * n_intervals * interval)
            flips[s, k] = res["flips"]
    std = lam.std(axis=1, ddof=1) if seeds.size > 1 else np.full(lam.shape[0], np.nan)
    return xr.Dataset(
        {
            "lyapunov": (("stage", "seed"), lam,
                         {"long_name": "largest Lyapunov exponent", "units": "1/s"}),
            "lyapunov_mean": ("stage", lam.mean(axis=1),
                              {"long_name": "largest Lyapunov exponent, mean over seeds",
                               "units": "1/s"}),
            "lyapunov_std": ("stage", std,
                             {"long_name": "standard deviation over seeds (ddof=1)",
                              "units": "1/s"}),
            "running": (("stage", "seed", "time"), running,
                        {"long_name": "estimate over the first `time` seconds of measurement",
                         "units": "1/s"}),
            "rate": (("stage", "seed"), rate,
                     {"long_name": "mean rate of the reference run during the measurement",
                      "units": "Hz"}),
            "n_flips": (("stage", "seed"), flips,
                        {"long_name": "spikes that fell in different time steps in the two runs "
                         "(paired, see the method)", "units": "1"}),
        },
        coords={"stage": [name for name, _ in spec["stages"]], "seed": seeds,
                "time": ("time", elapsed, {"units": "s",
                                           "long_name": "time since the measurement began"})},
        attrs={"duration": n_intervals * interval, "transient": transient,
               "renorm_every": interval, "eps": eps, "dt": dt, "precision": "float64",
               "stimulus": "none" if spec["stimulus"] is None else
               (spec["condition"] or "given amplitudes"),
               "method": "Benettin on the wrapped theta phases; full (theta, r, u) difference "
                         "rescaled; spike-timing shifts passed to r and u to first order"},
    )
