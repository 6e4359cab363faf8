"""RLS kernel speed: neuron-updates per second and memory bandwidth against a plain copy.

Run:  .venv/bin/python benchmarks/bench_rls.py [--repeats 9] [--threads N]

**How bytes are counted.** One RLS update of every neuron has to read every packed float32
P entry once and write it once (every entry changes), so the floor is
``2 * N * K(K+1)/2 * 4`` bytes: P read once + P written once. That is the only traffic
counted, for the kernel and for the copy alike. The kernel as training runs it ("RLS",
``deferred=True``) makes exactly one pass over P per step: the rank-1 update of step t is
applied inside step t+1's mat-vec (see cortexfit/rls.py). The "eager" column is the
two-pass order (mat-vec, then the update while the batch's P, 16 neurons interleaved, is
still in L2), timed in the same run for comparison. Here every neuron has the same K, so P
has no padding. Not counted either
(the RLS figure is therefore a slight underestimate of the traffic it really moves): the
per-synapse arrays (indices, weights, frozen, sign: 10 bytes per synapse, i.e. 40 / K bytes
per P byte) and the scratch rows.

**The reference** is a plain copy (numba slice assignment, one contiguous chunk per thread)
of a buffer the size of P, counted as the same ``2 * P bytes`` (read + write), with the same
thread count as the kernel. Copy and kernel are timed alternately, repeat by repeat (the
machine's bandwidth drifts by up to 2x within a minute on a shared host), and the best time
of each is kept; "ratio" = copy time / kernel time = kernel bandwidth / copy bandwidth.

**In-cache** is the kernel's compute time per neuron: the single-threaded kernel on whole
batches of 16 neurons whose P (about 512 kB) fits in L2, repeated. Compared with the
streaming time per neuron and thread it shows how much of the run is waiting for memory.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numba
import numpy as np

from cortexfit.rls import LANES, RLSState

SIZES = [(4096, 58), (10_000, 90), (20_000, 128), (900, 270)]  # the issue's, and ALM PSTH's
IN_CACHE_BYTES = 512 * 1024  # P of whole batches, in L2 (1 MB here)


def _plastic_lists(n: int, k: int, rng: np.random.Generator):
    indices = np.empty(n * k, dtype=np.int32)
    for i in range(n):
        pick = rng.choice(n - 1, size=k, replace=False)
        pick[pick >= i] += 1
        indices[i * k:(i + 1) * k] = np.sort(pick)
    indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
    return indptr, indices


@numba.njit(parallel=True)
def _parallel_copy(src, dst):
    """A plain copy split into one contiguous chunk per thread."""
    n_chunks = numba.get_num_threads()
    size = src.size
    for c in numba.prange(n_chunks):
        start = c * size // n_chunks
        stop = (c + 1) * size // n_chunks
        dst[start:stop] = src[start:stop]


def _problem(n: int, k: int, rng: np.random.Generator):
    indptr, indices = _plastic_lists(n, k, rng)
    return dict(
        state=RLSState(indptr, 1.0), neurons=np.arange(n, dtype=np.int64), indices=indices,
        weights=rng.normal(0, 0.1, n * k).astype(np.float32),
        sign=np.zeros(n * k, dtype=np.int8), frozen=np.zeros(n * k, dtype=bool),
        r=rng.uniform(0, 0.3, n).astype(np.float32),
        u=np.zeros(n, dtype=np.float32), gain=np.ones(n, dtype=np.float32),
        err=rng.normal(0, 1, n).astype(np.float32))


def _step(p, deferred=True, neurons=None):
    neurons = p["neurons"] if neurons is None else neurons
    return p["state"].update(neurons, p["indices"], p["weights"], p["sign"], p["frozen"],
                             p["r"], p["u"], p["err"][:neurons.size],
                             p["gain"][:neurons.size], deferred=deferred)


def _in_cache_ns(k: int, repeats: int) -> float:
    """Single-threaded compute time per neuron with P in L2 (whole batches of 16 neurons,
    about 512 kB of P; best of runs, call overhead included)."""
    batches = max(1, IN_CACHE_BYTES // (LANES * 4 * k * (k + 1) // 2))
    p = _problem(max(k + 1, batches * LANES), k, np.random.default_rng(1))
    neurons = p["state"].batch_neuron[:batches].ravel()  # whole batches
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        _step(p, neurons=neurons)
        best = np.inf
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(200):
                _step(p, neurons=neurons)
            best = min(best, (time.perf_counter() - start) / 200)
    finally:
        numba.set_num_threads(threads)
    return best / neurons.size * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=numba.config.NUMBA_NUM_THREADS)
    args = parser.parse_args()
    numba.set_num_threads(args.threads)
    threads = numba.get_num_threads()
    rng = np.random.default_rng(0)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"numba threads {threads}, numpy {np.__version__}, numba {numba.__version__}")
    header = (f"{'N x K':>14} {'P MB':>7} {'copy ms':>8} {'copy GB/s':>9} {'RLS ms':>8} "
              f"{'RLS GB/s':>8} {'ratio':>6} {'updates/s':>10} {'ns/neuron/thread':>16} "
              f"{'in-cache ns':>11} {'eager ratio':>11}")
    print(header)
    for n, k in SIZES:
        p = _problem(n, k, rng)
        packed = p["state"].packed
        copy_dst = np.empty_like(packed)

        def copy():
            _parallel_copy(packed, copy_dst)

        def update():
            _step(p)

        def eager():
            _step(p, deferred=False)

        copy()
        update()  # warm up (compile, page in)
        eager()
        t_copy = t_rls = t_eager = np.inf
        for _ in range(args.repeats):  # alternate, so all see the same machine state
            start = time.perf_counter()
            copy()
            t_copy = min(t_copy, time.perf_counter() - start)
            start = time.perf_counter()
            update()
            t_rls = min(t_rls, time.perf_counter() - start)
            start = time.perf_counter()
            eager()
            t_eager = min(t_eager, time.perf_counter() - start)
        moved = 2 * packed.nbytes  # P read once + written once: the floor (see docstring)
        bw_copy, bw_rls = moved / t_copy / 1e9, moved / t_rls / 1e9
        in_cache = _in_cache_ns(k, args.repeats)
        print(f"{n:>7} x {k:<4} {packed.nbytes / 1e6:7.1f} {t_copy * 1e3:8.2f} {bw_copy:9.1f} "
              f"{t_rls * 1e3:8.2f} {bw_rls:8.1f} {bw_rls / bw_copy:6.2f} {n / t_rls:10.3g} "
              f"{t_rls / n * threads * 1e9:16.0f} {in_cache:11.0f} {t_copy / t_eager:11.2f}")
        del p, packed, copy_dst
    print("ratio = RLS bandwidth / copy bandwidth (1.0 = the RLS update runs at the copy's speed)")


if __name__ == "__main__":
    main()
