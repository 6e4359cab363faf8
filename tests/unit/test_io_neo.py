"""Neo files and Blocks: checking against the convention, NIX round trip, splitting."""
from __future__ import annotations

import neo
import numpy as np
import pytest
import quantities as pq

from cortexfit.exceptions import DataError, FileFormatError
from cortexfit.io import (
    event_names,
    event_time,
    from_block,
    from_spike_times,
    load,
    read_neo,
    split_trials,
    trial_annotations,
    unit_ids,
    write_nix,
)


def _block():
    rng = np.random.default_rng(1)
    trials = [[np.sort(rng.uniform(0, 2, rng.integers(0, 20))) for _ in range(3)] for _ in range(4)]
    return from_spike_times(
        trials, t_stop=2.0, conditions=["l", "r", "l", "r"], events={"go": [1.0, 1.1, 1.2, 1.3]},
        unit_ids=["u1", "u2", "u3"], unit_annotations=[{"cell_type": "pyr"}] * 3,
        trial_annotations={"outcome": ["correct"] * 3 + ["incorrect"]},
    )


def test_nix_round_trip(tmp_path):
    block = _block()
    path = write_nix(block, tmp_path / "rec.nix")
    back = read_neo(path)
    assert unit_ids(back) == unit_ids(block)
    assert trial_annotations(back)["condition"] == trial_annotations(block)["condition"]
    assert trial_annotations(back)["outcome"] == trial_annotations(block)["outcome"]
    assert event_names(back) == ["go"]
    for seg_a, seg_b in zip(block.segments, back.segments):
        assert event_time(seg_a, "go") == pytest.approx(event_time(seg_b, "go"))
        for st_a, st_b in zip(seg_a.spiketrains, seg_b.spiketrains):
            np.testing.assert_allclose(st_a.rescale(pq.s).magnitude, st_b.rescale(pq.s).magnitude)
            assert st_b.annotations["cell_type"] == "pyr"
    assert load(path).annotations["source"] == str(path)  # the dispatcher picks Neo
    with pytest.raises(DataError, match="overwrite"):
        write_nix(block, path)


def test_from_block_converts_ms_and_checks():
    seg = neo.Segment()
    seg.spiketrains.append(neo.SpikeTrain([100, 200] * pq.ms, t_stop=1000 * pq.ms, name="a"))
    block = neo.Block()
    block.segments.append(seg)
    out = from_block(block)
    np.testing.assert_allclose(out.segments[0].spiketrains[0].magnitude, [0.1, 0.2])
    assert unit_ids(out) == ["a"]


def test_from_block_rejects_what_does_not_fit():
    with pytest.raises(DataError, match="neo.Block"):
        from_block([1, 2])
    with pytest.raises(DataError, match="no segments"):
        from_block(neo.Block())
    block = neo.Block()
    for names in (["a", "b"], ["a", "c"]):
        seg = neo.Segment()
        for name in names:
            seg.spiketrains.append(neo.SpikeTrain([0.1] * pq.s, t_stop=1 * pq.s, name=name))
        block.segments.append(seg)
    with pytest.raises(DataError, match="same units in the same order"):
        from_block(block)
    seg = neo.Segment()
    seg.spiketrains.append(neo.SpikeTrain([0.8, 0.2] * pq.s, t_stop=1 * pq.s, name="x"))
    block = neo.Block()
    block.segments.append(seg)
    with pytest.raises(DataError, match="not sorted"):
        from_block(block)


def test_read_neo_errors(tmp_path):
    with pytest.raises(FileFormatError, match="does not exist") as err:
        read_neo(tmp_path / "missing.nix")
    assert "missing.nix" in str(err.value)
    bad = tmp_path / "garbage.nix"
    bad.write_text("not a nix file")
    with pytest.raises(FileFormatError) as err:
        read_neo(bad)
    assert "garbage.nix" in str(err.value)
    unknown = tmp_path / "data.xyz123"
    unknown.write_text("?")
    with pytest.raises(FileFormatError, match="no Neo reader"):
        read_neo(unknown)


def test_split_continuous_recording_into_trials():
    seg = neo.Segment()
    seg.spiketrains.append(neo.SpikeTrain([0.5, 1.5, 2.5, 3.5] * pq.s, t_stop=5 * pq.s, name="u"))
    block = neo.Block()
    block.segments.append(seg)
    out = split_trials(block, [0.0, 2.0], [2.0, 4.0], conditions=["a", "b"],
                       events={"cue": [1.0, 3.0]})
    assert len(out.segments) == 2
    np.testing.assert_allclose(out.segments[1].spiketrains[0].magnitude, [2.5, 3.5])
    assert event_time(out.segments[1], "cue") == 3.0
    assert trial_annotations(out)["condition"] == ["a", "b"]
    with pytest.raises(DataError, match="zero or negative length"):
        split_trials(block, [1.0], [1.0])
