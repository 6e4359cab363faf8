"""The embedded synthetic recording: determinism, structure, statistics against its truth."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from cortexfit.datasets import (
    RECOMMENDED_TARGETS_KWARGS,
    make_synthetic_recording,
    recommended_targets_kwargs,
    write_synthetic_nwb,
)
from cortexfit.datasets import synthetic
from cortexfit.exceptions import ConfigError, DataError
from cortexfit.io.convention import check_block, event_time, unit_annotations, unit_ids

STIM, GO = "stimulus_on_time", "go_cue_time"


@pytest.fixture(scope="module")
def rec():
    return make_synthetic_recording(0)


def _spikes(block):
    return [[st.magnitude.copy() for st in seg.spiketrains] for seg in block.segments]


def _empirical(rec, edges):
    """Trial-averaged rates (condition, unit, bin) from spike counts, aligned on the stimulus."""
    conds = list(rec.truth.condition.values)
    n_units = len(rec.truth.unit)
    counts = np.zeros((len(conds), n_units, len(edges) - 1))
    n = np.zeros(len(conds))
    for seg in rec.block.segments:
        c = conds.index(seg.annotations["condition"])
        stim = event_time(seg, STIM)
        n[c] += 1
        for u, st in enumerate(seg.spiketrains):
            counts[c, u] += np.histogram(st.magnitude - stim, edges)[0]
    return counts / (n[:, None, None] * np.diff(edges))


def _binned_truth(values, time, edges):
    out = np.empty(values.shape[:2] + (len(edges) - 1,))
    for i in range(len(edges) - 1):
        m = (time >= edges[i]) & (time < edges[i + 1])
        out[:, :, i] = values[:, :, m].mean(axis=-1)
    return out


def _row_corr(a, b):
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    return (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1))


EDGES = np.round(np.arange(-0.2, 2.0 + 1e-9, 0.1), 10)


# ------------------------------------------------------------------------------ determinism


def test_same_seed_gives_identical_spikes():
    a = make_synthetic_recording(3, n_units=12, n_trials_per_condition=6)
    b = make_synthetic_recording(3, n_units=12, n_trials_per_condition=6)
    sa, sb = _spikes(a.block), _spikes(b.block)
    assert all(np.array_equal(x, y) for ta, tb in zip(sa, sb) for x, y in zip(ta, tb))
    assert [s.annotations for s in a.block.segments] == [s.annotations for s in b.block.segments]
    starts = [[float(s.t_start) for s in r.block.segments] for r in (a, b)]
    assert starts[0] == starts[1]
    assert a.truth.identical(b.truth)


def test_different_seed_differs():
    a = make_synthetic_recording(0, n_units=12, n_trials_per_condition=6)
    b = make_synthetic_recording(1, n_units=12, n_trials_per_condition=6)
    assert not np.allclose(a.truth.rate.values, b.truth.rate.values)
    sa = np.concatenate([x for t in _spikes(a.block) for x in t])
    sb = np.concatenate([x for t in _spikes(b.block) for x in t])
    assert sa.size != sb.size or not np.array_equal(sa, sb)


def test_units_do_not_depend_on_the_number_of_trials():
    a = make_synthetic_recording(5, n_units=10, n_trials_per_condition=3)
    b = make_synthetic_recording(5, n_units=10, n_trials_per_condition=7)
    assert np.array_equal(a.truth.rate.values, b.truth.rate.values)
    assert np.array_equal(a.truth.cell_type.values, b.truth.cell_type.values)


# -------------------------------------------------------------------------------- structure


def test_counts(rec):
    block = rec.block
    assert len(block.segments) == 80
    assert all(len(seg.spiketrains) == 80 for seg in block.segments)
    conds = [seg.annotations["condition"] for seg in block.segments]
    assert conds.count("left") == 40 and conds.count("right") == 40
    assert [seg.annotations["trial_id"] for seg in block.segments] == list(range(80))
    ids = unit_ids(block)
    assert len(set(ids)) == 80 and ids[0] == "syn000"
    assert rec.truth.sizes["unit"] == 80 and rec.truth.sizes["trial"] == 80
    assert list(rec.truth.unit.values) == ids


def test_custom_conditions_and_sizes():
    r = make_synthetic_recording(0, n_units=7, n_trials_per_condition=4, conditions=("a", "b", "c"))
    assert len(r.block.segments) == 12
    assert sorted({s.annotations["condition"] for s in r.block.segments}) == ["a", "b", "c"]
    assert list(r.truth.condition.values) == ["a", "b", "c"]
    check_block(r.block)


def test_block_passes_check_block(rec):
    assert check_block(rec.block) is rec.block


def test_events_present_and_ordered(rec):
    delays = []
    for seg in rec.block.segments:
        t0, t1 = float(seg.t_start), float(seg.t_stop)
        stim, go = event_time(seg, STIM), event_time(seg, GO)
        assert stim is not None and go is not None
        assert t0 < stim < go < t1
        assert stim - t0 == pytest.approx(0.5)
        assert t1 - t0 == pytest.approx(3.0)
        delays.append(go - stim)
    delays = np.asarray(delays)
    assert delays.min() >= 1.4 - 1e-9 and delays.max() <= 1.6 + 1e-9
    assert delays.std() > 0.03  # the go cue is jittered
    np.testing.assert_allclose(delays, rec.truth.trial_delay.values)


def test_trials_are_on_the_session_clock_and_do_not_overlap(rec):
    starts = np.array([float(s.t_start) for s in rec.block.segments])
    stops = np.array([float(s.t_stop) for s in rec.block.segments])
    assert starts[0] > 0
    assert np.all(stops[:-1] <= starts[1:])
    gaps = starts[1:] - stops[:-1]
    assert gaps.min() >= 1.0 - 1e-9 and gaps.max() <= 2.0 + 1e-9
    np.testing.assert_allclose(starts, rec.truth.trial_start.values)
    for seg, t0, t1 in zip(rec.block.segments, starts, stops):
        for st in seg.spiketrains:
            t = st.magnitude
            assert np.all(np.diff(t) >= 0)
            assert t.size == 0 or (t[0] >= t0 and t[-1] <= t1)


def test_annotations(rec):
    outcomes = [seg.annotations["outcome"] for seg in rec.block.segments]
    assert set(outcomes) == {"correct", "incorrect"}
    assert outcomes.count("incorrect") == 8  # 10 % of 80
    ann = unit_annotations(rec.block)
    types = [a["cell_type"] for a in ann]
    assert set(types) == {"FS", "pyramidal"} and types.count("FS") == 16  # 20 %
    assert all(a["location"] == "synthetic cortex" for a in ann)
    assert list(rec.truth.cell_type.values) == types
    assert rec.block.annotations["seed"] == 0


def test_recommended_targets_kwargs():
    kw = recommended_targets_kwargs()
    assert kw == {"align": STIM, "window": (-0.2, 2.0), "condition": "condition"}
    kw["align"] = "changed"
    assert RECOMMENDED_TARGETS_KWARGS["align"] == STIM  # a copy


# ------------------------------------------------------------------------------- statistics


def test_truth_is_sane(rec):
    tr = rec.truth
    assert tr.rate.dims == ("condition", "unit", "time")
    t = tr.time.values
    assert t[0] == pytest.approx(-0.4995) and np.allclose(np.diff(t), 0.001)
    assert float(tr.rate.min()) >= 0.1 - 1e-9
    base = tr.baseline_rate.values
    assert base.min() >= 2.0 and base.max() <= 20.0
    assert 35.0 <= float(tr.peak_rate.max()) <= 60.0 + 1e-6
    # before the stimulus every unit sits at its baseline
    pre = tr.rate.sel(time=slice(-0.5, -0.01)).values
    np.testing.assert_allclose(pre, np.broadcast_to(base[None, :, None], pre.shape), rtol=1e-9)
    fs = tr.cell_type.values == "FS"
    assert base[fs].mean() > base[~fs].mean()
    assert 0.3 < float(tr.selective.mean()) < 0.9
    # the gains are log-normal with mean ~1
    assert 0.85 < float(tr.trial_gain.mean()) < 1.15


def test_spike_counts_match_the_rate_integral(rec):
    """The sampler is unbiased: total spikes per unit agree with the integrated truth."""
    tr = rec.truth
    n_per_cond = np.array([(tr.trial_condition.values == c).sum() for c in tr.condition.values])
    expected = (tr.expected_rate.values.sum(axis=2) * 0.001 * n_per_cond[:, None]).sum(axis=0)
    observed = np.zeros(len(tr.unit))
    for seg in rec.block.segments:
        observed += [len(st) for st in seg.spiketrains]
    z = (observed - expected) / np.sqrt(expected)
    assert np.abs(z).max() < 5
    assert abs(z.sum() / np.sqrt(z.size)) < 5


def test_mean_rate_in_sane_range(rec):
    n = sum(len(st) for seg in rec.block.segments for st in seg.spiketrains)
    duration = sum(float(seg.t_stop - seg.t_start) for seg in rec.block.segments)
    rate = n / duration / 80
    assert 4.0 < rate < 15.0


def test_empirical_rates_correlate_with_truth(rec):
    emp = _empirical(rec, EDGES)
    t = rec.truth.time.values
    expected = _binned_truth(rec.truth.expected_rate.values, t, EDGES)
    template = _binned_truth(rec.truth.rate.values, t, EDGES)
    r_expected = _row_corr(emp, expected)
    r_template = _row_corr(emp, template)
    assert np.nanmean(r_expected) > 0.8
    assert np.nanmean(r_template) > 0.8
    assert np.corrcoef(emp.ravel(), expected.ravel())[0, 1] > 0.95


def test_conditions_differ(rec):
    t = rec.truth.time.values
    template = _binned_truth(rec.truth.rate.values, t, EDGES)
    diff_true = template[0] - template[1]
    # the ground truth differs between conditions, a lot
    assert np.linalg.norm(diff_true) / np.linalg.norm(template.mean(axis=0)) > 0.3
    # and the difference is visible in the spikes: empirical left-right follows it
    emp = _empirical(rec, EDGES)
    diff_emp = emp[0] - emp[1]
    assert np.corrcoef(diff_emp.ravel(), diff_true.ravel())[0, 1] > 0.8
    # some units are condition-selective, the others follow only the shared factors
    selective = rec.truth.selective.values
    assert 0 < selective.sum() < selective.size
    rate = rec.truth.rate.values
    np.testing.assert_allclose(rate[0, ~selective], rate[1, ~selective], rtol=1e-12)
    index = rec.truth.selectivity.values
    assert np.all(index[~selective] < 1e-9)
    assert np.median(index[selective]) > 0.2


def test_make_targets_on_the_synthetic_recording(rec):
    from cortexfit.targets import make_targets

    ds = make_targets(rec.block, **recommended_targets_kwargs())
    assert list(ds.condition.values) == ["left", "right"]
    assert float(ds.time.values[0]) == pytest.approx(-0.19)
    truth = rec.truth.expected_rate.interp(time=ds.time.values).sel(unit=ds.unit.values)
    r = np.corrcoef(ds.rate.values.ravel(), truth.values.ravel())[0, 1]
    assert r > 0.9


# ------------------------------------------------------------------------------------- sizes


def test_simulate_sizes():
    # the size benchmarks/bench_data.py times (it was a wall-clock test here)
    p = synthetic._check_params(0, 80, 40, ("left", "right"), 3.0, 0.5, 1.5, 0.1, (1.0, 2.0),
                                0.2, 0.2, 0.1, 0.001)
    tau, _pop, _trials, expected, spikes = synthetic._simulate(p)  # 80 units x 80 trials
    assert len(spikes) == 80 and all(len(trial) == 80 for trial in spikes)
    assert expected.shape == (2, 80, tau.size)
    assert np.all(np.isfinite(expected)) and np.all(expected >= 0)


# ------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"seed": -1}, "seed"),
        ({"n_units": 0}, "n_units"),
        ({"n_trials_per_condition": 1.5}, "n_trials_per_condition"),
        ({"conditions": ()}, "conditions"),
        ({"conditions": ("a", "a")}, "conditions"),
        ({"conditions": "left"}, "conditions"),
        ({"trial_duration": 1.5}, "trial_duration"),
        ({"trial_duration": 3.0005}, "trial_duration"),
        ({"delay": 0.1}, "delay/delay_jitter"),
        ({"inter_trial_gap": (2.0, 1.0)}, "inter_trial_gap"),
        ({"gain_sd": -0.1}, "gain_sd"),
        ({"fraction_fs": 1.5}, "fraction_fs"),
        ({"dt": 0.0}, "dt"),
    ],
)
def test_bad_settings_raise_config_error(kwargs, field):
    settings = {"n_units": 4, "n_trials_per_condition": 2, **kwargs}
    seed = settings.pop("seed", 0)
    with pytest.raises(ConfigError) as info:
        make_synthetic_recording(seed, **settings)
    assert info.value.field == field
    assert field in str(info.value)


# ------------------------------------------------------------------------------- NWB export


def test_nwb_round_trip(tmp_path):
    from cortexfit.io.nwb import read_nwb

    kwargs = {"n_units": 10, "n_trials_per_condition": 4}
    path = write_synthetic_nwb(tmp_path / "synthetic.nwb", seed=2, **kwargs)
    assert path == tmp_path / "synthetic.nwb" and path.is_file()
    original = make_synthetic_recording(2, **kwargs).block
    block = read_nwb(path)
    check_block(block)
    assert unit_ids(block) == unit_ids(original)
    assert unit_annotations(block) == unit_annotations(original)
    assert len(block.segments) == len(original.segments)
    for a, b in zip(original.segments, block.segments):
        assert float(b.t_start) == pytest.approx(float(a.t_start), abs=1e-9)
        assert float(b.t_stop) == pytest.approx(float(a.t_stop), abs=1e-9)
        for key in ("trial_id", "condition", "outcome"):
            assert b.annotations[key] == a.annotations[key]
        for name in (STIM, GO):
            assert event_time(b, name) == pytest.approx(event_time(a, name), abs=1e-9)
        for sa, sb in zip(a.spiketrains, b.spiketrains):
            np.testing.assert_allclose(sb.magnitude, sa.magnitude, rtol=0, atol=1e-9)
    with pytest.raises(DataError):
        write_synthetic_nwb(path, seed=2, **kwargs)  # exists, no overwrite
    write_synthetic_nwb(path, seed=2, overwrite=True, **kwargs)


def test_the_run_s_ground_truth_is_computed_without_drawing_the_spikes_again():
    """A run generates its synthetic recording once (to write synthetic.nwb); the report's
    ground truth comes from the same settings without the spike draws (their random stream
    is separate), identical to the full generation's."""
    from cortexfit.datasets.synthetic.recording import SYNTHETIC_FORMAT

    full = make_synthetic_recording(seed=5).truth["expected_rate"]
    xr.testing.assert_identical(SYNTHETIC_FORMAT.truth(5), full)
