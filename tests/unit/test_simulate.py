"""The simulation kernel: filtered trains, u = W r, inputs, noise, state, determinism."""
from __future__ import annotations

import numpy as np
import pytest

from cortexfit.exceptions import ConfigError
from cortexfit.network import ei_network, gaussian_network
from cortexfit.simulate import Noise, Stimulus, initial_state, simulate


@pytest.fixture(scope="module")
def net():
    return ei_network(400, p=0.1, J=6.0, g=5.0, tau_s=0.06, seed=0)


def test_filtered_trains_equal_the_exact_exponential_kernel_sum(net):
    probe = simulate(net, 0.4, bias=0.5, seed=1)
    chosen = [int(k) for k in np.argsort(probe.rates())[-3:]] + [int(np.argmin(probe.rates()))]
    res = simulate(net, 0.4, bias=0.5, seed=1, record=("r",), record_every=1e-3,
                   record_neurons=chosen)
    trains = res.spike_trains()
    tau_s = net.tau_s
    for column, neuron in enumerate(chosen[:3]):
        spikes = trains[neuron]
        assert spikes.size > 3
        t = res.traces["time"].values[:, None]
        lag = t - spikes[None, :]
        exact = np.where(lag >= -1e-12, np.exp(-np.clip(lag, 0, None) / tau_s), 0).sum(1) / tau_s
        np.testing.assert_allclose(res.traces["r"].values[:, column], exact, rtol=2e-4, atol=1e-3)


def test_drive_equals_weights_times_filtered_trains(net):
    res = simulate(net, 0.5, bias=0.5, seed=2, record=("u", "r"), record_every=5e-3)
    unit = net.neuron_model.time_unit
    r_model = res.traces["r"].values * unit  # back to spikes per model time unit
    predicted = r_model @ net.dense().T
    scale = np.abs(res.traces["u"].values).max()
    np.testing.assert_allclose(res.traces["u"].values, predicted, atol=2e-5 * scale + 1e-6)
    np.testing.assert_allclose(res.state.u, net.dense() @ res.state.r, atol=2e-5 * scale + 1e-6)


def test_same_seed_same_result_and_different_seed_differs(net):
    a = simulate(net, 0.3, bias=0.5, seed=7)
    b = simulate(net, 0.3, bias=0.5, seed=7)
    c = simulate(net, 0.3, bias=0.5, seed=8)
    np.testing.assert_array_equal(a.spike_times, b.spike_times)
    np.testing.assert_array_equal(a.spike_neurons, b.spike_neurons)
    assert a.spike_times.size != c.spike_times.size or not np.array_equal(a.spike_neurons,
                                                                          c.spike_neurons)


def test_state_carries_over_exactly(net):
    noise = Noise(0.2, kind="ou", tau=0.02)
    whole = simulate(net, 0.5, bias=0.5, seed=3, noise=noise)
    first = simulate(net, 0.2, bias=0.5, seed=3, noise=noise)
    second = simulate(net, 0.3, bias=0.5, seed=3, noise=noise, state=first.state)
    np.testing.assert_array_equal(
        whole.spike_neurons, np.concatenate([first.spike_neurons, second.spike_neurons]))
    np.testing.assert_allclose(
        whole.spike_times, np.concatenate([first.spike_times, second.spike_times + 0.2]),
        atol=1e-9)
    np.testing.assert_array_equal(whole.state.neuron, second.state.neuron)
    assert second.state.step == whole.state.step


def test_stimulus_drives_only_its_neurons_during_its_window():
    uncoupled = gaussian_network(100, tau_s=0.02, sigma=0.0, seed=0)
    amplitude = np.zeros(100)
    amplitude[:50] = 2.0
    res = simulate(uncoupled, 0.6, bias=-0.2, stimulus=Stimulus(amplitude, 0.2, 0.4), seed=0)
    late = res.spike_times > 0.1  # after the transient from random initial phases
    times, neurons = res.spike_times[late], res.spike_neurons[late]
    assert np.all(neurons < 50)
    inside = (times >= 0.2) & (times <= 0.41)
    assert inside.all() and inside.sum() > 50 * 5


def test_frozen_noise_is_the_same_realisation_and_fresh_noise_is_not():
    uncoupled = gaussian_network(50, tau_s=0.02, sigma=0.0, seed=0)
    start = initial_state(uncoupled, seed=0)
    frozen = Noise(0.5, kind="white", seed=123)
    a = simulate(uncoupled, 0.3, bias=0.2, noise=frozen, state=start, seed=1)
    b = simulate(uncoupled, 0.3, bias=0.2, noise=frozen, state=start, seed=2)
    np.testing.assert_array_equal(a.spike_times, b.spike_times)
    fresh = Noise(0.5, kind="white")
    c = simulate(uncoupled, 0.3, bias=0.2, noise=fresh, state=start, seed=1)
    d = simulate(uncoupled, 0.3, bias=0.2, noise=fresh, state=start, seed=2)
    assert not np.array_equal(c.spike_times, d.spike_times)


def test_ou_noise_has_the_requested_standard_deviation():
    from cortexfit.simulate import _normal

    values = np.array([_normal(5, step, 3) for step in range(20000)])
    assert values.mean() == pytest.approx(0.0, abs=0.03)
    assert values.std() == pytest.approx(1.0, abs=0.02)
    # OU noise: a subthreshold theta neuron with noise fires, the same without does not
    uncoupled = gaussian_network(20, tau_s=0.02, sigma=0.0, seed=0)
    quiet = simulate(uncoupled, 0.5, bias=-0.05, seed=0)
    noisy = simulate(uncoupled, 0.5, bias=-0.05, seed=0, noise=Noise(0.5, kind="ou", tau=0.01))
    # after the transient from random initial phases
    assert (quiet.spike_times > 0.1).sum() == 0 and (noisy.spike_times > 0.1).sum() > 20


def test_spike_buffer_grows_for_high_rates():
    uncoupled = gaussian_network(200, tau_s=0.02, sigma=0.0, seed=0)
    res = simulate(uncoupled, 1.0, bias=8.0, seed=0)  # ~90 Hz each, more than the first buffer
    assert res.rates().mean() == pytest.approx(100 * np.sqrt(8.0) / np.pi, rel=0.01)


@pytest.mark.parametrize("kwargs, field", [
    ({"duration": 0}, "duration"), ({"duration": 0.1, "dt": 0}, "dt"),
    ({"duration": 0.1, "record": ("w",)}, "record"),
    ({"duration": 0.1, "bias": [1, 2]}, "bias"),
    ({"duration": 0.1, "noise": Noise(1.0, kind="pink")}, "noise.kind"),
    ({"duration": 0.1, "record": ("u",), "record_neurons": [500]}, "record_neurons"),
    ({"duration": 0.1, "precision": "float16"}, "precision"),
])
def test_bad_arguments_raise_config_errors(net, kwargs, field):
    with pytest.raises(ConfigError) as err:
        simulate(net, **kwargs)
    assert field in str(err.value)


def test_raster_plots_every_spike_by_population(net):
    import matplotlib

    matplotlib.use("Agg")
    res = simulate(net, 0.2, bias=0.5, seed=4)
    ax = res.plot_raster(excitatory=net.excitatory)
    exc_line, inh_line = ax.get_lines()
    assert len(exc_line.get_xdata()) + len(inh_line.get_xdata()) == res.spike_times.size
    assert np.all(net.excitatory[np.asarray(exc_line.get_ydata(), dtype=int)])
