"""Auxiliary-neuron targets: smoothed OU rate patterns (Kim & Chow 2018, Figure 5).

The recorded units rarely constrain a network enough on their own; the paper adds
``N_aux = aux_ratio * N_cor`` auxiliary neurons trained on random rate patterns
``φ1([x(t)]+)``, where ``x`` is an Ornstein-Uhlenbeck (OU) process with ``τ_c = 800 ms``
and ``s = 0.1``, low-pass filtered with the synaptic time constant ``τ_s = 50 ms``
(METHOD.md §4). This module makes those targets.

Conventions (METHOD.md §1.3, §3.4)
----------------------------------
* **OU in the code form.** Time is measured in units of the membrane time constant
  ``TAU = 10 ms``; with ``dt``, ``τ_c`` in those units the process is
  ``x += (dt/τ_c)(-x) + s*sqrt(dt)*ξ`` with ``ξ ~ N(0, 1)``, i.e.
  ``dx = -x/τ_c dt + s dW`` (not the paper's literal ``τ_c dx = -x dt + s dW``, whose SD
  would be far too small: METHOD.md §8). Its stationary SD is ``s*sqrt(τ_c/2)``
  (``0.1*sqrt(40) ≈ 0.63`` for the defaults), exactly
  ``s*sqrt(dt/(2 dt/τ_c - (dt/τ_c)^2))`` for the discrete recursion, which is the
  distribution the initial condition is drawn from, so the process is stationary from
  its first step. ``x`` is a dimensionless synaptic drive, like the model's ``u``.
* **Rate.** The network's own neuron model's f-I curve of the drive: ``x`` is in units of
  the model's input scale above its threshold (:mod:`cortexfit.neurons.base`), so the rate
  is ``rate(θ + s x)``. For the theta neuron (θ = 0, s = 1) this is the paper's
  ``φ1(x) = sqrt([x]+)/π`` spikes per TAU, ``≈ 31.8 sqrt(x)`` Hz; for ``x ~ N(0, σ²)``
  its mean is ``2^{1/4} Γ(3/4) sqrt(σ) / (2 π^{3/2})`` per TAU (≈ 10.4 Hz for the
  defaults). Other models give other shapes (LIF rises faster just above threshold), each
  reachable by that model. Low-pass filtering keeps the mean.
* **Low-pass.** A causal first-order filter ``τ_s dr/dt = -r + φ1(x)``, integrated exactly
  for piecewise-constant input (``r += (1 - e^{-dt/τ_s})(φ1 - r)``), started at ``φ1(x_0)``.
  The simulation starts a burn-in of ``5 τ_s`` before the first target time, so the
  filter has settled (its memory of the start is ``e^{-5} < 1%``).
* **Sampling.** The process runs on a ``dt`` grid from ``time[0] - burn-in`` and is
  linearly interpolated at the requested times (the targets' bin centres).
* **Randomness.** One :func:`numpy.random.default_rng` per call, seeded by ``seed``; every
  auxiliary neuron and every condition gets an independent path. Same seed, same
  arguments -> identical targets.

Parameters named ``tau_c``, ``tau_s``, ``dt`` are in **seconds**; ``amplitude`` is ``s``
of the code form (per sqrt(TAU)). Rates are in **Hz**.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from scipy.signal import lfilter

from . import seeds
from .exceptions import ConfigError, TargetError
from .neurons.base import NeuronModel, get_model
from .neurons.theta import TAU, rate_hz

__all__ = ["ou_targets", "add_auxiliary", "model_rate", "ou_stationary_sd", "ou_mean_rate_hz"]

BURN_IN_TAU_S = 5.0
"""Burn-in before the first target time, in units of ``tau_s``."""

_MAX_ELEMENTS = 50_000_000  # aux neurons x simulation steps per condition


def _real(value: Any, name: str, *, positive: bool = True, allow_zero: bool = False,
          expected: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} is not a number", field=name,
                          found=f"{type(value).__name__}: {value!r}"[:120], expected=expected)
    value = float(value)
    if not math.isfinite(value) or (positive and (value < 0 or (value == 0 and not allow_zero))):
        raise ConfigError(f"{name} is out of range", field=name, found=value, expected=expected)
    return value


def _seed(seed: Any) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ConfigError("seed must be a non-negative integer", field="seed",
                          found=repr(seed)[:120], expected="an integer >= 0")
    return int(seed)


def _check_ou(tau_c: Any, amplitude: Any, tau_s: Any, dt: Any) -> tuple[float, ...]:
    tau_c = _real(tau_c, "tau_c", expected="the OU correlation time in seconds, > 0")
    amplitude = _real(amplitude, "amplitude", expected="the OU noise amplitude s, > 0")
    tau_s = _real(tau_s, "tau_s", expected="the low-pass time constant in seconds, > 0")
    dt = _real(dt, "dt", expected="the simulation step in seconds, > 0")
    if dt > min(tau_c, tau_s) / 2:
        raise ConfigError(
            "dt is too large for the time constants", field="dt", found=dt,
            expected=f"dt <= min(tau_c, tau_s) / 2 = {min(tau_c, tau_s) / 2:g} s",
        )
    return tau_c, amplitude, tau_s, dt


def ou_stationary_sd(tau_c: float = 0.8, amplitude: float = 0.1, dt: float = 0.001) -> float:
    """Stationary SD of the discrete code-form OU (dimensionless; ``≈ s*sqrt(τ_c/2)``).

    ``tau_c`` and ``dt`` in seconds (converted to units of TAU = 10 ms).
    """
    a = (dt / TAU) / (tau_c / TAU)
    return float(amplitude * math.sqrt((dt / TAU) / (2 * a - a * a)))


def ou_mean_rate_hz(tau_c: float = 0.8, amplitude: float = 0.1, dt: float = 0.001) -> float:
    """Expected mean of ``φ1([x]+)`` in Hz for the stationary OU (also after low-pass).

    For ``x ~ N(0, σ²)``: ``E[sqrt(x+)] = 2^{1/4} Γ(3/4) sqrt(σ) / (2 sqrt(π))``.
    """
    sigma = ou_stationary_sd(tau_c, amplitude, dt)
    e_sqrt = 2 ** 0.25 * math.gamma(0.75) * math.sqrt(sigma) / (2 * math.sqrt(math.pi))
    return e_sqrt / math.pi / TAU


def _ou_paths(n: int, n_steps: int, *, tau_c: float, amplitude: float, dt: float,
              rng: np.random.Generator) -> np.ndarray:
    """Raw code-form OU paths ``(n, n_steps)``, stationary from the first sample.

    Dimensionless; time step ``dt`` and ``tau_c`` in seconds (used in units of TAU).
    Sample 0 is drawn from the stationary distribution; each next one is
    ``x + (dt/τ_c)(-x) + s*sqrt(dt)*ξ`` in TAU units.
    """
    dt_u, tau_c_u = dt / TAU, tau_c / TAU
    decay = 1.0 - dt_u / tau_c_u
    x0 = rng.standard_normal(n) * ou_stationary_sd(tau_c, amplitude, dt)
    x = np.empty((n, n_steps))
    x[:, 0] = x0
    if n_steps > 1:
        kicks = rng.standard_normal((n, n_steps - 1)) * (amplitude * math.sqrt(dt_u))
        x[:, 1:] = lfilter([1.0], [1.0, -decay], kicks, axis=1, zi=(decay * x0)[:, None])[0]
    return x


def _time_grid(time: Any) -> np.ndarray:
    try:
        t = np.asarray(time, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError("time is not numeric", field="time",
                          found=f"{type(time).__name__}", expected="times in seconds") from None
    if t.ndim != 1 or t.size < 1 or not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise ConfigError("time must be finite and strictly increasing", field="time",
                          found=f"shape {t.shape}, first values {t.ravel()[:5]}",
                          expected="a 1-D increasing array of times in seconds")
    return t


def ou_targets(
    n_aux: int,
    conditions: int | Sequence[Any],
    time: Sequence[float],
    *,
    tau_c: float = 0.8,
    amplitude: float = 0.1,
    tau_s: float = 0.05,
    dt: float = 0.001,
    seed: int = 0,
    rate: Any = None,
) -> np.ndarray:
    """Auxiliary target rates ``(condition, aux, time)`` in Hz (see the module docstring).

    Parameters
    ----------
    n_aux
        Number of auxiliary neurons (>= 0).
    conditions
        Number of conditions, or a sequence of condition labels (only its length is used).
    time
        Sample times in seconds (strictly increasing, any spacing), e.g. the targets' bin
        centres. Only differences matter: each path is stationary.
    tau_c, amplitude
        OU correlation time (s) and noise amplitude ``s`` of the code form.
    tau_s
        Time constant (s) of the causal low-pass filter applied to ``φ1([x]+)``.
    dt
        Simulation step (s), at most ``min(tau_c, tau_s) / 2``.
    seed
        Seed of the random generator (int >= 0).
    rate
        The f-I curve: drives ``(aux, step)`` -> Hz. None: the theta neuron's (``φ1``);
        :func:`add_auxiliary` passes the network's model (:func:`model_rate`).
    """
    if isinstance(n_aux, (bool, np.bool_)) or not isinstance(n_aux, numbers.Integral) \
            or n_aux < 0:
        raise ConfigError("n_aux must be a non-negative integer", field="n_aux",
                          found=repr(n_aux)[:120], expected="an integer >= 0")
    n_aux = int(n_aux)
    if isinstance(conditions, numbers.Integral) and not isinstance(conditions, (bool, np.bool_)):
        n_cond = int(conditions)
    elif isinstance(conditions, (str, bytes)) or not hasattr(conditions, "__len__"):
        n_cond = -1
    else:
        n_cond = len(conditions)
    if n_cond < 1:
        raise ConfigError("conditions must be a positive count or a list of labels",
                          field="conditions", found=repr(conditions)[:120],
                          expected="an integer >= 1 or a non-empty sequence")
    t = _time_grid(time)
    tau_c, amplitude, tau_s, dt = _check_ou(tau_c, amplitude, tau_s, dt)
    seed = _seed(seed)

    burn = BURN_IN_TAU_S * tau_s
    grid0 = t[0] - burn
    pos = (t - grid0) / dt                     # fractional index of each sample time
    n_steps = int(math.floor(pos[-1])) + 2
    if n_aux * n_steps > _MAX_ELEMENTS:
        raise ConfigError(
            "the auxiliary targets are too large to simulate", field="n_aux",
            found=f"{n_aux} neurons x {n_steps} steps of {dt:g} s",
            expected=f"at most {_MAX_ELEMENTS} neuron-steps per condition",
            hint="Use fewer auxiliary neurons, a shorter window or a larger dt",
        )
    lo = np.minimum(np.floor(pos).astype(np.int64), n_steps - 2)
    frac = pos - lo

    rng = seeds.rng(seed, "auxiliary")
    out = np.empty((n_cond, n_aux, t.size), dtype=np.float64)
    if n_aux == 0:
        return out
    keep = math.exp(-dt / tau_s)
    for c in range(n_cond):
        x = _ou_paths(n_aux, n_steps, tau_c=tau_c, amplitude=amplitude, dt=dt, rng=rng)
        phi = rate_hz(x) if rate is None else rate(x)              # Hz
        # r[k] = keep * r[k-1] + (1 - keep) * phi[k-1], r[0] = phi[0]  (causal)
        r = np.empty_like(phi)
        r[:, 0] = phi[:, 0]
        r[:, 1:] = lfilter([1.0 - keep], [1.0, -keep], phi[:, :-1], axis=1,
                           zi=(keep * phi[:, 0])[:, None])[0]
        out[c] = r[:, lo] * (1.0 - frac) + r[:, lo + 1] * frac
    np.maximum(out, 0.0, out=out)
    return out


def add_auxiliary(
    targets: xr.Dataset,
    aux_ratio: float = 2.0,
    *,
    tau_c: float = 0.8,
    amplitude: float = 0.1,
    tau_s: float = 0.05,
    seed: int = 0,
    neuron_model: str | NeuronModel = "theta",
    model_params: Any = None,
    min_neurons: int = 0,
) -> xr.Dataset:
    """A copy of ``targets`` with auxiliary neurons added on a new ``neuron`` dimension.

    The auxiliary rates come from the f-I curve of ``neuron_model`` (with
    ``model_params``, its defaults if None): the network that will be trained on them.

    ``n_aux = round(aux_ratio * n_recorded)`` (halves rounded up), ``n_recorded`` being
    the number of units, raised to ``min_neurons - n_recorded`` when the network would
    otherwise have fewer than ``min_neurons`` neurons: with a few recorded units a network
    of ``aux_ratio`` times as many cannot generate anything (3 units and aux_ratio 2 make 9
    neurons of ~3 inputs each; the paper's ALM fit had 681 neurons). The result keeps every variable of ``targets`` untouched and
    adds:

    * ``target_rate(condition, neuron, time)``: Hz; the recorded units' training
      ``rate`` first (in unit order), then the auxiliary OU targets of
      :func:`ou_targets` on the targets' ``time`` grid (``dt`` = 1 ms).
    * coords ``neuron`` (the unit id for recorded neurons, ``"aux0"``, ``"aux1"``, ...
      for auxiliary ones; should a unit id already be ``aux<k>``, the auxiliary prefix
      gets underscores appended until no id clashes), ``role(neuron)`` in
      ``{"recorded", "auxiliary"}`` and ``recorded_unit(neuron)``: the recorded unit id,
      ``""`` for auxiliary neurons (named so because ``unit`` is already the units'
      dimension).
    * attrs ``aux_ratio``, ``n_aux``, ``aux_tau_c``, ``aux_amplitude``, ``aux_tau_s``,
      ``aux_dt``, ``aux_seed`` (times in s), ``min_neurons`` and ``aux_reason`` (why the
      network has this many neurons, in words).

    Raises :class:`ConfigError` for bad parameters and :class:`TargetError` when
    ``targets`` does not follow the schema or already has a ``neuron`` dimension.
    """
    if not isinstance(targets, xr.Dataset) or "rate" not in targets.data_vars:
        raise TargetError("targets must be a targets Dataset", field="targets",
                          found=type(targets).__name__,
                          expected="an xarray.Dataset with rate(condition, unit, time)")
    if targets["rate"].dims != ("condition", "unit", "time"):
        raise TargetError("rate has the wrong dimensions", field="rate",
                          found=targets["rate"].dims, expected=("condition", "unit", "time"))
    if "neuron" in targets.dims or "neuron" in targets.variables:
        raise TargetError("these targets already have auxiliary neurons", field="neuron",
                          found=f"{targets.sizes.get('neuron', '?')} neurons",
                          expected="targets without a neuron dimension")
    clash = [n for n in ("role", "recorded_unit", "target_rate") if n in targets.variables]
    if clash:
        raise TargetError("targets already hold variables add_auxiliary creates",
                          field=", ".join(clash), found=clash,
                          expected="none of role, recorded_unit, target_rate")
    aux_ratio = _real(aux_ratio, "aux_ratio", allow_zero=True,
                      expected="a ratio N_aux / N_recorded >= 0")
    dt = 0.001
    tau_c, amplitude, tau_s, dt = _check_ou(tau_c, amplitude, tau_s, dt)
    seed = _seed(seed)

    units = [str(u) for u in targets["unit"].values]
    n_rec = len(units)
    if isinstance(min_neurons, bool) or not isinstance(min_neurons, (int, np.integer)) \
            or min_neurons < 0:
        raise ConfigError("min_neurons must be an integer >= 0", field="min_neurons",
                          found=repr(min_neurons), expected="an integer >= 0 (0: no minimum)")
    n_aux = int(math.floor(aux_ratio * n_rec + 0.5))
    if n_rec + n_aux < min_neurons:
        n_aux = int(min_neurons) - n_rec
        reason = (f"{n_rec} recorded + {n_aux} auxiliary = {min_neurons} neurons: the "
                  f"minimum network size (min_neurons), since aux_ratio {aux_ratio:g} "
                  f"would give only {n_rec + int(math.floor(aux_ratio * n_rec + 0.5))}")
    else:
        reason = (f"{n_rec} recorded + {n_aux} auxiliary = {n_rec + n_aux} neurons: "
                  f"aux_ratio {aux_ratio:g} auxiliary neurons per recorded unit"
                  + (f" (above the minimum of {min_neurons})" if min_neurons else ""))
    time = targets["time"].values
    aux = ou_targets(n_aux, targets.sizes["condition"], time, tau_c=tau_c,
                     amplitude=amplitude, tau_s=tau_s, dt=dt, seed=seed,
                     rate=model_rate(neuron_model, model_params, n_rec, n_aux))

    prefix = "aux"
    taken = set(units)
    while any(f"{prefix}{k}" in taken for k in range(n_aux)):
        prefix += "_"
    neuron_ids = units + [f"{prefix}{k}" for k in range(n_aux)]
    rate = np.asarray(targets["rate"].values, dtype=np.float64)
    target_rate = np.concatenate([rate, aux], axis=1)

    out = targets.copy()
    out = out.assign_coords(
        neuron=("neuron", np.array(neuron_ids, dtype=object)),
        role=("neuron", np.array(["recorded"] * n_rec + ["auxiliary"] * n_aux, dtype=object)),
        recorded_unit=("neuron", np.array(units + [""] * n_aux, dtype=object)),
    )
    out["target_rate"] = xr.Variable(
        ("condition", "neuron", "time"), target_rate,
        attrs={"units": "Hz",
               "long_name": "training target: recorded rates, then auxiliary OU rates"},
    )
    out.attrs.update({
        "aux_ratio": float(aux_ratio),
        "n_aux": int(n_aux),
        "aux_tau_c": float(tau_c),
        "aux_amplitude": float(amplitude),
        "aux_tau_s": float(tau_s),
        "aux_dt": float(dt),
        "aux_seed": int(seed),
        "aux_neuron_model": get_model(neuron_model).name,
        "min_neurons": int(min_neurons),
        "aux_reason": reason,
    })
    return out


def model_rate(neuron_model: str | NeuronModel, params: Any, n_recorded: int, n_aux: int):
    """The f-I curve of the auxiliary neurons of a network of ``n_recorded + n_aux``
    neurons (they come last): dimensionless drives ``(aux, step)``, in input scales above
    threshold, -> Hz. Neuron ``n_recorded + k`` has its own parameters (a mixed network)."""
    model = get_model(neuron_model)
    n = n_recorded + n_aux
    fi = model.fi_curve(params, n)
    aux = slice(n_recorded, n)
    theta, scale = fi.threshold[aux], model.input_scale(params, n)[aux]

    def rate(x: np.ndarray) -> np.ndarray:
        full = np.zeros((x.shape[1], n))
        full[:, aux] = theta + scale * x.T
        return fi.hz(full)[:, aux].T

    return rate
