"""Diagnostics speed: lesion and shuffle with 10 repeats x 3 fractions on a ~500-neuron fit.

Run:  .venv/bin/python benchmarks/bench_diagnostics.py [--n-units 167] [--loops 5]
      [--repeats 10] [--n-trials 5] [--dt 1e-4]

The issue asks for "10 repeats on a 500-neuron network in a few minutes on 2 cores". The
script fits the embedded synthetic recording (``n_units`` recorded + 2 x auxiliary neurons:
167 -> 501 neurons) with ``RLSFit.for_recordings`` and a short training (``loops``), then
times

* one evaluation (the unit of work of both diagnostics) split into its parts: the test
  trials (simulation) and turning their spikes into rates (``make_targets``), for a few
  ``n_trials``, with the spread of the mean score over evaluation seeds (how many trials a
  stable score needs);
* ``lesion`` (fractions 0.05, 0.1, 0.4) and ``shuffle`` (0.1, 0.5, 1.0), ``repeats`` each:
  3 x repeats + 1 evaluations per call;
* ``spectrum`` and ``quasistatic``.

Everything is single-threaded (the numba kernel has no threads), so the second core stays
free for other work; running lesion and shuffle in two processes would halve the wall time.

Results, 2026-11-23 (2 cores AMD EPYC, shared, load average ~1; defaults: 501 neurons,
75,316 synapses, dt 0.1 ms, 2 conditions x 2.18 s, 5 loops in 26 s):

=========================================  ==========  ==================================
what                                       time        note
=========================================  ==========  ==================================
one evaluation, n_trials 2 / 5 / 10        0.95 / 2.5  simulation is 75-90 %; mean r
                                           / 4.4 s     0.826 / 0.839 / 0.843
lesion, 3 fractions x 10 repeats, 5 trials 68 s        31 evaluations, 2.2 s each
shuffle, 3 fractions x 10 repeats          67 s        31 evaluations, 2.2 s each
spectrum / quasistatic                     0.4 / 0.6 s
=========================================  ==========  ==================================

So both together take ~2.3 min (~4.5 min with n_trials = 10): "10 repeats on a
500-neuron network in a few minutes" holds on one core. Scores (train, mean over units and
conditions; mean +- SD over the 10 repeats): intact 0.842; lesion 5 % 0.730 +- 0.076,
10 % 0.579 +- 0.137, 40 % 0.180 +- 0.110; shuffle (the recorded -> recorded
synapses, ~0.3 x 167 x 166) 10 % 0.831 +- 0.004, 50 % 0.764 +- 0.014, 100 % 0.554 +-
0.042. Spectral radius 1.013 before training (theory 1), 3.34 after; quasi-static r 0.888.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-units", type=int, default=167)
    parser.add_argument("--loops", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--n-trials", type=int, default=None,
                        help="trials per condition for lesion/shuffle (default: theirs)")
    parser.add_argument("--dt", type=float, default=None,
                        help="simulation step, s (default: the preset's, 0.1 ms)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from cortexfit.auxiliary import add_auxiliary
    from cortexfit.datasets import make_synthetic_recording, recommended_targets_kwargs
    from cortexfit.diagnostics import lesion, quasistatic, shuffle, spectrum
    from cortexfit.diagnostics.lesion import DEFAULT_N_TRIALS, _evaluate
    from cortexfit.evaluate import model_rates
    from cortexfit.fit import RLSFit

    n_trials = args.n_trials or DEFAULT_N_TRIALS
    print(f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}")

    start = time.perf_counter()
    rec = make_synthetic_recording(seed=args.seed, n_units=args.n_units)
    from cortexfit.targets import make_targets

    targets = make_targets(rec.block, **recommended_targets_kwargs())
    aux = add_auxiliary(targets, aux_ratio=2.0, seed=args.seed)
    settings = dict(loops=args.loops, progress=False, seed=args.seed)
    if args.dt:
        settings["dt"] = args.dt
    est = RLSFit.for_recordings(**settings)
    t_targets = time.perf_counter() - start
    start = time.perf_counter()
    est.fit(aux)
    t_fit = time.perf_counter() - start
    n = est.network_.n_neurons
    print(f"network: {n} neurons ({targets.sizes['unit']} recorded), "
          f"{est.network_.weights().nnz} synapses, dt {est.dt * 1e3:g} ms, "
          f"{len(est.targets_.conditions)} conditions, "
          f"window {est.update_times_.size * est.update_every:.2f} s")
    print(f"targets {t_targets:.1f} s, fit ({args.loops} loops) {t_fit:.1f} s, "
          f"training r {float(est.history_.pearson[-1]):.3f}")

    # one evaluation, split into its parts
    print("\none evaluation (2 conditions x n_trials test trials, then rates like the data):")
    print("n_trials | simulate (s) | rates (s) | total (s) | mean r (train) over 3 eval seeds")
    for k in sorted({2, 5, 10, n_trials}):
        start = time.perf_counter()
        for c in range(len(est.targets_.conditions)):
            for j in range(k):
                est.run_trial(c, seed=1000 + 7919 * c + j)
        t_sim = time.perf_counter() - start
        start = time.perf_counter()
        model_rates(est, targets, n_trials=k, seed=1000)
        t_total = time.perf_counter() - start
        means = [float(_evaluate(est, targets, k, s).sel(split="train").mean())
                 for s in (1000, 2000, 3000)]
        print(f"{k:8d} | {t_sim:12.2f} | {t_total - t_sim:9.2f} | {t_total:9.2f} | "
              f"{np.mean(means):.3f} (spread {np.ptp(means):.3f})")

    start = time.perf_counter()
    les = lesion(est, targets, fractions=(0.05, 0.1, 0.4), n_repeats=args.repeats,
                 n_trials=n_trials)
    t_lesion = time.perf_counter() - start
    start = time.perf_counter()
    shu = shuffle(est, targets, fractions=(0.1, 0.5, 1.0), n_repeats=args.repeats,
                  n_trials=n_trials)
    t_shuffle = time.perf_counter() - start
    start = time.perf_counter()
    spec = spectrum(est)
    t_spectrum = time.perf_counter() - start
    start = time.perf_counter()
    qs = quasistatic(est)
    t_qs = time.perf_counter() - start

    evals = 3 * args.repeats + 1
    print(f"\nlesion  (3 fractions x {args.repeats} repeats, n_trials {n_trials}): "
          f"{t_lesion:6.1f} s ({t_lesion / evals:.2f} s per evaluation)")
    print(f"shuffle (3 fractions x {args.repeats} repeats, n_trials {n_trials}): "
          f"{t_shuffle:6.1f} s ({t_shuffle / evals:.2f} s per evaluation)")
    print(f"spectrum: {t_spectrum:.1f} s; quasistatic: {t_qs:.1f} s")

    def line(ds, name):
        m = ds.mean_pearson.sel(split="train")
        intact = float(ds.mean_pearson_intact.sel(split="train"))
        cells = ", ".join(f"{f:g}: {a:.3f} +- {s:.3f}" for f, a, s in zip(
            ds.fraction.values, m.mean("repeat").values, m.std("repeat").values))
        print(f"{name}: intact {intact:.3f}; by fraction (mean +- SD over repeats) {cells}")

    print()
    line(les, "lesion ")
    line(shu, "shuffle")
    print(f"shuffle candidates (scope {shu.attrs['scope']!r}): {shu.attrs['n_candidates']}")
    print(f"spectral radius before {float(spec.spectral_radius.sel(stage='before')):.3f}, "
          f"after {float(spec.spectral_radius.sel(stage='after')):.3f} "
          f"(theory before {float(spec.radius_theory):.3f})")
    print(f"quasi-static r {qs.attrs['mean_pearson']:.3f}, median gain "
          f"{float(qs.gain.median()):.3f}")


if __name__ == "__main__":
    main()
