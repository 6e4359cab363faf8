"""The four recordings of the set whose spikes are inhomogeneous Poisson processes with known
single-trial rates: ``low_rate``, ``few_units``, ``long_ramps`` and ``brief_difference``.

Each ``_<name>(spec, p, rngs, tau, cond_index)`` draws the population from the first
stream and the trial-level variables from the second, and returns the rate of trial ``k``
(``(unit, time)`` in Hz on the 1 ms grid ``tau``) as a function, the trials' events and the
extra ground truth; :func:`_simulate_rates` draws the spikes (third stream) and averages
the rate functions of each condition's trials into ``expected_rate`` (what the
trial-averaged rates of the recording estimate, as for the synthetic recording).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .common import (
    DT,
    _alpha,
    _Generated,
    _poisson_trials,
    _smooth_noise,
    _Spec,
    _stratified_log_uniform,
)


def _lognormal_gain(rng: np.random.Generator, n: int, sd: float) -> np.ndarray:
    """Per-trial gains, log-normal with mean 1 and standard deviation ``sd``."""
    s2 = np.log1p(sd**2)
    return np.exp(rng.normal(-s2 / 2.0, np.sqrt(s2), n))


def _simulate_rates(model: Callable[..., tuple], spec: _Spec, p: dict[str, Any], rngs,
                    tau: np.ndarray, cond_index: np.ndarray,
                    with_spikes: bool) -> _Generated:
    rate_of, events, unit_ann, unit_vars, trial_vars, attrs = model(spec, p, rngs, tau,
                                                                    cond_index)
    n_cond = len(spec.conditions)
    expected = None
    rates = []
    for k in range(cond_index.size):
        r = rate_of(k)
        if expected is None:
            expected = np.zeros((n_cond, *r.shape))
        expected[cond_index[k]] += r
        if with_spikes:
            rates.append(r)
    expected /= np.bincount(cond_index, minlength=n_cond)[:, None, None]
    spikes = None
    if with_spikes:
        spikes = _poisson_trials(rngs[2], rates.__getitem__, cond_index.size,
                                 tau.size * DT)
    return _Generated(cond_index=cond_index, spikes=spikes, events=events, expected=expected,
                      unit_annotations=unit_ann, unit_vars=unit_vars, trial_vars=trial_vars,
                      attrs=attrs)


# ---------------------------------------------------------------------------- low_rate
LOW_RATE_RANGE = (0.5, 10.0)  # Hz: unit mean rates, log-uniform (stratified)
LOW_N_FACTORS = 4
LOW_LOADING_SD = 0.4
LOW_MEAN_LENGTH = 0.25  # s: length scale of the condition means of the latents
LOW_NOISE_LENGTH = 0.15  # s: length scale of the single-trial latent fluctuations
LOW_NOISE_SD = 0.35
LOW_ONSET = 0.08  # s: the latents' means rise with this time constant after the cue


def _low_rate(spec: _Spec, p, rngs, tau, cond_index):
    """Gaussian-process latents through an exponential nonlinearity:
    ``rate_i(t) = exp(b_i + C_i . (x_c(t) + eta_k(t)))``."""
    rng_pop, rng_trials = rngs[0], rngs[1]
    n_full, n_units = p["n_units_population"], p["n_units"]
    n_cond, n_trials = len(spec.conditions), cond_index.size
    target = _stratified_log_uniform(rng_pop, n_full, *LOW_RATE_RANGE)[:n_units]
    loading = (LOW_LOADING_SD * rng_pop.standard_normal((n_full, LOW_N_FACTORS)))[:n_units]
    onset = np.where(tau > 0, 1.0 - np.exp(-np.clip(tau, 0.0, None) / LOW_ONSET), 0.0)
    # factor 0 is the same in every condition; factors 1-3 are specific to the condition
    shared = _smooth_noise(rng_pop, (1, tau.size), LOW_MEAN_LENGTH)
    specific = _smooth_noise(rng_pop, (n_cond, LOW_N_FACTORS - 1, tau.size), LOW_MEAN_LENGTH)
    means = np.concatenate([np.repeat(shared[None], n_cond, axis=0), specific], axis=1)
    means *= onset
    noise = LOW_NOISE_SD * _smooth_noise(rng_trials, (n_trials, LOW_N_FACTORS, tau.size),
                                         LOW_NOISE_LENGTH)
    in_window = (tau >= spec.window[0]) & (tau < spec.window[1])

    def log_rate(k: int) -> np.ndarray:
        return np.minimum(loading @ (means[cond_index[k]] + noise[k]), 3.0)

    # b_i: the mean over the trials and the window of the rate is the unit's target
    total = np.zeros(n_units)
    for k in range(n_trials):
        total += np.exp(log_rate(k)[:, in_window]).mean(axis=1)
    offset = np.log(target / (total / n_trials))

    def rate_of(k: int) -> np.ndarray:
        return np.exp(offset[:, None] + log_rate(k))

    unit_vars = {
        "target_mean_rate": ("unit", target, {"units": "Hz", "long_name": "mean rate over the "
                             "recorded trials and the window (the offsets are set to it)"}),
        "loading": (("unit", "factor"), loading),
        "latent_mean": (("condition", "factor", "time"), means,
                        {"long_name": "condition mean of the latents (factor 0 shared)"}),
    }
    events = [{"cue_on_time": 0.0} for _ in range(n_trials)]
    return rate_of, events, [{} for _ in range(n_units)], unit_vars, {}, {}


# ---------------------------------------------------------------------------- few_units
FEW_DIRECTIONS = (0, 90, 180, 270)
FEW_PEAK = (17.0, 30.0)  # Hz, at the preferred direction and the top of the envelope
FEW_BASELINE = (3.0, 8.0)  # Hz
FEW_REACTION_TIME = (0.25, 0.40)  # s from the go cue to the movement onset
FEW_GO_RESPONSE = (1.0, 3.0)  # Hz: non-directional transient after the go cue
FEW_GAIN_SD = 0.15


def _few_units(spec: _Spec, p, rngs, tau, cond_index):
    """Three cosine-tuned units around a reach: ``rate(t) = g_k * (b + (P - b) env(t)
    (1 + cos(theta_c - theta_pref)) / 2 + G alpha(t - go_k))``."""
    rng_pop, rng_trials = rngs[0], rngs[1]
    n = p["n_units"]
    theta0 = rng_pop.uniform(0.0, 2.0 * np.pi)
    pref = (theta0 + 2.0 * np.pi * np.arange(n) / n + rng_pop.uniform(-0.35, 0.35, n)) \
        % (2.0 * np.pi)
    base = rng_pop.uniform(*FEW_BASELINE, n)
    peak = rng_pop.uniform(*FEW_PEAK, n)
    centre = rng_pop.uniform(-0.12, 0.02, n)  # s: top of the envelope, from movement onset
    width = rng_pop.uniform(0.10, 0.16, n)
    go_amp = rng_pop.uniform(*FEW_GO_RESPONSE, n)
    env = np.exp(-0.5 * ((tau[None, :] - centre[:, None]) / width[:, None]) ** 2)
    directions = np.deg2rad(np.asarray(FEW_DIRECTIONS, dtype=float))
    tuning = 0.5 * (1.0 + np.cos(directions[:, None] - pref[None, :]))  # (condition, unit)
    n_trials = cond_index.size
    rt = rng_trials.uniform(*FEW_REACTION_TIME, n_trials)
    gain = _lognormal_gain(rng_trials, n_trials, FEW_GAIN_SD)

    def rate_of(k: int) -> np.ndarray:
        c = cond_index[k]
        directional = (peak - base)[:, None] * env * tuning[c][:, None]
        go = go_amp[:, None] * _alpha(tau + rt[k], 0.08)[None, :]
        return gain[k] * (base[:, None] + directional + go)

    unit_vars = {
        "preferred_direction": ("unit", np.rad2deg(pref), {"units": "degree"}),
        "baseline_rate": ("unit", base, {"units": "Hz"}),
        "tuned_peak_rate": ("unit", peak, {"units": "Hz", "long_name": "rate at the "
                            "preferred direction and the top of the envelope (gain 1)"}),
    }
    trial_vars = {"reaction_time": ("trial", rt, {"units": "s"}),
                  "trial_gain": ("trial", gain)}
    events = [{"go_cue_time": -float(rt[k]), "movement_onset_time": 0.0}
              for k in range(n_trials)]
    return rate_of, events, [{} for _ in range(n)], unit_vars, trial_vars, {}


# ---------------------------------------------------------------------------- long_ramps
RAMP_START = 0.2  # s after the cue
RAMP_END = {"fast": 2.2, "slow": 3.2}  # s after the cue (the go cue), nominal
RAMP_JITTER = 0.1  # relative: each trial's ramp duration is nominal x U(1 -/+ this)
RAMP_DECAY = 0.25  # s: back to baseline after the go cue
RAMP_GAIN_SD = 0.1


def _long_ramps(spec: _Spec, p, rngs, tau, cond_index):
    """Slow ramps from the cue to a go cue whose time depends on the condition (2 s or 3 s
    of ramp: the slope differs), then a decay back to baseline."""
    rng_pop, rng_trials = rngs[0], rngs[1]
    n_full, n = p["n_units_population"], p["n_units"]
    kind = rng_pop.choice(3, n_full, p=[0.55, 0.30, 0.15])[:n]  # up, down, flat
    base = np.exp(rng_pop.uniform(np.log(2.0), np.log(12.0), n_full))[:n]
    up = rng_pop.uniform(1.0, 2.5, n_full)[:n]  # ramp-up: the rate grows by this x baseline
    down = rng_pop.uniform(0.2, 0.5, n_full)[:n]  # ramp-down: to this fraction of baseline
    amp = np.select([kind == 0, kind == 1], [up * base, (down - 1.0) * base], 0.0)
    amp = np.where(kind == 0, np.minimum(amp, 38.0 - base), amp)
    curve = rng_pop.uniform(0.8, 2.0, n_full)[:n]  # ramp shape exponent
    cue = rng_pop.uniform(0.0, 0.6, n_full)[:n] * base  # cue transient (Hz)
    n_trials = cond_index.size
    end_nominal = np.asarray([RAMP_END[spec.conditions[c]] for c in cond_index])
    end = RAMP_START + (end_nominal - RAMP_START) * rng_trials.uniform(
        1.0 - RAMP_JITTER, 1.0 + RAMP_JITTER, n_trials)
    gain = _lognormal_gain(rng_trials, n_trials, RAMP_GAIN_SD)
    transient = _alpha(tau, 0.1)

    def rate_of(k: int) -> np.ndarray:
        x = np.clip((tau - RAMP_START) / (end[k] - RAMP_START), 0.0, 1.0)
        ramp = x[None, :] ** curve[:, None]
        after = tau > end[k]
        ramp[:, after] = np.exp(-(tau[after] - end[k]) / RAMP_DECAY)[None, :]
        r = base[:, None] + amp[:, None] * ramp + cue[:, None] * transient[None, :]
        return gain[k] * np.maximum(r, 0.2)

    unit_vars = {
        "ramp": ("unit", np.asarray(["up", "down", "flat"])[kind]),
        "baseline_rate": ("unit", base, {"units": "Hz"}),
        "ramp_amplitude": ("unit", amp, {"units": "Hz", "long_name": "rate change at the "
                           "end of the ramp (gain 1)"}),
    }
    trial_vars = {"ramp_end": ("trial", end, {"units": "s", "long_name": "go cue after "
                               "the cue"}), "trial_gain": ("trial", gain)}
    events = [{"cue_on_time": 0.0, "go_cue_time": float(end[k])} for k in range(n_trials)]
    return rate_of, events, [{} for _ in range(n)], unit_vars, trial_vars, {}


# ---------------------------------------------------------------------------- brief_difference
EPOCH = (0.8, 1.0)  # s after the sample: the only time the conditions differ
BRIEF_FRACTION_SELECTIVE = 0.7
BRIEF_GAIN_SD = 0.15
BRIEF_MOD_LENGTH = 0.3  # s
BRIEF_MOD_SD = 0.3


def _brief_difference(spec: _Spec, p, rngs, tau, cond_index):
    """Two conditions with the same rates except in :data:`EPOCH`, where the selective
    units add a condition-specific bump ``d_ic * sin^2(pi (t - t0) / (t1 - t0))``."""
    rng_pop, rng_trials = rngs[0], rngs[1]
    n_full, n = p["n_units_population"], p["n_units"]
    base = np.exp(rng_pop.uniform(np.log(2.0), np.log(15.0), n_full))[:n]
    modulation = np.exp(BRIEF_MOD_SD * _smooth_noise(rng_pop, (n_full, tau.size),
                                                     BRIEF_MOD_LENGTH)[:n])
    onset = rng_pop.uniform(-0.3, 1.5, n_full)[:n] * base  # sample transient (Hz)
    onset_peak = rng_pop.uniform(0.05, 0.15, n_full)[:n]
    selective = (rng_pop.random(n_full) < BRIEF_FRACTION_SELECTIVE)[:n]
    # each condition's bump, -0.6 to +1.5 x baseline (never below the floor at the top)
    bump = (rng_pop.uniform(-0.6, 1.5, (len(spec.conditions), n_full))[:, :n] * base
            * selective)
    window = np.zeros(tau.size)
    inside = (tau >= EPOCH[0]) & (tau <= EPOCH[1])
    window[inside] = np.sin(np.pi * (tau[inside] - EPOCH[0]) / (EPOCH[1] - EPOCH[0])) ** 2
    common = base[:, None] * modulation + onset[:, None] * _alpha(
        tau[None, :], onset_peak[:, None])
    common = np.maximum(common, 0.3)
    # trial-to-trial gain, drawn per repetition and shared by the conditions: the j-th
    # trial of each condition has the same gain, so the conditions' averages are equal
    # outside the epoch exactly (not only in expectation)
    n_cond = len(spec.conditions)
    repetition = np.zeros(cond_index.size, dtype=int)
    for c in range(n_cond):
        repetition[cond_index == c] = np.arange(int((cond_index == c).sum()))
    gain = _lognormal_gain(rng_trials, int(repetition.max()) + 1, BRIEF_GAIN_SD)[repetition]

    def rate_of(k: int) -> np.ndarray:
        r = common + bump[cond_index[k]][:, None] * window[None, :]
        return gain[k] * np.maximum(r, 0.3)

    unit_vars = {
        "selective": ("unit", selective),
        "epoch_bump": (("condition", "unit"), bump,
                       {"units": "Hz", "long_name": "peak of the condition's bump in the "
                        "epoch (gain 1, before the floor)"}),
        "baseline_rate": ("unit", base, {"units": "Hz"}),
    }
    trial_vars = {"trial_gain": ("trial", gain), "repetition": ("trial", repetition)}
    events = [{"sample_on_time": 0.0, "probe_on_time": EPOCH[0]}
              for _ in range(cond_index.size)]
    return rate_of, events, [{} for _ in range(n)], unit_vars, trial_vars, \
        {"epoch_start": EPOCH[0], "epoch_stop": EPOCH[1]}
