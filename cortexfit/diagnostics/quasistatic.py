"""How well the quasi-static approximation holds in a (fitted) network: Eq 1 of the paper,
``U_i(t) = sum_j W_ij phi(U_j(t) + I_j)`` (METHOD.md §3.5), the relation RLS training
rests on.

A test trial is run as :meth:`RLSFit.run_trial` runs it (fresh random initial conditions,
the condition's stimulus, then the training window, with the model's constant bias and no
noise), recording the drive ``u`` of every neuron every ``interval`` seconds in the window
(the stimulus is off there). The predicted drive is

    U_pred_i(t) = sum_j W_ij phi(u_j(t) + I_j)

with the actual drives on the right-hand side and ``I_j`` the model's constant bias.

**Units.** The simulator keeps ``u = W r`` with ``r`` the filtered spike train in spikes per
model time unit (theta: per tau = 10 ms; each spike adds 1/tau_s in those units). The
f-I curve ``phi`` is also in spikes per model time unit, and in
a quasi-static state ``r_j ~ phi(u_j + I_j)``, so ``U_pred = W phi(u + I)`` with no further
factor (the "2" of the paper's Eq 40, ``2 rho(pi)``, is already inside phi). ``gain`` (the
least-squares slope of u on U_pred) checks the scale: ~1 when the units are right.

**f-I curve.** The network's neuron model's own (:mod:`cortexfit.neurons.base`).
``fi="smooth"`` (default): smoothed by ``c`` = the model's ``fi_smoothing`` input scales
(what rate training used; the recordings preset: 0.03, the paper: 0.1; for theta this is
``phi2``); ``fi="sharp"``: the sharp curve (theta: ``phi1 = sqrt([x]+)/pi``).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..exceptions import ConfigError
from ..fit.fitted import as_fitted
from ..metrics import pearson_kernel
from ..neurons.noisy import noisy_fi_curve
from ..units import to_hz
from .lesion import _check_choice

__all__ = ["quasistatic", "fi_curve"]

FI_CURVES = ("smooth", "sharp")


def fi_curve(network: Any, fi: str = "smooth", c: float = 0.1):
    """The f-I curve ``phi(x)`` of the network's neurons (neurons on the last axis of x) in
    spikes per model time unit: the model's own (:meth:`NeuronModel.fi_curve`), smoothed by
    ``c`` input scales (``fi="smooth"``, as rate training used it) or sharp."""
    fi = _check_choice("fi", fi, FI_CURVES)
    if fi == "smooth" and not (np.isfinite(c) and c > 0):
        raise ConfigError("the smoothing constant must be positive", field="c", found=c,
                          expected="> 0")
    model = network.neuron_model
    return model.fi_curve(network.params, network.n_neurons,
                          smoothing=c if fi == "smooth" else 0.0).phi


def _condition_index(fitted: Any, condition: Any) -> list[int]:
    names = list(fitted.targets.conditions)
    if condition is None:
        return list(range(len(names)))
    if isinstance(condition, (int, np.integer)) and not isinstance(condition, bool):
        if not 0 <= condition < len(names):
            raise ConfigError("condition index out of range", field="condition",
                              found=condition, expected=f"0..{len(names) - 1}")
        return [int(condition)]
    if str(condition) not in names:
        raise ConfigError("unknown condition", field="condition", found=condition,
                          expected=names)
    return [names.index(str(condition))]


def quasistatic(fitted: Any, *, condition: Any = None, seed: int = 0, fi: str = "smooth",
                c: float | None = None, interval: float = 1e-3, discard: float = 0.0,
                keep_traces: bool = False) -> xr.Dataset:
    """Pearson r over time, per neuron, of the actual drive u and ``W phi(u + I)``.

    Parameters
    ----------
    fitted
        A fitted :class:`cortexfit.fit.RLSFit` or its :class:`~cortexfit.fit.FittedNetwork`.
        Not modified.
    condition
        A condition label or index; None: every condition (one trial each).
    seed
        The test trial's initial conditions (as ``run_trial(condition, seed=seed)``).
    fi, c
        The f-I curve (``"smooth"`` or ``"sharp"``) and its smoothing constant (None: the
        model's ``fi_smoothing``; for a fit trained with background noise, ``"smooth"``
        with ``c=None`` is the noisy curve training used, :mod:`cortexfit.neurons.noisy`).
    interval
        Sampling interval of the drive, s (rounded to a whole number of steps, >= dt).
    discard
        Seconds at the start of the window left out (the transient after the stimulus).
    keep_traces
        Also return ``u`` and ``u_pred`` (condition, time, neuron).

    Returns
    -------
    xarray.Dataset
        ``pearson(condition, neuron)``, ``mean_pearson(condition)``, ``gain(condition,
        neuron)``, ``rate(condition, neuron)`` (spike count over the window, Hz),
        ``rate_predicted(condition, neuron)`` (mean ``phi(u + I)``, Hz), attrs
        ``mean_pearson`` (over conditions and neurons).
    """
    fitted = as_fitted(fitted)
    net = fitted.network
    smoothing = float(fitted.settings.get("fi_smoothing", 0.1) if c is None else c)
    phi = fi_curve(net, fi, smoothing)
    noisy = fi == "smooth" and c is None and fitted.protocol.noise > 0
    if noisy:  # a fit trained with noise: its own curve, the one training used
        phi = noisy_fi_curve(net.neuron_model, net.params, net.n_neurons,
                             fitted.protocol.noise, dt=fitted.protocol.dt).phi
    conditions = _condition_index(fitted, condition)
    protocol = fitted.protocol
    dt = protocol.dt
    if not (np.isfinite(interval) and interval > 0):
        raise ConfigError("interval must be positive", field="interval", found=interval,
                          expected="> 0 seconds")
    rec_every = max(1, int(round(interval / dt)))
    n_steps = protocol.window_steps
    n_rows = n_steps // rec_every
    time = protocol.window_times(rec_every)
    keep = time >= protocol.window_start + discard
    if keep.sum() < 3:
        raise ConfigError("too little of the window is left", field="discard", found=discard,
                          expected=f"< {n_rows * rec_every * dt:g} s minus a few samples")
    n = net.n_neurons
    weights = net.weights().astype(np.float64)
    unit = net.neuron_model.time_unit
    bias = np.broadcast_to(np.asarray(protocol.bias, dtype=np.float64), (n,))

    out = {k: [] for k in ("pearson", "gain", "rate", "rate_predicted", "u", "u_pred")}
    for ci in conditions:
        sim = protocol.simulator(net, seed=seed)
        protocol.lead_in(sim, ci)
        rec_u = np.zeros((n_rows, n), dtype=sim.real)
        spike_steps, spike_neurons = sim.advance(n_steps, rec_every=rec_every,
                                                 rec_idx=np.arange(n), rec_u=rec_u)
        u = rec_u[keep].astype(np.float64)  # (time, neuron)
        rate = phi(u + bias)  # spikes per model time unit
        pred = (weights @ rate.T).T
        out["pearson"].append(pearson_kernel(u.T, pred.T))
        pc = pred - pred.mean(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["gain"].append(np.where((pc * pc).sum(0) > 0, (pc * (u - u.mean(0))).sum(0)
                                        / (pc * pc).sum(0), np.nan))
        window = spike_steps >= (np.flatnonzero(keep)[0]) * rec_every
        duration = keep.sum() * rec_every * dt
        out["rate"].append(np.bincount(spike_neurons[window], minlength=n) / duration)
        out["rate_predicted"].append(to_hz(rate.mean(0), unit))
        if keep_traces:
            out["u"].append(u)
            out["u_pred"].append(pred)

    tg = fitted.targets
    coords = {
        "condition": ("condition", [tg.conditions[ci] for ci in conditions]),
        "neuron": ("neuron", list(tg.neuron_ids)),
        "role": ("neuron", list(tg.roles), {"long_name": "recorded or auxiliary"}),
    }
    pearson = np.array(out["pearson"])
    ds = xr.Dataset(
        {
            "pearson": (("condition", "neuron"), pearson, {
                "long_name": "Pearson r over time of u and W phi(u + I)", "units": "1"}),
            "mean_pearson": ("condition", pearson.mean(1), {
                "long_name": "pearson averaged over neurons", "units": "1"}),
            "gain": (("condition", "neuron"), np.array(out["gain"]), {
                "long_name": "least-squares slope of u on W phi(u + I) (1: scale right)",
                "units": "1"}),
            "rate": (("condition", "neuron"), np.array(out["rate"]), {
                "long_name": "spike count over the analysed window / its length",
                "units": "Hz"}),
            "rate_predicted": (("condition", "neuron"), np.array(out["rate_predicted"]), {
                "long_name": "time average of phi(u + I)", "units": "Hz"}),
        },
        coords=coords,
        attrs={"diagnostic": "quasistatic",
               "description": "Eq 1 of Kim & Chow 2018: u_i(t) vs sum_j W_ij phi(u_j(t) + I_j) "
                              "on one test trial per condition (stimulus off)",
               "fi": "noisy" if noisy else fi,
               "c": smoothing if fi == "smooth" and not noisy else "n/a", "seed": int(seed),
               "interval": rec_every * dt, "discard": float(discard),
               "mean_pearson": float(pearson.mean()), "neuron_model": net.neuron_model.name},
    )
    ds["mean_pearson"].attrs["note"] = "attrs['mean_pearson'] averages over conditions too"
    if keep_traces:
        ds = ds.assign_coords(time=("time", time[keep], {
            "units": "s", "long_name": "time from the alignment event"}))
        ds["u"] = (("condition", "time", "neuron"), np.array(out["u"]), {
            "long_name": "synaptic drive u = W r", "units": "model input"})
        ds["u_pred"] = (("condition", "time", "neuron"), np.array(out["u_pred"]), {
            "long_name": "quasi-static prediction W phi(u + I)", "units": "model input"})
    return ds
