"""make_targets: rates against a known truth, the split, unit selection, errors, NetCDF."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import quantities as pq
import xarray as xr
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cortexfit import targets as targets_module
from cortexfit.auxiliary import add_auxiliary
from cortexfit.exceptions import ConfigError, CortexfitError, DataError, TargetError
from cortexfit.io.convention import Trial, make_block
from cortexfit.targets import (
    KERNELS,
    crop_to_score_window,
    make_targets,
    rates_from_spike_times,
    score_window,
    targets_from_rates,
)
from cortexfit.targets.rates import _Smoother

WINDOW = (-1.5, 1.0)
BIN = 0.02
FREQ = 1.0  # Hz of the rate modulation


def true_rate(unit: int, cond: int, t: np.ndarray) -> np.ndarray:
    """Known rate (Hz) of unit ``unit`` in condition ``cond`` at time ``t`` from the event."""
    base = 8.0 + 2.0 * unit
    phase = 0.7 * unit + (math.pi if cond else 0.0)
    return base * (1.0 + 0.8 * np.sin(2 * math.pi * FREQ * t + phase))


def poisson(rng, rate_fn, t0: float, t1: float, rmax: float) -> np.ndarray:
    """Inhomogeneous Poisson spike times on [t0, t1] by thinning."""
    n = rng.poisson(rmax * (t1 - t0))
    cand = np.sort(rng.uniform(t0, t1, n))
    return cand[rng.uniform(0, rmax, n) < rate_fn(cand)]


def known_block(n_per_cond: int = 60, n_units: int = 5, seed: int = 1):
    """Two conditions, ``n_units`` sinusoidal units plus a silent one, events jittered."""
    rng = np.random.default_rng(seed)
    trials = []
    for i in range(2 * n_per_cond):
        cond = i % 2
        go = rng.uniform(2.0, 2.5)
        spikes = []
        for u in range(n_units):
            rmax = 2 * (8.0 + 2.0 * u)
            spikes.append(poisson(rng, lambda t, u=u, c=cond: true_rate(u, c, t - go), 0.0, 4.0,
                                  rmax))
        spikes.append(np.array([]))  # silent unit
        trials.append(Trial(
            0.0, 4.0, spikes,
            annotations={"condition": "left" if cond else "right",
                         "response": "correct" if i % 5 else "error", "trial_id": 1000 + i},
            events={"go_cue": go} if i != 7 else {},
        ))
    ids = [f"u{u}" for u in range(n_units)] + ["silent"]
    return make_block(trials, ids, unit_annotations=[{"cell_type": "pyr"}] * (n_units + 1),
                      source="synthetic")


@pytest.fixture(scope="module")
def block():
    return known_block()


@pytest.fixture(scope="module")
def targets(block):
    return make_targets(block, align="go_cue", window=WINDOW)


# ---------------------------------------------------------------------------------------
# rates against the truth
# ---------------------------------------------------------------------------------------

def test_rates_match_known_profile(targets):
    t = targets["time"].values
    means_est, means_true = [], []
    for c, label in enumerate(targets["condition"].values):
        cond = 1 if label == "left" else 0
        for u in range(5):
            est = targets["rate"].sel(condition=label, unit=f"u{u}").values
            truth = true_rate(u, cond, t)
            assert np.corrcoef(est, truth)[0, 1] > 0.9, (label, u)
            held = targets["rate_heldout"].sel(condition=label, unit=f"u{u}").values
            assert np.corrcoef(held, truth)[0, 1] > 0.7, (label, u)
            means_est.append(est.mean())
            means_true.append(truth.mean())
    assert np.mean(means_est) == pytest.approx(np.mean(means_true), rel=0.04)
    assert targets["rate"].dtype == np.float64 and targets["rate_heldout"].dtype == np.float64
    assert np.all(np.isfinite(targets["rate"])) and float(targets["rate"].min()) >= 0


def test_time_coordinate_and_attrs(targets):
    n = round((WINDOW[1] - WINDOW[0]) / BIN)
    t = targets["time"].values
    assert t.size == n == 125
    np.testing.assert_allclose(t, WINDOW[0] + BIN * (np.arange(n) + 0.5), atol=1e-12)
    assert targets["time"].attrs["units"] == "s"
    a = targets.attrs
    assert a["align_event"] == "go_cue" and a["window_start"] == -1.5 and a["window_stop"] == 1.0
    assert a["bin_size"] == BIN and a["kernel"] == "gaussian" and a["kernel_width"] == 0.05
    assert a["has_trials"] == 1 and a["condition_key"] == "condition" and a["source"] == "synthetic"
    assert a["n_trials_missing_event"] == 1 and a["n_trials_used"] == 119
    assert a["n_trials_short_padding"] == 0
    assert list(targets["condition"].values) == ["left", "right"]
    assert list(targets["cell_type"].values) == ["pyr"] * 5
    assert targets["trial_rate"].dtype == np.float32


def test_mean_rate_is_spike_count_over_window(block, targets):
    # unit u0, all used trials: count spikes in [go + start, go + stop)
    total, n = 0, 0
    for seg in block.segments:
        ev = [e for e in seg.events if e.name == "go_cue"]
        if not ev:
            continue
        go = float(ev[0].times[0])
        times = seg.spiketrains[0].magnitude
        total += np.sum((times >= go + WINDOW[0]) & (times < go + WINDOW[1]))
        n += 1
    expected = total / (n * (WINDOW[1] - WINDOW[0]))
    assert float(targets["mean_rate"].sel(unit="u0")) == pytest.approx(expected, rel=1e-12)


def test_split_stratified_disjoint_deterministic(block, targets):
    nt = targets["n_trials"]
    # 60 trials per condition; one "left" trial (i = 7) lacks the event -> 59
    assert nt.sel(condition="left").values.tolist() == [47, 12]
    assert nt.sel(condition="right").values.tolist() == [48, 12]
    split = targets["trial_split"].values
    cond = targets["trial_condition"].values
    for label in ("left", "right"):
        assert np.sum((cond == label) & (split == "heldout")) == 12
    ids = targets["trial_id"].values
    assert len(set(ids)) == ids.size == 119
    train_ids = set(ids[split == "train"])
    held_ids = set(ids[split == "heldout"])
    assert not train_ids & held_ids
    # the averages are the means of the trial rates of each split
    tr = targets["trial_rate"].values.astype(np.float64)
    for label in ("left", "right"):
        sel = (cond == label) & (split == "train")
        np.testing.assert_allclose(targets["rate"].sel(condition=label).values,
                                   tr[sel].mean(axis=0), rtol=1e-5, atol=1e-4)
        sel = (cond == label) & (split == "heldout")
        np.testing.assert_allclose(targets["rate_heldout"].sel(condition=label).values,
                                   tr[sel].mean(axis=0), rtol=1e-5, atol=1e-4)
    again = make_targets(block, align="go_cue", window=WINDOW)
    assert list(again["trial_split"].values) == list(split)
    xr.testing.assert_identical(again, targets)
    other = make_targets(block, align="go_cue", window=WINDOW, seed=1)
    assert list(other["trial_split"].values) != list(split)
    # a condition's split does not depend on the other conditions being selected
    only_left = make_targets(block, align="go_cue", window=WINDOW, where={"condition": "left"})
    left = cond == "left"
    assert list(only_left["trial_split"].values) == list(split[left])
    assert list(only_left["trial_id"].values) == list(ids[left])


def test_min_rate_drops_silent_unit(targets):
    assert "silent" not in targets["unit"].values
    assert json.loads(targets.attrs["dropped_units"]) == ["silent"]
    assert "silent (0 Hz)" in targets.attrs["report"]
    assert list(targets["unit"].values) == [f"u{u}" for u in range(5)]


def test_min_rate_threshold_and_all_dropped(block):
    ds = make_targets(block, align="go_cue", window=WINDOW, min_rate=0.0, keep_trials=False)
    assert "silent" in ds["unit"].values and "trial_rate" not in ds
    assert json.loads(ds.attrs["dropped_units"]) == []
    with pytest.raises(TargetError, match="every unit is below min_rate") as exc:
        make_targets(block, align="go_cue", window=WINDOW, min_rate=1000.0)
    assert "u4" in str(exc.value)


def test_where_and_condition_lists(block):
    ds = make_targets(block, align="go_cue", window=WINDOW, where={"response": "correct"},
                      heldout_fraction=0.25)
    assert ds.attrs["n_trials_selected"] == 96
    assert json.loads(ds.attrs["selection"]) == {"response": ["correct"]}
    ds2 = make_targets(block, align="go_cue", window=WINDOW,
                       where=lambda a: a["response"] == "correct", heldout_fraction=0.25)
    xr.testing.assert_equal(ds["rate"], ds2["rate"])
    ds3 = make_targets(block, align="go_cue", window=WINDOW, condition=["condition", "response"],
                       where={"response": ["correct", "error"]}, heldout_fraction=0.1,
                       min_trials=1)
    assert set(ds3["condition"].values) == {"left|correct", "left|error", "right|correct",
                                            "right|error"}
    assert ds3.attrs["condition_key"] == "condition|response"
    # string form matches: trial_id 1000 is an int
    ds4 = make_targets(block, align="go_cue", window=WINDOW, min_trials=1, heldout_fraction=0,
                       where={"trial_id": ["1000", 1001]})
    assert sorted(ds4["trial_id"].values.tolist()) == [1000, 1001]


def test_heldout_fraction_zero(block):
    ds = make_targets(block, align="go_cue", window=WINDOW, heldout_fraction=0)
    assert "rate_heldout" not in ds
    assert ds["n_trials"].sel(split="heldout").values.tolist() == [0, 0]
    assert set(ds["trial_split"].values) == {"train"}


def test_netcdf_round_trip(targets, tmp_path):
    path = tmp_path / "targets.nc"
    targets.to_netcdf(path, engine="h5netcdf")
    back = xr.load_dataset(path, engine="h5netcdf")
    xr.testing.assert_identical(back, targets)


def test_netcdf_round_trip_string_trial_ids(tmp_path):
    rng = np.random.default_rng(0)
    trials = [Trial(0.0, 2.0, [np.sort(rng.uniform(0, 2, 30))],
                    annotations={"condition": i % 2, "trial_id": f"t{i}"}, events={"go": 1.0})
              for i in range(8)]
    ds = make_targets(make_block(trials, ["a"]), align="go", window=(-0.5, 0.5),
                      heldout_fraction=0.25, min_trials=2)
    assert ds["trial_id"].dtype == object and list(ds["condition"].values) == ["0", "1"]
    ds.to_netcdf(tmp_path / "t.nc", engine="h5netcdf")
    xr.testing.assert_identical(xr.load_dataset(tmp_path / "t.nc", engine="h5netcdf"), ds)


# ---------------------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------------------

def single_trial_block(spikes, t_stop=2.0, event=1.0, n_trials=4):
    trials = [Trial(0.0, t_stop, [np.asarray(spikes, dtype=float)],
                    annotations={"condition": "a"}, events={"go": event})
              for _ in range(n_trials)]
    return make_block(trials, ["unit"])


def test_kernel_none_is_counts_over_bin_size():
    # window [0.5, 1.5) in half-open bins of 0.1 s: 0.5 is in, 1.5 is out
    spikes = [0.2, 0.5, 0.51, 0.55, 0.58, 0.72, 0.999, 1.05, 1.45, 1.499, 1.5, 1.7]
    block = single_trial_block(spikes)
    ds = make_targets(block, align="go", window=(-0.5, 0.5), bin_size=0.1, kernel="none",
                      heldout_fraction=0, min_trials=1, min_rate=0)
    counts = np.array([4, 0, 1, 0, 1, 1, 0, 0, 0, 2], dtype=float)
    np.testing.assert_array_equal(ds["rate"].values[0, 0], counts / 0.1)
    np.testing.assert_array_equal(ds["trial_rate"].values[0, 0], (counts / 0.1).astype(np.float32))
    assert ds.attrs["kernel_width"] == 0.0
    np.testing.assert_allclose(ds["time"].values, -0.45 + 0.1 * np.arange(10), atol=1e-12)


@pytest.mark.parametrize("kernel", [k for k in KERNELS if k != "none"])
def test_kernels_agree_with_elephant_instantaneous_rate(block, kernel):
    from elephant.statistics import instantaneous_rate

    width, bin_size = 0.03, 0.01
    ds = make_targets(block, align="go_cue", window=(-1.0, 1.0), bin_size=bin_size, kernel=kernel,
                      kernel_width=width, min_rate=0, where={"trial_id": list(range(1000, 1006))},
                      heldout_fraction=0, min_trials=1)
    sm = _Smoother(kernel, width, bin_size)
    n = ds.sizes["time"]
    for j, seg in enumerate(s for s in block.segments if s.annotations["trial_id"] < 1006):
        go = float(seg.events[0].times[0])
        lo = go - 1.0 - sm.half * bin_size
        ref = instantaneous_rate(
            list(seg.spiketrains), sampling_period=bin_size * pq.s, kernel=sm.obj,
            cutoff=sm.cutoff, t_start=lo * pq.s, t_stop=(lo + (n + 2 * sm.half + 0.5) * bin_size) * pq.s,
            center_kernel=sm.center,
        ).magnitude[sm.half:sm.half + n].T / sm.mass
        np.testing.assert_allclose(ds["trial_rate"].values[j], ref, rtol=1e-5, atol=1e-4)
    assert ds.attrs["kernel_causal"] == int(kernel in ("exponential", "alpha"))


@pytest.mark.parametrize("kernel,width", [("gaussian", 0.05), ("exponential", 0.05),
                                          ("alpha", 0.05), ("rectangular", 0.05),
                                          ("gaussian", 0.002), ("epanechnikov", 0.1)])
def test_each_spike_integrates_to_one(kernel, width):
    ds = make_targets(single_trial_block([1.0 + 0.013]), align="go", window=(-0.9, 0.9),
                      bin_size=0.02, kernel=kernel, kernel_width=width, heldout_fraction=0,
                      min_trials=1, min_rate=0)
    integral = float(ds["rate"].sum()) * 0.02
    assert integral == pytest.approx(1.0, rel=1e-6)


def test_causal_kernels_do_not_anticipate():
    spike = 1.0 + 0.011  # in the bin [1.0, 1.02) around the event
    for kernel in ("exponential", "alpha"):
        ds = make_targets(single_trial_block([spike]), align="go", window=(-0.5, 0.5),
                          bin_size=0.02, kernel=kernel, kernel_width=0.05, heldout_fraction=0,
                          min_trials=1, min_rate=0)
        r = ds["rate"].values[0, 0]
        t = ds["time"].values
        assert np.all(r[t < 0] == 0) and r[t > 0].max() > 0
    ds = make_targets(single_trial_block([spike]), align="go", window=(-0.5, 0.5),
                      bin_size=0.02, kernel="gaussian", kernel_width=0.05, heldout_fraction=0,
                      min_trials=1, min_rate=0)
    assert ds["rate"].values[0, 0][ds["time"].values < 0].max() > 0


def test_short_padding_is_counted():
    block = single_trial_block([0.7, 1.2], t_stop=2.0, event=1.0)
    ds = make_targets(block, align="go", window=(-1.0, 1.0), bin_size=0.02, kernel="gaussian",
                      kernel_width=0.05, heldout_fraction=0, min_trials=1, min_rate=0)
    assert ds.attrs["n_trials_short_padding"] == 4


def test_112_trials_61_units():
    # the size benchmarks/bench_data.py times (it was a wall-clock test here)
    rng = np.random.default_rng(5)
    trials = [Trial(0.0, 5.0, [np.sort(rng.uniform(0, 5, rng.poisson(40))) for _ in range(61)],
                    annotations={"condition": "l" if i % 2 else "r"}, events={"go": 3.0})
              for i in range(112)]
    block = make_block(trials, [f"u{k}" for k in range(61)])
    ds = make_targets(block, align="go", window=(-2.5, 1.5))
    assert ds["trial_rate"].shape == (112, 61, 200)
    assert list(ds["condition"].values) == ["l", "r"]
    assert ds["n_trials"].sel(split="heldout").values.tolist() == [11, 11]
    check_sound(ds)


# ---------------------------------------------------------------------------------------
# rates_from_spike_times: plain arrays, the same rates as make_targets
# ---------------------------------------------------------------------------------------

def _event_trials(block, event="go_cue"):
    """(event time, spike times per unit) of every trial that holds ``event``."""
    out = []
    for seg in block.segments:
        ev = [e for e in seg.events if e.name == event]
        if ev:
            out.append((float(ev[0].times[0]), [st.magnitude for st in seg.spiketrains]))
    return out


@pytest.mark.parametrize("kernel", KERNELS)
def test_rates_from_spike_times_equal_make_targets(block, kernel):
    kw = {"window": WINDOW, "bin_size": BIN, "kernel": kernel, "kernel_width": 0.05}
    ds = make_targets(block, align="go_cue", min_rate=0, heldout_fraction=0, min_trials=1, **kw)
    trials = _event_trials(block)
    # spike times relative to the event, on the clock of the window
    rates = rates_from_spike_times([[t - go for t in units] for go, units in trials], **kw)
    assert rates.dtype == np.float64 and rates.shape == (119, 6, ds.sizes["time"])
    np.testing.assert_array_equal(rates.astype(np.float32), ds["trial_rate"].values)
    cond = ds["trial_condition"].values
    for label in ds["condition"].values:
        np.testing.assert_array_equal(rates[cond == label].mean(axis=0),
                                      ds["rate"].sel(condition=label).values)
    # (times, unit ids) per trial, rows in the order of units: the same numbers
    pairs = [(np.concatenate(units) - go, np.repeat(np.arange(6), [u.size for u in units]))
             for go, units in trials]
    np.testing.assert_array_equal(rates_from_spike_times(pairs, units=[5, 0, 2], **kw),
                                  rates[:, [5, 0, 2]])
    # spike times relative to the window start, window (0, length)
    start, stop = WINDOW
    shifted = rates_from_spike_times(
        [[t - (go + start) for t in units] for go, units in trials],
        **{**kw, "window": (0.0, stop - start)})
    np.testing.assert_allclose(shifted, rates, rtol=1e-12, atol=1e-9)


def test_rates_from_spike_times_errors():
    kw = {"window": (0.0, 1.0), "bin_size": 0.1, "kernel": "gaussian", "kernel_width": 0.05}
    assert rates_from_spike_times([[np.array([0.5])]], **kw).shape == (1, 1, 10)
    assert rates_from_spike_times([], units=["a", "b"], **kw).shape == (0, 2, 10)
    with pytest.raises(ConfigError, match="does not divide the window"):
        rates_from_spike_times([[np.array([0.5])]], **{**kw, "bin_size": 0.3})
    with pytest.raises(ConfigError, match="unknown smoothing kernel"):
        rates_from_spike_times([[np.array([0.5])]], **{**kw, "kernel": "cosine"})
    with pytest.raises(ConfigError, match="different numbers of units"):
        rates_from_spike_times([[np.array([0.5])], [np.array([0.5]), np.array([])]], **kw)
    with pytest.raises(ConfigError, match="differ in length"):
        rates_from_spike_times([(np.array([0.1, 0.5]), np.array([0]))], units=[0], **kw)
    with pytest.raises(ConfigError, match="NaN or infinite"):
        rates_from_spike_times([[np.array([0.1, np.nan])]], **kw)
    with pytest.raises(ConfigError, match="no unit"):
        rates_from_spike_times([], **kw)


# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------

def test_unknown_event_lists_available(block):
    with pytest.raises(TargetError, match="unknown alignment event") as exc:
        make_targets(block, align="go", window=WINDOW)
    assert "go_cue" in str(exc.value) and "'go'" not in str(exc.value).split("Expected")[1]


def test_missing_condition_key_lists_keys(block):
    with pytest.raises(TargetError, match="unknown condition annotation") as exc:
        make_targets(block, align="go_cue", window=WINDOW, condition="lick")
    msg = str(exc.value)
    assert "lick" in msg and "response" in msg and "condition" in msg


def test_where_errors(block):
    with pytest.raises(TargetError, match="no trial has this value") as exc:
        make_targets(block, align="go_cue", window=WINDOW, where={"response": "corect"})
    assert "correct" in str(exc.value) and "error" in str(exc.value)
    with pytest.raises(TargetError, match="unknown trial annotation"):
        make_targets(block, align="go_cue", window=WINDOW, where={"outcome": "hit"})
    with pytest.raises(TargetError, match="where filter raised"):
        make_targets(block, align="go_cue", window=WINDOW, where=lambda a: a["nope"])
    with pytest.raises(TargetError, match="no trial passes"):
        make_targets(block, align="go_cue", window=WINDOW, where=lambda a: False)
    with pytest.raises(ConfigError, match="where must be"):
        make_targets(block, align="go_cue", window=WINDOW, where="response == correct")
    with pytest.raises(TargetError, match="all the where conditions together"):
        make_targets(block, align="go_cue", window=WINDOW,
                     where={"response": "error", "trial_id": 1001})


def test_window_outside_trial_names_trials(block):
    with pytest.raises(TargetError, match="window falls outside") as exc:
        make_targets(block, align="go_cue", window=(-2.2, 1.0))
    msg = str(exc.value)
    assert "trial ids [" in msg and "trial span [0, 4] s" in msg
    assert "Shorten the window" in msg


def test_too_few_trials_names_condition():
    rng = np.random.default_rng(0)
    trials = [Trial(0.0, 2.0, [np.sort(rng.uniform(0, 2, 30))],
                    annotations={"condition": "rare" if i < 2 else "common"},
                    events={"go": 1.0}) for i in range(20)]
    block = make_block(trials, ["a"])
    with pytest.raises(TargetError, match="too few trials") as exc:
        make_targets(block, align="go", window=(-0.5, 0.5))
    assert "'rare': 2 trials -> 2 train, 0 held out" in str(exc.value)
    assert "common" not in str(exc.value).split("Expected")[0]
    with pytest.raises(TargetError, match="too few trials"):
        make_targets(block, align="go", window=(-0.5, 0.5), heldout_fraction=0, min_trials=3)
    ds = make_targets(block, align="go", window=(-0.5, 0.5), heldout_fraction=0)
    assert ds["n_trials"].sel(condition="rare").values.tolist() == [2, 0]


def test_event_missing_in_all_selected_trials(block):
    with pytest.raises(TargetError, match="none of the selected trials has the alignment event"):
        make_targets(block, align="go_cue", window=WINDOW, where={"trial_id": 1007})


@pytest.mark.parametrize("kwargs,match", [
    ({"bin_size": -0.02}, "bin_size must be positive"),
    ({"bin_size": 0}, "bin_size must be positive"),
    ({"bin_size": float("nan")}, "bin_size is not finite"),
    ({"bin_size": "0.02"}, "bin_size is not a number"),
    ({"bin_size": 0.03}, "does not divide the window"),
    ({"bin_size": 2.0}, "fewer than 2 bins"),
    ({"bin_size": 1e-7}, "too many bins"),
    ({"window": (1.0, -1.0)}, "start must be before"),
    ({"window": (0.0, 0.0)}, "start must be before"),
    ({"window": "-1,1"}, "window must be a pair"),
    ({"window": (-1.0,)}, "exactly two values"),
    ({"window": (-1.0, None)}, "window stop is not a number"),
    ({"window": (-1.0, float("inf"))}, "window stop is not finite"),
    ({"window": 3}, "window must be a pair"),
    ({"kernel": "cosine"}, "unknown smoothing kernel"),
    ({"kernel_width": 0.0}, "kernel_width is out of range"),
    ({"kernel_width": 100.0}, "kernel_width is out of range"),
    ({"heldout_fraction": 1.0}, "heldout_fraction is out of range"),
    ({"heldout_fraction": -0.1}, "heldout_fraction is out of range"),
    ({"min_trials": 0}, "min_trials is out of range"),
    ({"min_trials": 2.5}, "min_trials is not an integer"),
    ({"seed": -1}, "seed is out of range"),
    ({"min_rate": -1}, "min_rate is out of range"),
    ({"keep_trials": "yes"}, "keep_trials must be"),
    ({"validation_fraction": 1.0}, "validation_fraction is out of range"),
    ({"validation_fraction": -0.1}, "validation_fraction is out of range"),
    ({"validation_fraction": 0.8}, "leaves no training trials"),
    ({"validation_fraction": "0.2"}, "validation_fraction is not a number"),
    ({"margin": -0.1}, "margin is out of range"),
    ({"margin": "full"}, "unknown margin"),
    ({"margin": float("nan")}, "margin is out of range"),
    ({"condition": []}, "condition must name"),
    ({"condition": 3}, "condition must name"),
    ({"align": 3}, "align must be an event name"),
])
def test_bad_arguments(block, kwargs, match):
    args = {"align": "go_cue", "window": WINDOW, **kwargs}
    with pytest.raises(ConfigError, match=match):
        make_targets(block, **args)


def test_not_a_block():
    with pytest.raises(DataError):
        make_targets([1, 2, 3], align="go", window=(-1, 1))


def test_quantities_are_rescaled(block):
    ds = make_targets(block, align="go_cue", window=(-1500 * pq.ms, 1 * pq.s),
                      bin_size=20 * pq.ms, kernel_width=50 * pq.ms)
    assert ds.attrs["window_start"] == -1.5 and ds.attrs["bin_size"] == pytest.approx(0.02)


def test_condition_values_missing_for_some_trials():
    trials = [Trial(0.0, 2.0, [np.array([0.5, 1.2])],
                    annotations={"condition": "a"} if i % 3 else {}, events={"go": 1.0})
              for i in range(9)]
    with pytest.raises(TargetError, match="lack the condition annotation"):
        make_targets(make_block(trials, ["u"]), align="go", window=(-0.5, 0.5), min_rate=0)


def test_targets_from_rates_still_works():
    ds = targets_from_rates(np.ones((2, 3, 10)), np.arange(10) * 0.1)
    assert ds.attrs["has_trials"] == 0 and ds["rate"].shape == (2, 3, 10)


def test_rates_only_go_straight_to_targets():
    """Trial-averaged rates without trials (formerly ``cortexfit.io.from_rates``)."""
    time = np.arange(50) * 0.02 - 1.0
    rates = np.abs(np.random.default_rng(0).normal(5, 1, size=(2, 4, 50)))
    ds = targets_from_rates(rates, time, unit_ids=list("abcd"), conditions=["l", "r"],
                            align_event="go")
    assert ds["rate"].dims == ("condition", "unit", "time")
    np.testing.assert_array_equal(ds["rate"].values, rates)
    assert ds.attrs["has_trials"] == 0 and "rate_heldout" not in ds
    assert ds["time"].attrs["units"] == "s" and ds["rate"].attrs["units"] == "Hz"
    with pytest.raises(CortexfitError, match="NaN"):
        targets_from_rates(np.full((1, 2, 3), np.nan), [0, 1, 2])
    with pytest.raises(CortexfitError, match="negative"):
        targets_from_rates(-np.ones((1, 2, 3)), [0, 1, 2])
    with pytest.raises(CortexfitError, match="increasing"):
        targets_from_rates(np.ones((1, 2, 3)), [0, 2, 1])


# ---------------------------------------------------------------------------------------
# property-based: odd inputs -> CortexfitError or a sound Dataset, nothing else; and inputs
# built to be valid -> a Dataset as asked (a make_targets that rejects everything fails)
# ---------------------------------------------------------------------------------------

def check_sound(ds: xr.Dataset) -> None:
    for name in ("rate", "rate_heldout", "trial_rate"):
        if name in ds:
            values = ds[name].values
            assert np.all(np.isfinite(values)) and np.all(values >= 0), name
    assert ds.sizes["time"] >= 2 and ds.sizes["unit"] >= 1
    assert int(ds["n_trials"].min()) >= 0
    if "trial_rate" in ds:
        assert int(ds["n_trials"].sum()) == ds.sizes["trial"]
        assert set(np.unique(ds["trial_condition"].values)) <= set(ds["condition"].values)


def run(block, **kwargs):
    try:
        ds = make_targets(block, **kwargs)
    except CortexfitError as exc:
        event(f"{type(exc).__name__}: {str(exc).split('.')[0]}")
        return None
    event("Dataset")
    check_sound(ds)
    return ds


def seconds(value) -> float:
    return float(value.rescale(pq.s).magnitude) if isinstance(value, pq.Quantity) else float(value)


def check_as_asked(ds: xr.Dataset, *, units, conditions, window, bin_size, kernel, n_trials,
                   heldout_fraction, keep_trials=True) -> None:
    """``ds`` is sound and holds what was asked: units, conditions, bins, trials, split."""
    check_sound(ds)
    start, stop = seconds(window[0]), seconds(window[1])
    n_time = round((stop - start) / bin_size)
    assert list(ds["unit"].values) == list(units)
    assert sorted(map(str, ds["condition"].values)) == sorted(conditions)
    assert ds["rate"].shape == (len(conditions), len(units), n_time)
    assert ds["rate"].dims == ("condition", "unit", "time")
    np.testing.assert_allclose(ds["time"].values, start + bin_size * (np.arange(n_time) + 0.5),
                               rtol=0, atol=1e-9 * max(1.0, abs(start), abs(stop)))
    kernel = kernel.lower()
    assert ds.attrs["kernel"] == getattr(targets_module, "KERNEL_ALIASES", {}).get(kernel, kernel)
    assert ds.attrs["bin_size"] == pytest.approx(bin_size, rel=1e-12)
    assert int(ds["n_trials"].sum()) == n_trials
    assert ("rate_heldout" in ds) == (heldout_fraction > 0)
    if heldout_fraction > 0:
        assert int(ds["n_trials"].sel(split="heldout").min()) >= 1
        assert ds["rate_heldout"].shape == ds["rate"].shape
    else:
        assert int(ds["n_trials"].sel(split="heldout").sum()) == 0
    assert ("trial_rate" in ds) == bool(keep_trials)
    if keep_trials:
        assert ds["trial_rate"].shape == (n_trials, len(units), n_time)
    mean_rate = ds["mean_rate"].values
    assert np.all(np.isfinite(mean_rate)) and np.all(mean_rate >= 0)


def assert_share(outcomes: list[bool], at_least: float, what: str) -> None:
    """At least ``at_least`` of the random examples gave a result, not an error."""
    n_ok = sum(outcomes)
    assert outcomes, "no example ran"
    assert n_ok >= at_least * len(outcomes), (
        f"only {n_ok} of {len(outcomes)} {what} gave a Dataset (at least {at_least:.0%} "
        "expected): make_targets rejects inputs it should accept")


@st.composite
def random_blocks(draw):
    n_trials = draw(st.integers(1, 14))
    n_units = draw(st.integers(1, 3))
    trials = []
    for i in range(n_trials):
        t0 = draw(st.floats(-5, 5, allow_nan=False))
        length = draw(st.one_of(st.floats(3, 6), st.floats(0.05, 4)))
        spikes = []
        for _ in range(n_units):
            k = draw(st.integers(0, 25))
            u = draw(st.lists(st.floats(0, 1, allow_nan=False), min_size=k, max_size=k))
            spikes.append(np.sort(t0 + length * np.asarray(u, dtype=float)))
        events = {}
        if i == 0 or draw(st.integers(0, 5)):
            events["go"] = t0 + length * draw(st.one_of(st.floats(0.4, 0.6), st.floats(0, 1)))
        if draw(st.booleans()):
            events["stim"] = t0 + length * draw(st.floats(0, 1, allow_nan=False))
        ann = {"condition": draw(st.sampled_from(["a", "b", "a", "b", 1, True])),
               "outcome": draw(st.sampled_from(["hit", "miss"]))}
        trials.append(Trial(t0, t0 + length, spikes, annotations=ann, events=events))
    return make_block(trials, [f"u{k}" for k in range(n_units)])


@st.composite
def dividing_windows(draw):
    bin_size = draw(st.one_of(st.sampled_from([0.005, 0.01, 0.02, 0.05, 0.1]),
                              st.floats(0.001, 0.3)))
    start = draw(st.floats(-1.5, 0.3, allow_nan=False))
    n = draw(st.integers(2, max(2, int(2.5 / bin_size))))
    return (start, start + n * bin_size), bin_size


@st.composite
def valid_recordings(draw):
    """A recording and arguments make_targets must accept, with what it must return.

    Every trial holds the event and the whole window, every condition has 4-6 trials
    (enough for any split drawn here), the filter keeps every trial and ``min_rate`` is 0,
    so no unit is dropped (silent units included)."""
    window, bin_size = draw(dividing_windows())
    start, stop = window
    n_units = draw(st.integers(1, 3))
    labels = draw(st.lists(st.sampled_from(["a", "b", 1, True]), min_size=1, max_size=3,
                           unique=True))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    silent = draw(st.lists(st.booleans(), min_size=n_units, max_size=n_units))
    trials = []
    for label in labels:
        for _ in range(draw(st.integers(4, 6))):
            t0 = float(rng.uniform(-5, 5))
            go = t0 + max(0.0, -start) + float(rng.uniform(0.01, 1.0))
            t1 = go + max(stop, 0.0) + float(rng.uniform(0.01, 1.0))
            spikes = [np.array([]) if silent[k] else
                      np.sort(rng.uniform(t0, t1, rng.integers(0, 30))) for k in range(n_units)]
            events = {"go": go}
            if rng.random() < 0.5:
                events["stim"] = float(rng.uniform(t0, t1))
            trials.append(Trial(t0, t1, spikes, events=events,
                                annotations={"condition": label, "outcome": "hit"}))
    order = rng.permutation(len(trials))
    units = [f"u{k}" for k in range(n_units)]
    block = make_block([trials[i] for i in order], units)
    condition = draw(st.sampled_from(["condition", ["condition", "outcome"]]))
    kwargs = {
        "align": "go", "window": window, "bin_size": bin_size, "condition": condition,
        "kernel": draw(st.sampled_from(KERNELS)),
        "kernel_width": min(draw(st.floats(0.001, 0.2)), stop - start),
        "where": draw(st.sampled_from([None, {"outcome": "hit"}, {"condition": list(labels)},
                                       lambda a: a["outcome"] == "hit"])),
        "min_rate": 0.0, "heldout_fraction": draw(st.sampled_from([0.0, 0.2, 0.5])),
        "min_trials": draw(st.integers(1, 2)), "seed": draw(st.integers(0, 2**31 - 1)),
    }
    suffix = "|hit" if condition != "condition" else ""
    expected = {"units": units, "conditions": [f"{label}{suffix}" for label in labels],
                "window": window, "bin_size": bin_size, "kernel": kwargs["kernel"],
                "n_trials": len(trials), "heldout_fraction": kwargs["heldout_fraction"]}
    return block, kwargs, expected, silent


wheres = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(["condition", "outcome", "nope"]),
                    st.one_of(st.sampled_from(["a", "b", "hit", "miss", 1, "1", True, 3.5]),
                              st.lists(st.sampled_from(["a", "b", "hit", "miss", 1]),
                                       max_size=3)),
                    max_size=2),
    st.sampled_from([lambda a: a.get("outcome") == "hit", lambda a: 1 / 0, lambda a: None,
                     lambda a: np.array([1, 2])]),
)


ODD_PARTS = {
    "block": random_blocks(),
    "window_bin": dividing_windows(),
    "kernel": st.sampled_from(KERNELS),
    "kernel_width": st.floats(0.001, 0.2),
    "where": wheres,
    "condition": st.sampled_from(["condition", "outcome", ["condition", "outcome"]]),
    "min_rate": st.one_of(st.just(0.0), st.floats(0, 20)),
    "heldout_fraction": st.sampled_from([0.0, 0.0, 0.2, 0.5]),
    "min_trials": st.integers(1, 2),
    "align": st.sampled_from(["go", "go", "stim"]),
}


@st.composite
def random_recordings(draw, every_part: bool):
    """A valid recording and arguments (valid_recordings) of which every part
    (``every_part``), or a random subset of at least one part, is replaced by a random one
    (random_blocks, any window, filter, kernel...)."""
    block, kwargs = draw(valid_recordings())[:2]
    parts = set(ODD_PARTS) if every_part else \
        draw(st.sets(st.sampled_from(sorted(ODD_PARTS)), min_size=1))
    for name in sorted(parts):
        value = draw(ODD_PARTS[name])
        if name == "block":
            block = value
        elif name == "window_bin":
            kwargs["window"], kwargs["bin_size"] = value
        else:
            kwargs[name] = value
    return block, kwargs


def test_random_recordings_windows_and_filters():
    """Random recordings and arguments give an error of the library or a sound Dataset.
    Each example runs three: everything random (a Dataset in ~20 % of them; at least one
    required), a valid recording with some parts random (a Dataset in ~50 %; at least 20 %
    required), and a valid recording, which must give the Dataset asked for."""
    some_random: list[bool] = []
    all_random: list[bool] = []

    @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(every=random_recordings(every_part=True), some=random_recordings(every_part=False),
           valid=valid_recordings())
    def examples(every, some, valid):
        all_random.append(run(every[0], **every[1]) is not None)
        some_random.append(run(some[0], **some[1]) is not None)
        block, kwargs, expected, silent = valid
        ds = make_targets(block, **kwargs)  # an error here fails the test with its message
        check_as_asked(ds, **expected)
        for k, unit in enumerate(expected["units"]):
            if silent[k]:
                assert float(np.abs(ds["rate"].sel(unit=unit)).max()) == 0.0
                assert float(ds["mean_rate"].sel(unit=unit)) == 0.0

    examples()
    assert_share(some_random, 0.2, "valid recordings with some random parts")
    assert_share(all_random, 0.02, "random recordings")


def small_block():
    rng = np.random.default_rng(3)
    trials = [Trial(0.0, 3.0, [np.sort(rng.uniform(0, 3, 40)), np.sort(rng.uniform(0, 3, 5))],
                    annotations={"condition": "ab"[i % 2], "outcome": "hit"},
                    events={"go": 1.5}) for i in range(10)]
    return make_block(trials, ["x", "y"])


SMALL_BLOCK_TRIALS = [{"condition": "ab"[i % 2], "outcome": "hit"} for i in range(10)]

odd_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1e-300, 1e300, 0.01, 0.02, 0.05, 0.1, 0.25, 0.3]),
    st.integers(-3, 3), st.none(), st.text(max_size=3), st.booleans(),
    st.lists(st.floats(-1, 1), max_size=3), st.tuples(st.floats(-1, 1), st.text(max_size=1)),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.just(np.array([0.1, 0.2])), st.just(np.float32(0.02)), st.just(0.02 * pq.s),
    st.just(5 * pq.mV),
)
SANE = {"align": "go", "window": (-1.0, 1.0), "bin_size": 0.02, "kernel": "gaussian",
        "kernel_width": 0.05, "condition": "condition", "where": None, "min_rate": 1.0,
        "heldout_fraction": 0.2, "min_trials": 2, "seed": 0, "keep_trials": True}


def _only_b(a):
    return a["condition"] == "b"


# For each argument, values make_targets must accept on small_block() in any combination
# with the others (every window length is a whole number of every bin size, every
# condition keeps >= 5 trials, enough for any split here; unit x fires at ~13 Hz, above
# every min_rate).
VALID = {
    "align": ["go", np.str_("go")],
    "window": [(-1.0, 1.0), (-0.5, 0.5), [-1.5, 1.5], np.array([-0.2, 0.8]),
               (-1000 * pq.ms, 1 * pq.s)],
    "bin_size": [0.02, 0.01, 0.05, 0.1, 20 * pq.ms, np.float64(0.05)],
    "kernel": [*KERNELS, "Gaussian"],
    "kernel_width": [0.01, 0.05, 0.2, 30 * pq.ms, np.float64(0.03)],
    "condition": ["condition", ["condition"], ("condition", "outcome"), "outcome"],
    "where": [None, {"outcome": "hit"}, {"condition": ["a", "b"]}, {"condition": "a"}, _only_b],
    "min_rate": [0, 0.0, 1.0, 2, np.float64(0.5)],
    "heldout_fraction": [0, 0.0, 0.2, 0.25, 0.5, np.float64(0.2)],
    "min_trials": [1, 2, np.int64(2)],
    "seed": [0, 1, 2**31 - 1, np.int64(7)],
    "keep_trials": [True, False, np.bool_(False)],
}
assert set(VALID) == set(SANE)


@st.composite
def argument_overrides(draw, kind: str):
    """1-3 arguments replaced: by odd values (``"odd"``), by valid ones (``"valid"``), or each
    by a valid value (2 chances in 3) or an odd one (``"mixed"``)."""
    keys = draw(st.lists(st.sampled_from(sorted(SANE)), min_size=1, max_size=3, unique=True))
    values = {
        "odd": lambda k: odd_values,
        "valid": lambda k: st.sampled_from(VALID[k]),
        "mixed": lambda k: st.one_of(st.sampled_from(VALID[k]), st.sampled_from(VALID[k]),
                                     odd_values),
    }[kind]
    return {k: draw(values(k)) for k in keys}


def expected_from_small_block(args: dict) -> dict:
    """What make_targets must return for valid ``args`` on small_block()."""
    keys = [args["condition"]] if isinstance(args["condition"], str) else list(args["condition"])
    where = args["where"]
    kept = []
    for ann in SMALL_BLOCK_TRIALS:
        if callable(where):
            ok = where(ann)
        else:
            ok = all(ann[k] in (v if isinstance(v, list) else [v])
                     for k, v in (where or {}).items())
        if ok:
            kept.append(ann)
    return {
        "units": ["x", "y"] if seconds(args["min_rate"]) == 0 else None,
        "conditions": sorted({"|".join(str(ann[k]) for k in keys) for ann in kept}),
        "window": tuple(args["window"]), "bin_size": seconds(args["bin_size"]),
        "kernel": args["kernel"], "n_trials": len(kept),
        "heldout_fraction": float(args["heldout_fraction"]),
        "keep_trials": args["keep_trials"],
    }


def test_malformed_arguments():
    """Up to 3 arguments replaced give an error of the library or a sound Dataset. Each
    example runs three: odd values only (nearly always an error), each a valid or an odd
    value (a Dataset in ~35 % of them; at least 10 % required), and valid values only,
    which must give the Dataset asked for."""
    mixed: list[bool] = []

    @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(odd=argument_overrides("odd"), some=argument_overrides("mixed"),
           valid=argument_overrides("valid"))
    def examples(odd, some, valid):
        run(small_block(), **{**SANE, **odd})
        mixed.append(run(small_block(), **{**SANE, **some}) is not None)
        args = {**SANE, **valid}
        ds = make_targets(small_block(), **args)  # an error here fails with its message
        expected = expected_from_small_block(args)
        if expected["units"] is None:  # min_rate > 0 may drop y, never x
            assert "x" in ds["unit"].values
            expected["units"] = list(ds["unit"].values)
            assert set(expected["units"]) <= {"x", "y"}
        check_as_asked(ds, **expected)

    examples()
    assert_share(mixed, 0.1, "sets of valid or odd arguments")


def test_unit_attributes_become_coords(tmp_path):
    rng = np.random.default_rng(0)
    trials = [Trial(0.0, 2.0, [np.sort(rng.uniform(0, 2, 30)) for _ in range(3)],
                    annotations={"condition": "a"}, events={"go": 1.0}) for _ in range(5)]
    ann = [{"cell_type": "pyr", "depth": 100, "rate": 1.5, "good": True, "mixed": 1},
           {"cell_type": "int", "rate": 2.5, "good": False, "mixed": "x"},
           {"cell_type": "pyr", "depth": 300.5, "rate": 3.5, "good": True, "mixed": 2.0}]
    ds = make_targets(make_block(trials, ["a", "b", "c"], unit_annotations=ann), align="go",
                      window=(-0.5, 0.5), heldout_fraction=0, min_trials=1)
    assert list(ds["cell_type"].values) == ["pyr", "int", "pyr"]
    assert "depth" not in ds.coords  # missing for unit b
    assert list(ds["unit_rate"].values) == [1.5, 2.5, 3.5]  # "rate" is a schema name
    assert ds["good"].dtype == bool and list(ds["mixed"].values) == ["1", "x", "2.0"]
    ds.to_netcdf(tmp_path / "u.nc", engine="h5netcdf")
    xr.testing.assert_identical(xr.load_dataset(tmp_path / "u.nc", engine="h5netcdf"), ds)


# ---------------------------------------------------------------------------------------
# the validation split
# ---------------------------------------------------------------------------------------

def test_validation_split_three_way_stratified_disjoint(block, targets):
    ds = make_targets(block, align="go_cue", window=WINDOW, validation_fraction=0.2)
    assert ds["split"].values.tolist() == ["train", "validation", "heldout"]
    # 59 "left" trials: 12 held out, 12 validation, 35 train; 60 "right": 12, 12, 36
    assert ds["n_trials"].sel(condition="left").values.tolist() == [35, 12, 12]
    assert ds["n_trials"].sel(condition="right").values.tolist() == [36, 12, 12]
    split, cond = ds["trial_split"].values, ds["trial_condition"].values
    ids = ds["trial_id"].values
    for label in ("left", "right"):
        for name in ("train", "validation", "heldout"):
            assert np.sum((cond == label) & (split == name)) == int(
                ds["n_trials"].sel(condition=label, split=name))
    assert set(split) == {"train", "validation", "heldout"}  # every trial in exactly one
    # the held-out (test) trials are those of the two-way split: validation comes from
    # the training trials of before, drawn from the same permutation
    before = targets["trial_split"].values
    np.testing.assert_array_equal(split == "heldout", before == "heldout")
    assert set(ids[split == "validation"]) <= set(ids[before == "train"])
    # averages: rate of the training trials only, rate_validation of the validation ones
    tr = ds["trial_rate"].values.astype(np.float64)
    for label in ("left", "right"):
        for var, name in (("rate", "train"), ("rate_validation", "validation"),
                          ("rate_heldout", "heldout")):
            np.testing.assert_allclose(ds[var].sel(condition=label).values,
                                       tr[(cond == label) & (split == name)].mean(axis=0),
                                       rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(ds["rate_heldout"].values, targets["rate_heldout"].values)
    assert not np.allclose(ds["rate"].values, targets["rate"].values)
    assert ds["rate_validation"].attrs["units"] == "Hz"
    assert ds.attrs["validation_fraction"] == 0.2
    assert "12 validation" not in ds.attrs["report"] and "24 validation" in ds.attrs["report"]
    # deterministic, and a condition's split does not depend on the other conditions
    again = make_targets(block, align="go_cue", window=WINDOW, validation_fraction=0.2)
    xr.testing.assert_identical(again, ds)
    left = make_targets(block, align="go_cue", window=WINDOW, validation_fraction=0.2,
                        where={"condition": "left"})
    assert list(left["trial_split"].values) == list(split[cond == "left"])


def test_validation_fraction_zero_is_the_two_way_split(block, targets):
    """validation_fraction = 0 draws exactly the split of before (same generator, same
    permutation): the same trials held out, the same averages, no validation split."""
    ds = make_targets(block, align="go_cue", window=WINDOW, validation_fraction=0.0)
    xr.testing.assert_identical(ds, targets)
    assert "rate_validation" not in ds and ds["split"].values.tolist() == ["train", "heldout"]
    for seed in (1, 7):
        two = make_targets(block, align="go_cue", window=WINDOW, seed=seed)
        three = make_targets(block, align="go_cue", window=WINDOW, seed=seed,
                             validation_fraction=0.3)
        np.testing.assert_array_equal(two["trial_split"].values == "heldout",
                                      three["trial_split"].values == "heldout")


def test_validation_needs_a_trial_and_min_trials(block):
    small = known_block(n_per_cond=4, n_units=2, seed=3)  # 4 trials per condition
    # 4 trials: 1 held out, 1 validation (0.2 * 4 = 0.8 -> 1), 2 train
    ds = make_targets(small, align="go_cue", window=WINDOW, validation_fraction=0.2,
                      min_rate=0, where={"trial_id": [1000 + i for i in range(8) if i != 7]},
                      min_trials=1)
    assert int(ds["n_trials"].sel(split="validation").min()) >= 1
    with pytest.raises(TargetError, match="too few trials") as exc:
        make_targets(small, align="go_cue", window=WINDOW, validation_fraction=0.2,
                     min_rate=0, min_trials=3)
    assert "validation" in str(exc.value) and "1 validation trial" in str(exc.value)
    # a fraction too small to give any validation trial is an error, as for held-out
    with pytest.raises(TargetError, match="too few trials") as exc:
        make_targets(small, align="go_cue", window=WINDOW, validation_fraction=0.1,
                     min_rate=0, min_trials=1)
    assert "0 validation" in str(exc.value)


def test_validation_targets_round_trip_and_carry_through_add_auxiliary(block, tmp_path):
    ds = make_targets(block, align="go_cue", window=WINDOW, validation_fraction=0.2,
                      margin="auto")
    ds.to_netcdf(tmp_path / "v.nc", engine="h5netcdf")
    xr.testing.assert_identical(xr.load_dataset(tmp_path / "v.nc", engine="h5netcdf"), ds)
    aux = add_auxiliary(ds, 1.0)
    np.testing.assert_array_equal(aux["rate_validation"].values, ds["rate_validation"].values)
    # the training targets of the recorded neurons are the training trials only
    np.testing.assert_array_equal(
        aux["target_rate"].isel(neuron=slice(0, ds.sizes["unit"])).values, ds["rate"].values)
    assert aux.attrs["score_start"] == WINDOW[0] and aux.attrs["score_stop"] == WINDOW[1]


# ---------------------------------------------------------------------------------------
# the margin: trained beyond the scored window
# ---------------------------------------------------------------------------------------

def test_auto_margin_extends_the_axis_by_the_kernel_reach(block, targets):
    ds = make_targets(block, align="go_cue", window=WINDOW, margin="auto")
    # 50 ms Gaussian at 20 ms bins: 7 bins hold all but 0.15 % of its mass on each side
    # (~3 SD), plus one bin; the trials cover 0.5 s around the window
    m = 8
    assert _Smoother("gaussian", 0.05, BIN).reach() == (7, 7)
    a = ds.attrs
    assert a["margin"] == pytest.approx(m * BIN) and a["margin_auto"] == 1
    assert a["margin_before"] == pytest.approx(m * BIN) == a["margin_after"]
    assert (a["score_start"], a["score_stop"]) == WINDOW == score_window(ds)
    assert a["window_start"] == pytest.approx(WINDOW[0] - m * BIN)
    assert a["window_stop"] == pytest.approx(WINDOW[1] + m * BIN)
    assert ds.sizes["time"] == targets.sizes["time"] + 2 * m
    np.testing.assert_allclose(ds["time"].values,
                               a["window_start"] + BIN * (np.arange(ds.sizes["time"]) + 0.5),
                               atol=1e-12)
    # inside the window the rates are those of the targets without a margin; the unit
    # selection and mean rates are over the window, as before
    inner = crop_to_score_window(ds)
    assert inner.sizes["time"] == targets.sizes["time"]
    np.testing.assert_allclose(inner["time"].values, targets["time"].values, atol=1e-12)
    for var in ("rate", "rate_heldout", "trial_rate"):
        np.testing.assert_allclose(inner[var].values, targets[var].values, rtol=1e-6,
                                   atol=1e-9)
    np.testing.assert_array_equal(ds["mean_rate"].values, targets["mean_rate"].values)
    assert (inner.attrs["window_start"], inner.attrs["window_stop"]) == WINDOW
    assert "extends the window by 0.16 s before and 0.16 s after" in a["report"]
    # without a margin the scoring window is the whole axis
    assert (targets.attrs["score_start"], targets.attrs["score_stop"]) == WINDOW
    assert targets.attrs["margin_before"] == 0 and crop_to_score_window(targets) is targets


def test_auto_margin_is_clipped_to_what_every_trial_covers(block):
    window = (-1.9, 1.0)  # the events are 2.0-2.5 s into trials of 4 s
    ds = make_targets(block, align="go_cue", window=window, margin="auto")
    first_go = min(float(e.times[0]) for seg in block.segments for e in seg.events
                   if e.name == "go_cue")
    fit = math.floor((first_go + window[0]) / BIN + 1e-6)
    assert 0 <= fit < 8
    assert ds.attrs["margin_before"] == pytest.approx(fit * BIN)
    assert ds.attrs["margin_after"] == pytest.approx(8 * BIN)  # >= 0.5 s covered after
    assert ds.attrs["margin"] == pytest.approx(8 * BIN)  # what was aimed at


def test_auto_margin_per_kernel():
    blk = single_trial_block(np.linspace(0.1, 1.9, 40), t_stop=2.0, event=1.0)
    kw = {"align": "go", "window": (-0.5, 0.5), "heldout_fraction": 0, "min_trials": 1,
          "min_rate": 0, "margin": "auto", "bin_size": 0.02}
    none = make_targets(blk, kernel="none", **kw)
    assert none.attrs["margin_before"] == pytest.approx(0.02) == none.attrs["margin_after"]
    causal = make_targets(blk, kernel="exponential", kernel_width=0.05, **kw)
    # a causal kernel reaches back only (~5 time constants)
    assert causal.attrs["margin_before"] == pytest.approx(14 * 0.02)
    assert causal.attrs["margin_after"] == pytest.approx(0.02)
    box = make_targets(blk, kernel="boxcar", kernel_width=0.05, **kw)
    assert box.attrs["margin_before"] == pytest.approx(5 * 0.02)  # half-width 87 ms: 4 bins


def test_numeric_margin(block, targets):
    ds = make_targets(block, align="go_cue", window=WINDOW, margin=0.05)  # -> 3 bins
    assert ds.attrs["margin_auto"] == 0 and ds.attrs["margin"] == pytest.approx(0.06)
    assert ds.sizes["time"] == targets.sizes["time"] + 6
    np.testing.assert_allclose(crop_to_score_window(ds)["rate"].values,
                               targets["rate"].values, rtol=1e-6, atol=1e-9)
    zero = make_targets(block, align="go_cue", window=WINDOW, margin=0)
    xr.testing.assert_identical(zero, targets)
    with pytest.raises(TargetError, match="extended by the margin falls outside") as exc:
        make_targets(block, align="go_cue", window=WINDOW, margin=0.6)
    assert "margin = 'auto'" in str(exc.value)
