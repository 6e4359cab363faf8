"""Connectivity: Dale's law, connection statistics, plastic sets, propagation lists."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cortexfit.exceptions import ConfigError
from cortexfit.network import ei_network, excitatory_from_cell_types, gaussian_network


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 120), p=st.floats(0.01, 1.0), frac=st.floats(0.0, 1.0),
       k=st.one_of(st.just("all"), st.integers(1, 5)), seed=st.integers(0, 2**31),
       scale=st.floats(0.0, 3.0))
def test_dale_holds_for_every_generated_network(n, p, frac, k, seed, scale):
    if k != "all" and k >= n:
        k = n - 1
    net = ei_network(n, tau_s=0.06, p=p, frac_exc=frac, J=2.0, g=4.0, k_plastic=k, plastic_scale=scale,
                     seed=seed)
    assert net.check_dale()
    w = net.weights().tocoo()
    assert np.all(w.row != w.col), "no autapses"
    signs = np.where(net.excitatory[net.plastic.indices], 1, -1)
    np.testing.assert_array_equal(net.plastic_sign, signs)


def test_connection_probability_and_weights_match_what_was_asked():
    n, p, J, g = 1000, 0.1, 6.0, 5.0
    net = ei_network(n, tau_s=0.06, p=p, J=J, g=g, seed=3)
    nnz = net.plastic.nnz
    expected = p * n * (n - 1)
    assert abs(nnz - expected) < 4 * np.sqrt(expected * (1 - p))
    assert net.excitatory.sum() == 800
    w = net.weights().tocoo()
    scale = J / np.sqrt(n * p)
    np.testing.assert_allclose(w.data[net.excitatory[w.col]], scale, rtol=1e-6)
    np.testing.assert_allclose(w.data[~net.excitatory[w.col]], -g * scale, rtol=1e-6)
    # in-degree from E and I populations: p (1 - f) N and p f N on average
    exc_in = np.bincount(w.row[net.excitatory[w.col]], minlength=n)
    inh_in = np.bincount(w.row[~net.excitatory[w.col]], minlength=n)
    assert exc_in.mean() == pytest.approx(80, rel=0.03)
    assert inh_in.mean() == pytest.approx(20, rel=0.05)
    assert net.static.nnz == 0  # the paper: every initial synapse is plastic


def test_k_plastic_inputs_are_a_set_of_their_own():
    n, k = 400, 30
    net = ei_network(n, tau_s=0.06, p=0.1, k_plastic=k, plastic_scale=1.0, seed=1)
    counts = np.diff(net.plastic.indptr)
    assert np.all(counts == k)
    for i in range(0, n, 37):
        pre = net.plastic.indices[net.plastic.indptr[i]:net.plastic.indptr[i + 1]]
        assert len(set(pre)) == k and i not in pre
    np.testing.assert_allclose(np.abs(net.plastic.data), 1.0 / np.sqrt(k), rtol=1e-6)
    assert net.static.nnz > 0 and net.check_dale()
    zero = ei_network(n, tau_s=0.06, p=0.1, k_plastic=k, seed=1)
    assert zero.plastic.nnz == n * k and np.all(zero.plastic.data == 0)


def test_gaussian_network_statistics():
    n, p, sigma = 800, 0.3, 2.0
    net = gaussian_network(n, tau_s=0.02, p=p, sigma=sigma, seed=0)
    data = net.plastic.data.astype(float)
    assert abs(data.mean()) < 4 * sigma / np.sqrt(n * p) / np.sqrt(data.size)
    assert data.std() == pytest.approx(sigma / np.sqrt(n * p), rel=0.02)
    assert net.plastic.nnz / (n * (n - 1)) == pytest.approx(p, rel=0.02)
    assert not net.dale and np.all(net.plastic_sign == 0)
    balanced = gaussian_network(200, tau_s=0.02, p=0.3, sigma=4.0, zero_row_sum=True, seed=0)
    np.testing.assert_allclose(balanced.weights().sum(axis=1), 0.0, atol=1e-4)
    empty = gaussian_network(200, tau_s=0.02, p=0.3, sigma=0.0, seed=0)
    assert empty.plastic.nnz > 0.25 * 200 * 199 and np.all(empty.plastic.data == 0)


def test_ei_zero_row_sum_balances_every_row_and_keeps_dale():
    plain = ei_network(300, p=0.3, J=2.0, g=1.0, frac_exc=0.5, tau_s=0.05, seed=3)
    balanced = ei_network(300, p=0.3, J=2.0, g=1.0, frac_exc=0.5, tau_s=0.05,
                          zero_row_sum=True, seed=3)
    w, w0 = balanced.dense(), plain.dense()
    assert balanced.check_dale()
    assert np.abs(w.sum(axis=1)).max() < 1e-4  # E and I input cancel in every row
    exc = balanced.excitatory
    assert np.array_equal(w[:, exc], w0[:, exc])  # only I weights are rescaled
    assert np.array_equal(w != 0, w0 != 0)  # same connections (same random draws)


def test_out_lists_mirror_the_in_lists():
    net = ei_network(300, tau_s=0.06, p=0.2, k_plastic=20, plastic_scale=0.5, seed=2)
    out = net.out_lists()
    dense_plastic = net.plastic.toarray()
    for j in (0, 17, 299):
        posts = out.plastic_post[out.plastic_indptr[j]:out.plastic_indptr[j + 1]]
        weights = out.plastic_weights[out.plastic_indptr[j]:out.plastic_indptr[j + 1]]
        np.testing.assert_array_equal(weights, dense_plastic[posts, j])
    new = np.random.default_rng(0).normal(size=net.plastic.nnz).astype(np.float32)
    net.set_plastic_weights(new)
    np.testing.assert_array_equal(out.plastic_weights[out.plastic_slot], new)
    j = 5
    posts = out.plastic_post[out.plastic_indptr[j]:out.plastic_indptr[j + 1]]
    weights = out.plastic_weights[out.plastic_indptr[j]:out.plastic_indptr[j + 1]]
    np.testing.assert_array_equal(weights, net.plastic.toarray()[posts, j])


def test_cell_types_to_excitatory():
    labels = ["PTlower", "pyramidal", "FS", "interneuron", "PV", "IT"]
    np.testing.assert_array_equal(excitatory_from_cell_types(labels),
                                  [True, True, False, False, False, True])
    with pytest.raises(ConfigError, match="neither excitatory nor inhibitory"):
        excitatory_from_cell_types(["pyramidal", "mystery"])
    assert list(excitatory_from_cell_types(["mystery"], default=False)) == [False]
    net = ei_network(6, tau_s=0.06, p=1.0, excitatory=excitatory_from_cell_types(labels), seed=0)
    assert net.check_dale() and net.excitatory.sum() == 3


@pytest.mark.parametrize("kwargs, field", [
    ({"n_neurons": 1}, "n_neurons"), ({"n_neurons": 10, "p": 0.0}, "p"),
    ({"n_neurons": 10, "p": 1.5}, "p"), ({"n_neurons": 10, "J": -1}, "J"),
    ({"n_neurons": 10, "tau_s": 0}, "tau_s"), ({"n_neurons": 10, "k_plastic": 10}, "k_plastic"),
    ({"n_neurons": 10, "k_plastic": 0}, "k_plastic"),
    ({"n_neurons": 10, "excitatory": [True] * 3}, "excitatory"),
    ({"n_neurons": 10, "neuron_model": "hodgkin"}, "neuron_model"),
])
def test_bad_settings_raise_config_errors(kwargs, field):
    with pytest.raises(ConfigError) as err:
        ei_network(**{"tau_s": 0.06, **kwargs})
    assert field in str(err.value)
