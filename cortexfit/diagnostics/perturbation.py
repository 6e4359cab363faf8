"""Single-spike perturbation: delete one spike and follow how far the network drifts away.

The paper (Kim & Chow 2018, Figure 4c, f, g; METHOD.md §2.2) runs a network twice from the
same initial state with the same stimulus, deletes one spike 200 ms after the evoked
response starts in one of the runs, and plots the average phase deviation of the theta
neurons over time: an untrained (chaotic) network drifts away, a trained one stays on its
trajectory. :func:`perturbation` does exactly that with the project's
:class:`~cortexfit.simulate.Simulator`.

Decisions (the paper is silent on them):

* **Which spike.** The first spike, in either run (they are identical until then), whose
  reported time (the end of its time step) is at or after ``delete_after`` seconds past the
  end of the stimulus. When several neurons spike in that step, the lowest neuron index.
* **How it is deleted.** Only its synaptic effect is undone, exactly as the simulator added
  it: ``r[j] -= jump`` and ``u -= W[:, j] * jump`` (``jump = time_unit / tau_s``) right after
  the step in which it occurred. The neuron's own state is left at its reset value (θ keeps
  its post-spike value): the neuron fired, but nobody heard it. This is the cleanest
  "one spike less" a time-stepped network allows: the perturbation is exactly one
  postsynaptic event, and in a network without synapses it changes nobody's drive or phase
  (the tests check that the divergence is then exactly zero).
* **Divergence measures** (mean over all neurons, at every ``record_every``):
  ``drive_divergence = mean_i |u1_i - u2_i|`` (model input units), ``r_divergence =
  mean_i |r1_i - r2_i|`` (Hz: shows the deleted spike itself, also in an uncoupled network)
  and, for theta neurons, ``phase_divergence = mean_i |wrap(θ1_i - θ2_i)|`` (rad, wrap to
  [-π, π)). The absolute wrapped difference is used rather than ``1 - cos Δθ``: it is linear
  in small deviations (``1 - cos`` is quadratic, which hides the early growth and doubles
  its apparent rate) and it has a plain reading: independent uniform phases give π/2
  (attribute ``chance_level``; two independent runs of a real network give somewhat less,
  since phases linger where θ moves slowly, near θ = 0). Other neuron models get
  ``v_divergence`` = mean |Δv| (mV).
* **Time axis.** ``time`` is the targets' clock for a fitted model (the stimulus ends at the
  first target time, as in :meth:`RLSFit.run_trial`), and seconds since the end of the
  stimulus for a plain network. Before the deletion both runs are identical step for step
  (the simulation is deterministic), so the divergence is recorded as 0 there.
"""
from __future__ import annotations

import warnings
from typing import Any

import numba
import numpy as np
import xarray as xr

from .. import seeds
from ..exceptions import ConfigError, CortexfitWarning
from ..fit.fitted import FittedNetwork, as_fitted
from ..network import Network
from ..simulate import DEFAULT_DT, Noise, Simulator, initial_state
from ..units import to_hz
from ..validation import check_nonnegative

__all__ = ["perturbation"]


# --------------------------------------------------------------------------------------
# Shared with cortexfit.diagnostics.chaos
# --------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _scatter(r, u, neurons, amounts, s_indptr, s_post, s_weight, p_indptr, p_post, p_weight):
    """Add ``amounts[m]`` to ``r[neurons[m]]`` and ``W[:, neurons[m]] * amounts[m]`` to ``u``:
    the synaptic effect of (a fraction of) a spike, over the simulator's out-lists."""
    for m in range(neurons.shape[0]):
        j = neurons[m]
        a = amounts[m]
        r[j] += a
        for idx in range(s_indptr[j], s_indptr[j + 1]):
            u[s_post[idx]] += s_weight[idx] * a
        for idx in range(p_indptr[j], p_indptr[j + 1]):
            u[p_post[idx]] += p_weight[idx] * a


def add_spike_effect(sim: Simulator, neurons: np.ndarray, amounts: np.ndarray) -> None:
    """Add ``amounts`` (in units of r) of neuron ``neurons``' spikes to ``sim``'s live ``r``
    and ``u`` (negative amounts remove them)."""
    out = sim.out
    _scatter(sim.r, sim.u, np.asarray(neurons, dtype=np.int64),
             np.asarray(amounts, dtype=sim.real), out.static_indptr, out.static_post,
             out.static_weights, out.plastic_indptr, out.plastic_post, out.plastic_weights)


def initial_network(fitted: Any) -> Network:
    """A copy of the fitted network with its weights before training
    (``fitted.initial_weights``, static part unchanged)."""
    net = fitted.network.copy()
    w0 = fitted.initial_weights.tocsr()
    plastic = net.plastic
    rows = np.repeat(np.arange(net.n_neurons), np.diff(plastic.indptr))
    cols = plastic.indices
    if rows.size:
        values = (np.asarray(w0[rows, cols], dtype=np.float64).ravel()
                  - np.asarray(net.static.tocsr()[rows, cols], dtype=np.float64).ravel())
        net.set_plastic_weights(values.astype(plastic.data.dtype))
    return net


def resolve(model: Any, *, before_after: bool, condition: int | str | None,
            stimulus: Any, stim_duration: float | None, bias: Any, dt: float | None) -> dict:
    """What to run: the stages (name, network), dt, bias, stimulus (amplitude or None) and
    its length in steps, and the clock offset of the window after the stimulus.

    ``condition`` selects a fitted model's stimulus (None: no stimulus); a plain network
    takes ``stimulus`` (one amplitude per neuron, or None)."""
    if isinstance(model, Network):
        net = model
        n = net.n_neurons
        dt = DEFAULT_DT if dt is None else float(dt)
        bias = 0.0 if bias is None else bias
        if stimulus is not None:
            amp = np.asarray(stimulus, dtype=np.float64)
            if amp.ndim == 0:
                amp = np.full(n, float(amp))
            if amp.shape != (n,) or not np.all(np.isfinite(amp)):
                raise ConfigError("stimulus must be one finite amplitude per neuron",
                                  field="stimulus", found=f"shape {amp.shape}",
                                  expected=f"shape ({n},)")
            stim_duration = 0.05 if stim_duration is None else float(stim_duration)
        else:
            amp, stim_duration = None, 0.0
        stages = [("network", net)]
        offset, cond_name = 0.0, None
        noise = 0.0
    elif isinstance(model, FittedNetwork) or hasattr(model, "fit"):
        est = as_fitted(model)
        net = est.network
        protocol = est.protocol
        dt = protocol.dt if dt is None else float(dt)
        bias = protocol.bias if bias is None else bias
        if stimulus is not None:
            raise ConfigError("a fitted model takes its stimulus from the condition",
                              field="stimulus", found="an amplitude array",
                              expected="stimulus=None and condition=<index or name>")
        if condition is None:
            amp, stim_duration, cond_name = None, 0.0, None
        else:
            c = protocol.condition_index(condition)
            amp = np.asarray(protocol.stimuli[c], dtype=np.float64)
            stim_duration = protocol.stim_duration if stim_duration is None \
                else float(stim_duration)
            cond_name = protocol.conditions[c]
        stages = ([("before", initial_network(est))] if before_after else []) + [("after", net)]
        offset = protocol.window_start  # the targets' first time
        noise = protocol.noise
    else:
        raise ConfigError("expected a fitted RLSFit or a Network", field="model",
                          found=type(model).__name__, expected="RLSFit (fitted) or Network")
    if not np.isfinite(dt) or dt <= 0:
        raise ConfigError("dt out of range", field="dt", found=dt, expected="> 0 seconds")
    if not np.isfinite(stim_duration) or stim_duration < 0:
        raise ConfigError("stim_duration out of range", field="stim_duration",
                          found=stim_duration, expected=">= 0 seconds")
    stim_steps = int(round(stim_duration / dt)) if amp is not None else 0
    return {"stages": stages, "dt": dt, "bias": bias, "stimulus": amp,
            "stim_steps": stim_steps, "offset": offset, "condition": cond_name,
            "noise": noise}


def frozen_noise(sigma: float, seed: int) -> Noise | None:
    """The background noise of a fit trained with noise, as one realisation (frozen): the
    reference and the perturbed run receive the same noise, so what differs between them is
    the perturbation alone."""
    return Noise(sigma=float(sigma), seed=int(seed) + 0x5EED) if sigma > 0 else None


def _check_time(name: str, value: float, *, allow_zero: bool) -> float:
    return check_nonnegative(name, value, allow_zero=allow_zero, unit="seconds")


def _wrap(x: np.ndarray) -> np.ndarray:
    """Angles to [-π, π)."""
    return (x + np.pi) % (2.0 * np.pi) - np.pi


# --------------------------------------------------------------------------------------
# The perturbation experiment
# --------------------------------------------------------------------------------------


def _run_stage(net: Network, *, dt: float, bias: Any, stimulus: np.ndarray | None,
               stim_steps: int, n_window: int, n_delete: int, rec: int, seed: int,
               precision: str, noise: float = 0.0) -> dict:
    """One network: the shared run to the deletion, the deletion, then both runs."""
    is_phase = net.neuron_model.phase_speed_at_spike is not None
    unit = net.neuron_model.time_unit
    n_rows = n_window // rec
    rows = {name: np.zeros(n_rows) for name in ("du", "dr", "dv")}
    start = initial_state(net, seeds.rng(seed, "perturbation"))
    shared_noise = frozen_noise(noise, seed)
    sim = Simulator(net, dt=dt, bias=bias, state=start, precision=precision,
                    noise=shared_noise)
    if stim_steps:
        sim.advance(stim_steps, stimulus=stimulus.astype(sim.real))
    # the first spike whose time (end of its step) is >= the deletion time
    search_from = min(max(n_delete - 1, 0), n_window)
    n_spikes = sim.advance(search_from)[0].size if search_from else 0
    shared = sim.state()
    found, searched = None, 0
    while searched < n_window - search_from:
        chunk = min(rec, n_window - search_from - searched)
        steps, neurons = sim.advance(chunk)
        if steps.size:
            first = int(steps[0])
            found = (searched + first, int(neurons[steps == first].min()))
            break
        searched += chunk
    if found is None:
        warnings.warn("no spike after the deletion time: nothing deleted, the two runs are "
                      "identical", CortexfitWarning, stacklevel=3)
        return {**rows, "neuron": -1, "step": -1, "spikes": n_spikes}  # none in the search
    k, j = found
    ref = Simulator(net, dt=dt, bias=bias, state=shared, precision=precision,
                    noise=shared_noise)
    pert = Simulator(net, dt=dt, bias=bias, state=shared, precision=precision,
                     noise=shared_noise)
    n_spikes += ref.advance(k + 1)[0].size
    pert.advance(k + 1)
    add_spike_effect(pert, np.array([j]), np.array([-pert.jump]))  # the spike is not heard
    done = search_from + k + 1  # window steps done; the deletion happened at this step's end
    for row in range(n_rows):
        at = (row + 1) * rec
        if at < done:
            continue  # identical runs before the deletion
        if at > done:
            n_spikes += ref.advance(at - done)[0].size
            pert.advance(at - done)
            done = at
        rows["du"][row] = np.mean(np.abs(ref.u.astype(np.float64) - pert.u))
        rows["dr"][row] = to_hz(np.mean(np.abs(ref.r.astype(np.float64) - pert.r)), unit)
        dv = ref.neuron[0].astype(np.float64) - pert.neuron[0]
        rows["dv"][row] = np.mean(np.abs(_wrap(dv) if is_phase else dv))
    if done < n_window:
        n_spikes += ref.advance(n_window - done)[0].size
    return {**rows, "neuron": j, "step": search_from + k + 1, "spikes": n_spikes}


def perturbation(
    fitted_or_network: Any,
    *,
    condition: int | str | None = 0,
    delete_after: float = 0.2,
    duration: float = 1.0,
    seed: int = 0,
    record_every: float = 1e-3,
    bias: float | np.ndarray | None = None,
    before_after: bool = True,
    stimulus: np.ndarray | None = None,
    stim_duration: float | None = None,
    dt: float | None = None,
    precision: str = "float32",
) -> xr.Dataset:
    """Delete one spike in one of two identical runs and follow the divergence.

    Both runs start from the same fresh random state (``seed``; θ0 uniform, r = u = 0), get
    the same stimulus, and are then followed for ``duration`` seconds after the stimulus
    ends. In one of them the first spike at or after ``delete_after`` seconds past the
    stimulus (the paper: 200 ms) is deleted: its synaptic effect is subtracted, the neuron
    keeps its reset state (see the module docstring).

    Parameters
    ----------
    fitted_or_network
        A fitted :class:`~cortexfit.fit.RLSFit`: stages ``"before"`` (the initial weights,
        ``initial_weights_``, in a copy of the network) and ``"after"`` (the trained
        network); ``before_after=False`` keeps only ``"after"``. The stimulus is the
        condition's (``condition``: index or name; None for no stimulus), and ``dt`` and
        ``bias`` default to the fit's. Or a :class:`~cortexfit.network.Network`: stage
        ``"network"``, with ``stimulus`` (one amplitude per neuron, for ``stim_duration``
        s, default 50 ms) or none, ``dt`` default 0.1 ms, ``bias`` default 0.
    delete_after, duration, record_every
        Seconds after the end of the stimulus: when to delete, how long to follow, and the
        sampling interval of the divergence.
    precision
        ``"float32"`` (as training and :meth:`RLSFit.run_trial`) or ``"float64"``.

    Returns
    -------
    xarray.Dataset over ``(stage, time)``:

    * ``drive_divergence``: mean over neurons of |Δu| (model input units);
    * ``phase_divergence`` (theta neurons): mean over neurons of |wrap(Δθ)|, rad (π/2 for
      independent uniform phases); other models: ``v_divergence``, mean |Δv|, mV;
    * ``r_divergence``: mean over neurons of |Δr|, Hz;

    and over ``stage``: ``deleted_neuron`` (-1 when no spike came after the deletion time:
    nothing deleted, a warning), ``deleted_time`` (s, on the ``time`` clock; NaN when none),
    ``rate`` (mean rate of the unperturbed run over the followed window, Hz).
    ``time`` is the targets' clock for a fitted model (the stimulus ends at its start), else
    seconds since the end of the stimulus.
    """
    if precision not in ("float32", "float64"):
        raise ConfigError("unknown precision", field="precision", found=precision,
                          expected="'float32' or 'float64'")
    duration = _check_time("duration", duration, allow_zero=False)
    delete_after = _check_time("delete_after", delete_after, allow_zero=True)
    record_every = _check_time("record_every", record_every, allow_zero=False)
    if delete_after >= duration:
        raise ConfigError("the deletion is after the end of the run", field="delete_after",
                          found=delete_after, expected=f"< duration ({duration} s)")
    spec = resolve(fitted_or_network, before_after=before_after, condition=condition,
                   stimulus=stimulus, stim_duration=stim_duration, bias=bias, dt=dt)
    dt = spec["dt"]
    rec = max(1, int(round(record_every / dt)))
    n_window = int(round(duration / dt))
    n_delete = int(round(delete_after / dt))
    if n_window < rec:
        raise ConfigError("record_every is longer than the run", field="record_every",
                          found=record_every, expected=f"<= duration ({duration} s)")
    results = [
        _run_stage(net, dt=dt, bias=spec["bias"], stimulus=spec["stimulus"],
                   stim_steps=spec["stim_steps"], n_window=n_window, n_delete=n_delete,
                   rec=rec, seed=seed, precision=precision, noise=spec["noise"])
        for _, net in spec["stages"]
    ]
    names = [name for name, _ in spec["stages"]]
    model = spec["stages"][0][1].neuron_model
    is_phase = model.phase_speed_at_spike is not None
    n = spec["stages"][0][1].n_neurons
    offset = spec["offset"]
    times = offset + np.arange(1, n_window // rec + 1) * rec * dt
    dv_name = "phase_divergence" if is_phase else "v_divergence"
    dv_attrs = ({"long_name": "mean over neurons of |wrap(theta1 - theta2)|", "units": "rad",
                 "chance_level": np.pi / 2,
                 "chance_level_note": "independent uniform phases"}
                if is_phase else {"long_name": "mean over neurons of |v1 - v2|", "units": "mV"})

    def stack(key: str) -> np.ndarray:
        return np.stack([res[key] for res in results])

    deleted_time = np.array([offset + res["step"] * dt if res["neuron"] >= 0 else np.nan
                             for res in results])
    return xr.Dataset(
        {
            "drive_divergence": (("stage", "time"), stack("du"),
                                 {"long_name": "mean over neurons of |u1 - u2|",
                                  "units": "model input"}),
            dv_name: (("stage", "time"), stack("dv"), dv_attrs),
            "r_divergence": (("stage", "time"), stack("dr"),
                             {"long_name": "mean over neurons of |r1 - r2|", "units": "Hz"}),
            "deleted_neuron": ("stage", np.array([res["neuron"] for res in results]),
                               {"long_name": "neuron whose spike was deleted (-1: none)",
                                "units": "1"}),
            "deleted_time": ("stage", deleted_time,
                             {"long_name": "time of the deleted spike (end of its step)",
                              "units": "s"}),
            "rate": ("stage", np.array([res["spikes"] for res in results]) / (n * n_window * dt),
                     {"long_name": "mean rate of the unperturbed run over the window",
                      "units": "Hz"}),
        },
        coords={"stage": names,
                "time": ("time", times, {"units": "s",
                                         "long_name": "time; the stimulus ends at "
                                         f"{offset:g} s"})},
        attrs={"condition": "" if spec["condition"] is None else spec["condition"],
               "seed": seed, "delete_after": delete_after, "duration": duration, "dt": dt,
               "precision": precision, "neuron_model": model.name,
               "method": "two identical runs; in one, the first spike at or after "
                         "delete_after s past the stimulus has its synaptic effect removed "
                         "(r_j -= jump, u -= W[:, j] jump), the neuron keeps its reset state"},
    )
