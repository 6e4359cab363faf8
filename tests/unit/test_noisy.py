"""Background noise and the noisy f-I curve rate training uses with it (cortexfit.neurons.noisy)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import xarray as xr

from cortexfit.exceptions import ConfigError
from cortexfit.fit import RLSFit
from cortexfit.network import Network, gaussian_network
from cortexfit.neurons import get_model
from cortexfit.neurons.noisy import lif_noisy_rate, noisy_fi_curve, theta_noisy_rate
from cortexfit.simulate import Noise, Simulator


def _measured_rates(x: np.ndarray, sigma: float, seconds: float, replicas: int) -> np.ndarray:
    """Rates (Hz) of unconnected theta neurons at constant input x plus white noise sigma,
    simulated with the simulator every fit uses (dt = 0.1 ms)."""
    n = x.size * replicas
    net = gaussian_network(n, p=0.01, sigma=0.0, tau_s=0.05, seed=0)  # zero weights
    sim = Simulator(net, dt=1e-4, bias=np.repeat(x, replicas), noise=Noise(sigma=sigma),
                    seed=3)
    sim.advance(int(0.2 / 1e-4))  # the initial phases' first spikes
    _, ids = sim.advance(int(seconds / 1e-4))
    counts = np.bincount(ids, minlength=n).reshape(x.size, replicas).sum(axis=1)
    return counts / (seconds * replicas)


def test_theta_noisy_curve_is_the_rate_the_simulated_neuron_fires():
    x = np.array([-0.15, -0.1, -0.05, 0.0, 0.05, 0.15])
    sigma = 0.2
    predicted = theta_noisy_rate(x, sigma)[0] / 0.010
    measured = _measured_rates(x, sigma, seconds=10.0, replicas=20)
    # Poisson-like counting error of 200 s of firing per input: <= 12 % at 0.2 Hz...
    err = 3 * np.sqrt(np.maximum(predicted, 0.05) / 200.0) + 0.02 * predicted
    assert np.all(np.abs(measured - predicted) <= err), (measured, predicted)
    assert 0.15 < predicted[0] < 0.4 and 0.8 < predicted[1] < 1.3  # the low rates matter
    # without noise the same neurons below threshold are silent
    silent = _measured_rates(x[:3], 1e-9, seconds=2.0, replicas=2)
    assert np.all(silent == 0), silent


def test_noisy_curve_limits_derivative_and_table():
    x = np.linspace(-0.3, 2.0, 47)
    sharp = np.sqrt(np.maximum(x, 0)) / np.pi
    weak = theta_noisy_rate(x, 1e-3)[0]
    assert np.allclose(weak[x > 0.05], sharp[x > 0.05], rtol=1e-3)
    rate, slope = theta_noisy_rate(x, 0.3)
    h = 1e-5
    numeric = (theta_noisy_rate(x + h, 0.3)[0] - theta_noisy_rate(x - h, 0.3)[0]) / (2 * h)
    assert np.allclose(slope, numeric, rtol=1e-4, atol=1e-9)
    assert np.all(np.diff(rate) > 0)  # increasing everywhere
    curve = noisy_fi_curve(get_model("theta"), None, 4, 0.3)
    assert np.allclose(curve.phi(x), rate, rtol=1e-4, atol=1e-7)  # the table = the integral
    assert np.allclose(curve.dphi(x), slope, rtol=2e-3, atol=1e-6)
    assert np.allclose(curve.phi(np.array([10.0])), np.sqrt(10) / np.pi, rtol=1e-3)


def test_noise_has_a_curve_for_theta_lif_and_izhikevich_only():
    import dataclasses

    other = dataclasses.replace(get_model("lif"), name="custom")
    with pytest.raises(ConfigError, match="neuron_model"):
        noisy_fi_curve(other, other.params, 3, 0.2)
    assert noisy_fi_curve(get_model("lif"), None, 3, 2.0).phi(np.array([14.0]))[0] > 0
    # the recordings preset gives LIF and Izhikevich no noise (its level is in theta units)
    assert RLSFit.for_recordings(neuron_model="lif").noise == 0.0
    assert RLSFit.for_recordings(neuron_model="izhikevich").noise == 0.0


def test_bad_noise_and_min_neurons_are_named():
    from cortexfit.auxiliary import add_auxiliary

    targets = _low_rate_targets(np.array([2.0, 3.0]))
    with pytest.raises(ConfigError, match="noise"):
        RLSFit(noise=-0.1, loops=1, progress=False).fit(targets)
    for bad in (-1, 2.5, True):
        with pytest.raises(ConfigError, match="min_neurons"):
            add_auxiliary(targets, 2.0, min_neurons=bad)
    filled = add_auxiliary(targets, 2.0, min_neurons=10)
    assert filled.sizes["neuron"] == 10 and "minimum network size" in filled.attrs["aux_reason"]


def test_white_noise_is_the_same_whatever_the_split_of_the_run():
    net = gaussian_network(30, p=0.3, sigma=1.0, tau_s=0.05, seed=1)
    one = Simulator(net, dt=1e-4, bias=0.1, noise=Noise(sigma=0.3), seed=5)
    two = Simulator(net, dt=1e-4, bias=0.1, noise=Noise(sigma=0.3), seed=5)
    a = one.advance(2001)
    b1 = two.advance(7)
    b2 = two.advance(1994)
    # spike steps are counted from the start of each call
    assert np.array_equal(a[0], np.concatenate([b1[0], b2[0] + 7]))
    assert np.array_equal(a[1], np.concatenate([b1[1], b2[1]]))
    assert np.array_equal(one.neuron, two.neuron)


def _low_rate_targets(rates_hz: np.ndarray, duration: float = 1.0) -> xr.Dataset:
    t = np.arange(0.01, duration, 0.02)
    wave = 1.0 + 0.5 * np.sin(2 * np.pi * t / duration)
    rate = rates_hz[None, :, None] * wave[None, None, :]
    return xr.Dataset({"rate": (("condition", "unit", "time"), rate)},
                      coords={"condition": ["a"], "unit": [f"u{i}" for i in range(rates_hz.size)],
                              "time": t})


def test_with_noise_low_rate_neurons_fire_at_their_rate():
    """Units of 0.5-3 Hz: with background noise and its own curve every model neuron fires
    near its target rate; with the smooth curve and no noise most stay silent."""
    rates = np.repeat([0.5, 1.0, 2.0, 3.0], 15)
    targets = _low_rate_targets(rates)
    common = dict(dale=False, p=0.3, sigma=1.0, tau_s=0.05, loops=8, rate_gate=None,
                  dt=1e-4, progress=False, seed=0)

    def mean_rates(est):
        runs = [est.run_trial(0, seed=s) for s in range(4)]
        spikes = np.concatenate([r["spike_neuron"].values for r in runs])
        window = est.protocol_.window_steps * est.protocol_.dt
        return np.bincount(spikes, minlength=rates.size) / (4 * window)

    noisy = mean_rates(RLSFit(**common, noise=0.2).fit(targets))
    plain = mean_rates(RLSFit(**common, fi_smoothing=0.03).fit(targets))
    assert np.all(noisy > 0.1), noisy  # no silent model neuron
    means = [noisy[rates == level].mean() for level in (0.5, 1.0, 2.0, 3.0)]
    assert np.all(np.diff(means) > 0), means  # ordered as the targets
    # measured: 1.7, 1.8, 2.7, 3.3 Hz. A 60-neuron network's own fluctuations add to the
    # noise, so the lowest rates come out high (issue: a per-neuron rate correction)
    assert 1.0 < noisy.mean() / rates.mean() < 1.8, noisy.mean()
    assert (plain < 0.1).sum() >= 15, plain  # the failure the noise fixes


# --------------------------------------------------------------------------------------
# LIF and Izhikevich under noise
# --------------------------------------------------------------------------------------

LOW_TO_HIGH = np.array([0.5, 1.0, 2.0, 5.0, 12.0, 30.0])
"""Rates (Hz) at which the noisy curves are checked against the simulator."""
EXPOSURE = np.array([1000.0, 600.0, 300.0, 150.0, 60.0, 30.0])
"""Neuron-seconds simulated per input (~500 spikes at 0.5 Hz, ~900 at 30 Hz)."""


def _measured(model: str, x: np.ndarray, sigma: float, exposure: np.ndarray,
              seconds: float = 5.0, seed: int = 11) -> np.ndarray:
    """Rates (Hz) of unconnected neurons of ``model`` at constant inputs ``x`` (model units)
    plus white noise ``sigma``, ``exposure`` neuron-seconds per input, with the simulator
    every fit uses (dt = 0.1 ms), after 0.3 s of settling."""
    replicas = np.ceil(exposure / seconds).astype(int)
    n = int(replicas.sum())
    empty = sp.csr_array((n, n), dtype=np.float32)
    net = Network(neuron_model=get_model(model), static=empty, plastic=empty.copy(),
                  plastic_sign=np.zeros(0, dtype=np.int8), tau_s=0.05)
    sim = Simulator(net, dt=1e-4, bias=np.repeat(x, replicas),
                    noise=Noise(sigma=sigma, seed=seed), seed=seed)
    sim.advance(int(0.3 / 1e-4))
    _, ids = sim.advance(int(seconds / 1e-4))
    owner = np.repeat(np.arange(x.size), replicas)
    return np.bincount(owner[ids], minlength=x.size) / (replicas * seconds)


def _inputs_for(curve, rates_hz: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """The inputs at which ``curve`` gives ``rates_hz`` (inverted on a fine grid)."""
    grid = np.linspace(lo, hi, 200001)
    return np.interp(rates_hz, curve.hz(grid), grid)


def _check_against_simulation(model, sigma, lo, hi, table_error):
    curve = noisy_fi_curve(get_model(model), None, 1, sigma)
    x = _inputs_for(curve, LOW_TO_HIGH, lo, hi)
    measured = _measured(model, x, sigma, EXPOSURE)
    predicted = curve.hz(x)
    # Poisson counting error (3 SD) plus the curve's own error
    err = 3 * np.sqrt(predicted / EXPOSURE) + table_error * predicted
    assert np.all(np.abs(measured - predicted) <= err), (x, measured, predicted, err)
    # the noise-free smooth curves fail the same check at the low rates
    for smoothing in (0.03, 0.1):
        smooth = get_model(model).fi_curve(None, 1, smoothing=smoothing).hz(x)
        assert np.all(np.abs(measured - smooth)[:3] > err[:3]), (smoothing, measured, smooth)
    return x, measured, predicted


def test_lif_noisy_curve_is_the_rate_the_simulated_neuron_fires():
    """The Siegert formula with the finite-step correction (noisy.py) against the simulator,
    at 0.5-30 Hz, sigma = 5 mV sqrt(ms). Measured with 4x the exposure: within 3.5 % at
    0.5 Hz and 2 % above (1.6 SD at most); without the correction 20-25 % high at 0.5-2 Hz."""
    x, measured, predicted = _check_against_simulation("lif", 5.0, 5.0, 20.0, 0.02)
    # without the finite-step correction (dt -> 0) the formula runs high at low rates
    white = lif_noisy_rate(x, 5.0, dt=1e-12)[0] / 1e-3
    assert np.all(white[:3] > predicted[:3] * 1.1), (white, predicted)


def test_izhikevich_noisy_curve_is_the_rate_the_simulated_neuron_fires():
    """The measured and smoothed Izhikevich table (RS, sigma = 1) against an independent
    simulation (other noise seed) at 0.5-30 Hz. Measured with 4x the exposure: -2.6, -5.7,
    -3.4, -1.6, 0.0, +0.3 %; the table's own statistical error is ~4 % at 0.5-2 Hz (spread
    over its measuring seeds), hence 6 % on top of the counting error."""
    _check_against_simulation("izhikevich", 1.0, -5.0, 20.0, 0.06)


def _rate_task(n: int) -> xr.Dataset:
    from helpers import sine_targets

    from cortexfit.neurons import theta

    drive = sine_targets(n, seed=7, duration=0.6)
    return xr.Dataset({"rate": (("condition", "unit", "time"), theta.rate_hz(drive.values))},
                      coords={"condition": ["a"], "unit": drive["neuron"].values,
                              "time": drive["time"].values})


@pytest.mark.parametrize("model, n, loops, noise", [("lif", 100, 5, 0.5),
                                                    ("izhikevich", 200, 6, 1.0)])
def test_rate_training_with_noise_learns_for_lif_and_izhikevich(model, n, loops, noise):
    """A short version of Figure 1's rate task with background noise and the model's noisy
    curve. Measured: LIF 0.33 -> 0.70, Izhikevich 0.38 -> 0.68 (training correlation,
    first -> last loop; best 0.73); mean rates 12.9 and 15.1 Hz for targets of 12.2 and
    12.6 Hz. LIF learns with noise 0.5 mV sqrt(ms) (about the recordings preset's 0.2 in
    theta units), not with 1.0 (0.21 -> 0.28): strong noise drowns the network's own
    dynamics."""
    targets = _rate_task(n)
    est = RLSFit(neuron_model=model, noise=noise, dale=False, p=0.3, sigma=4.0,
                 zero_row_sum=True, tau_s=0.05, lam=1.0, loops=loops, stim_amplitude=2.0,
                 stim_duration=0.1, pre_duration=0.3, dt=1e-4, rate_gate=None,
                 compensate_filter=True, progress=False, seed=0).fit(targets)
    pearson = est.history_["pearson"].values
    assert pearson[-1] > pearson[0] + 0.15, pearson
    rate = est.history_["rate"].values[-1]
    goal = float(targets["rate"].mean())
    assert abs(rate - goal) < 0.3 * goal, (rate, goal)
