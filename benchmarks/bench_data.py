"""Data preparation speed: the synthetic recording and make_targets, against their limits.

Run:  .venv/bin/python benchmarks/bench_data.py [--repeats 5]

These three timings were wall-clock assertions in the test suite (``tests/unit/test_synthetic.py``
``test_generation_is_fast`` and ``tests/unit/test_targets.py`` ``test_speed_112_trials_61_units``)
until they moved here: a timing limit fails on a loaded machine without anything being
wrong. The tests keep the functional checks on the same sizes (``test_simulate_sizes``,
``test_112_trials_61_units``). The reference of each line is the limit the test asserted:

* ``synthetic._simulate``: spikes and truth of the default synthetic recording, 80 units x
  80 trials (numpy only), 1.0 s;
* ``make_synthetic_recording(0)``: the same plus building 6,400 ``neo.SpikeTrain``, 6.0 s;
* ``make_targets`` on 112 trials x 61 units (~40 spikes per unit and trial, 5 s trials),
  window (-2.5, 1.5) s, 20 ms bins, Gaussian kernel: 200 bins, 8.0 s.

Each is run ``repeats`` times after one untimed warm-up call (imports, Elephant's first
kernel), best and median wall-clock printed. Exit status 1 when a best time exceeds its
reference.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np


def _times(fn, repeats: int) -> list[float]:
    fn()  # warm-up: imports, caches
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import cortexfit
    from cortexfit.datasets import make_synthetic_recording, synthetic
    from cortexfit.io.convention import Trial, make_block
    from cortexfit.targets import make_targets

    print(f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, numpy {np.__version__}, cortexfit "
          f"{getattr(cortexfit, '__version__', '?')}, load average {os.getloadavg()[0]:.2f}")

    params = synthetic._check_params(0, 80, 40, ("left", "right"), 3.0, 0.5, 1.5, 0.1,
                                     (1.0, 2.0), 0.2, 0.2, 0.1, 0.001)
    rng = np.random.default_rng(5)
    trials = [Trial(0.0, 5.0, [np.sort(rng.uniform(0, 5, rng.poisson(40))) for _ in range(61)],
                    annotations={"condition": "l" if i % 2 else "r"}, events={"go": 3.0})
              for i in range(112)]
    block = make_block(trials, [f"u{k}" for k in range(61)])

    def targets():
        ds = make_targets(block, align="go", window=(-2.5, 1.5))
        assert ds["trial_rate"].shape == (112, 61, 200)

    cases = [
        ("synthetic._simulate, 80 units x 80 trials", lambda: synthetic._simulate(params), 1.0),
        ("make_synthetic_recording(0) (+ 6400 SpikeTrains)",
         lambda: make_synthetic_recording(0), 6.0),
        ("make_targets, 112 trials x 61 units x 200 bins", targets, 8.0),
    ]
    print(f"\n{args.repeats} timed runs each, after one warm-up run\n")
    header = (f"{'what':<50} | {'best (s)':>8} | {'median (s)':>10} | {'reference (s)':>13} | "
              f"{'best / ref':>10} | within")
    print(header)
    print("-" * len(header))
    failed = False
    for name, fn, reference in cases:
        times = _times(fn, args.repeats)
        best, median = min(times), statistics.median(times)
        within = best <= reference
        failed |= not within
        print(f"{name:<50} | {best:8.3f} | {median:10.3f} | {reference:13.1f} | "
              f"{best / reference:10.2f} | {'yes' if within else 'NO'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
