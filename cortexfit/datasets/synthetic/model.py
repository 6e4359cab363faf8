"""The generative model of the synthetic recording (see :mod:`cortexfit.datasets.synthetic`):
the event and factor names, the model's constants, the latent factors, the rate
nonlinearity, the population (units, loadings, template rates) and the trial structure."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

#: Trial event names (NWB trials-table style) and the condition annotation key.
STIMULUS_EVENT = "stimulus_on_time"
GO_EVENT = "go_cue_time"
CONDITION_KEY = "condition"

#: Names of the latent factors, in the order of ``truth["loading"]``'s ``factor`` axis.
FACTORS = ("stimulus", "go", "prep_1", "prep_2", "rot_1", "rot_2")

_SOFTPLUS_BETA = 2.0  # Hz: sharpness of the rate nonlinearity
_RATE_FLOOR = 0.1  # Hz: rates never fall below this (suppressed units stay measurable)
_TAU_STIM = 0.07  # s: stimulus transient peak time
_TAU_GO = 0.12  # s: go transient peak time
_RAMP_START = 0.1  # s after the stimulus
_PREP_DECAY = 0.15  # s after the go cue
_ROT_FREQ = 1.5  # Hz
_ROT_RISE = 0.05  # s
_ROT_DECAY = 0.5  # s
_FRACTION_SELECTIVE = 0.6


# ---------------------------------------------------------------------------------------
# latent factors and rates


def _alpha(t: np.ndarray, tau: float) -> np.ndarray:
    """Alpha function peaking at 1 at ``t = tau``; 0 for t <= 0."""
    x = np.clip(t, 0.0, None) / tau
    return x * np.exp(1.0 - x)


def _latents(tau: np.ndarray, delay: float, prep_dir: np.ndarray,
             rot_dir: np.ndarray) -> np.ndarray:
    """Latent factors ``(6, len(tau))`` for one trial (or the template) of one condition.

    ``tau``: time from the stimulus onset (s); ``delay``: go cue time after the stimulus;
    ``prep_dir``/``rot_dir``: the condition's 2-D preparatory direction (with its amplitude)
    and its initial direction in the rotational plane.
    """
    x = np.zeros((len(FACTORS), tau.size))
    x[0] = _alpha(tau, _TAU_STIM)
    u = tau - delay  # time from the go cue
    x[1] = _alpha(u, _TAU_GO)
    ramp = np.clip((tau - _RAMP_START) / (delay - _RAMP_START), 0.0, 1.0) ** 1.5
    ramp = np.where(u > 0, np.exp(-np.clip(u, 0.0, None) / _PREP_DECAY), ramp)
    x[2] = prep_dir[0] * ramp
    x[3] = prep_dir[1] * ramp
    up = np.clip(u, 0.0, None)
    env = (1.0 - np.exp(-up / _ROT_RISE)) * np.exp(-up / _ROT_DECAY)
    phase = 2.0 * np.pi * _ROT_FREQ * up
    c, s = np.cos(phase), np.sin(phase)
    x[4] = env * (c * rot_dir[0] - s * rot_dir[1])
    x[5] = env * (s * rot_dir[0] + c * rot_dir[1])
    return x


def _rate_of(h: np.ndarray) -> np.ndarray:
    """``floor + softplus_beta(h)`` in Hz, computed stably in the dtype of ``h``."""
    x = h * h.dtype.type(1.0 / _SOFTPLUS_BETA)
    out = np.log1p(np.exp(-np.abs(x)))
    out += np.maximum(x, 0)
    out *= h.dtype.type(_SOFTPLUS_BETA)
    out += h.dtype.type(_RATE_FLOOR)
    return out


def _input_for_rate(r: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_rate_of`."""
    r = np.asarray(r, dtype=np.float64) - _RATE_FLOOR
    return _SOFTPLUS_BETA * np.log(np.expm1(r / _SOFTPLUS_BETA))


def _population(rng: np.random.Generator, p: dict[str, Any], tau: np.ndarray):
    """Draw the units and the condition geometry; return parameters and template rates."""
    n_units, n_cond = p["n_units"], len(p["conditions"])
    is_fs = np.zeros(n_units, dtype=bool)
    n_fs = int(round(p["fraction_fs"] * n_units))
    is_fs[rng.permutation(n_units)[:n_fs]] = True
    baseline = np.where(
        is_fs,
        np.exp(rng.uniform(np.log(8.0), np.log(20.0), n_units)),
        np.exp(rng.uniform(np.log(2.0), np.log(10.0), n_units)),
    )
    peak = np.where(
        is_fs,
        np.minimum(baseline + rng.uniform(15.0, 40.0, n_units), 60.0),
        np.minimum(baseline + rng.uniform(8.0, 35.0, n_units), 45.0),
    )
    selective = rng.random(n_units) < _FRACTION_SELECTIVE
    w = rng.standard_normal((n_units, len(FACTORS)))
    w[:, 0] += 0.5  # the stimulus mostly excites
    w[:, 1] += 0.3  # so does the go cue
    w[~selective, 2:] = 0.0  # non-selective units see only the shared factors
    w[is_fs] = np.abs(w[is_fs])  # FS units follow overall excitation

    theta0 = rng.uniform(0.0, 2.0 * np.pi)
    theta = theta0 + 2.0 * np.pi * np.arange(n_cond) / n_cond + rng.uniform(-0.2, 0.2, n_cond)
    amp = rng.uniform(0.8, 1.2, n_cond)
    prep_dirs = amp[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    rot_offset = rng.uniform(0.0, 2.0 * np.pi)
    rot_dirs = amp[:, None] * np.stack(
        [np.cos(theta + rot_offset), np.sin(theta + rot_offset)], axis=1)

    latent = np.stack([_latents(tau, p["delay"], prep_dirs[c], rot_dirs[c]) for c in range(n_cond)])
    drive = np.einsum("uk,ckt->cut", w, latent)  # (cond, unit, time), arbitrary units
    b = _input_for_rate(baseline)
    top = drive.max(axis=(0, 2))
    span = np.abs(drive).max(axis=(0, 2))
    scale = (_input_for_rate(peak) - b) / np.maximum(top, 0.25 * span + 1e-9)
    loading = w * scale[:, None]  # Hz per unit of latent
    rate = _rate_of(b[None, :, None] + drive * scale[None, :, None])
    return {
        "is_fs": is_fs, "baseline": baseline, "selective": selective, "loading": loading,
        "offset": b, "prep_dirs": prep_dirs, "rot_dirs": rot_dirs, "latent": latent,
        "rate": rate,
    }


def _trial_structure(rng: np.random.Generator, p: dict[str, Any]) -> dict[str, np.ndarray]:
    n_cond, n_per = len(p["conditions"]), p["n_trials_per_condition"]
    n_trials = n_cond * n_per
    cond_index = rng.permutation(np.repeat(np.arange(n_cond), n_per))
    incorrect = np.zeros(n_trials, dtype=bool)
    incorrect[rng.permutation(n_trials)[: int(round(p["fraction_incorrect"] * n_trials))]] = True
    sigma = p["gain_sd"]
    # log-normal with mean 1 and standard deviation gain_sd
    s2 = math.log1p(sigma**2)
    gain = np.exp(rng.normal(-s2 / 2.0, math.sqrt(s2), n_trials))
    delays = p["delay"] + rng.uniform(-p["delay_jitter"], p["delay_jitter"], n_trials)
    gap_lo, gap_hi = p["inter_trial_gap"]
    gaps = rng.uniform(gap_lo, gap_hi, n_trials)
    duration = p["n_bins"] * p["dt"]
    # trial k starts after all previous trials and gaps; the first starts after gaps[0]
    starts = np.cumsum(gaps) + np.arange(n_trials) * duration
    return {
        "cond_index": cond_index, "incorrect": incorrect, "gain": gain, "delay": delays,
        "start": starts, "stop": starts + duration,
    }
