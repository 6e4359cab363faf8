"""Auxiliary OU targets: statistics, determinism, the neuron dimension, validation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr
from scipy import integrate

from cortexfit.auxiliary import (
    _ou_paths,
    add_auxiliary,
    ou_mean_rate_hz,
    ou_stationary_sd,
    ou_targets,
)
from cortexfit.exceptions import ConfigError, TargetError
from cortexfit.targets import targets_from_rates

TIME = np.arange(230) * 0.02 + 0.01  # 4.6 s of 20 ms bin centres, as in the paper


def recorded_targets(n_units=5, n_cond=2):
    rng = np.random.default_rng(0)
    rates = rng.uniform(1, 20, (n_cond, n_units, TIME.size))
    return targets_from_rates(rates, TIME, unit_ids=[f"u{k}" for k in range(n_units)],
                              conditions=["left", "right"][:n_cond])


def test_shape_units_and_determinism():
    a = ou_targets(7, 2, TIME, seed=3)
    assert a.shape == (2, 7, TIME.size) and a.dtype == np.float64
    assert np.all(np.isfinite(a)) and a.min() >= 0
    np.testing.assert_array_equal(a, ou_targets(7, ["x", "y"], TIME, seed=3))
    b = ou_targets(7, 2, TIME, seed=4)
    assert not np.allclose(a, b)
    # independent per condition and per neuron
    assert not np.allclose(a[0], a[1])
    assert not np.allclose(a[0, 0], a[0, 1])
    assert ou_targets(0, 2, TIME).shape == (2, 0, TIME.size)


def test_stationary_sd_code_form():
    # code form: SD = s * sqrt(tau_c / 2) with tau_c in units of 10 ms
    assert ou_stationary_sd(0.8, 0.1, 0.001) == pytest.approx(0.1 * math.sqrt(40), rel=1e-3)
    assert ou_stationary_sd(0.2, 0.3, 0.001) == pytest.approx(0.3 * math.sqrt(10), rel=2e-3)


def test_mean_rate_matches_theory():
    sigma = 0.1 * math.sqrt(40)
    # E[phi1(x)] for x ~ N(0, sigma^2), phi1 = sqrt(x+)/pi per 10 ms -> Hz (independent
    # numerical check of ou_mean_rate_hz)
    expected, _ = integrate.quad(
        lambda x: math.sqrt(x) / math.pi * 100 * math.exp(-x * x / (2 * sigma ** 2))
        / (sigma * math.sqrt(2 * math.pi)), 0, 12 * sigma)
    assert 9.5 < expected < 11.5
    assert ou_mean_rate_hz() == pytest.approx(expected, rel=1e-3)
    rates = ou_targets(1500, 1, TIME, seed=11)
    assert rates.mean() == pytest.approx(expected, rel=0.04)
    # a different amplitude moves the mean as sqrt(sigma) predicts
    low = ou_targets(1500, 1, TIME, amplitude=0.025, seed=12)
    assert low.mean() == pytest.approx(ou_mean_rate_hz(amplitude=0.025), rel=0.04)


def test_raw_ou_autocorrelation_time_and_sd():
    rng = np.random.default_rng(2)
    x = _ou_paths(60, 40_000, tau_c=0.8, amplitude=0.1, dt=0.001, rng=rng)  # 40 s each
    assert x.std() == pytest.approx(0.1 * math.sqrt(40), rel=0.06)
    xc = x - x.mean(axis=1, keepdims=True)
    lag = 800  # tau_c / dt
    ac = np.mean(xc[:, :-lag] * xc[:, lag:]) / np.mean(xc * xc)
    assert abs(ac - math.exp(-1)) < 0.1
    # stationary from the first sample: the initial values already have the full SD
    x0 = _ou_paths(4000, 1, tau_c=0.8, amplitude=0.1, dt=0.001, rng=rng)[:, 0]
    assert x0.std() == pytest.approx(0.1 * math.sqrt(40), rel=0.05)


def test_rate_is_low_passed_phi_of_the_ou():
    """White-box: rebuild the targets from the raw OU with a plain Euler loop."""
    from cortexfit.neurons.theta import rate_sharp

    dt, tau_s, seed = 0.001, 0.05, 9
    t = np.array([0.0, 0.0205, 0.1, 0.733])
    got = ou_targets(3, 1, t, tau_s=tau_s, dt=dt, seed=seed)[0]
    burn = 5 * tau_s
    n_steps = int(math.floor((t[-1] - t[0] + burn) / dt)) + 2
    x = _ou_paths(3, n_steps, tau_c=0.8, amplitude=0.1, dt=dt, rng=np.random.default_rng(seed))
    phi = rate_sharp(x) * 100.0
    r = np.empty_like(phi)
    r[:, 0] = phi[:, 0]
    for k in range(1, n_steps):
        r[:, k] = r[:, k - 1] + (1 - math.exp(-dt / tau_s)) * (phi[:, k - 1] - r[:, k - 1])
    grid = t[0] - burn + dt * np.arange(n_steps)
    expected = np.stack([np.interp(t, grid, row) for row in r])
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


def test_low_pass_smooths():
    fine = np.arange(4600) * 0.001 + 0.0005
    d_small = np.abs(np.diff(ou_targets(200, 1, fine, tau_s=0.005, seed=0), axis=-1)).mean()
    d_large = np.abs(np.diff(ou_targets(200, 1, fine, tau_s=0.2, seed=0), axis=-1)).mean()
    assert d_large < 0.5 * d_small


def test_add_auxiliary_structure():
    targets = recorded_targets()
    out = add_auxiliary(targets, 2.0, seed=5)
    assert out.sizes["neuron"] == 5 + 10
    assert list(out["neuron"].values[:5]) == [f"u{k}" for k in range(5)]
    assert list(out["neuron"].values[5:]) == [f"aux{k}" for k in range(10)]
    assert list(out["role"].values) == ["recorded"] * 5 + ["auxiliary"] * 10
    assert list(out["recorded_unit"].values) == [f"u{k}" for k in range(5)] + [""] * 10
    assert out["target_rate"].dims == ("condition", "neuron", "time")
    assert out["target_rate"].attrs["units"] == "Hz"
    np.testing.assert_array_equal(out["target_rate"].values[:, :5], targets["rate"].values)
    np.testing.assert_array_equal(out["target_rate"].values[:, 5:],
                                  ou_targets(10, 2, TIME, seed=5))
    xr.testing.assert_identical(out["rate"], targets["rate"])
    for name in targets.variables:
        xr.testing.assert_identical(out[name], targets[name])
    assert out.attrs["aux_ratio"] == 2.0 and out.attrs["n_aux"] == 10
    assert out.attrs["aux_tau_c"] == 0.8 and out.attrs["aux_amplitude"] == 0.1
    assert out.attrs["aux_tau_s"] == 0.05 and out.attrs["aux_seed"] == 5
    assert "neuron" not in targets.dims  # the input is untouched
    xr.testing.assert_identical(add_auxiliary(targets, 2.0, seed=5), out)
    assert not np.allclose(add_auxiliary(targets, 2.0, seed=6)["target_rate"][:, 5:],
                           out["target_rate"][:, 5:])


@pytest.mark.parametrize("ratio,n_units,expected", [(2.0, 5, 10), (0.5, 3, 2), (0.0, 4, 0),
                                                    (1.3, 7, 9), (0.25, 2, 1)])
def test_n_aux_rounding(ratio, n_units, expected):
    out = add_auxiliary(recorded_targets(n_units), ratio)
    assert out.attrs["n_aux"] == expected
    assert out.sizes["neuron"] == n_units + expected


def test_aux_ids_do_not_clash_with_unit_ids():
    rng = np.random.default_rng(0)
    targets = targets_from_rates(rng.uniform(1, 5, (1, 2, 10)), np.arange(10) * 0.02,
                                 unit_ids=["aux0", "aux1"])
    out = add_auxiliary(targets, 1.0)
    ids = list(out["neuron"].values)
    assert ids == ["aux0", "aux1", "aux_0", "aux_1"] and len(set(ids)) == 4


def test_netcdf_round_trip(tmp_path):
    out = add_auxiliary(recorded_targets(), 2.0)
    path = tmp_path / "aux.nc"
    out.to_netcdf(path, engine="h5netcdf")
    xr.testing.assert_identical(xr.load_dataset(path, engine="h5netcdf"), out)


def test_works_on_make_targets_output():
    from cortexfit.io.convention import Trial, make_block
    from cortexfit.targets import make_targets

    rng = np.random.default_rng(1)
    trials = [Trial(0.0, 3.0, [np.sort(rng.uniform(0, 3, 40)) for _ in range(3)],
                    annotations={"condition": "ab"[i % 2]}, events={"go": 1.5})
              for i in range(12)]
    ds = make_targets(make_block(trials, ["a", "b", "c"]), align="go", window=(-1, 1))
    out = add_auxiliary(ds, 2.0)
    assert out.sizes["neuron"] == 9 and out.sizes["trial"] == 12
    xr.testing.assert_identical(out["trial_rate"], ds["trial_rate"])


@pytest.mark.parametrize("kwargs,match", [
    ({"aux_ratio": -1.0}, "aux_ratio is out of range"),
    ({"aux_ratio": float("nan")}, "aux_ratio is out of range"),
    ({"aux_ratio": "2"}, "aux_ratio is not a number"),
    ({"tau_c": 0.0}, "tau_c is out of range"),
    ({"tau_s": -0.05}, "tau_s is out of range"),
    ({"amplitude": 0.0}, "amplitude is out of range"),
    ({"tau_s": 0.001}, "dt is too large"),
    ({"seed": -1}, "seed must be"),
    ({"seed": 1.5}, "seed must be"),
    ({"neuron_model": "hodgkin"}, "unknown neuron model"),
])
def test_add_auxiliary_validation(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        add_auxiliary(recorded_targets(), **kwargs)


def test_add_auxiliary_rejects_non_targets():
    with pytest.raises(TargetError):
        add_auxiliary(xr.Dataset(), 2.0)
    with pytest.raises(TargetError):
        add_auxiliary(np.zeros((2, 3, 4)), 2.0)
    with pytest.raises(TargetError, match="already have auxiliary neurons"):
        add_auxiliary(add_auxiliary(recorded_targets(), 1.0), 1.0)


@pytest.mark.parametrize("args,kwargs,match", [
    ((-1, 1, TIME), {}, "n_aux"),
    ((2.5, 1, TIME), {}, "n_aux"),
    ((2, 0, TIME), {}, "conditions"),
    ((2, "ab", TIME), {}, "conditions"),
    ((2, 1, [0.0, 0.0, 0.1]), {}, "strictly increasing"),
    ((2, 1, [0.0, float("nan")]), {}, "strictly increasing"),
    ((2, 1, "abc"), {}, "time"),
    ((2, 1, TIME), {"dt": 0.5}, "dt is too large"),
    ((2, 1, TIME), {"dt": 0.0}, "dt is out of range"),
    ((10**6, 1, TIME), {}, "too large to simulate"),
])
def test_ou_targets_validation(args, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ou_targets(*args, **kwargs)
