"""Recursive least squares on each neuron's plastic inputs (Kim & Chow 2018, Eqs 9-12, 17-19).

For every trained neuron i, with ``x`` the regressor over its K_i plastic inputs::

    k = P x;  c = 1 / (1 + x.k);  P -= c k k^T;  w -= c e k,        P(0) = I / lambda

* **drive form**: ``x = r`` (filtered spike trains of the plastic inputs), ``e = u_i - f_i``
  (the drive against its target);
* **rate form**: ``x = phi'(u_i + I_i) r``, ``e = phi(u_i + I_i) - f_i`` (rates in spikes per
  model time unit), and neuron i is updated only while ``u_i + I_i > 0`` (suprathreshold), as
  the paper does.

Because k uses the old P, ``c k`` equals ``P_new x``: the authors' code form.

**Dale's law**: a weight whose update would flip the sign required of it (``sign`` +1 / -1)
is not changed, and from then on it is **frozen**: it keeps contributing to the drive but
leaves the regression (its regressor entry is 0, so its row and column of P stop changing,
and it gets no further updates). Unconstrained synapses have sign 0.

**Storage**: one P per neuron, packed upper triangle, row-major, float32, all neurons'
blocks back to back (``p_offsets``). :func:`rls_update` is the fused numba kernel (gather,
packed symmetric mat-vec, rank-1 update, weight update, one neuron at a time, parallel over
neurons); :func:`rls_update_reference` is the same update written plainly in float64 with
dense matrices, kept to test the kernel against.

**One pass over P per step (deferred rank-1 update).** Step t needs ``k_t = P_t x_t`` and
leaves ``P_{t+1} = P_t - c_t k_t k_t^T``. With ``pending`` (:func:`init_pending`), the
kernel does not write ``P_{t+1}`` at step t: it keeps ``(c_t, k_t)`` per neuron and applies
it at step t+1 *in the same pass* that computes ``k_{t+1}``, each entry of P read and written
once per step, like a memory copy. Every entry gets the same floating-point operations as
the eager two-pass order, in the same order. P in memory then lags by one update:
:func:`rls_flush` applies what is pending (before a checkpoint, at the end of training, or
before reading P). Without ``pending`` the update is eager (P is exact after every call).
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = [
    "packed_size",
    "init_packed",
    "unpack",
    "rls_update",
    "rls_update_reference",
    "init_pending",
    "rls_flush",
]


def packed_size(k: int) -> int:
    """Floats in a packed symmetric K x K matrix."""
    return k * (k + 1) // 2


def init_packed(indptr: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """All neurons' P = I / lambda, packed; returns (P, offsets) with neuron i's block at
    ``P[offsets[i]:offsets[i + 1]]``."""
    sizes = np.diff(indptr)
    blocks = sizes * (sizes + 1) // 2
    offsets = np.concatenate([[0], np.cumsum(blocks)]).astype(np.int64)
    packed = np.zeros(offsets[-1], dtype=np.float32)
    for i, k in enumerate(sizes):
        start = offsets[i]
        # diagonal of row a sits at a*K - a(a-1)/2
        diag = start + np.arange(k) * k - np.arange(k) * (np.arange(k) - 1) // 2
        packed[diag] = 1.0 / lam
    return packed, offsets


def unpack(block: np.ndarray, k: int) -> np.ndarray:
    """A packed block -> the dense symmetric K x K matrix (float64)."""
    dense = np.zeros((k, k))
    rows, cols = np.triu_indices(k)
    dense[rows, cols] = block
    dense[cols, rows] = block
    return dense


def init_pending(indptr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron storage of the deferred rank-1 update: ``(c, k)`` with ``c`` of shape
    ``(N,)`` (0: nothing pending) and ``k`` of shape ``(N, max K)``, float32."""
    sizes = np.diff(indptr)
    kmax = max(1, int(sizes.max(initial=0)))
    return np.zeros(sizes.size, dtype=np.float32), np.zeros((sizes.size, kmax), dtype=np.float32)


_FAST = {"reassoc", "contract"}  # vectorise the reductions; NaN / inf semantics are kept


@numba.njit(cache=True, fastmath=_FAST)
def _update_one(m, i, indptr, indices, weights, sign, frozen, packed, offsets,
                r, u, bias, target, rate_form, smooth_c, gate, x, kv, pend_c, pend_k):
    """The fused RLS step of one neuron; returns the number of newly frozen synapses.

    P's pending update ``(pend_c[i], pend_k[i])`` is applied in the same pass that computes
    k = P x; this step's update is left pending in its place."""
    zero = np.float32(0.0)
    one = np.float32(1.0)
    start = indptr[i]
    k_in = indptr[i + 1] - start
    if k_in == 0:
        return 0
    # error and regressor
    if rate_form:
        total = u[i] + bias[i]
        if total <= gate:
            return 0  # the paper: train only while the input is suprathreshold (gate = 0)
        z = total / smooth_c
        softplus = smooth_c * (np.log1p(np.exp(-abs(z))) + max(z, zero))
        if softplus < np.float32(1e-30):
            return 0  # far below threshold: phi' underflows to 0, nothing to learn here
        root = np.sqrt(softplus)
        err = root / np.float32(np.pi) - target[m]
        gain = (one / (one + np.exp(-z))) / (np.float32(2.0 * np.pi) * root)
    else:
        err = u[i] - target[m]
        gain = one
    for a in range(k_in):
        x[a] = zero if frozen[start + a] else gain * r[indices[start + a]]
        kv[a] = zero
    # One pass over the packed upper triangle (row a holds P[a, a:]): apply the pending
    # update, P[a, b] -= (pc k'_a) k'_b, and accumulate k = P x with the updated entries
    # (both halves of the symmetric product). The loops run over slice views (not computed
    # indices): LLVM then proves them alias-free and vectorises.
    pc = pend_c[i]
    pk = pend_k[i]
    pos = offsets[i]
    for a in range(k_in):
        m_row = k_in - a
        xa = x[a]
        cka = pc * pk[a]
        diag = packed[pos] - cka * pk[a]
        packed[pos] = diag
        acc = diag * xa
        row = packed[pos + 1:pos + m_row]
        p_tail = pk[a + 1:k_in]
        x_tail = x[a + 1:k_in]
        k_tail = kv[a + 1:k_in]
        for b in range(m_row - 1):
            value = row[b] - cka * p_tail[b]
            row[b] = value
            acc += value * x_tail[b]
            k_tail[b] += value * xa
        kv[a] += acc
        pos += m_row
    pend_c[i] = zero
    denom = one
    for a in range(k_in):
        denom += x[a] * kv[a]
    if not denom > zero:
        return 0  # P has lost positive definiteness (or NaN): leave this neuron unchanged
    c = one / denom
    # P -= c k k^T is left pending for the next step's pass (or rls_flush)
    for a in range(k_in):
        pk[a] = kv[a]
    pend_c[i] = c
    # w -= c e k, with the Dale guard; the drive follows the weight change
    n_new = 0
    du = zero
    ce = c * err
    for a in range(k_in):
        slot = start + a
        if frozen[slot]:
            continue
        old = weights[slot]
        new = old - ce * kv[a]
        s = sign[slot]
        if (s > 0 and new < zero) or (s < 0 and new > zero):
            frozen[slot] = True
            n_new += 1
            continue
        weights[slot] = new
        du += (new - old) * r[indices[slot]]
    u[i] += du
    return n_new


@numba.njit(cache=True, parallel=True)
def _update_parallel(neurons, indptr, indices, weights, sign, frozen, packed, offsets,
                     r, u, bias, target, rate_form, smooth_c, gate, scratch_x, scratch_k,
                     pend_c, pend_k):
    n_new = 0
    for m in numba.prange(neurons.shape[0]):
        n_new += _update_one(m, neurons[m], indptr, indices, weights, sign, frozen, packed,
                             offsets, r, u, bias, target, rate_form, smooth_c, gate, scratch_x[m],
                             scratch_k[m], pend_c, pend_k)
    return n_new


@numba.njit(cache=True)
def _update_serial(neurons, indptr, indices, weights, sign, frozen, packed, offsets,
                   r, u, bias, target, rate_form, smooth_c, gate, scratch_x, scratch_k,
                   pend_c, pend_k):
    n_new = 0
    for m in range(neurons.shape[0]):
        n_new += _update_one(m, neurons[m], indptr, indices, weights, sign, frozen, packed,
                             offsets, r, u, bias, target, rate_form, smooth_c, gate, scratch_x[m],
                             scratch_k[m], pend_c, pend_k)
    return n_new


@numba.njit(cache=True, fastmath=_FAST)
def _flush(neurons, indptr, packed, offsets, pend_c, pend_k):
    for i in neurons:
        pc = pend_c[i]
        if pc == 0:
            continue
        k_in = indptr[i + 1] - indptr[i]
        pk = pend_k[i]
        pos = offsets[i]
        for a in range(k_in):
            m_row = k_in - a
            cka = pc * pk[a]
            row = packed[pos:pos + m_row]
            p_row = pk[a:k_in]
            for b in range(m_row):
                row[b] = row[b] - cka * p_row[b]
            pos += m_row
        pend_c[i] = 0


def rls_flush(indptr, packed, offsets, pending, neurons=None) -> None:
    """Apply every pending rank-1 update to P (in place); afterwards nothing is pending."""
    pend_c, pend_k = pending
    if neurons is None:
        neurons = np.flatnonzero(pend_c)
    _flush(np.asarray(neurons, dtype=np.int64), indptr, packed, offsets, pend_c, pend_k)


PARALLEL_MIN_BYTES = 8 * 2**20
"""Below this much P the update runs on one thread: the work fits in cache and a thread
barrier per update would cost more than it saves."""


def rls_update(neurons, indptr, indices, weights, sign, frozen, packed, offsets,
               r, u, bias, target, rate_form, smooth_c, scratch_x, scratch_k, gate=0.0,
               pending=None):
    """One RLS step for every neuron in ``neurons`` (in place). float32 throughout.

    ``indptr/indices/weights/sign/frozen``: the plastic in-lists (CSR over all neurons),
    ``r``: filtered spike trains (all neurons), ``u``: drives (updated in place by the weight
    change), ``bias``: each neuron's external input I_i (rate form), ``target``: one target
    per neuron in ``neurons`` (drive, or rate in spikes per model time unit).
    ``scratch_x``, ``scratch_k``: buffers of shape ``(len(neurons), max_K)``.
    ``gate``: rate form only, neuron i is updated only while ``u_i + I_i > gate`` (the
    paper: 0; ``-inf`` trains always). ``pending``: the deferred-update storage of
    :func:`init_pending`, kept by the caller across calls (one pass over P per step; call
    :func:`rls_flush` before reading P); ``None`` updates P eagerly (a second pass).
    Returns the number of synapses newly frozen. Parallel over neurons when P is large.
    """
    kernel = _update_parallel if packed.nbytes >= PARALLEL_MIN_BYTES else _update_serial
    eager = pending is None
    if eager:
        pending = init_pending(indptr)
    n_new = kernel(neurons, indptr, indices, weights, sign, frozen, packed, offsets,
                   r, u, bias, target, rate_form, smooth_c, np.float32(gate), scratch_x,
                   scratch_k, pending[0], pending[1])
    if eager:
        rls_flush(indptr, packed, offsets, pending, neurons)
    return n_new


def rls_update_reference(neurons, indptr, indices, weights, sign, frozen, p_dense,
                         r, u, bias, target, rate_form, smooth_c=0.1, gate=0.0):
    """The same update as :func:`rls_update`, written plainly in float64 with one dense P
    per neuron (``p_dense[i]`` a K_i x K_i array). Modifies its arguments in place."""
    n_new = 0
    for m, i in enumerate(neurons):
        sl = slice(indptr[i], indptr[i + 1])
        idx = indices[sl]
        if idx.size == 0:
            continue
        if rate_form:
            total = u[i] + bias[i]
            if total <= gate:
                continue
            softplus = smooth_c * np.logaddexp(0.0, total / smooth_c)
            if softplus < 1e-30:
                continue
            phi = np.sqrt(softplus) / np.pi
            dphi = (1.0 / (1.0 + np.exp(-total / smooth_c))) / (2.0 * np.pi * np.sqrt(softplus))
            err, gain = phi - target[m], dphi
        else:
            err, gain = u[i] - target[m], 1.0
        x = np.where(frozen[sl], 0.0, gain * r[idx])
        p = p_dense[i]
        k = p @ x
        if not 1.0 + x @ k > 0:
            continue
        c = 1.0 / (1.0 + x @ k)
        p -= c * np.outer(k, k)
        new = weights[sl] - c * err * k
        s = sign[sl]
        flip = ((s > 0) & (new < 0)) | ((s < 0) & (new > 0))
        apply = ~frozen[sl] & ~flip
        newly = ~frozen[sl] & flip
        n_new += int(newly.sum())
        old = weights[sl].copy()
        w = weights[sl]
        w[apply] = new[apply]
        weights[sl] = w
        fz = frozen[sl]
        fz[newly] = True
        frozen[sl] = fz
        u[i] += float(np.sum((weights[sl] - old) * r[idx]))
    return n_new
