"""RLS kernel speed: neuron-updates per second and memory bandwidth against a plain copy.

Run:  .venv/bin/python benchmarks/bench_rls.py [--repeats 5] [--threads N]

For each size N x K (K plastic inputs per neuron), one RLS update of every neuron must at
least read and write every packed float32 P once: 2 * N * K(K+1)/2 * 4 bytes. The same run
measures a plain copy of a buffer of that size (read + write) with the same threads as the
kernel, so the printed ratio "kernel bandwidth / copy bandwidth" compares like with like on
this machine, now.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numba
import numpy as np

from cortexfit.rls import init_packed, rls_update

SIZES = [(4096, 58), (10_000, 90), (20_000, 128)]


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


def _best(fn, repeats: int) -> float:
    fn()  # warm up (and compile)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=numba.config.NUMBA_NUM_THREADS)
    args = parser.parse_args()
    numba.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"numba threads {numba.get_num_threads()}, numpy {np.__version__}, numba {numba.__version__}")
    header = (f"{'N x K':>14} {'P MB':>8} {'copy ms':>9} {'copy GB/s':>10} {'RLS ms':>8} "
              f"{'RLS GB/s':>9} {'ratio':>6} {'neuron-updates/s':>17}")
    print(header)
    for n, k in SIZES:
        indptr, indices = _plastic_lists(n, k, rng)
        packed, offsets = init_packed(indptr, 1.0)
        weights = rng.normal(0, 0.1, n * k).astype(np.float32)
        sign = np.zeros(n * k, dtype=np.int8)
        frozen = np.zeros(n * k, dtype=bool)
        r = rng.uniform(0, 0.3, n).astype(np.float32)
        u = np.zeros(n, dtype=np.float32)
        bias = np.zeros(n, dtype=np.float32)
        target = rng.normal(0, 1, n).astype(np.float32)
        neurons = np.arange(n, dtype=np.int64)
        scratch_x = np.zeros((n, k), dtype=np.float32)
        scratch_k = np.zeros((n, k), dtype=np.float32)
        copy_dst = np.empty_like(packed)

        def copy():
            _parallel_copy(packed, copy_dst)

        def update():
            rls_update(neurons, indptr, indices, weights, sign, frozen, packed, offsets, r, u,
                       bias, target, False, np.float32(0.1), scratch_x, scratch_k)

        t_copy = _best(copy, args.repeats)
        t_rls = _best(update, args.repeats)
        moved = 2 * packed.nbytes  # read + write every P once: the floor
        bw_copy, bw_rls = moved / t_copy / 1e9, moved / t_rls / 1e9
        print(f"{n:>7} x {k:<4} {packed.nbytes / 1e6:8.1f} {t_copy * 1e3:9.2f} {bw_copy:10.1f} "
              f"{t_rls * 1e3:8.2f} {bw_rls:9.1f} {bw_rls / bw_copy:6.2f} {n / t_rls:17.3g}")
        del packed, copy_dst, scratch_x, scratch_k
    print("ratio = RLS bandwidth / copy bandwidth (1.0 = the RLS update runs at the memory floor)")


if __name__ == "__main__":
    main()
