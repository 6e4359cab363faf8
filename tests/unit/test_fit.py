"""The RLS trainer: the paper's experiments at small size, checkpoints, divergence, files."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from helpers import DT, sine_targets

from cortexfit.exceptions import ConfigError, TrainingDiverged
from cortexfit.fit import RLSFit
from cortexfit.metrics import pearson_kernel
from cortexfit.network import ei_network, gaussian_network
from cortexfit.simulate import simulate


def test_input_validation():
    with pytest.raises(ConfigError, match="lam"):
        RLSFit(lam=0).fit(sine_targets(10))
    with pytest.raises(ConfigError, match="form"):
        RLSFit(form="rate", progress=False).fit(sine_targets(10))
    with pytest.raises(ConfigError, match="neuron_model"):
        RLSFit(neuron_model="hh", progress=False).fit(sine_targets(10))


@pytest.fixture(scope="module")
def figure1():
    """The paper's Figure 1 network (METHOD.md 2.1: N = 200, p = 0.3, sigma = 4, each row's
    nonzero mean subtracted, tau_s = 20 ms; updates every 2 ms, lambda = 1) trained with the
    authors' code's protocol (run_train.jl: stimulus U[-2, 2] for 100 ms after 1 s of free
    run, the state carried over between loops). Measured over network seeds 1-3: mean test
    r 0.93-0.955 (6 fresh trials each, worst trial 0.87); with the paper's 50 ms U[-1, 1]
    stimulus and no row balancing the same ranged 0.46-0.96, which is why this follows the
    authors' code."""
    targets = sine_targets(200)
    net = gaussian_network(200, p=0.3, sigma=4.0, tau_s=0.02, zero_row_sum=True, seed=1)
    est = RLSFit(network=net, lam=1.0, update_every=0.002, loops=20, dt=DT, progress=False,
                 stim_amplitude=2.0, stim_duration=0.1, pre_duration=1.0, seed=0).fit(targets)
    return est


def test_figure1_drive_learned_and_recalled_from_fresh_initial_conditions(figure1):
    est = figure1
    history = est.history_
    assert history["pearson"].values[-1] > history["pearson"].values[0]
    targets = est.target_at_updates()[0]
    # six test trials from fresh random initial conditions (theta0 ~ U[0, 2 pi), r = u = 0)
    scores = [pearson_kernel(est.run_trial(0, seed=seed)["u"].values.T, targets).mean()
              for seed in range(101, 107)]
    assert np.mean(scores) >= 0.9, scores
    assert min(scores) >= 0.8, scores
    assert history["weight_change"].values[-1] > 0.1
    assert set(history.data_vars) >= {"pearson", "weight_change", "rate", "frozen"}


def product_targets(n, seed=0, duration=1.0):
    """Products of sines as the paper trains them at N = 200 (Figure 3-figure supplement 2,
    METHOD.md 1.4): A sin(2 pi (t - T0) / T1) sin(2 pi (t - T0) / T2), A ~ U[0.5, 1.5],
    T0, T1, T2 ~ U[0.5, 1] s."""
    rng = np.random.default_rng(seed)
    t = np.arange(0, duration + 1e-9, 0.001)
    amp, t0 = rng.uniform(0.5, 1.5, (1, n, 1)), rng.uniform(0.5, 1.0, (1, n, 1))
    t1, t2 = rng.uniform(0.5, 1.0, (1, n, 1)), rng.uniform(0.5, 1.0, (1, n, 1))
    values = amp * np.sin(2 * np.pi * (t - t0) / t1) * np.sin(2 * np.pi * (t - t0) / t2)
    return xr.DataArray(values, dims=("condition", "neuron", "time"),
                        coords={"condition": ["c0"], "neuron": [str(i) for i in range(n)],
                                "time": t}, attrs={"kind": "drive"})


def test_figure1_products_of_sines_at_n200():
    """The issue's Figure 1 test: N = 200 theta neurons, product-of-sines drive targets, 1 s,
    mean r >= 0.9 on fresh trials. The network and protocol are the Figure 1 fixture's,
    except tau_s = 50 ms (the paper's Figure 5 value) and updates every 1 ms.

    Why: a product of sines has half the variance of a sine of the same amplitude and is
    near 0 for long stretches, so the spike-sampling error (~1 / sqrt(N tau_s), the paper's
    Figure 6) weighs more. Measured with these targets (mean of 4 fresh trials per network
    seed): tau_s 20 ms, 0.69-0.74 (3 seeds); 30 ms, the paper's value for its N = 200
    product networks, 0.85-0.87, and 0.81-0.89 with lam 0.1 or 5, 40 loops, 1 ms updates or
    dt 0.1 ms; 50 ms with 2 ms updates, 0.90-0.94 (6 seeds); 50 ms with 1 ms updates,
    0.915-0.924 (6 seeds: the tightest spread, hence this setting)."""
    net = gaussian_network(200, p=0.3, sigma=4.0, tau_s=0.05, zero_row_sum=True, seed=3)
    est = RLSFit(network=net, lam=1.0, update_every=0.001, loops=30, dt=DT, progress=False,
                 stim_amplitude=2.0, stim_duration=0.1, pre_duration=1.0,
                 seed=3).fit(product_targets(200, seed=3))
    targets = est.target_at_updates()[0]
    scores = [pearson_kernel(est.run_trial(0, seed=seed)["u"].values.T, targets).mean()
              for seed in range(101, 105)]
    assert np.mean(scores) >= 0.9, scores
    assert min(scores) >= 0.8, scores


def test_save_and_load_give_the_same_network(figure1, tmp_path):
    path = figure1.save(tmp_path / "model.npz")
    raw = np.load(path)  # readable with numpy alone
    assert raw["plastic_data"].size == figure1.network_.plastic.nnz
    back = RLSFit.load(path)
    np.testing.assert_array_equal(back.network_.dense(), figure1.network_.dense())
    np.testing.assert_array_equal(back.stimuli_, figure1.stimuli_)
    a = figure1.run_trial(0, seed=5)
    b = back.run_trial(0, seed=5)
    np.testing.assert_array_equal(a["spike_neuron"].values, b["spike_neuron"].values)
    with pytest.raises(Exception, match="not a saved cortexfit model"):
        (tmp_path / "junk.npz").write_text("x")
        RLSFit.load(tmp_path / "junk.npz")


def test_figure4_dale_network_learns_its_innate_trajectories():
    """The paper's Figure 4 network and training (METHOD.md 2.2, 3.3: N = 1000, p = 0.1,
    J = 6, g = 5, tau_s = 60 ms; the drive after 3 s of free run as targets; updates every
    10 ms, lambda = 10, 40 loops) with the authors' stimulus protocol (U[-2, 2] for 100 ms
    after 1 s of free run) and a 1 s window (the paper: 2 s), bias 0.5 (the paper states
    none; without one the network is silent).

    Measured over network seeds 0-3 (6 fresh trials each): the trial-to-trial SD of the
    evoked drive falls to 0.32-0.38 of the untrained network's, and the mean r with the
    innate trajectory rises from -0.07..0.09 to 0.24-0.74 (2 s window: 0.26-0.84). How well
    an E/I network learns its own trajectory varies that much between networks (the
    paper's Figure 4i shows the best of 10 per setting), so the test asserts what holds for
    every seed: SD below 0.6 of the untrained one, r up by more than 0.15. (The earlier N =
    400, 20-loop version gave SD ratios 0.35-0.68 and, on one seed, no gain in r.)"""
    n = 1000
    net = ei_network(n, p=0.1, J=6.0, g=5.0, tau_s=0.06, seed=0)
    before_weights = net.weights().toarray()
    innate = simulate(net, 4.0, bias=0.5, seed=1, dt=DT, record=("u",), record_every=DT)
    drive = innate.traces["u"].values[2999:3999].T  # the 1 s after 3 s of free running
    targets = xr.DataArray(drive[None], dims=("condition", "neuron", "time"),
                           coords={"condition": ["innate"], "neuron": [str(i) for i in range(n)],
                                   "time": np.arange(drive.shape[1]) * DT},
                           attrs={"kind": "drive"})
    settings = dict(lam=10.0, update_every=0.01, bias=0.5, dt=DT, stim_duration=0.1,
                    stim_amplitude=2.0, pre_duration=1.0, progress=False, seed=0)
    trained = RLSFit(network=net, loops=40, **settings).fit(targets)
    untrained = RLSFit(network=net, loops=1, **settings).fit(targets)
    untrained = untrained.with_network(net)  # same stimulus and targets, initial weights

    def evoked(est):
        runs = np.stack([est.run_trial(0, seed=s)["u"].values for s in range(10, 16)])
        goal = est.target_at_updates()[0]
        corr = np.mean([pearson_kernel(run.T, goal).mean() for run in runs])
        return runs.std(axis=0).mean(), corr

    sd_before, corr_before = evoked(untrained)
    sd_after, corr_after = evoked(trained)
    assert sd_after < 0.6 * sd_before  # trial-to-trial variability drops
    assert corr_after > corr_before + 0.15  # the innate trajectory is learned
    after_weights = trained.network_.weights().toarray()
    assert trained.network_.check_dale()
    assert np.all(np.sign(after_weights) * np.sign(before_weights) >= 0), "a sign flipped"
    assert trained.history_["frozen"].values[-1] > 0  # the guard was exercised


def test_a_resumed_run_ends_with_the_same_weights(tmp_path):
    targets = sine_targets(60, n_cond=2, seed=3, duration=0.3)
    settings = dict(dale=False, p=0.3, sigma=2.0, tau_s=0.02, loops=4, dt=DT, progress=False,
                    seed=4, pre_duration=0.1)
    whole = RLSFit(**settings).fit(targets)
    ckpt = tmp_path / "run.ckpt.npz"
    first = RLSFit(**{**settings, "loops": 2}, checkpoint=str(ckpt), checkpoint_every=1)
    first.fit(targets)  # "killed" after two loops: its checkpoint holds loop 2
    resumed = RLSFit(**settings, checkpoint=str(ckpt), checkpoint_every=1).fit(targets)
    np.testing.assert_array_equal(resumed.network_.plastic.data, whole.network_.plastic.data)
    np.testing.assert_allclose(resumed.history_["pearson"].values, whole.history_["pearson"].values)
    other = RLSFit(**{**settings, "lam": 3.0}, checkpoint=str(ckpt))
    with pytest.raises(ConfigError, match="other settings"):
        other.fit(targets)


def test_runaway_rates_stop_training_with_a_clear_error():
    targets = sine_targets(40, duration=0.3) * 1e4  # unreachable drives
    targets.attrs["kind"] = "drive"
    est = RLSFit(dale=False, p=0.5, sigma=1.0, tau_s=0.02, lam=1e-6, loops=6, dt=DT,
                 progress=False, max_rate=300.0, pre_duration=0.05)
    with pytest.raises(TrainingDiverged) as err:
        est.fit(targets)
    message = str(err.value)
    assert "loop 0" in message and "max_rate" in message and "Increase lam" in message


def test_nan_stops_training_naming_the_neuron_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    import cortexfit.rls as fit_module

    real_update = fit_module.RLSState.update
    calls = {"n": 0}
    n_updates_per_loop = 150  # 0.3 s window / 2 ms

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        out = real_update(*args, **kwargs)
        if calls["n"] == 2 * n_updates_per_loop + 10:  # during the third loop
            args[3][args[0].indptr[7]] = np.nan  # a plastic weight of neuron 7
        return out

    monkeypatch.setattr(fit_module.RLSState, "update", poisoned)
    ckpt = tmp_path / "run.npz"
    est = RLSFit(dale=False, p=0.3, sigma=2.0, tau_s=0.02, loops=5, dt=DT, progress=False,
                 checkpoint=str(ckpt), checkpoint_every=1, pre_duration=0.05)
    with pytest.raises(TrainingDiverged) as err:
        est.fit(sine_targets(40, duration=0.3))
    assert "loop 2" in str(err.value) and "7" in str(err.value)
    saved = np.load(ckpt)
    assert int(saved["loops_done"]) == 2 and np.all(np.isfinite(saved["plastic"]))


def test_figure2_two_stimuli_evoke_two_learned_patterns():
    targets = sine_targets(200, n_cond=2, seed=5)
    # the Figure 1 network and protocol (the fixture above), 30 loops (the paper's count),
    # tau_s = 50 ms. Measured over network seeds 0-5 (3 fresh trials per stimulus): recall
    # 0.91-0.955 on average, worst trial 0.887, the other pattern |r| <= 0.07. With Figure
    # 1's tau_s = 20 ms the averages were 0.85-0.87 but single trials fell to 0.77-0.84
    # (a round-off change in the kernel moved this seed's worst trial from 0.85 to 0.77).
    est = RLSFit(dale=False, p=0.3, sigma=4.0, zero_row_sum=True, tau_s=0.05, lam=1.0,
                 loops=30, stim_duration=0.1, stim_amplitude=2.0, pre_duration=1.0, dt=DT,
                 progress=False, seed=0).fit(targets)
    goal = est.target_at_updates()
    for c in (0, 1):
        runs = [est.run_trial(c, seed=s)["u"].values.T for s in (31, 32, 33)]
        recall = [pearson_kernel(run, goal[c]).mean() for run in runs]
        other = [pearson_kernel(run, goal[1 - c]).mean() for run in runs]
        assert min(recall) >= 0.8, (c, recall)
        assert max(np.abs(other)) < 0.2, (c, other)  # each stimulus evokes its own pattern


def test_rate_training_filtered_trains_follow_rate_targets():
    from cortexfit.neurons import theta

    drive = sine_targets(200, seed=7)
    rates = theta.rate_hz(drive.values)  # the paper's rate targets: sqrt([f]+) / pi
    targets = xr.Dataset({"rate": (("condition", "unit", "time"), rates)},
                         coords={"condition": ["a"], "unit": drive["neuron"].values,
                                 "time": drive["time"].values})
    # the authors' protocol (stimulus U[-2, 2] for 100 ms after 1 s of free run), as for
    # Figure 1. Measured over network seeds 0-5 (4 fresh trials each): every trial 0.878-
    # 0.906. With a 50 ms U[-1, 1] stimulus after 0.5 s the trials ranged 0.75-0.89.
    settings = dict(dale=False, p=0.3, sigma=4.0, zero_row_sum=True, tau_s=0.05, lam=1.0,
                    loops=20, rate_gate=None, stim_amplitude=2.0, stim_duration=0.1,
                    pre_duration=1.0, dt=DT, progress=False, seed=0)
    est = RLSFit(**settings, compensate_filter=True).fit(targets)
    assert est.targets_.form == "rate"
    goal = est.target_at_updates()[0]  # Hz
    scores = [pearson_kernel(est.run_trial(0, seed=s)["r"].values.T, goal).mean()
              for s in (41, 42, 43, 44)]
    assert min(scores) >= 0.8, scores
    untrained = RLSFit(**{**settings, "loops": 1}).fit(targets)
    untrained = untrained.with_network(gaussian_network(
        200, p=0.3, sigma=4.0, zero_row_sum=True, tau_s=0.05, seed=np.random.default_rng([0, 1])))
    before = pearson_kernel(untrained.run_trial(0, seed=41)["r"].values.T, goal).mean()
    assert before < 0.3  # the untrained network does not follow the targets


@pytest.fixture(scope="module")
def synthetic_targets():
    from cortexfit.datasets import make_synthetic_recording, recommended_targets_kwargs
    from cortexfit.targets import make_targets

    recording = make_synthetic_recording(seed=0)
    return make_targets(recording.block, **recommended_targets_kwargs())


def test_recorded_plus_auxiliary_fit_of_the_synthetic_recording(synthetic_targets):
    from cortexfit.auxiliary import add_auxiliary
    from cortexfit.evaluate import model_rates

    def score(aux_ratio):
        targets = (add_auxiliary(synthetic_targets, aux_ratio=aux_ratio, seed=0)
                   if aux_ratio else synthetic_targets)
        # noise-free: the aux_ratio trend of the paper's Figure 5e (the preset's noise
        # costs this 1 ms-step fit ~0.04, pipelines/README.md "Fit quality")
        est = RLSFit.for_recordings(dt=DT, progress=False, seed=0, noise=0.0).fit(targets)
        model = model_rates(est, synthetic_targets, n_trials=12)
        data = synthetic_targets["rate"].sel(condition=model["condition"])
        return pearson_kernel(model["rate"].values, data.values).mean(), est

    with_aux, est = score(2.0)
    without_aux, _ = score(0.0)
    assert with_aux >= 0.8, with_aux
    assert with_aux > without_aux + 0.2, (with_aux, without_aux)  # the paper's Figure 5e trend
    roles = est.targets_.roles
    assert roles.count("recorded") == synthetic_targets.sizes["unit"]
    assert roles.count("auxiliary") == 2 * synthetic_targets.sizes["unit"]


def test_the_best_loop_by_validation_score_is_kept(tmp_path):
    """A validator scores every loop; the fit ends with the weights of the best one (here
    loop 2 of 4), exactly those of a 2-loop fit, and a resumed fit remembers it."""
    targets = sine_targets(40, seed=3)
    scores = iter([0.3, 0.9, 0.5, 0.4])
    settings = dict(dale=False, p=0.3, sigma=1.0, tau_s=0.05, dt=DT, progress=False, seed=0)
    seen = []

    def judge(fitted):
        seen.append(fitted.network.plastic.data.copy())
        return next(scores)

    est = RLSFit(**settings, loops=4, validate_every=1, validator=judge).fit(targets)
    two = RLSFit(**settings, loops=2).fit(targets)
    assert est.history_.attrs["best_loop"] == 2
    assert np.array_equal(est.network_.plastic.data, two.network_.plastic.data)
    assert not np.array_equal(est.network_.plastic.data, seen[-1])  # not the last loop's
    assert np.allclose(est.history_["validation"].values, [0.3, 0.9, 0.5, 0.4])
    # interrupted after loop 3 and resumed: the best loop (2) survives in the checkpoint
    ckpt = tmp_path / "ckpt.npz"
    scores = iter([0.3, 0.9, 0.5])
    RLSFit(**settings, loops=3, validate_every=1, validator=judge, checkpoint=str(ckpt),
           checkpoint_every=3).fit(targets)
    scores = iter([0.4])
    resumed = RLSFit(**settings, loops=4, validate_every=1, validator=judge,
                     checkpoint=str(ckpt), checkpoint_every=3).fit(targets)
    assert resumed.history_.attrs["best_loop"] == 2
    assert np.array_equal(resumed.network_.plastic.data, two.network_.plastic.data)
    # without a validator the last loop is kept and nothing is scored
    assert "best_loop" not in two.history_.attrs
    assert np.isnan(two.history_["validation"].values).all()
