"""Tests of cortexfit.io.nwb: the shared ALM recordings, a write/read round trip and bad files."""
from __future__ import annotations

import collections
import datetime as dt
import warnings

import h5py
import numpy as np
import pytest
from pynwb import NWBHDF5IO, NWBFile
from pynwb.misc import Units

from cortexfit.exceptions import ConfigError, CortexfitWarning, DataError, FileFormatError
from cortexfit.io.convention import (
    Trial,
    check_block,
    event_names,
    event_time,
    make_block,
    trial_annotations,
    unit_annotations,
    unit_ids,
)
from cortexfit.io.nwb import read_nwb, write_nwb

SESSION_START = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)

ALM_EXPECTED = {
    "sub-anm369963_ses-20170228.nwb": {
        "n_trials": 178,
        "type": {"lick left": 93, "lick right": 85},
        "response": {"correct": 132, "no response": 27, "incorrect": 13, "early lick": 6},
    },
    "sub-anm372793_ses-20170508.nwb": {
        "n_trials": 340,
        "type": {"lick left": 178, "lick right": 162},
        "response": {"correct": 291, "early lick": 40, "incorrect": 7, "no response": 2},
    },
}


def start_of(segment):
    """The trial's start: the spike trains' t_start (neo's Segment.t_start also counts events)."""
    return float(segment.spiketrains[0].t_start)


def stop_of(segment):
    return float(segment.spiketrains[0].t_stop)


def assert_error(excinfo, path, field):
    """The error names the file and the field, in its message and its attributes."""
    message = str(excinfo.value)
    assert path.name in message, message
    assert f"Field: {field}" in message, message
    assert excinfo.value.field == field


# --------------------------------------------------------------------------------------
# The shared ALM recordings (Economo et al. 2018, DANDI:000006)
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alm_blocks(alm_nwb_paths):
    """Both ALM sessions read once with the default options (the unsorted-spike warning is
    tested separately)."""
    blocks = {}
    for path in alm_nwb_paths:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CortexfitWarning)
            blocks[path.name] = read_nwb(path)
    return blocks


def raw_alm(path):
    """start_time, cue_start_time (relative, as stored) and the raw spike times, via pynwb."""
    with NWBHDF5IO(str(path), "r", load_namespaces=True) as nwb_io:
        nwbfile = nwb_io.read()
        return (
            np.asarray(nwbfile.trials["start_time"].data[:]),
            np.asarray(nwbfile.trials["cue_start_time"].data[:]),
            np.asarray(nwbfile.units["spike_times"][0]),
        )


@pytest.mark.shared_data
def test_alm_sessions_load_with_their_trials(alm_blocks):
    assert sorted(alm_blocks) == sorted(ALM_EXPECTED)
    for name, block in alm_blocks.items():
        expected = ALM_EXPECTED[name]
        check_block(block)
        assert len(block.segments) == expected["n_trials"]
        annotations = trial_annotations(block)
        assert dict(collections.Counter(annotations["type"])) == expected["type"]
        assert dict(collections.Counter(annotations["response"])) == expected["response"]
        assert annotations["trial_id"] == list(range(1, expected["n_trials"] + 1))
        assert block.annotations["event_times"] == "relative"
        assert block.annotations["trial_stop"] == "inferred"
        assert event_names(block) == ["cue_start_time", "pole_in_time", "pole_out_time"]
        # event columns become Events, not annotations
        assert "cue_start_time" not in annotations
        assert block.annotations["source"].endswith(name)


@pytest.mark.shared_data
def test_alm_go_cue_is_on_the_session_clock(alm_blocks, alm_nwb_paths):
    path = alm_nwb_paths[0]
    assert path.name == "sub-anm369963_ses-20170228.nwb"
    starts, cues_relative, _ = raw_alm(path)
    first = alm_blocks[path.name].segments[0]
    assert first.annotations["trial_id"] == 1
    assert start_of(first) == pytest.approx(302.371, abs=1e-9)
    assert starts[0] == pytest.approx(302.371, abs=1e-9)
    assert event_time(first, "cue_start_time") == pytest.approx(
        302.371 + cues_relative[0], abs=1e-9
    )
    for seg, start, cue in zip(alm_blocks[path.name].segments, starts, cues_relative):
        assert event_time(seg, "cue_start_time") == pytest.approx(start + cue, abs=1e-9)


@pytest.mark.shared_data
def test_alm_inferred_stops_follow_the_documented_rule(alm_blocks):
    block = alm_blocks["sub-anm369963_ses-20170228.nwb"]
    segments = block.segments
    for seg, following in zip(segments[:-1], segments[1:]):
        latest = max(event_time(seg, name) for name in event_names(block))
        assert stop_of(seg) == pytest.approx(max(start_of(following), latest + 2.0))
    last = segments[-1]
    latest = max(event_time(last, name) for name in event_names(block))
    assert stop_of(last) == pytest.approx(latest + 2.0)


@pytest.mark.shared_data
def test_alm_unit_annotations(alm_blocks):
    block = alm_blocks["sub-anm369963_ses-20170228.nwb"]
    assert unit_ids(block) == ["1001"]
    annotations = unit_annotations(block)[0]
    assert annotations["cell_type"] == "PTlower"
    assert annotations["depth"] == 780.0
    assert annotations["quality"] == "Excellent"
    assert "brain_region: ALM" in annotations["location"]  # from the electrodes table
    assert "electrodes" not in annotations
    other = alm_blocks["sub-anm372793_ses-20170508.nwb"]
    assert unit_annotations(other)[0]["cell_type"] == "PTupper"
    assert block.annotations["subject_id"] == "anm369963"
    assert block.annotations["session_start_time"].startswith("2017-02-28")


@pytest.mark.shared_data
def test_alm_spikes_are_sorted_and_inside_each_trial(alm_blocks, alm_nwb_paths):
    for path in alm_nwb_paths:
        _, _, raw_spikes = raw_alm(path)
        assert np.sum(np.diff(raw_spikes) < 0) > 0  # the file really is unsorted
        raw_sorted = np.sort(raw_spikes)
        n_spikes = 0
        for seg in alm_blocks[path.name].segments:
            (train,) = seg.spiketrains
            times = train.magnitude
            start, stop = start_of(seg), stop_of(seg)
            assert np.all(np.diff(times) >= 0)
            assert np.all((times >= start) & (times <= stop))
            # every raw spike within the window, and nothing else
            expected = raw_sorted[(raw_sorted >= start) & (raw_sorted <= stop)]
            np.testing.assert_array_equal(times, expected)
            n_spikes += len(times)
        assert n_spikes > 0


@pytest.mark.shared_data
def test_alm_unsorted_spikes_warn_by_default_and_can_raise(alm_nwb_paths):
    path = alm_nwb_paths[0]
    with pytest.warns(CortexfitWarning, match=r"units\.spike_times.*out of order"):
        read_nwb(path)
    with pytest.raises(DataError, match="not sorted") as excinfo:
        read_nwb(path, unsorted_spikes="error")
    assert_error(excinfo, path, "units.spike_times (unit 1001)")
    with warnings.catch_warnings():
        warnings.simplefilter("error", CortexfitWarning)
        block = read_nwb(path, unsorted_spikes="sort")
    assert len(block.segments) == 178


@pytest.mark.shared_data
def test_alm_explicit_conventions(alm_blocks, alm_nwb_paths):
    path = alm_nwb_paths[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CortexfitWarning)
        relative = read_nwb(path, event_times="relative")
    auto = alm_blocks[path.name]
    assert [event_time(s, "pole_in_time") for s in relative.segments] == [
        event_time(s, "pole_in_time") for s in auto.segments
    ]
    with pytest.raises(DataError, match="before their trial's start_time") as err:
        read_nwb(path, event_times="absolute", unsorted_spikes="sort")
    assert path.name in str(err.value) and 'event_times="relative"' in str(err.value)


# --------------------------------------------------------------------------------------
# Round trip
# --------------------------------------------------------------------------------------


def small_block(unit_names=("3", "7", "12"), trial_ids=None):
    """Six non-overlapping trials on a session clock, two conditions, three units."""
    rng = np.random.default_rng(1)
    trials = []
    for index in range(6):
        start = 10.0 + 5.0 * index
        stop = start + 3.5
        spikes = [np.sort(rng.uniform(start, stop, size=rng.integers(0, 12))) for _ in unit_names]
        events = {"go_cue_time": start + 1.25 + 0.01 * index}
        if index % 3 != 2:
            events["response_time"] = start + 2.0 + 0.1 * index
        trials.append(
            Trial(
                t_start=start,
                t_stop=stop,
                spikes=spikes,
                annotations={
                    "trial_id": index if trial_ids is None else trial_ids[index],
                    "condition": "left" if index % 2 == 0 else "right",
                    "outcome": "correct" if index != 4 else "error",
                    "reward_ul": 2 * index,
                    "contrast": 0.25 * (index % 4),
                    "is_good": index != 5,
                },
                events=events,
            )
        )
    units = [
        {"cell_type": "pyramidal" if k % 2 == 0 else "interneuron", "depth": 100.0 * k,
         "channel": k}
        for k in range(len(unit_names))
    ]
    return make_block(
        trials, list(unit_names), unit_annotations=units, source="small test block",
        block_annotations={"session_start_time": SESSION_START.isoformat()},
    )


def assert_same_recording(original, read_back):
    assert len(read_back.segments) == len(original.segments)
    assert unit_ids(read_back) == unit_ids(original)
    assert unit_annotations(read_back) == unit_annotations(original)
    assert event_names(read_back) == event_names(original)
    for before, after in zip(original.segments, read_back.segments):
        assert after.annotations == before.annotations
        assert start_of(after) == start_of(before)
        assert stop_of(after) == stop_of(before)
        assert {e.name: event_time(after, e.name) for e in after.events} == {
            e.name: event_time(before, e.name) for e in before.events
        }
        for train_before, train_after in zip(before.spiketrains, after.spiketrains):
            np.testing.assert_array_equal(train_after.magnitude, train_before.magnitude)


def test_round_trip_gives_back_the_same_recording(tmp_path):
    block = small_block()
    path = write_nwb(block, tmp_path / "small.nwb", session_description="round trip")
    assert path == tmp_path / "small.nwb"
    read_back = read_nwb(path)
    assert_same_recording(block, read_back)
    assert read_back.annotations["event_times"] == "absolute"
    assert read_back.annotations["trial_stop"] == "file"
    assert read_back.annotations["session_description"] == "round trip"
    assert read_back.annotations["session_start_time"] == SESSION_START.isoformat()
    # types survive: int, float, bool, str
    first = read_back.segments[0].annotations
    assert type(first["reward_ul"]) is int and type(first["contrast"]) is float
    assert type(first["is_good"]) is bool and type(first["condition"]) is str
    assert type(unit_annotations(read_back)[0]["channel"]) is int
    # a trial without a response has no response event
    assert event_time(read_back.segments[2], "response_time") is None


def test_round_trip_with_text_ids(tmp_path):
    block = small_block(unit_names=("a", "b"), trial_ids=[f"t{i}" for i in range(6)])
    read_back = read_nwb(write_nwb(block, tmp_path / "text_ids.nwb"))
    assert_same_recording(block, read_back)


def test_round_trip_of_the_read_file_is_stable(tmp_path):
    once = read_nwb(write_nwb(small_block(), tmp_path / "once.nwb"))
    twice = read_nwb(write_nwb(once, tmp_path / "twice.nwb"))
    assert_same_recording(once, twice)
    assert twice.annotations["identifier"] == once.annotations["identifier"]


def test_write_refuses_to_overwrite(tmp_path):
    path = write_nwb(small_block(), tmp_path / "exists.nwb")
    with pytest.raises(DataError, match="already exists") as excinfo:
        write_nwb(small_block(), path)
    assert_error(excinfo, path, "path")
    write_nwb(small_block(), path, overwrite=True, identifier="second")
    assert read_nwb(path).annotations["identifier"] == "second"


def test_overlapping_trials_are_written_with_each_spike_once(tmp_path):
    trials = [
        Trial(1.0, 4.0, [np.array([1.5, 3.0, 3.5])], {"trial_id": 1}, {"cue_time": 2.0}),
        Trial(3.0, 6.0, [np.array([3.0, 3.5, 5.0])], {"trial_id": 2}, {"cue_time": 4.0}),
    ]
    block = make_block(trials, ["9"], source="overlapping trials")
    with pytest.warns(CortexfitWarning, match="overlap"):
        path = write_nwb(block, tmp_path / "overlap.nwb")
    with NWBHDF5IO(str(path), "r") as nwb_io:
        written = np.asarray(nwb_io.read().units["spike_times"][0])
    np.testing.assert_array_equal(written, [1.5, 3.0, 3.5, 5.0])
    assert_same_recording(block, read_nwb(path))


def test_events_outside_their_trial_are_refused():
    trials = [Trial(10.0, 14.0, [np.array([11.0])], {"trial_id": 0}, {"cue_time": 9.5})]
    with pytest.raises(DataError, match="outside its trial") as err:
        make_block(trials, ["1"], source="events outside their trials")
    assert "cue_time" in str(err.value)


def test_write_warns_about_event_names_read_nwb_will_not_find(tmp_path):
    trial = Trial(10.0, 12.0, [np.array([11.0])], {"trial_id": 0}, {"go_cue": 11.2})
    block = make_block([trial], ["1"], source="one trial")
    with pytest.warns(CortexfitWarning, match="go_cue"):
        path = write_nwb(block, tmp_path / "go_cue.nwb")
    assert len(read_nwb(path).segments[0].events) == 0
    read_back = read_nwb(path, event_columns=["go_cue"])
    assert event_time(read_back.segments[0], "go_cue") == 11.2
    assert "go_cue" not in read_back.segments[0].annotations


# --------------------------------------------------------------------------------------
# Event-time conventions on small files
# --------------------------------------------------------------------------------------


def make_nwb(
    path,
    *,
    spike_times=((1.0, 2.0, 3.0),),
    trials=((0.5, 4.0),),
    trial_columns=None,
    units=True,
):
    """A small NWB file written with pynwb; ``trial_columns`` maps name -> values per trial."""
    nwbfile = NWBFile(
        session_description="test", identifier="test-file", session_start_time=SESSION_START,
        units=Units(name="units", description="test units") if units else None,
    )
    for index, times in enumerate(spike_times if units else ()):
        nwbfile.add_unit(spike_times=list(times), id=index)
    for name in trial_columns or {}:
        nwbfile.add_trial_column(name=name, description=name)
    for index, (start, stop) in enumerate(trials):
        row = {name: values[index] for name, values in (trial_columns or {}).items()}
        nwbfile.add_trial(start_time=start, stop_time=stop, **row)
    with NWBHDF5IO(str(path), "w") as nwb_io:
        nwb_io.write(nwbfile)
    return path


def test_relative_events_are_detected_and_shifted(tmp_path):
    starts = [100.0, 110.0, 120.0]
    path = make_nwb(
        tmp_path / "relative.nwb",
        spike_times=[np.arange(100.0, 130.0, 0.5)],
        trials=[(start, np.nan) for start in starts],
        trial_columns={"go_cue_time": [2.0, 2.5, np.nan], "outcome": ["hit", "miss", "hit"]},
    )
    block = read_nwb(path)
    assert block.annotations["event_times"] == "relative"
    assert [event_time(s, "go_cue_time") for s in block.segments] == [102.0, 112.5, None]
    # stops: next start (later than the cue + 2 s), and start + padding without events
    assert [stop_of(s) for s in block.segments] == [110.0, 120.0, 122.0]
    assert block.annotations["trial_stop"] == "inferred"


def test_absolute_events_without_stop_times_overlap(tmp_path):
    path = make_nwb(
        tmp_path / "absolute.nwb",
        spike_times=[np.arange(100.0, 130.0, 0.25)],
        trials=[(100.0, np.nan), (105.0, 112.0), (110.0, np.nan)],
        trial_columns={"go_cue_time": [106.0, 107.0, 111.0]},
    )
    block = read_nwb(path, trial_padding=1.5)
    assert block.annotations["event_times"] == "absolute"
    assert block.annotations["trial_stop"] == "partly inferred"
    assert [event_time(s, "go_cue_time") for s in block.segments] == [106.0, 107.0, 111.0]
    assert [stop_of(s) for s in block.segments] == [107.5, 112.0, 112.5]
    first, second = block.segments[:2]
    shared = np.intersect1d(first.spiketrains[0].magnitude, second.spiketrains[0].magnitude)
    assert shared.size > 0  # overlapping trials both hold the spikes of their overlap


def test_events_of_trials_starting_near_zero_are_ambiguous(tmp_path):
    path = make_nwb(
        tmp_path / "ambiguous.nwb",
        trials=[(0.0, 5.0), (0.1, 5.1)],
        trial_columns={"go_cue_time": [1.0, 1.5]},
    )
    with pytest.raises(DataError, match='event_times="absolute"') as excinfo:
        read_nwb(path)
    assert_error(excinfo, path, "trials.go_cue_time")
    block = read_nwb(path, event_times="relative")
    assert [event_time(s, "go_cue_time") for s in block.segments] == [1.0, 1.6]


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.nwb"
    with pytest.raises(FileFormatError, match="does not exist") as excinfo:
        read_nwb(path)
    assert_error(excinfo, path, "path")


def test_text_file_is_not_hdf5(tmp_path):
    path = tmp_path / "x.nwb"
    path.write_text("trial,start\n1,0.5\n")
    with pytest.raises(FileFormatError, match="not an HDF5 file") as excinfo:
        read_nwb(path)
    assert_error(excinfo, path, "HDF5 signature")


def test_hdf5_file_that_is_not_nwb(tmp_path):
    path = tmp_path / "random.nwb"
    with h5py.File(path, "w") as handle:
        handle["random"] = np.random.default_rng(0).normal(size=10)
    with pytest.raises(FileFormatError, match="not an NWB file") as excinfo:
        read_nwb(path)
    assert_error(excinfo, path, "root attribute neurodata_type")
    assert "random" in str(excinfo.value)


def test_truncated_nwb_file(tmp_path):
    whole = write_nwb(small_block(), tmp_path / "whole.nwb")
    path = tmp_path / "truncated.nwb"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(FileFormatError, match="corrupt or truncated") as excinfo:
        read_nwb(path)
    assert_error(excinfo, path, "HDF5 structure")


def test_hdf5_claiming_nwb_without_its_contents(tmp_path):
    path = tmp_path / "hollow.nwb"
    with h5py.File(path, "w") as handle:
        handle.attrs["neurodata_type"] = "NWBFile"
        handle.attrs["namespace"] = "core"
    with pytest.raises(FileFormatError, match="cannot be read") as excinfo:
        read_nwb(path)
    assert_error(excinfo, path, "NWB structure")


def test_no_units_table(tmp_path):
    path = make_nwb(tmp_path / "no_units.nwb", units=False)
    with pytest.raises(DataError, match="no Units table") as excinfo:
        read_nwb(path)
    assert_error(excinfo, path, "units")


def test_empty_units_table(tmp_path):
    path = make_nwb(tmp_path / "empty_units.nwb", spike_times=())
    with pytest.raises(DataError, match="Units table is empty") as excinfo:
        read_nwb(path)
    assert_error(excinfo, path, "units")
    assert "0 units" in str(excinfo.value)


@pytest.mark.parametrize(
    ("bad_times", "message"),
    [((1.0, np.nan, 2.0), "NaN"), ((-0.5, 1.0, 2.0), "negative")],
)
def test_nan_or_negative_spike_times(tmp_path, bad_times, message):
    path = make_nwb(tmp_path / "bad_spikes.nwb", spike_times=[(1.0, 2.0), bad_times])
    with pytest.raises(DataError, match=message) as excinfo:
        read_nwb(path)
    assert_error(excinfo, path, "units.spike_times (unit 1)")


def test_no_trials_table(tmp_path):
    path = make_nwb(tmp_path / "no_trials.nwb", trials=())
    with pytest.raises(DataError, match="no trials table") as excinfo:
        read_nwb(path)
    assert_error(excinfo, path, "intervals/trials")


def test_zero_length_trials(tmp_path):
    path = make_nwb(tmp_path / "zero_length.nwb", trials=[(0.5, 4.0), (5.0, 5.0)])
    with pytest.raises(DataError, match="zero or negative length") as excinfo:
        read_nwb(path)
    assert_error(excinfo, path, "trials.stop_time")
    assert "start 5 s, stop 5 s" in str(excinfo.value)


def test_non_numeric_event_column(tmp_path):
    path = make_nwb(tmp_path / "text_event.nwb", trial_columns={"outcome": ["hit"]})
    with pytest.raises(DataError, match="not numeric") as excinfo:
        read_nwb(path, event_columns=["outcome"])
    assert_error(excinfo, path, "trials.outcome")


def test_unknown_event_column_lists_the_columns(tmp_path):
    path = make_nwb(
        tmp_path / "unknown_event.nwb",
        trial_columns={"go_cue_time": [1.0], "outcome": ["hit"]},
    )
    with pytest.raises(DataError, match="unknown event column") as excinfo:
        read_nwb(path, event_columns=["lick_time"])
    assert_error(excinfo, path, "event_columns")
    assert "lick_time" in str(excinfo.value)
    assert "go_cue_time" in str(excinfo.value) and "outcome" in str(excinfo.value)


@pytest.mark.parametrize(
    ("option", "value"),
    [("event_times", "session"), ("unsorted_spikes", "ignore"), ("trial_padding", -1.0),
     ("event_columns", "go_cue_time")],
)
def test_invalid_options(tmp_path, option, value):
    path = make_nwb(tmp_path / "options.nwb")
    with pytest.raises(ConfigError) as excinfo:
        read_nwb(path, **{option: value})
    assert excinfo.value.field == option
