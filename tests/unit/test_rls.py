"""The fused float32 RLS kernel against its plain float64 reference."""
from __future__ import annotations

import numpy as np
import pytest

from cortexfit.network import ei_network, gaussian_network
from cortexfit.neurons import get_model
from cortexfit.rls import LANES, RLSState, rls_update_reference


def _signal(neurons, u, bias, target, rate_form):
    """Error and gain as the trainer makes them (drive: u - f and 1; rate: the theta
    neuron's smooth curve, c = 0.1, gated at threshold), from each side's own u."""
    u = np.asarray(u, dtype=float)[neurons]
    if not rate_form:
        return u - target, np.ones(len(neurons))
    fi = get_model("theta").fi_curve(None, len(neurons), smoothing=0.1)
    total = u + np.asarray(bias, dtype=float)[neurons]
    gain = fi.dphi(total)
    gain[total <= 0] = 0.0
    return fi.phi(total) - target, gain


def _run_both(net, rate_form, n_steps=40, seed=0, lazy=False, neurons=None):
    pl = net.plastic
    n = net.n_neurons
    rng = np.random.default_rng(seed)
    state = RLSState(pl.indptr, 2.0)
    dense = [np.eye(k) / 2.0 for k in np.diff(pl.indptr)]
    w32, w64 = pl.data.copy(), pl.data.astype(float).copy()
    fz32, fz64 = np.zeros(pl.nnz, bool), np.zeros(pl.nnz, bool)
    u32, u64 = np.zeros(n, np.float32), np.zeros(n)
    neurons = np.arange(n) if neurons is None else neurons
    bias = np.full(n, 0.3, np.float32)
    frozen_counts = []
    for _ in range(n_steps):
        r = rng.uniform(0, 0.5, n).astype(np.float32)
        target = (rng.uniform(0, 0.3, neurons.size) if rate_form
                  else rng.normal(0, 1, neurons.size)).astype(np.float32)
        a = state.update(neurons, pl.indices, w32, net.plastic_sign, fz32, r, u32,
                         *_signal(neurons, u32, bias, target, rate_form), deferred=lazy)
        b = rls_update_reference(neurons, pl.indptr, pl.indices, w64, net.plastic_sign, fz64,
                                 dense, r.astype(float), u64,
                                 *_signal(neurons, u64, bias, target.astype(float), rate_form))
        frozen_counts.append((a, b))
    assert state.pending == lazy  # the last step's updates are still pending ...
    state.flush()  # ... until flushed
    assert not state.pending
    return dict(w32=w32, w64=w64, fz32=fz32, fz64=fz64, u32=u32, u64=u64, state=state,
                packed=state.packed, dense=dense, counts=frozen_counts, net=net)


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "deferred"])
@pytest.mark.parametrize("rate_form", [False, True])
def test_fused_kernel_agrees_with_the_reference(rate_form, lazy):
    out = _run_both(ei_network(150, tau_s=0.06, p=0.3, J=1.0, seed=0), rate_form, lazy=lazy)
    scale = np.abs(out["w64"]).max()
    np.testing.assert_allclose(out["w32"], out["w64"], atol=2e-5 * scale)
    np.testing.assert_array_equal(out["fz32"], out["fz64"])
    np.testing.assert_allclose(out["u32"], out["u64"], atol=2e-5 * max(1, np.abs(out["u64"]).max()))
    for i in range(150):
        np.testing.assert_allclose(out["state"].p_matrix(i), out["dense"][i], atol=1e-5)
    assert [a for a, _ in out["counts"]] == [b for _, b in out["counts"]]


def test_dale_guard_freezes_and_never_flips_a_sign():
    net = ei_network(150, tau_s=0.06, p=0.3, J=0.05, seed=2)  # weak weights: updates try to flip them
    before = net.plastic.data.copy()
    out = _run_both(net, rate_form=False, n_steps=60)
    after = out["w32"]
    assert out["fz32"].sum() > 0, "the test should provoke sign flips"
    assert np.all(np.sign(after[before != 0]) * np.sign(before[before != 0]) >= 0)
    # frozen synapses keep the value they had when frozen: never changed again
    net.set_plastic_weights(after)
    assert net.check_dale()


def test_unconstrained_synapses_are_never_frozen():
    out = _run_both(gaussian_network(100, tau_s=0.02, p=0.3, sigma=0.1, seed=0), rate_form=False)
    assert out["fz32"].sum() == 0


def test_a_subset_of_neurons_agrees_with_the_reference():
    """Only some neurons updated (the others' lanes in a batch stay as they are)."""
    net = gaussian_network(100, tau_s=0.02, p=0.3, sigma=1.0, seed=7)
    subset = np.random.default_rng(0).choice(100, size=37, replace=False)
    for lazy in (False, True):
        out = _run_both(net, rate_form=False, n_steps=25, lazy=lazy, neurons=subset)
        np.testing.assert_allclose(out["w32"], out["w64"], atol=2e-5 * np.abs(out["w64"]).max())
        untouched = np.setdiff1d(np.arange(100), subset)
        for i in untouched[:10]:
            np.testing.assert_array_equal(out["state"].p_matrix(i),
                                          np.eye(len(out["dense"][i])) / 2.0)
        for i in subset[:10]:
            np.testing.assert_allclose(out["state"].p_matrix(i), out["dense"][i], atol=1e-5)


def test_the_interleaved_layout_holds_each_neuron_once():
    rng = np.random.default_rng(2)
    sizes = list(rng.integers(0, 50, 53))
    indptr, _ = _csr(sizes, 60, rng)
    state = RLSState(indptr, 4.0)
    lanes = state.batch_neuron[state.batch_neuron >= 0]
    assert sorted(lanes) == list(range(53)) and state.batch_neuron.shape[1] == LANES
    assert np.all(np.diff(state.batch_k) <= 0)  # sorted by K: little padding
    for i in range(53):
        assert state.batch_neuron[state.neuron_batch[i], state.neuron_lane[i]] == i
        np.testing.assert_array_equal(state.p_matrix(i), np.eye(sizes[i]) / 4.0)
    padded = sum(LANES * k * (k + 1) // 2 for k in state.batch_k)
    assert state.nbytes == 4 * padded
    assert padded <= 1.6 * sum(k * (k + 1) // 2 for k in sizes)


def test_the_blocked_storage_order_holds_every_entry_once():
    """entry_position maps the kb(kb+1)/2 entries (a <= b) one to one onto 0 .. size - 1, for
    every kb (groups of ROWS rows and the remainder rows), and puts each group's entries
    together in the order the kernel visits them."""
    from cortexfit.rls import ROWS, entry_position, packed_size

    for kb in range(0, 3 * ROWS + 4):
        rows, cols = np.triu_indices(kb)
        pos = entry_position(rows, cols, kb)
        assert sorted(pos.tolist()) == list(range(packed_size(kb))), kb
    kb = 2 * ROWS + 1
    first_group = [entry_position(a, b, kb) for a in range(ROWS) for b in range(a, kb)]
    assert sorted(int(p) for p in first_group) == list(range(len(first_group)))
    # past the group's own triangle, column by column: the ROWS rows of a column side by side
    assert [int(entry_position(a, ROWS, kb)) for a in range(ROWS)] == list(
        range(ROWS * (ROWS + 1) // 2, ROWS * (ROWS + 1) // 2 + ROWS))


def test_wrong_arguments_stop_with_a_clear_error():
    """The kernel does not bounds-check, so sizes and neuron ids are checked before it runs."""
    from cortexfit.exceptions import ConfigError

    net = gaussian_network(20, tau_s=0.02, p=0.5, sigma=1.0, seed=0)
    pl = net.plastic
    state = RLSState(pl.indptr, 1.0)
    ok = dict(indices=pl.indices, weights=pl.data.copy(), sign=net.plastic_sign,
              frozen=np.zeros(pl.nnz, bool), r=np.ones(20, np.float32),
              u=np.zeros(20, np.float32), err=np.ones(20, np.float32),
              gain=np.ones(20, np.float32))

    def call(neurons=np.arange(20), **changes):
        args = {**ok, **changes}
        state.update(neurons, args["indices"], args["weights"], args["sign"], args["frozen"],
                     args["r"], args["u"], args["err"], args["gain"])

    with pytest.raises(ConfigError, match=r"Field: weights.*Expected: \(\d+,\)"):
        call(weights=pl.data[:-1].copy())
    with pytest.raises(ConfigError, match="Field: r"):
        call(r=np.ones(19, np.float32))
    with pytest.raises(ConfigError, match="Field: err"):
        call(neurons=np.arange(5))
    with pytest.raises(ConfigError, match=r"neurons\[2\].*Found: 20"):
        call(neurons=np.array([0, 1, 20]), err=np.ones(3, np.float32),
             gain=np.ones(3, np.float32))
    with pytest.raises(ConfigError, match="repeated"):
        call(neurons=np.array([3, 3]), err=np.ones(2, np.float32), gain=np.ones(2, np.float32))
    call()  # the right sizes run


def test_recursive_least_squares_solves_a_static_regression():
    """Fed a fixed linear problem, RLS converges to the least-squares weights."""
    net = gaussian_network(30, tau_s=0.02, p=1.0, sigma=0.0, seed=0)
    pl = net.plastic
    rng = np.random.default_rng(3)
    true = rng.normal(size=pl.nnz).astype(np.float32)
    state = RLSState(pl.indptr, 1e-3)
    frozen = np.zeros(pl.nnz, bool)
    weights = np.zeros(pl.nnz, np.float32)
    for _ in range(400):
        r = rng.uniform(0, 1, 30).astype(np.float32)
        target = np.array([true[pl.indptr[i]:pl.indptr[i + 1]] @ r[pl.indices[pl.indptr[i]:pl.indptr[i + 1]]]
                           for i in range(30)], dtype=np.float32)
        u = np.array([weights[pl.indptr[i]:pl.indptr[i + 1]] @ r[pl.indices[pl.indptr[i]:pl.indptr[i + 1]]]
                      for i in range(30)], dtype=np.float32)
        state.update(np.arange(30), pl.indices, weights, net.plastic_sign, frozen, r, u,
                     u - target, np.ones(30, np.float32))
    np.testing.assert_allclose(weights, true, atol=2e-2)


def test_far_subthreshold_input_without_gate_is_no_error():
    """Ungated rate training with a very negative input: phi' underflows, no update, no crash."""
    net = gaussian_network(20, tau_s=0.02, p=0.5, sigma=1.0, seed=0)
    pl = net.plastic
    state = RLSState(pl.indptr, 1.0)
    before = pl.data.copy()
    u = np.full(20, -50.0, np.float32)
    fi = get_model("theta").fi_curve(None, 20, smoothing=0.03)
    gain = fi.dphi(u)
    assert np.all(gain == 0)  # the curve's slope underflows: the trainer passes 0
    state.update(np.arange(20), pl.indices, pl.data, net.plastic_sign, np.zeros(pl.nnz, bool),
                 np.full(20, 0.2, np.float32), u, fi.phi(u) - 0.1, gain)
    np.testing.assert_array_equal(pl.data, before)


def _csr(sizes, n, rng):
    """Plastic in-lists with the given K per neuron (presynaptic ids drawn from n neurons)."""
    indptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    indices = np.concatenate([np.sort(rng.choice(n, size=k, replace=False)) for k in sizes]
                             ).astype(np.int32)
    return indptr, indices


@pytest.mark.parametrize("rate_form", [False, True])
def test_edge_sizes_agree_with_the_reference(rate_form):
    """K = 0, 1, 2 and sizes around 16 (vector width) in one network, mixed Dale signs;
    neurons of very different K share a batch (padding)."""
    rng = np.random.default_rng(5)
    sizes = [0, 1, 2, 15, 16, 17, 31, 33, 0, 1]
    n = len(sizes) + 40
    sizes += [3] * 40
    indptr, indices = _csr(sizes, n, rng)
    nnz = int(indptr[-1])
    sign = rng.choice([-1, 0, 1], size=nnz).astype(np.int8)
    w0 = (np.abs(rng.normal(0, 0.5, nnz)) * np.where(sign == 0, rng.choice([-1, 1], nnz), sign)
          ).astype(np.float32)
    state = RLSState(indptr, 2.0)
    dense = [np.eye(k) / 2.0 for k in sizes]
    w32, w64 = w0.copy(), w0.astype(float)
    fz32, fz64 = np.zeros(nnz, bool), np.zeros(nnz, bool)
    u32, u64 = np.zeros(n, np.float32), np.zeros(n)
    neurons = np.arange(n)
    bias = np.full(n, 0.3, np.float32)
    for _ in range(30):
        r = rng.uniform(0, 0.5, n).astype(np.float32)
        target = (rng.uniform(0, 0.3, n) if rate_form else rng.normal(0, 1, n)).astype(np.float32)
        a = state.update(neurons, indices, w32, sign, fz32, r, u32,
                         *_signal(neurons, u32, bias, target, rate_form))
        b = rls_update_reference(neurons, indptr, indices, w64, sign, fz64, dense,
                                 r.astype(float), u64,
                                 *_signal(neurons, u64, bias, target.astype(float), rate_form))
        assert a == b
    np.testing.assert_allclose(w32, w64, atol=2e-5 * np.abs(w64).max())
    np.testing.assert_array_equal(fz32, fz64)
    for i, k in enumerate(sizes):
        p = state.p_matrix(i)
        assert p.shape == (k, k)
        np.testing.assert_allclose(p, dense[i], atol=1e-5)


def test_result_is_bit_identical_for_any_thread_count(monkeypatch):
    """The parallel kernel gives the same bits with 1 and 2 threads (no thread-order sums)."""
    numba = pytest.importorskip("numba")
    from cortexfit import rls

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 numba threads")
    monkeypatch.setattr(rls, "PARALLEL_MIN_BYTES", 0)  # the parallel kernel even when small
    rng = np.random.default_rng(9)
    n = 64
    sizes = list(rng.integers(0, 40, n))
    indptr, indices = _csr(sizes, n, rng)
    nnz = int(indptr[-1])
    sign = np.zeros(nnz, np.int8)
    w0 = rng.normal(0, 0.3, nnz).astype(np.float32)
    steps = [(rng.uniform(0, 0.5, n).astype(np.float32), rng.normal(0, 1, n).astype(np.float32))
             for _ in range(10)]
    before = numba.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            state = RLSState(indptr, 1.0)
            w, fz, u = w0.copy(), np.zeros(nnz, bool), np.zeros(n, np.float32)
            for r, target in steps:
                state.update(np.arange(n), indices, w, sign, fz, r, u, u - target,
                             np.ones(n, np.float32))
            state.flush()
            results.append((w, u, state.packed))
    finally:
        numba.set_num_threads(before)
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


def test_the_deferred_update_gives_the_eager_results():
    """One pass over P per step (the pending rank-1 update applied inside the next step's
    mat-vec) computes bit for bit the weights and P of the eager two-pass order."""
    net = gaussian_network(120, tau_s=0.02, p=0.3, sigma=1.0, seed=4)
    eager = _run_both(net, rate_form=True, n_steps=30, seed=1)
    deferred = _run_both(gaussian_network(120, tau_s=0.02, p=0.3, sigma=1.0, seed=4), rate_form=True,
                         n_steps=30, seed=1, lazy=True)
    np.testing.assert_array_equal(deferred["w32"], eager["w32"])
    np.testing.assert_array_equal(deferred["packed"], eager["packed"])
