"""Recursive least squares on each neuron's plastic inputs (Kim & Chow 2018, Eqs 9-12, 17-19).

For every trained neuron i, with ``x`` the regressor over its K_i plastic inputs::

    k = P x;  c = 1 / (1 + x.k);  P -= c k k^T;  w -= c e k,        P(0) = I / lambda

* **drive form**: ``x = r`` (filtered spike trains of the plastic inputs), ``e = u_i - f_i``
  (the drive against its target);
* **rate form**: ``x = phi'(u_i + I_i) r``, ``e = phi(u_i + I_i) - f_i`` (rates in spikes per
  model time unit, with the neuron model's own f-I curve phi).

The kernel takes each neuron's error ``e`` and gain (1, or ``phi'``) as arrays: the caller
(:mod:`cortexfit.fit`) computes them from the model's curve, so the kernel is the same for
every neuron model and form. A neuron with gain 0 is not updated this step (the rate form's
suprathreshold gate, or a flat curve).

Because k uses the old P, ``c k`` equals ``P_new x``: the authors' code form.

**Dale's law**: a weight whose update would flip the sign required of it (``sign`` +1 / -1)
is not changed, and from then on it is **frozen**: it keeps contributing to the drive but
leaves the regression (its regressor entry is 0, so its row and column of P stop changing,
and it gets no further updates). Unconstrained synapses have sign 0.

**Storage: packed symmetric float32, 16 neurons interleaved.** Each neuron's P is its upper
triangle, each entry stored once, in the blocked order of :func:`entry_position` (groups of
4 rows, column by column: the order the kernel visits them, so P streams through memory
front to back). The neurons are sorted by K and grouped in *batches* of :data:`LANES` = 16;
a batch stores its 16 triangles interleaved, entry by entry (``[entry, lane]``), each padded
to the batch's largest K with zeros (a zero row and column of P with a zero regressor entry
never changes and changes nothing: padding is exact). The update of one batch is then the
same arithmetic on 16 neurons at once, one 16-wide vector operation per P entry, whatever K
is. Stored neuron by neuron, rows of the triangle are short (K = 58: 29 entries on average)
and the per-neuron kernel ran at scalar speed; the interleaved kernel is 2.6x faster there
(4096 x 58: 1.4 ms per step against 3.5 ms, 2 threads) and runs at memory-copy speed at
every size (``benchmarks/bench_rls.py``). All arrays the kernel streams start on a 64-byte
boundary, so each vector is one cache line. Sorting by K keeps the padding small (a few per
cent for Bernoulli connectivity). :class:`RLSState` holds P, its layout, the deferred update
(below) and scratch; :meth:`RLSState.p_matrix` unpacks one neuron's P.

**The fused kernel** (:meth:`RLSState.update`): per batch, gather the regressors, one pass
over the interleaved triangle (written directly in LLVM vector IR by :func:`_tri_pass`, a
numba intrinsic: numba cannot tell LLVM that the arrays do not alias, so the plain loop
stayed scalar), then c, Dale-guarded weight updates and the drive change per lane; parallel
over batches. The pass takes :data:`ROWS` = 4 rows of P at a time, so each column's pending
k, x and k = P x entries are loaded once for 4 P entries (in cache: 8.4-8.9 against
10.5-12.6 us per neuron at K = 270, where one row at a time spills them from L1), and P is
stored in that visiting order (with plain row order the 4 rows were 4 streams, and 4096 x 58
lost a third of its speed). :func:`rls_update_reference` is the same update written plainly
in float64 with dense matrices, kept to test the kernel against.

**One pass over P per step (deferred rank-1 update).** Step t needs ``k_t = P_t x_t`` and
leaves ``P_{t+1} = P_t - c_t k_t k_t^T``. The kernel does not write ``P_{t+1}`` at step t:
it keeps ``(c_t, k_t)`` per neuron and applies it at step t+1 *in the same pass* that
computes ``k_{t+1}``, so each entry of P is read and written once per step, like a memory
copy. Every entry gets the same floating-point operations as the eager order, in the same
order, so the deferred and eager results are bit-identical. P in memory lags by one update:
:meth:`RLSState.flush` applies what is pending (before a checkpoint, at the end of training,
or before reading P; :meth:`RLSState.p_matrix` flushes first).
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic

from .exceptions import ConfigError

__all__ = ["LANES", "P_LAYOUT", "RLSState", "packed_size", "rls_update_reference"]

LANES = 16
"""Neurons per batch: one AVX-512 register of float32 (two AVX2 ones)."""

ROWS = 4
"""Rows of P per pass of the vector kernel (:func:`_tri_pass`)."""

P_LAYOUT = f"packed-float32-lanes{LANES}-rows{ROWS}-blocked-sorted-by-K"
"""Names the storage of P (checkpoints of another layout are not resumed)."""

PARALLEL_MIN_BYTES = 8 * 2**20
"""Below this much P the update runs on one thread. Measured on 2 cores: the demo's fit (2.5
MB of P) trains 10 % faster on 2 threads on a quiet machine, but 3.5x *slower* when another
process keeps one core busy (a thread barrier per update, 0.15 ms apart, waits for the
descheduled thread); at 900 neurons (134 MB) 2 threads take 8.1 ms against 11.6 on one,
and 13.0 against 11.0 with one core busy."""


def _aligned_zeros(shape, align: int = 64) -> np.ndarray:
    """float32 zeros whose first element sits on a 64-byte boundary, so that every 16-lane
    vector of the kernel is one cache line (numpy aligns to 16 bytes only; a vector across
    two lines costs two accesses)."""
    count = int(np.prod(shape))
    raw = np.zeros(count + align // 4, dtype=np.float32)
    skip = (-raw.ctypes.data % align) // 4
    return raw[skip:skip + count].reshape(shape)


def packed_size(k: int) -> int:
    """Floats in a packed symmetric K x K matrix."""
    return k * (k + 1) // 2


# ---------------------------------------------------------------------- storage order
_HEAD = ROWS * (ROWS + 1) // 2  # entries of a group's own triangle


def entry_position(a, b, kb):
    """Entry index (in vectors of LANES floats) of P[a, b], a <= b, in a batch whose
    triangles are kb x kb: the order in which :func:`_tri_pass` visits them, so that P is
    streamed strictly in memory order.

    Rows go in groups of ROWS (4). A group stores its own 4 x 4 triangle (row by row), then,
    column by column past the group, the 4 rows' entries of that column side by side. The
    last ``kb % ROWS`` rows follow as plain packed rows. Each entry is stored once: still a
    packed symmetric matrix, in a blocked order. Works elementwise on arrays."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    groups = kb // ROWS
    g = a // ROWS
    i = a - g * ROWS
    group_start = _HEAD * g + ROWS * (g * (kb - ROWS) - ROWS * g * (g - 1) // 2)
    head = group_start + i * ROWS - i * (i - 1) // 2 + (b - g * ROWS - i)
    tail = group_start + _HEAD + ROWS * (b - g * ROWS - ROWS) + i
    t = a - groups * ROWS
    last_start = _HEAD * groups + ROWS * (groups * (kb - ROWS) - ROWS * groups * (groups - 1) // 2)
    rest = last_start + t * (kb - groups * ROWS) - t * (t - 1) // 2 + (b - a)
    return np.where(a < groups * ROWS, np.where(b < (g + 1) * ROWS, head, tail), rest)


# ---------------------------------------------------------------------- the vector pass
@intrinsic
def _tri_pass(typingctx, packed, start, pend_k, x, kv, pend_c, kb):
    """One batch's pass over its interleaved triangle, 16 lanes per vector operation.

    For every entry (a, b >= a) of the batch's triangles, starting at float ``start`` of
    ``packed``: ``P[a, b] -= (c k_a) k_b`` with the pending ``(pend_c, pend_k)``, then
    ``kv[a] += P[a, b] x[b]`` and (b > a) ``kv[b] += P[a, b] x[a]``: k = P x with the
    updated P. ``pend_k``, ``x``, ``kv``: C-contiguous float32 ``[>= kb, LANES]``;
    ``pend_c``: float32 ``[LANES]``; ``kv`` must be zero on entry. No bounds checks: the
    caller (:class:`RLSState`) guarantees the sizes."""
    for name, ty, ndim in (("packed", packed, 1), ("pend_k", pend_k, 2), ("x", x, 2),
                           ("kv", kv, 2), ("pend_c", pend_c, 1)):
        if not (isinstance(ty, types.Array) and ty.dtype == types.float32
                and ty.ndim == ndim and ty.layout == "C"):
            raise TypingError(f"_tri_pass: {name} must be a C-contiguous float32 array "
                              f"of {ndim} dimensions, got {ty}")
    if not (isinstance(start, types.Integer) and isinstance(kb, types.Integer)):
        raise TypingError("_tri_pass: start and kb must be integers")
    sig = types.void(packed, start, pend_k, x, kv, pend_c, kb)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        vec = ir.VectorType(ir.FloatType(), LANES)
        vptr = vec.as_pointer()
        zero_vec = ir.Constant(vec, None)

        def const(value):
            return ir.Constant(i64, value)

        lanes = const(LANES)
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3),
                                             f"llvm.fma.v{LANES}f32")

        def data(ty, value):
            return context.make_array(ty)(context, builder, value).data

        p_data, pk_data, x_data, kv_data, pc_data = (
            data(signature.args[j], args[j]) for j in (0, 2, 3, 4, 5))

        def load(base, idx):
            return builder.load(builder.bitcast(builder.gep(base, [idx]), vptr), align=4)

        def store(value, base, idx):
            builder.store(value, builder.bitcast(builder.gep(base, [idx]), vptr), align=4)

        def call(*operands):
            return builder.call(fma, list(operands))

        start = context.cast(builder, args[1], signature.args[1], types.int64)
        kb = context.cast(builder, args[6], signature.args[6], types.int64)
        pc = load(pc_data, const(0))

        def group_start(g):
            """Float index of group g's first entry (see :func:`entry_position`)."""
            tri = builder.lshr(builder.mul(g, builder.sub(g, const(1))), const(1))
            inner = builder.sub(builder.mul(g, builder.sub(kb, const(ROWS))),
                                builder.mul(tri, const(ROWS)))
            entries = builder.add(builder.mul(g, const(_HEAD)), builder.mul(inner, const(ROWS)))
            return builder.add(start, builder.mul(entries, lanes))

        # Rows in groups of ROWS: the tail of a group (columns past the group) loads the
        # pending k, x and kv of a column once for ROWS rows of P, so their traffic per P
        # entry stays in L1 however large K is (one row at a time, K = 270 spilled to L2).
        acc = [cgutils.alloca_once(builder, vec) for _ in range(ROWS)]
        with cgutils.for_range(builder, builder.udiv(kb, const(ROWS))) as group:
            a0 = builder.mul(group.index, const(ROWS))
            rows = [builder.add(a0, const(i)) for i in range(ROWS)]
            pka = [load(pk_data, builder.mul(a, lanes)) for a in rows]
            xa = [load(x_data, builder.mul(a, lanes)) for a in rows]
            neg_cka = [builder.fneg(builder.fmul(pc, v)) for v in pka]
            first_pos = group_start(group.index)
            # head: the group's own ROWS x ROWS triangle (its column sums stay in registers)
            sums = [zero_vec] * ROWS
            entry = 0
            for i in range(ROWS):
                for j in range(i, ROWS):
                    idx = builder.add(first_pos, const(entry * LANES))
                    entry += 1
                    value = call(neg_cka[i], pka[j], load(p_data, idx))
                    store(value, p_data, idx)
                    if j == i:
                        sums[i] = call(value, xa[i], sums[i])
                    else:
                        sums[i] = call(value, xa[j], sums[i])
                        sums[j] = call(value, xa[i], sums[j])
            for i in range(ROWS):
                builder.store(sums[i], acc[i])
            # tail: columns b past the group, ROWS rows of P per column
            first = builder.add(a0, const(ROWS))
            tail_pos = builder.add(first_pos, const(_HEAD * LANES))
            with cgutils.for_range_slice(builder, first, kb, const(1), inc=True) as (b, _):
                ib = builder.mul(b, lanes)
                column = builder.add(tail_pos, builder.mul(builder.sub(b, first),
                                                           const(ROWS * LANES)))
                pkb = load(pk_data, ib)
                xb = load(x_data, ib)
                col = load(kv_data, ib)
                for i in range(ROWS):
                    idx = builder.add(column, const(i * LANES))
                    value = call(neg_cka[i], pkb, load(p_data, idx))
                    store(value, p_data, idx)
                    builder.store(call(value, xb, builder.load(acc[i])), acc[i])
                    col = call(value, xa[i], col)
                store(col, kv_data, ib)
            for i in range(ROWS):
                ia = builder.mul(rows[i], lanes)
                store(builder.fadd(load(kv_data, ia), builder.load(acc[i])), kv_data, ia)
        # the last kb % ROWS rows, one at a time, as plain packed rows
        groups = builder.udiv(kb, const(ROWS))
        last = builder.mul(groups, const(ROWS))
        pos = cgutils.alloca_once_value(builder, group_start(groups))
        with cgutils.for_range_slice(builder, last, kb, const(1), inc=True) as (a, _):
            ia = builder.mul(a, lanes)
            pka = load(pk_data, ia)
            neg_cka = builder.fneg(builder.fmul(pc, pka))
            p0 = builder.load(pos)
            builder.store(builder.add(p0, builder.mul(builder.sub(kb, a), lanes)), pos)
            value = call(neg_cka, pka, load(p_data, p0))
            store(value, p_data, p0)
            xa = load(x_data, ia)
            builder.store(builder.fmul(value, xa), acc[0])
            with cgutils.for_range_slice(builder, builder.add(a, const(1)), kb, const(1),
                                         inc=True) as (b, _):
                ib = builder.mul(b, lanes)
                idx = builder.add(p0, builder.mul(builder.sub(b, a), lanes))
                value = call(neg_cka, load(pk_data, ib), load(p_data, idx))
                store(value, p_data, idx)
                builder.store(call(value, load(x_data, ib), builder.load(acc[0])), acc[0])
                store(call(value, xa, load(kv_data, ib)), kv_data, ib)
            store(builder.fadd(load(kv_data, ia), builder.load(acc[0])), kv_data, ia)
        return context.get_dummy_value()

    return sig, codegen


# ---------------------------------------------------------------------- one batch
@numba.njit(cache=True, fastmath={"contract"})
def _update_batch(b, slot, indptr, indices, weights, sign, frozen, packed, batch_neuron,
                  batch_k, batch_offset, r, u, err_of, gain_of, x, kv, pend_c, pend_k,
                  deferred):
    """The fused RLS step of one batch of 16 neurons; returns the newly frozen count.

    ``slot[i]``: index of neuron i into ``err_of`` / ``gain_of`` (-1: not updated). The batch's
    pending update is applied in the same pass that computes k = P x; this step's update is
    left pending in its place (``deferred``) or applied at once."""
    zero = np.float32(0.0)
    one = np.float32(1.0)
    kb = batch_k[b]
    if kb == 0:
        return 0
    errs = np.zeros(LANES, dtype=np.float32)
    active = np.zeros(LANES, dtype=np.bool_)
    any_active = False
    for lane in range(LANES):
        i = batch_neuron[b, lane]
        for a in range(kb):
            x[a, lane] = zero
            kv[a, lane] = zero
        if i < 0 or slot[i] < 0:
            continue
        start = indptr[i]
        k_in = indptr[i + 1] - start
        if k_in == 0:
            continue
        m = slot[i]
        gain = gain_of[m]
        if gain == zero or not gain == gain:  # gated, flat curve, or NaN: nothing to learn
            continue
        err = err_of[m]
        for a in range(k_in):
            if not frozen[start + a]:
                x[a, lane] = gain * r[indices[start + a]]
        errs[lane] = err
        active[lane] = True
        any_active = True
    if not any_active:
        return 0  # nothing to learn here: what is pending stays pending
    pk = pend_k[b]
    pc = pend_c[b]
    _tri_pass(packed, batch_offset[b], pk, x, kv, pc, kb)
    n_new = 0
    for lane in range(LANES):
        pc[lane] = zero  # applied by the pass
        for a in range(kb):
            pk[a, lane] = kv[a, lane]
        if not active[lane]:
            continue
        denom = one
        for a in range(kb):
            denom += x[a, lane] * kv[a, lane]
        if not denom > zero:
            continue  # P has lost positive definiteness (or NaN): leave this neuron alone
        c = one / denom
        pc[lane] = c  # P -= c k k^T: pending (applied by the next pass or a flush)
        # w -= c e k, with the Dale guard; the drive follows the weight change
        i = batch_neuron[b, lane]
        start = indptr[i]
        ce = c * errs[lane]
        du = zero
        for a in range(indptr[i + 1] - start):
            syn = start + a
            if frozen[syn]:
                continue
            old = weights[syn]
            new = old - ce * kv[a, lane]
            sg = sign[syn]
            if (sg > 0 and new < zero) or (sg < 0 and new > zero):
                frozen[syn] = True
                n_new += 1
                continue
            weights[syn] = new
            du += (new - old) * r[indices[syn]]
        u[i] += du
    if not deferred:
        _flush_batch(b, packed, batch_k, batch_offset, x, kv, pend_c, pend_k)
    return n_new


@numba.njit(cache=True)
def _flush_batch(b, packed, batch_k, batch_offset, x, kv, pend_c, pend_k):
    """Apply batch b's pending update (a pass with x = 0, so k comes out 0)."""
    kb = batch_k[b]
    pc = pend_c[b]
    if kb == 0 or not np.any(pc != 0):
        return
    for a in range(kb):
        for lane in range(LANES):
            x[a, lane] = 0.0
            kv[a, lane] = 0.0
    _tri_pass(packed, batch_offset[b], pend_k[b], x, kv, pc, kb)
    pc[:] = 0.0


@numba.njit(cache=True)
def _slots(neurons, n):
    """slot[i] = m for neurons[m] = i, else -1; returns (slot, m of the first neuron id out of
    range or repeated, or -1)."""
    slot = np.full(n, -1, dtype=np.int64)
    for m in range(neurons.shape[0]):
        i = neurons[m]
        if i < 0 or i >= n or slot[i] >= 0:
            return slot, m
        slot[i] = m
    return slot, -1


@numba.njit(cache=True, parallel=True)
def _update_parallel(slot, indptr, indices, weights, sign, frozen, packed, batch_neuron,
                     batch_k, batch_offset, r, u, err_of, gain_of, scratch_x, scratch_k,
                     pend_c, pend_k, deferred):
    n_new = 0
    for b in numba.prange(batch_k.shape[0]):
        n_new += _update_batch(b, slot, indptr, indices, weights, sign, frozen, packed,
                               batch_neuron, batch_k, batch_offset, r, u, err_of, gain_of,
                               scratch_x[b], scratch_k[b], pend_c, pend_k, deferred)
    return n_new


@numba.njit(cache=True)
def _update_serial(slot, indptr, indices, weights, sign, frozen, packed, batch_neuron,
                   batch_k, batch_offset, r, u, err_of, gain_of, scratch_x, scratch_k,
                   pend_c, pend_k, deferred):
    n_new = 0
    for b in range(batch_k.shape[0]):
        n_new += _update_batch(b, slot, indptr, indices, weights, sign, frozen, packed,
                               batch_neuron, batch_k, batch_offset, r, u, err_of, gain_of,
                               scratch_x[b], scratch_k[b], pend_c, pend_k, deferred)
    return n_new


@numba.njit(cache=True)
def _flush_all(packed, batch_k, batch_offset, scratch_x, scratch_k, pend_c, pend_k):
    for b in range(batch_k.shape[0]):
        _flush_batch(b, packed, batch_k, batch_offset, scratch_x[b], scratch_k[b], pend_c,
                     pend_k)


# ---------------------------------------------------------------------- the state
class RLSState:
    """Every trained neuron's P (``P(0) = I / lam``), stored packed and interleaved (module
    docstring), with the deferred update and the kernel's scratch.

    ``indptr``: the plastic in-lists' row pointer (neuron i's plastic inputs are
    ``indices[indptr[i]:indptr[i + 1]]``). Attributes: ``packed`` (float32, all of P; what a
    checkpoint saves, after :meth:`flush`), ``batch_neuron`` ``(batches, 16)`` (-1:
    padding), ``batch_k``, ``batch_offset`` (floats), ``neuron_batch``, ``neuron_lane``.
    """

    def __init__(self, indptr: np.ndarray, lam: float | np.ndarray):
        """``lam``: the regulariser, one for all neurons or one per neuron."""
        self.indptr = np.ascontiguousarray(indptr, dtype=np.int64)
        sizes = np.diff(self.indptr)
        self.n_neurons = sizes.size
        order = np.argsort(-sizes, kind="stable")  # by K, largest first: little padding
        n_batches = -(-self.n_neurons // LANES)
        batch_neuron = np.full(n_batches * LANES, -1, dtype=np.int64)
        batch_neuron[:self.n_neurons] = order
        self.batch_neuron = batch_neuron.reshape(n_batches, LANES)
        self.batch_k = np.array([sizes[row[row >= 0]].max(initial=0)
                                 for row in self.batch_neuron], dtype=np.int64)
        blocks = packed_size(self.batch_k) * LANES
        self.batch_offset = np.concatenate([[0], np.cumsum(blocks)]).astype(np.int64)
        self.neuron_batch = np.empty(self.n_neurons, dtype=np.int64)
        self.neuron_lane = np.empty(self.n_neurons, dtype=np.int64)
        self.neuron_batch[order] = np.arange(self.n_neurons) // LANES
        self.neuron_lane[order] = np.arange(self.n_neurons) % LANES
        self.packed = _aligned_zeros(int(self.batch_offset[-1]))
        kmax = max(1, int(self.batch_k.max(initial=0)))
        lams = np.broadcast_to(np.asarray(lam, dtype=np.float64), (self.n_neurons,))
        for i in range(self.n_neurons):
            b, lane = self.neuron_batch[i], self.neuron_lane[i]
            kb = self.batch_k[b]
            rows = np.arange(sizes[i])
            diag = entry_position(rows, rows, kb)
            self.packed[self.batch_offset[b] + diag * LANES + lane] = 1.0 / lams[i]
        self.pend_c = _aligned_zeros((n_batches, LANES))
        self.pend_k = _aligned_zeros((n_batches, kmax, LANES))
        self._x = _aligned_zeros((n_batches, kmax, LANES))
        self._k = _aligned_zeros((n_batches, kmax, LANES))

    @property
    def nbytes(self) -> int:
        """Bytes of P (with the padding)."""
        return int(self.batch_offset[-1]) * 4

    def update(self, neurons, indices, weights, sign, frozen, r, u, err, gain,
               deferred=True) -> int:
        """One RLS step for every neuron in ``neurons`` (weights, frozen, u: in place).
        float32 throughout.

        ``indices/weights/sign/frozen``: the plastic in-lists (CSR over all neurons, with
        this state's ``indptr``), ``r``: filtered spike trains (all neurons), ``u``: drives
        (updated in place by the weight change), ``err`` and ``gain``: one per neuron in
        ``neurons``, the error e and the regressor's gain (x = gain * r; 1 in the drive
        form, ``phi'(u + I)`` in the rate form; 0 leaves the neuron alone this step).
        ``deferred``: leave this step's rank-1 update pending (one pass over P per step; see
        the module docstring); False applies it at once. Returns the number of synapses
        newly frozen. Parallel over batches when P is large."""
        kernel = _update_parallel if self.nbytes >= PARALLEL_MIN_BYTES else _update_serial
        neurons = np.asarray(neurons, dtype=np.int64)
        self._check_sizes(neurons, indices, weights, sign, frozen, r, u, err, gain)
        slot, bad = _slots(neurons, self.n_neurons)
        if bad >= 0:
            raise ConfigError("a neuron id is out of range or repeated", field=f"neurons[{bad}]",
                              found=int(neurons[bad]),
                              expected=f"distinct ids in 0 .. {self.n_neurons - 1}")
        return kernel(slot, self.indptr, indices, weights, sign, frozen, self.packed,
                      self.batch_neuron, self.batch_k, self.batch_offset, r, u,
                      np.ascontiguousarray(err, dtype=np.float32),
                      np.ascontiguousarray(gain, dtype=np.float32), self._x, self._k,
                      self.pend_c, self.pend_k, deferred)

    def _check_sizes(self, neurons, indices, weights, sign, frozen, r, u, err, gain):
        """The kernel does not bounds-check: arrays of the wrong size stop here, by name."""
        nnz, n = int(self.indptr[-1]), self.n_neurons
        for name, array, size in (("indices", indices, nnz), ("weights", weights, nnz),
                                  ("sign", sign, nnz), ("frozen", frozen, nnz), ("r", r, n),
                                  ("u", u, n), ("err", err, neurons.size),
                                  ("gain", gain, neurons.size)):
            if np.ndim(array) != 1 or len(array) != size:
                raise ConfigError("an RLS argument has the wrong shape", field=name,
                                  found=np.shape(array), expected=f"({size},)")

    def flush(self) -> None:
        """Apply every pending rank-1 update to P; afterwards nothing is pending."""
        _flush_all(self.packed, self.batch_k, self.batch_offset, self._x, self._k,
                   self.pend_c, self.pend_k)

    @property
    def pending(self) -> bool:
        """Whether some update is still pending."""
        return bool(self.pend_c.any())

    def p_matrix(self, i: int) -> np.ndarray:
        """Neuron i's P as a dense symmetric K_i x K_i float64 array (flushes first)."""
        self.flush()
        b, lane = self.neuron_batch[i], self.neuron_lane[i]
        kb = int(self.batch_k[b])
        k = int(self.indptr[i + 1] - self.indptr[i])
        block = self.packed[self.batch_offset[b]:self.batch_offset[b + 1]].reshape(-1, LANES)
        dense = np.zeros((kb, kb))
        rows, cols = np.triu_indices(kb)
        values = block[entry_position(rows, cols, kb), lane]
        dense[rows, cols] = values
        dense[cols, rows] = values
        return dense[:k, :k]


def rls_update_reference(neurons, indptr, indices, weights, sign, frozen, p_dense,
                         r, u, err, gain):
    """The same update as :meth:`RLSState.update`, written plainly in float64 with one dense P
    per neuron (``p_dense[i]`` a K_i x K_i array). Modifies its arguments in place."""
    n_new = 0
    for m, i in enumerate(neurons):
        sl = slice(indptr[i], indptr[i + 1])
        idx = indices[sl]
        if idx.size == 0 or gain[m] == 0 or np.isnan(gain[m]):
            continue
        e, g = float(err[m]), float(gain[m])
        x = np.where(frozen[sl], 0.0, g * r[idx])
        p = p_dense[i]
        k = p @ x
        if not 1.0 + x @ k > 0:
            continue
        c = 1.0 / (1.0 + x @ k)
        p -= c * np.outer(k, k)
        new = weights[sl] - c * e * k
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
