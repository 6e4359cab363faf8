"""The development set (cortexfit.datasets.devset): determinism, the trial convention, each
recording's stated properties measured from its truth and spikes, its targets against its
truth, and the ``devset`` data format (variants, generation, ground truth)."""
from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import xarray as xr

from cortexfit.atomic import file_record
from cortexfit.config import parse_config, resolve
from cortexfit.console import Console
from cortexfit.datasets import (
    DEV_RECORDINGS,
    DEVSET_FORMAT,
    dev_targets_kwargs,
    dev_truth,
    make_dev_recording,
)
from cortexfit.exceptions import ConfigError
from cortexfit.io.convention import (
    check_block,
    event_time,
    trial_window,
    unit_annotations,
    unit_ids,
)
from cortexfit.io.formats import format_names, get_format
from cortexfit.stages import RunContext, stage_load
from cortexfit.targets import make_targets

NAMES = ("lif_clustered", "low_rate", "few_units", "long_ramps", "brief_difference")


@cache
def _rec(name: str, seed: int = 0, size: str = "small"):
    return make_dev_recording(name, seed, size=size)


def _spikes(block) -> list[list[np.ndarray]]:
    return [[st.magnitude.copy() for st in seg.spiketrains] for seg in block.segments]


def _window_rates(rec) -> np.ndarray:
    """Each unit's mean rate over the targets window, from its spikes (Hz)."""
    align, (start, stop) = rec.targets_kwargs["align"], rec.targets_kwargs["window"]
    counts = np.zeros(len(rec.block.segments[0].spiketrains))
    for seg in rec.block.segments:
        zero = event_time(seg, align)
        for u, st in enumerate(seg.spiketrains):
            t = st.magnitude - zero
            counts[u] += np.count_nonzero((t >= start) & (t < stop))
    return counts / (len(rec.block.segments) * (stop - start))


def _trials_per_condition(block) -> dict[str, int]:
    labels = [seg.annotations["condition"] for seg in block.segments]
    return {c: labels.count(c) for c in sorted(set(labels))}


# ---------------------------------------------------------------------- the set
def test_the_set_and_its_format():
    assert DEV_RECORDINGS == NAMES
    assert "devset" in format_names()
    fmt = get_format("devset")
    assert fmt is DEVSET_FORMAT and fmt.source == "generated" and fmt.gives_trials
    assert tuple(fmt.variants) == NAMES
    for name in NAMES:
        kwargs = dev_targets_kwargs(name)
        assert set(kwargs) == {"align", "window", "condition"}
        assert dict(fmt.variants[name]) == {**kwargs, "window": list(kwargs["window"])}
    with pytest.raises(ConfigError, match="unknown development recording") as info:
        make_dev_recording("lif")
    assert all(repr(n) in info.value.expected for n in NAMES)
    with pytest.raises(ConfigError, match="unknown size"):
        make_dev_recording("few_units", size="tiny")
    with pytest.raises(ConfigError, match="seed"):
        make_dev_recording("few_units", -1)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_spikes_other_seed_other_spikes(name):
    first = _rec(name)
    again = make_dev_recording(name, 0, size="small")
    a, b = _spikes(first.block), _spikes(again.block)
    assert all(np.array_equal(x, y) for ta, tb in zip(a, b, strict=True)
               for x, y in zip(ta, tb, strict=True))
    xr.testing.assert_identical(first.truth, again.truth)
    other = _spikes(make_dev_recording(name, 1, size="small").block)
    assert not all(x.shape == y.shape and np.array_equal(x, y)
                   for ta, tb in zip(a, other) for x, y in zip(ta, tb))


@pytest.mark.parametrize("name", NAMES)
def test_the_block_follows_the_trial_convention(name):
    rec = _rec(name)
    block = check_block(rec.block)
    align, (start, stop) = rec.targets_kwargs["align"], rec.targets_kwargs["window"]
    previous_stop = 0.0
    for seg in block.segments:
        t0, t1 = trial_window(seg)
        zero = event_time(seg, align)
        assert t0 >= previous_stop  # the session clock: trials in order, not overlapping
        previous_stop = t1
        # the trial covers the window and 0.5 s on either side (the smoothing kernel's room)
        assert t0 <= zero + start - 0.5 + 1e-9 and t1 >= zero + stop + 0.5 - 1e-9
        assert seg.annotations["condition"] in rec.truth.condition.values
    truth = rec.truth
    assert truth["expected_rate"].dims == ("condition", "unit", "time")
    assert list(truth.unit.values) == unit_ids(block)
    assert np.allclose(np.diff(truth.time.values), 0.001)
    assert truth.time.values[0] < start - 0.49 and truth.time.values[-1] > stop + 0.49
    assert np.isfinite(truth["expected_rate"].values).all()
    assert (truth["expected_rate"].values >= 0).all()
    assert truth.attrs["align_event"] == align and truth.attrs["expected_rate_method"]


@pytest.mark.parametrize("name", NAMES)
def test_the_targets_of_the_training_trials_follow_the_truth(name):
    rec = _rec(name)
    targets = make_targets(rec.block, **rec.targets_kwargs)
    truth = rec.truth["expected_rate"].interp(time=targets.time.values).sel(
        unit=targets.unit.values, condition=targets.condition.values)
    rate = targets["rate"].transpose(*truth.dims).values
    r = np.corrcoef(rate.ravel(), truth.values.ravel())[0, 1]
    assert r > 0.6, r  # small size: 6-8 trials per condition (full size: r 0.95-0.98)


# ---------------------------------------------------------------------- each recording
def test_lif_clustered_small_has_both_cell_types_in_the_recorded_range():
    rec = _rec("lif_clustered")
    types = [a["cell_type"] for a in unit_annotations(rec.block)]
    assert types.count("pyramidal") == 12 and types.count("FS") == 3
    assert list(rec.truth.cell_type.values) == types
    mean = rec.truth["mean_rate"].values
    assert (mean >= 2.0).all() and (mean <= 40.0).all()
    assert rec.truth.attrs["n_truth_trials_per_condition"] == 60


def test_lif_clustered_full_statistics():
    rec = _rec("lif_clustered", size="full")
    assert len(rec.truth.unit) == 80 and _trials_per_condition(rec.block) == {"A": 40, "B": 40}
    types = list(rec.truth.cell_type.values)
    assert types.count("pyramidal") == 64 and types.count("FS") == 16
    mean = rec.truth["mean_rate"].values
    assert 4.0 <= np.median(mean) <= 6.0
    assert mean.min() >= 2.0 and mean.max() <= 40.0
    measured = _window_rates(rec)
    assert 3.5 <= np.median(measured) <= 6.5 and measured.max() <= 40.0
    # the stimulated clusters respond: E units of clusters 0-2 fire more in A than in B
    truth = rec.truth
    during = truth["expected_rate"].sel(time=slice(0.0, 0.25)).mean("time")
    cluster = truth["cluster"].values
    a_minus_b = (during.sel(condition="A") - during.sel(condition="B")).values
    assert (a_minus_b[np.isin(cluster, [0, 1, 2])] > 5.0).all()
    assert (a_minus_b[np.isin(cluster, [3, 4, 5])] < -5.0).all()


def test_low_rate_full_statistics():
    rec = _rec("low_rate", size="full")
    assert len(rec.truth.unit) == 60
    assert _trials_per_condition(rec.block) == {"A": 40, "B": 40, "C": 40}
    mean = rec.truth["mean_rate"].values
    assert 1.0 <= np.median(mean) <= 3.0 and mean.min() >= 0.5 and 8.0 <= mean.max() <= 10.0
    measured = _window_rates(rec)  # the spikes say the same, within Poisson noise
    assert 1.0 <= np.median(measured) <= 3.0 and measured.min() >= 0.3
    np.testing.assert_allclose(measured, mean, rtol=0.35, atol=0.2)
    assert rec.targets_kwargs["window"] == (-0.5, 1.5)


def test_few_units_full_statistics():
    rec = _rec("few_units", size="full")
    truth = rec.truth
    assert len(truth.unit) == 3 and len(truth.condition) == 4
    assert set(_trials_per_condition(rec.block).values()) == {32}
    start, stop = rec.targets_kwargs["window"]
    assert 0.6 <= stop - start <= 0.8 and rec.targets_kwargs["align"] == "movement_onset_time"
    peak = truth["expected_rate"].sel(time=slice(start, stop)).max("time")  # (cond, unit)
    assert (peak.max("condition") >= 15.0).all() and (peak.max("condition") <= 32.0).all()
    # cosine tuning: each unit's peaks over the 4 directions follow cos(direction - pref)
    directions = np.deg2rad([0, 90, 180, 270])
    for u in range(3):
        pref = np.deg2rad(float(truth["preferred_direction"][u]))
        r = np.corrcoef(peak[:, u].values, np.cos(directions - pref))[0, 1]
        assert r > 0.95


def test_long_ramps_full_statistics():
    truth = dev_truth("long_ramps", 0)
    assert len(truth.unit) == 40 and truth.sizes["trial"] == 60
    start, stop = dev_targets_kwargs("long_ramps")["window"]
    assert stop - start == 4.0
    assert truth.time.values[-1] - truth.time.values[0] == pytest.approx(5.0, abs=0.002)
    rate = truth["expected_rate"].sel(time=slice(0.5, stop))
    up = truth["ramp"].values == "up"
    # ramping up units peak near the go cue, 2.2 s (fast) or 3.2 s (slow) +-10 % per trial
    # (the trial average peaks a little earlier): the slow ramps ~1 s later
    top = rate.idxmax("time").sel(unit=up)
    fast, slow = (float(top.sel(condition=c).median()) for c in ("fast", "slow"))
    assert 1.9 <= fast <= 2.4 and 2.7 <= slow <= 3.4 and 0.6 <= slow - fast <= 1.3
    # and the ramp is slow: halfway up about halfway through the ramp
    base = truth["baseline_rate"].sel(unit=up)
    mid = truth["expected_rate"].sel(condition="slow", unit=up).sel(time=1.7, method="nearest")
    top_rate = rate.sel(condition="slow", unit=up).max("time")
    assert ((mid > base) & (mid < top_rate)).all()


def test_brief_difference_conditions_differ_only_in_the_epoch():
    truth = dev_truth("brief_difference", 0)
    assert len(truth.unit) == 50 and truth.sizes["trial"] == 80
    rate = truth["expected_rate"]
    diff = np.abs(rate.sel(condition="A") - rate.sel(condition="B"))
    t0, t1 = truth.attrs["epoch_start"], truth.attrs["epoch_stop"]
    assert t1 - t0 == pytest.approx(0.2)
    outside = (truth.time < t0) | (truth.time > t1)
    assert float(diff.where(outside, 0.0).max()) < 1e-9
    inside = diff.where(~outside, 0.0).max("time")
    selective = truth["selective"].values
    assert selective.sum() >= 25
    assert np.median(inside.values[selective]) > 2.0
    assert (inside.values[~selective] < 1e-9).all()


# ---------------------------------------------------------------------- the data format
def test_the_config_takes_a_known_variant_and_fills_in_its_defaults():
    for name in NAMES:
        data = resolve(parse_config({"data": {"format": "devset", "variant": name}}))["data"]
        kwargs = dev_targets_kwargs(name)
        assert (data["align"], tuple(data["window"]), data["condition"]) == (
            kwargs["align"], kwargs["window"], kwargs["condition"])
    data = resolve(parse_config({"data": {"format": "devset", "variant": "few_units",
                                          "window": [-0.2, 0.3]}}))["data"]
    assert data["window"] == [-0.2, 0.3]  # a window given wins over the variant's
    with pytest.raises(ConfigError, match="unknown variant of format 'devset'") as info:
        parse_config({"data": {"format": "devset", "variant": "lif"}}, file="x.toml")
    assert info.value.field == "data.variant"
    assert all(repr(n) in str(info.value) for n in NAMES)
    with pytest.raises(ConfigError, match="data.variant is required") as info:
        resolve(parse_config({"data": {"format": "devset"}}))
    assert all(repr(n) in info.value.expected for n in NAMES)
    with pytest.raises(ConfigError, match="path is not used"):
        parse_config({"data": {"format": "devset", "variant": "few_units", "path": "x.nwb"}})


def test_the_format_generates_the_variant_and_its_truth(tmp_path):
    data = {"variant": "few_units"}
    path = tmp_path / "devset.nwb"
    DEVSET_FORMAT.generate(path, 3, data)
    block = DEVSET_FORMAT.read_block(path, data)
    rec = make_dev_recording("few_units", 3)
    assert unit_ids(block) == unit_ids(rec.block) and len(block.segments) == 128
    for a, b in zip(_spikes(block), _spikes(rec.block), strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-9)
    make_targets(block, **rec.targets_kwargs)  # the file's events align as the Block's
    xr.testing.assert_identical(DEVSET_FORMAT.truth(3, data), rec.truth["expected_rate"])


def test_a_kept_recording_is_reused_only_for_the_same_load(tmp_path):
    """The run folder's devset.nwb is not read for another variant (or seed)."""
    def context(variant, fingerprint):
        config = parse_config({"data": {"format": "devset", "variant": variant}})
        ctx = RunContext(config, tmp_path, Console(0), False, False)
        ctx.load_fingerprint = fingerprint
        return ctx

    first = context("few_units", "one")
    stage_load(first)
    kept = tmp_path / "devset.nwb"
    manifest = {"load": {"fingerprint": "one", "outputs": {
        name: file_record(tmp_path / name) for name in ("recording.nc", "devset.nwb")}}}
    same = context("few_units", "one")
    same.manifest = manifest
    assert same.generated_source() == kept
    other = context("long_ramps", "two")
    other.manifest = manifest
    source = other.generated_source()
    assert source != kept and len(DEVSET_FORMAT.read_block(source, {}).segments) == 60
    other.drop_generated_source()
