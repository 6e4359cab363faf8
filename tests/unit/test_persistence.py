"""Saving and loading a fitted model (``RLSFit.save`` / ``RLSFit.load``) restores everything
the diagnostics, the scores and test trials read: a run on the reloaded model equals one on
the original, number for number.

Three small fits (each a few seconds): the recordings preset (Gaussian network, the case of
issue 12 where the reloaded spectrum's ``radius_theory`` was 0.9933 instead of 1.0); an E/I
network under Dale's law whose E/I split comes from the recording's cell types, with a bias;
and a given LIF network with its own parameters, static and plastic synapses and drive
targets.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import scipy.sparse as sp
import xarray as xr

from cortexfit.diagnostics import (
    lesion,
    lyapunov,
    perturbation,
    quasistatic,
    shuffle,
    spectrum,
)
from cortexfit.evaluate import model_rates, score
from cortexfit.exceptions import ConfigError
from cortexfit.fit import RLSFit
from cortexfit.network import Network, ei_network
from cortexfit.neurons.base import NeuronModel
from cortexfit.neurons.lif import LIFParams

DT = 1e-3


@pytest.fixture(scope="module")
def recording_targets():
    from cortexfit.datasets import make_synthetic_recording, recommended_targets_kwargs
    from cortexfit.targets import make_targets

    recording = make_synthetic_recording(seed=0, n_units=16)
    kwargs = recommended_targets_kwargs()
    kwargs["window"] = (-0.2, 0.8)
    return make_targets(recording.block, **kwargs)


def _fit_rate(targets, **settings):
    from cortexfit.auxiliary import add_auxiliary

    est = RLSFit.for_recordings(loops=3, dt=DT, progress=False, seed=0, pre_duration=0.2,
                                **settings)
    return est.fit(add_auxiliary(targets, aux_ratio=1, seed=0))


def _drive_targets(n, duration=0.6):
    rng = np.random.default_rng(0)
    t = np.arange(0, duration + 1e-9, 0.001)
    values = rng.uniform(2, 6, (1, n, 1)) * np.sin(2 * np.pi * t / rng.uniform(0.3, 1, (1, n, 1)))
    return xr.DataArray(values, dims=("condition", "neuron", "time"),
                        coords={"condition": ["c0"], "neuron": [str(i) for i in range(n)],
                                "time": t}, attrs={"kind": "drive"})


_CASES: dict = {}


def _case(kind, recording_targets, tmp_path_factory):
    """(kind, original, reloaded, targets or None), fitted once per module."""
    if kind in _CASES:
        return _CASES[kind]
    if kind == "gaussian":
        est, targets = _fit_rate(recording_targets), recording_targets
    elif kind == "dale":
        est = _fit_rate(recording_targets, dale=True, J=1.0, g=4.0, p=0.2, bias=0.3,
                        frac_exc=0.7, rate_gate=0.0, fi_smoothing=0.05)
        targets = recording_targets
    else:
        net = ei_network(30, p=0.2, J=2.0, g=4.0, tau_s=0.03, k_plastic=5, plastic_scale=0.5,
                         neuron_model="lif", model_params=LIFParams(tau=15.0, t_ref=2.0),
                         seed=4)
        est = RLSFit(network=net, loops=2, dt=DT, progress=False, seed=2, bias=np.linspace(
            14.0, 18.0, 30), pre_duration=0.1, update_every=0.004).fit(_drive_targets(30))
        targets = None
    path = est.save(tmp_path_factory.mktemp(kind) / "model.npz")
    _CASES[kind] = (kind, est, RLSFit.load(path), targets)
    return _CASES[kind]


@pytest.fixture(scope="module", params=["gaussian", "dale", "lif"])
def case(request, recording_targets, tmp_path_factory):
    return _case(request.param, recording_targets, tmp_path_factory)


@pytest.fixture(scope="module", params=["gaussian", "dale"])
def rate_case(request, recording_targets, tmp_path_factory):
    """The fits to rate targets (lesion, shuffle and the scores compare rates)."""
    return _case(request.param, recording_targets, tmp_path_factory)


# ------------------------------------------------------------------- generic comparison
def _assert_same(a, b, where):
    """Equal values, types and dtypes, recursively (arrays, sparse, xarray, dataclasses)."""
    if isinstance(a, (xr.Dataset, xr.DataArray)):
        xr.testing.assert_identical(a, b)
        return
    if sp.issparse(a):
        assert sp.issparse(b) and a.format == b.format and a.shape == b.shape, where
        for name in ("data", "indices", "indptr"):
            _assert_same(getattr(a, name), getattr(b, name), f"{where}.{name}")
        return
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), (where, type(b))
        assert a.dtype == b.dtype and a.shape == b.shape, (where, a.dtype, b.dtype)
        np.testing.assert_array_equal(a, b, err_msg=where)
        return
    if isinstance(a, NeuronModel):
        assert b is a, where
        return
    assert type(a) is type(b), (where, type(a), type(b))
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            if f.name != "_out":  # the simulator's cache, rebuilt on demand
                _assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), (where, a.keys(), b.keys())
        for k in a:
            _assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{k}]")
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, (where, a, b)


def test_every_fitted_attribute_setting_and_network_field_survives(case):
    _, est, back, _ = case
    fitted = sorted(k for k in vars(est) if k.endswith("_") and not k.startswith("_"))
    assert fitted == sorted(k for k in vars(back) if k.endswith("_") and not k.startswith("_"))
    for name in fitted:
        _assert_same(getattr(est, name), getattr(back, name), name)
    _assert_same(est.settings(), back.settings(), "settings()")
    for f in dataclasses.fields(RLSFit):
        _assert_same(getattr(est, f.name), getattr(back, f.name), f.name)
    # the network, field by field (info: the settings the spectrum's theory reads)
    assert isinstance(back.network_, Network)
    assert back.network_.info and back.network_.info == est.network_.info


def test_the_saved_file_is_plain_numpy(case, tmp_path):
    _, est, _, _ = case
    path = est.save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            assert data[key].dtype != object, key
        assert int(data["format_version"]) == 2


# ------------------------------------------------------------------- diagnostics
def test_spectrum_on_the_reloaded_model_is_the_original(case):
    kind, est, back, _ = case
    for normalize in (False, True):
        a, b = spectrum(est, normalize=normalize), spectrum(back, normalize=normalize)
        xr.testing.assert_identical(a, b)
    if kind == "gaussian":  # issue 12: 0.9933 (estimated) instead of sigma = 1
        assert float(spectrum(back)["radius_theory"]) == 1.0


def test_quasistatic_perturbation_lyapunov_on_the_reloaded_model(case):
    kind, est, back, _ = case
    fi = "sharp" if kind == "lif" else "smooth"
    xr.testing.assert_identical(quasistatic(est, fi=fi, keep_traces=True),
                                quasistatic(back, fi=fi, keep_traces=True))
    xr.testing.assert_identical(perturbation(est, delete_after=0.05, duration=0.2),
                                perturbation(back, delete_after=0.05, duration=0.2))
    if kind != "lif":  # theta only
        kw = {"duration": 0.1, "transient": 0.05, "n_seeds": 1, "stimulus": 0}
        xr.testing.assert_identical(lyapunov(est, **kw), lyapunov(back, **kw))


def test_run_trial_on_the_reloaded_model(case):
    _, est, back, _ = case
    for c in range(len(est.targets_.conditions)):
        xr.testing.assert_identical(est.run_trial(c, seed=7, pre_duration=0.05),
                                    back.run_trial(c, seed=7, pre_duration=0.05))
    np.testing.assert_array_equal(est.target_at_updates(), back.target_at_updates())


def test_lesion_shuffle_and_scores_on_the_reloaded_model(rate_case):
    _, est, back, targets = rate_case
    kw = {"fractions": (0.1, 0.5), "n_repeats": 1, "n_trials": 1, "seed": 0}
    xr.testing.assert_identical(lesion(est, targets, **kw), lesion(back, targets, **kw))
    xr.testing.assert_identical(shuffle(est, targets, **kw), shuffle(back, targets, **kw))
    xr.testing.assert_identical(model_rates(est, targets, n_trials=2),
                                model_rates(back, targets, n_trials=2))
    xr.testing.assert_identical(score(est, targets, n_trials=2, n_splits=5),
                                score(back, targets, n_trials=2, n_splits=5))


# ------------------------------------------------------------------- versions and errors
def test_a_version_1_file_still_loads(case, tmp_path):
    """Files written before the network's settings were saved: what they hold is read back
    (the network's settings are then unknown and the spectrum estimates its radius)."""
    _, est, _, _ = case
    path = est.save(tmp_path / "v2.npz")
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["format_version"] = np.array(1)
    arrays["settings"] = np.array(json.dumps(
        {k: (None if isinstance(v, np.ndarray) else v) for k, v in est.settings().items()}))
    for key in [k for k in arrays if k not in _V1_KEYS and not k.startswith("history_")]:
        del arrays[key]
    old = tmp_path / "v1.npz"
    np.savez_compressed(old, **arrays)
    back = RLSFit.load(old)
    np.testing.assert_array_equal(back.network_.dense(), est.network_.dense())
    np.testing.assert_array_equal(back.stimuli_, est.stimuli_)
    assert back.network_.info == {}


_V1_KEYS = {
    "format_version", "settings", "neuron_model", "model_params", "tau_s", "excitatory",
    "static_indptr", "static_indices", "static_data", "plastic_indptr", "plastic_indices",
    "plastic_data", "plastic_sign", "frozen", "initial_weights_indptr",
    "initial_weights_indices", "initial_weights_data", "form", "conditions", "neuron_ids",
    "roles", "recorded_unit", "target_time", "target_values", "stimuli", "update_times",
}


def test_an_unknown_version_names_it(case, tmp_path):
    _, est, _, _ = case
    path = est.save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["format_version"] = np.array(99)
    np.savez(tmp_path / "future.npz", **arrays)
    with pytest.raises(ConfigError, match="version") as info:
        RLSFit.load(tmp_path / "future.npz")
    assert "99" in str(info.value)
