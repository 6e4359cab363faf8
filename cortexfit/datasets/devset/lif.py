"""``lif_clustered``: a recurrent E/I network of leaky integrate-and-fire neurons with
clustered excitation and spike-frequency adaptation, simulated with numba.

Network (all voltages in units of the threshold: rest and reset 0, threshold 1)::

    tau_m dV_i/dt = -V_i + mu_i + s_i(t) - a_i + tau_m * I_i(t) + sigma sqrt(2 tau_m) xi_i(t)

* 800 neurons, 640 excitatory (E, ``tau_m`` 20 ms) in 8 clusters of 80 and 160 inhibitory
  (I, ``tau_m`` 10 ms); refractory period 2 ms.
* Connections: each ordered pair with probability 0.2 (no self-connections). A spike of
  neuron j makes the synaptic current ``I_i`` of each target jump by ``J_ij / tau_s``
  (``tau_s`` = 3 ms; ``I`` decays with ``tau_s`` and the voltage integrates it step by step,
  so one spike brings a charge of about ``J_ij`` threshold units), from the next step on.
  ``J`` is 0.02 for E -> E (x3 within a cluster, scaled down between clusters so that an E
  cell's mean excitatory input is unchanged), 0.03 for E -> I, -0.07 for I -> E and -0.04
  for I -> I.
* Spike-frequency adaptation on E cells: ``a_i`` jumps by 0.15 at each spike and decays with
  ``tau_a`` = 150 ms.
* Background: a constant drive ``mu_i`` (E: U(0.95, 1.25), I: U(0.65, 0.85)) and white noise
  (the free membrane fluctuates with s.d. ``sigma`` = 0.2), the diffusion approximation of
  Poisson background input (one uniform deviate per neuron and step, scaled to the same
  variance).
* Stimulus ``s_i(t)``: for 250 ms from the stimulus onset, a step of input to the E cells of
  three clusters, 0.7 x U(0.6, 1.0) per cluster: clusters 0-2 in condition ``"A"``, 3-5 in
  ``"B"`` (clusters 6 and 7 are never stimulated).

The equations are integrated with exact exponential decays on a 1 ms grid; a spike's time is
placed inside its step by linear interpolation of V across the threshold. The network runs
continuously through a shuffled sequence of trials (2.5 s each: 1 s before the stimulus,
1.5 s after), in four independent chains (each after 1 s of warm-up, with its own
xorshift64 random stream, so the result does not depend on the number of threads).

Recorded units: 80 neurons (64 E and 16 I, ``cell_type`` ``"pyramidal"`` / ``"FS"``) drawn at
random among those whose mean rate over the targets window (both conditions, from the
ground-truth trials) is 2-40 Hz, as silent cells go unrecorded. Recorded trials: 40 per
condition. ``size="small"``: the same network, 15 units (12 E, 3 I), 6 trials per condition
(and 60 ground-truth trials per condition).

Ground truth: ``expected_rate`` is the average over ten times as many further trials of the
same network (400 per condition at full size; they are not among the recorded ones) of the
spike counts in 1 ms bins, divided by 1 ms and smoothed with a Gaussian of s.d. 10 ms. It
estimates the network's trial-averaged rate with a relative standard error of about
``1 / sqrt(400 * rate * 0.035 s)`` (12 % at 5 Hz; 5 % at 30 Hz).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba
import numpy as np

from .common import DT, _Generated, _Spec

N_E, N_I, N_CLUSTERS = 640, 160, 8
P_CONNECT = 0.2
J_EE, J_PLUS, J_IE, J_EI, J_II = 0.02, 3.0, 0.03, -0.07, -0.04
TAU_M_E, TAU_M_I, TAU_S, TAU_A = 0.020, 0.010, 0.003, 0.150
ADAPT_JUMP = 0.15
MU_E, MU_I = (0.95, 1.25), (0.65, 0.85)
SIGMA = 0.2
REFRACTORY_STEPS = 2
STIM_DURATION = 0.25
STIM_AMPLITUDE = 0.7
STIM_CLUSTERS = ((0, 1, 2), (3, 4, 5))
N_CHAINS = 4
WARMUP = 1.0  # s per chain
TRUTH_FACTOR = 10  # ground-truth trials per recorded trial
TRUTH_SMOOTHING = 0.010  # s, Gaussian s.d.
RECORDED_RATE = (2.0, 40.0)  # Hz: who can be recorded
FRACTION_FS = 0.2


@numba.njit(cache=True, nogil=True)
def _step(v, a, syn, refr, drive, decay_m, gain_m, noise, is_exc, decay_a, decay_s, state,
          fired, frac):
    """One time step of every neuron; returns the number of spikes and the random state."""
    nf = 0
    for i in range(v.size):
        state ^= state << np.uint64(13)
        state ^= state >> np.uint64(7)
        state ^= state << np.uint64(17)
        u = np.int64(state >> np.uint64(11)) * (1.0 / 9007199254740992.0) - 0.5
        old = v[i]
        new = old * decay_m[i] + (drive[i] - a[i]) * gain_m[i] + syn[i] + noise[i] * u
        if refr[i] > 0:
            refr[i] -= 1
            new = 0.0
        elif new >= 1.0:
            frac[nf] = (1.0 - old) / (new - old) if new > old else 1.0
            fired[nf] = i
            nf += 1
            new = 0.0
            refr[i] = REFRACTORY_STEPS
            if is_exc[i]:
                a[i] += ADAPT_JUMP
        v[i] = new
        a[i] *= decay_a
        syn[i] *= decay_s
    return nf, state


@numba.njit(cache=True, nogil=True)
def _chain(state, conds, recorded, n_warmup, n_steps, stim_on, stim_off, stim, mu, noise,
           decay_m, is_exc, decay_a, decay_s, indptr, indices, weights):
    """Run one chain through its trials.

    Returns the spike counts per (condition, neuron, step) summed over the trials that are
    not recorded, and the spikes of the recorded trials as (trial, neuron, time from the
    trial's start) triplets."""
    n = mu.size
    n_cond = stim.shape[0]
    counts = np.zeros((n_cond, n, n_steps), dtype=np.int32)
    cap = 4096
    rec_k = np.empty(cap, np.int32)
    rec_n = np.empty(cap, np.int32)
    rec_t = np.empty(cap, np.float64)
    n_rec = 0
    v = np.empty(n)
    a = np.zeros(n)
    syn = np.zeros(n)
    refr = np.zeros(n, np.int32)
    fired = np.empty(n, np.int32)
    frac = np.empty(n)
    gain_m = 1.0 - decay_m
    drive = mu.copy()
    for i in range(n):  # initial voltages uniform in [0, 1)
        state ^= state << np.uint64(13)
        state ^= state >> np.uint64(7)
        state ^= state << np.uint64(17)
        v[i] = np.int64(state >> np.uint64(11)) * (1.0 / 9007199254740992.0)
    for k in range(-1, conds.size):  # k = -1: the warm-up
        steps = n_warmup if k < 0 else n_steps
        c = conds[k] if k >= 0 else 0
        for t in range(steps):
            if k >= 0 and t == stim_on:
                for i in range(n):
                    drive[i] = mu[i] + stim[c, i]
            elif k >= 0 and t == stim_off:
                drive[:] = mu
            nf, state = _step(v, a, syn, refr, drive, decay_m, gain_m, noise, is_exc,
                              decay_a, decay_s, state, fired, frac)
            for f in range(nf):
                j = fired[f]
                for q in range(indptr[j], indptr[j + 1]):
                    syn[indices[q]] += weights[q]
                if k < 0:
                    continue
                if recorded[k]:
                    if n_rec == cap:
                        cap *= 2
                        grown_k = np.empty(cap, np.int32)
                        grown_k[:n_rec] = rec_k[:n_rec]
                        rec_k = grown_k
                        grown_n = np.empty(cap, np.int32)
                        grown_n[:n_rec] = rec_n[:n_rec]
                        rec_n = grown_n
                        grown_t = np.empty(cap, np.float64)
                        grown_t[:n_rec] = rec_t[:n_rec]
                        rec_t = grown_t
                    rec_k[n_rec] = k
                    rec_n[n_rec] = j
                    rec_t[n_rec] = t + frac[f]
                    n_rec += 1
                else:
                    counts[c, j, t] += 1
    return counts, rec_k[:n_rec], rec_n[:n_rec], rec_t[:n_rec]


def _network(rng: np.random.Generator) -> dict[str, Any]:
    n = N_E + N_I
    is_exc = np.zeros(n, dtype=bool)
    is_exc[:N_E] = True
    cluster = np.full(n, -1)
    cluster[:N_E] = np.arange(N_E) * N_CLUSTERS // N_E
    connected = rng.random((n, n)) < P_CONNECT  # [post, pre]
    np.fill_diagonal(connected, False)
    j_minus = (1.0 - J_PLUS / N_CLUSTERS) / (1.0 - 1.0 / N_CLUSTERS)
    same = cluster[:N_E, None] == cluster[None, :N_E]
    w = np.empty((n, n))
    w[:N_E, :N_E] = J_EE * np.where(same, J_PLUS, j_minus)
    w[N_E:, :N_E] = J_IE
    w[:N_E, N_E:] = J_EI
    w[N_E:, N_E:] = J_II
    w *= connected
    # by presynaptic neuron (CSR): a spike adds J / tau_s to the target's current, which
    # the voltage integrates step by step (I * DT)
    post = np.nonzero(connected.T)
    indptr = np.concatenate([[0], np.cumsum(connected.sum(axis=0))]).astype(np.int64)
    indices = post[1].astype(np.uint32)  # unsigned: no negative-index check in the kernel
    weights = w.T[post] * (DT / TAU_S)
    mu = np.where(is_exc, rng.uniform(*MU_E, n), rng.uniform(*MU_I, n))
    amps = STIM_AMPLITUDE * rng.uniform(0.6, 1.0, N_CLUSTERS)
    stim = np.zeros((len(STIM_CLUSTERS), n))
    for c, clusters in enumerate(STIM_CLUSTERS):
        for k in clusters:
            stim[c, cluster == k] = amps[k]
    return {"is_exc": is_exc, "cluster": cluster, "indptr": indptr, "indices": indices,
            "weights": weights, "mu": mu, "stim": stim, "stim_amplitude": amps}


def _simulate_lif(spec: _Spec, p: dict[str, Any], rngs, tau: np.ndarray,
                  cond_index: np.ndarray, with_spikes: bool) -> _Generated:
    from scipy.ndimage import gaussian_filter1d

    rng_pop, rng_trials, rng_sim = rngs
    net = _network(rng_pop)
    n = net["mu"].size
    n_cond, n_per = len(spec.conditions), p["n_trials_per_condition"]
    n_truth = TRUTH_FACTOR * n_per
    # every simulated trial: the recorded ones (in session order) and the truth trials,
    # shuffled into one sequence and dealt to the chains in turn
    cond_all = np.concatenate([cond_index, np.repeat(np.arange(n_cond), n_truth)])
    is_rec = np.zeros(cond_all.size, dtype=bool)
    is_rec[: cond_index.size] = True
    order = rng_trials.permutation(cond_all.size)
    chain_of = np.arange(order.size) % N_CHAINS
    states = rng_sim.integers(1, 2**63 - 1, N_CHAINS, dtype=np.int64).astype(np.uint64)

    tau_m = np.where(net["is_exc"], TAU_M_E, TAU_M_I)
    decay_m = np.exp(-DT / tau_m)
    noise = SIGMA * np.sqrt(2.0 * DT / tau_m) * np.sqrt(12.0)  # uniform of that variance
    n_steps = tau.size
    stim_on = int(np.searchsorted(tau, 0.0))
    stim_off = stim_on + round(STIM_DURATION / DT)

    def run(ch: int):
        seq = order[chain_of == ch]
        return _chain(states[ch], cond_all[seq].astype(np.int64), is_rec[seq],
                      round(WARMUP / DT), n_steps, stim_on, stim_off, net["stim"],
                      net["mu"], noise, decay_m, net["is_exc"], np.exp(-DT / TAU_A),
                      np.exp(-DT / TAU_S), net["indptr"], net["indices"], net["weights"])

    with ThreadPoolExecutor(max_workers=min(N_CHAINS, os.cpu_count() or 1)) as pool:
        results = list(pool.map(run, range(N_CHAINS)))

    counts = sum(r[0].astype(np.int64) for r in results)
    raw = counts / n_truth / DT  # (condition, neuron, time), Hz
    expected_all = gaussian_filter1d(raw, TRUTH_SMOOTHING / DT, axis=2, mode="reflect")
    in_window = (tau >= spec.window[0]) & (tau < spec.window[1])
    mean_rate = expected_all[:, :, in_window].mean(axis=(0, 2))  # = truth["mean_rate"]
    ok = (mean_rate >= RECORDED_RATE[0]) & (mean_rate <= RECORDED_RATE[1])
    n_units = p["n_units"]
    n_fs = round(FRACTION_FS * n_units)
    exc = rng_pop.permutation(np.nonzero(ok & net["is_exc"])[0])[: n_units - n_fs]
    inh = rng_pop.permutation(np.nonzero(ok & ~net["is_exc"])[0])[:n_fs]
    neurons = np.sort(np.concatenate([exc, inh]))

    spikes = None
    if with_spikes:  # the recorded trials' spikes of the recorded neurons, by session trial
        position = np.full(n, -1)
        position[neurons] = np.arange(neurons.size)
        trial = np.concatenate([order[chain_of == ch][r[1]] for ch, r in enumerate(results)])
        unit = position[np.concatenate([r[2] for r in results])]
        times = np.concatenate([r[3] for r in results]) * DT
        keep = unit >= 0
        key = trial[keep].astype(np.int64) * neurons.size + unit[keep]
        times = times[keep]
        sort = np.lexsort((times, key))
        per_train = np.bincount(key, minlength=cond_index.size * neurons.size)
        trains = np.split(times[sort], np.cumsum(per_train)[:-1])
        spikes = [trains[k * neurons.size:(k + 1) * neurons.size]
                  for k in range(cond_index.size)]
    exc_rec = net["is_exc"][neurons]
    return _Generated(
        cond_index=cond_index, spikes=spikes, events=[{} for _ in cond_index],
        expected=expected_all[:, neurons],
        unit_annotations=[{"cell_type": "pyramidal" if e else "FS",
                           "cluster": int(net["cluster"][i])}
                          for e, i in zip(exc_rec, neurons)],
        unit_vars={
            "neuron": ("unit", neurons, {"long_name": "index of the neuron in the network "
                                         "(E: 0-639, I: 640-799)"}),
            "cluster": ("unit", net["cluster"][neurons],
                        {"long_name": "E cluster (-1: inhibitory)"}),
            "drive": ("unit", net["mu"][neurons], {"long_name": "background drive mu"}),
            "stimulus_input": (("condition", "unit"), net["stim"][:, neurons],
                               {"long_name": "stimulus input during the 250 ms stimulus"}),
        },
        attrs={"n_truth_trials_per_condition": n_truth,
               "truth_smoothing_sd": TRUTH_SMOOTHING,
               "network_mean_rate_e": float(mean_rate[net["is_exc"]].mean()),
               "network_mean_rate_i": float(mean_rate[~net["is_exc"]].mean())},
    )
