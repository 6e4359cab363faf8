"""The array loader: spike times, spike matrices; malformed input (rates only:
tests/unit/test_targets.py, targets_from_rates)."""
from __future__ import annotations

import numpy as np
import pytest
import quantities as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cortexfit.exceptions import CortexfitError, DataError
from cortexfit.io import (
    check_block,
    event_names,
    event_time,
    from_spike_matrix,
    from_spike_times,
    trial_annotations,
    unit_ids,
)


def _two_trials():
    return [
        [np.array([0.1, 0.5]), np.array([]), np.array([0.9])],
        [np.array([0.2]), np.array([0.3, 0.4]), np.array([])],
    ]


def test_spike_times_to_block():
    block = from_spike_times(
        _two_trials(), t_stop=1.0, conditions=["left", "right"],
        events={"go": [0.6, np.nan]}, unit_ids=["a", "b", "c"],
        unit_annotations=[{"cell_type": "pyr"}] * 3,
        trial_annotations={"outcome": ["correct", "incorrect"]},
    )
    check_block(block)
    assert len(block.segments) == 2
    assert unit_ids(block) == ["a", "b", "c"]
    assert trial_annotations(block)["condition"] == ["left", "right"]
    assert trial_annotations(block)["outcome"] == ["correct", "incorrect"]
    assert event_names(block) == ["go"]
    assert event_time(block.segments[0], "go") == pytest.approx(0.6)
    assert event_time(block.segments[1], "go") is None  # NaN means the trial lacks it
    np.testing.assert_array_equal(block.segments[1].spiketrains[1].magnitude, [0.3, 0.4])
    assert block.segments[0].spiketrains[0].annotations["cell_type"] == "pyr"


def test_milliseconds_are_converted():
    trials = [[np.array([100.0, 500.0])]]
    block = from_spike_times(trials, t_stop=1000.0, time_units="ms", events={"go": [600.0]})
    st0 = block.segments[0].spiketrains[0]
    np.testing.assert_allclose(st0.magnitude, [0.1, 0.5])
    assert float(st0.t_stop) == pytest.approx(1.0)
    assert event_time(block.segments[0], "go") == pytest.approx(0.6)


def test_quantities_are_converted_and_wrong_units_rejected():
    block = from_spike_times([[np.array([100.0]) * pq.ms]], t_stop=1.0)
    np.testing.assert_allclose(block.segments[0].spiketrains[0].magnitude, [0.1])
    with pytest.raises(DataError, match="not in units of time"):
        from_spike_times([[np.array([1.0]) * pq.mV]], t_stop=2.0)
    with pytest.raises(DataError, match="time_units"):
        from_spike_times([[np.array([1.0])]], t_stop=2.0, time_units="volt")


def test_spikes_in_ms_by_mistake_name_the_trial_and_unit():
    with pytest.raises(DataError) as err:
        from_spike_times([[np.array([120.0, 450.0])]], t_stop=2.0)
    msg = str(err.value)
    assert "outside their trial" in msg and "unit 0" in msg and "seconds" in msg


@pytest.mark.parametrize(
    "spikes, match",
    [
        ([[np.array([0.5, np.nan])]], "NaN"),
        ([[np.array([0.5, 0.2])]], "not sorted"),
        ([[np.array([-0.1, 0.2])]], "outside their trial"),
        ([[np.array([[0.1, 0.2]])]], "one-dimensional"),
        ([[["a", "b"]]], "not numbers"),
    ],
)
def test_bad_spike_times(spikes, match):
    with pytest.raises(DataError, match=match) as err:
        from_spike_times(spikes, t_stop=1.0)
    assert "unit 0" in str(err.value) and "Found:" in str(err.value)


def test_unsorted_can_be_sorted_on_request():
    block = from_spike_times([[np.array([0.5, 0.2])]], t_stop=1.0, unsorted="sort")
    np.testing.assert_array_equal(block.segments[0].spiketrains[0].magnitude, [0.2, 0.5])


def test_structural_errors():
    with pytest.raises(DataError, match="different numbers of units"):
        from_spike_times([[np.array([0.1])], [np.array([0.1]), np.array([0.2])]], t_stop=1.0)
    with pytest.raises(DataError, match="zero or negative length"):
        from_spike_times([[np.array([])]], t_stop=0.0)
    with pytest.raises(DataError, match="no trials"):
        from_spike_times([], t_stop=1.0)
    with pytest.raises(DataError, match="no units"):
        from_spike_times([[]], t_stop=1.0)
    with pytest.raises(DataError, match="one value per trial"):
        from_spike_times(_two_trials(), t_stop=1.0, conditions=["a"])
    with pytest.raises(DataError, match="nested"):
        from_spike_times(np.zeros((2, 3)), t_stop=1.0)
    with pytest.raises(DataError, match="not unique"):
        from_spike_times([[np.array([]), np.array([])]], t_stop=1.0, unit_ids=["x", "x"])


def test_spike_matrix_to_block():
    mat = np.zeros((2, 3, 10), dtype=np.uint8)
    mat[0, 0, [1, 4]] = 1
    mat[1, 2, 9] = 2  # two spikes in one bin
    block = from_spike_matrix(mat, bin_size=1.0, time_units="ms", conditions=["a", "b"],
                              events={"end": [10.0, 10.0]})
    seg0, seg1 = block.segments
    np.testing.assert_allclose(seg0.spiketrains[0].magnitude, [0.0015, 0.0045])
    np.testing.assert_allclose(seg1.spiketrains[2].magnitude, [0.0095, 0.0095])
    assert float(seg0.t_stop) == pytest.approx(0.010)
    # trials of unequal length as a list
    block = from_spike_matrix([np.ones((2, 5)), np.ones((2, 8))], bin_size=0.001)
    assert [float(s.t_stop) for s in block.segments] == pytest.approx([0.005, 0.008])
    assert len(block.segments[1].spiketrains[0]) == 8


@pytest.mark.parametrize(
    "mat, kwargs, match",
    [
        (np.ones((1, 2, 3)), {"bin_size": 0}, "positive"),
        (np.full((1, 2, 3), 0.5), {"bin_size": 0.001}, "whole numbers"),
        (-np.ones((1, 2, 3)), {"bin_size": 0.001}, "negative"),
        (np.ones((1, 2, 0)), {"bin_size": 0.001}, "zero length"),
        ([np.ones((2, 3)), np.ones((3, 3))], {"bin_size": 0.001}, "different numbers of units"),
        (np.ones(3), {"bin_size": 0.001}, "wrong shape"),
    ],
)
def test_bad_spike_matrices(mat, kwargs, match):
    with pytest.raises(DataError, match=match):
        from_spike_matrix(mat, **kwargs)


# --- property-based: malformed input gives a CortexfitError or a valid Block, nothing else;
# input built to be valid gives the Block it describes (a loader that rejects everything fails)

def assert_share(outcomes: list[bool], at_least: float, what: str) -> None:
    """At least ``at_least`` of the random examples gave a Block, not an error."""
    n_ok = sum(outcomes)
    assert outcomes, "no example ran"
    assert n_ok >= at_least * len(outcomes), (
        f"only {n_ok} of {len(outcomes)} {what} gave a Block (at least {at_least:.0%} "
        "expected): the loader rejects input it should accept")


def check_spike_trains(block) -> None:
    check_block(block)
    for seg in block.segments:
        for train in seg.spiketrains:
            values = train.magnitude
            assert np.all(np.isfinite(values))
            assert np.all(np.diff(values) >= 0)
            assert np.all((values >= float(seg.t_start)) & (values <= float(seg.t_stop)))


_value = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(-5, 5),
    st.text(max_size=3),
    st.none(),
)
_train = st.one_of(
    st.lists(st.floats(-1.0, 3.0), max_size=6),
    st.lists(_value, max_size=4),
    st.just([]),
    st.just([[0.1, 0.2]]),
)


@st.composite
def valid_spike_times(draw):
    """Spike times from_spike_times must accept: 1-4 trials of 1-3 units, finite times in
    [0, t_stop] (sorted unless ``unsorted="sort"``), as lists, tuples or arrays."""
    n_trials, n_units = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    t_stop = draw(st.floats(0.01, 3.0))
    unsorted = draw(st.sampled_from(["error", "sort"]))
    trials = []
    for _ in range(n_trials):
        units = []
        for _ in range(n_units):
            times = draw(st.lists(st.floats(0.0, t_stop), max_size=6))
            if unsorted == "error":
                times.sort()
            units.append(draw(st.sampled_from([list, tuple, np.array]))(times))
        trials.append(units)
    conditions = draw(st.one_of(st.none(), st.lists(st.sampled_from(["a", "b"]),
                                                    min_size=n_trials, max_size=n_trials)))
    return trials, t_stop, conditions, unsorted


def _spoil_trains(draw, trials):
    """One change to valid spike times: a train reversed, a NaN, a spike after the trial, a
    2-D or text train, a unit missing from a trial, or no trial at all."""
    trials = [list(units) for units in trials]
    i = draw(st.integers(0, len(trials) - 1))
    k = draw(st.integers(0, len(trials[i]) - 1))
    train = list(trials[i][k])
    change = draw(st.sampled_from(["reverse", "nan", "after", "2-D", "text", "unit", "none"]))
    if change == "reverse":
        trials[i][k] = train[::-1]
    elif change == "nan":
        trials[i][k] = train + [np.nan]
    elif change == "after":
        trials[i][k] = train + [10.0]
    elif change == "2-D":
        trials[i][k] = [train]
    elif change == "text":
        trials[i][k] = [str(t) for t in train] + ["x"]
    elif change == "unit":
        trials[i].pop(k)
    else:
        trials = []
    return trials


@st.composite
def odd_spike_times(draw):
    """from_spike_times arguments drawn as valid ones (valid_spike_times) of which each part
    is then made odd with 1 chance in 3: the spike times (one change, or a random nesting),
    t_stop (any float, NaN, text), the conditions (any length)."""
    trials, t_stop, conditions, unsorted = draw(valid_spike_times())
    odd = {part for part in ("trials", "t_stop", "conditions")
           if draw(st.sampled_from([False, False, True]))}
    if "trials" in odd:
        if draw(st.booleans()):
            trials = _spoil_trains(draw, trials)
        else:
            trials = draw(st.lists(st.lists(_train, min_size=0, max_size=3), min_size=0,
                                   max_size=4))
    if "t_stop" in odd:
        t_stop = draw(st.one_of(st.floats(-1, 3), st.just(np.nan), st.just("x")))
    if "conditions" in odd:
        conditions = draw(st.one_of(st.none(),
                                    st.lists(st.sampled_from(["a", "b"]), max_size=5)))
    return trials, t_stop, conditions, unsorted


def test_array_loader_never_leaks_raw_exceptions():
    """Odd input gives a DataError or a valid Block. Each example runs three: random nested
    input (nearly always an error), valid input with parts made odd (a Block in ~60 % of
    them; at least 25 % required), and valid input, which must give its Block."""

    def load(trials, t_stop, conditions, unsorted):
        try:
            block = from_spike_times(trials, t_stop=t_stop, conditions=conditions,
                                     unsorted=unsorted)
        except CortexfitError:
            return None
        check_spike_trains(block)
        return block

    outcomes: list[bool] = []

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        trials=st.lists(st.lists(_train, min_size=0, max_size=3), min_size=0, max_size=4),
        t_stop=st.one_of(st.floats(-1, 3), st.just(np.nan), st.just("x")),
        conditions=st.one_of(st.none(), st.lists(st.sampled_from(["a", "b"]), max_size=5)),
        unsorted=st.sampled_from(["error", "sort"]),
        some=odd_spike_times(),
        valid=valid_spike_times(),
    )
    def examples(trials, t_stop, conditions, unsorted, some, valid):
        load(trials, t_stop, conditions, unsorted)
        outcomes.append(load(*some) is not None)
        trials, t_stop, conditions, unsorted = valid
        block = from_spike_times(trials, t_stop=t_stop, conditions=conditions,
                                 unsorted=unsorted)  # an error here fails with its message
        check_spike_trains(block)
        assert len(block.segments) == len(trials)
        assert unit_ids(block) == [str(k) for k in range(len(trials[0]))]
        for i, (seg, units) in enumerate(zip(block.segments, trials)):
            assert float(seg.t_start) == 0.0 and float(seg.t_stop) == pytest.approx(t_stop)
            assert len(seg.spiketrains) == len(units)
            for train, times in zip(seg.spiketrains, units):
                np.testing.assert_array_equal(train.magnitude, np.sort(np.asarray(times, float)))
            if conditions is not None:
                assert seg.annotations["condition"] == conditions[i]

    examples()
    assert_share(outcomes, 0.25, "valid inputs with odd parts")


@st.composite
def valid_spike_matrices(draw):
    """Spike matrices from_spike_matrix must accept: a 3-D array, or a list of 2-D arrays
    of unequal lengths, of whole counts >= 0 (ints or floats), and a bin size > 0."""
    n_trials, n_units = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    lengths = draw(st.lists(st.integers(1, 6), min_size=n_trials, max_size=n_trials))
    counts = draw(st.integers(0, 3))
    dtype = draw(st.sampled_from([np.int64, np.uint8, np.float64, bool if counts <= 1 else int]))
    if draw(st.booleans()):
        mats = np.full((n_trials, n_units, lengths[0]), counts, dtype=dtype)
        lengths = [lengths[0]] * n_trials
    else:
        mats = [np.full((n_units, n), counts, dtype=dtype) for n in lengths]
    return mats, draw(st.floats(1e-4, 0.01)), n_units, lengths, counts


@st.composite
def odd_spike_matrices(draw):
    """from_spike_matrix arguments drawn as valid ones (valid_spike_matrices) of which each
    part is then made odd with 1 chance in 3: the matrices (any 3-D shape, dimensions of 0
    included, filled with any integer, float or NaN), the bin size (<= 0.01, NaN, text)."""
    mats, bin_size = draw(valid_spike_matrices())[:2]
    odd = {part for part in ("matrices", "bin_size") if draw(st.sampled_from([False, False, True]))}
    if "matrices" in odd:
        shape = draw(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 6)))
        mats = np.full(shape, draw(st.one_of(st.integers(-1, 3), st.floats(-1, 2),
                                             st.just(np.nan))))
    if "bin_size" in odd:
        bin_size = draw(st.one_of(st.floats(-1, 0.01), st.just(np.nan), st.just("1ms")))
    return mats, bin_size


def test_matrix_loader_never_leaks_raw_exceptions():
    """Odd matrices and bin sizes give a DataError or a valid Block. Each example runs
    three: random matrices and bin sizes (nearly always an error), valid ones with parts made
    odd (a Block in ~65 % of them; at least 25 % required), and valid ones, which must give
    their Block."""

    def load(matrices, bin_size):
        try:
            block = from_spike_matrix(matrices, bin_size=bin_size)
        except CortexfitError:
            return None
        check_spike_trains(block)
        return block

    outcomes: list[bool] = []

    @settings(max_examples=80, deadline=None)
    @given(
        shape=st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 6)),
        fill=st.one_of(st.integers(-1, 3), st.floats(-1, 2), st.just(np.nan)),
        bin_size=st.one_of(st.floats(-1, 0.01), st.just(np.nan), st.just("1ms")),
        some=odd_spike_matrices(),
        valid=valid_spike_matrices(),
    )
    def examples(shape, fill, bin_size, some, valid):
        load(np.full(shape, fill), bin_size)
        outcomes.append(load(*some) is not None)
        mats, bin_size, n_units, lengths, counts = valid
        block = from_spike_matrix(mats, bin_size=bin_size)  # an error here fails with it
        check_spike_trains(block)
        assert len(block.segments) == len(lengths)
        assert unit_ids(block) == [str(k) for k in range(n_units)]
        for seg, n in zip(block.segments, lengths):
            assert float(seg.t_stop) == pytest.approx(n * bin_size, rel=1e-12)
            assert len(seg.spiketrains) == n_units
            centres = np.repeat((np.arange(n) + 0.5) * bin_size, counts)
            for train in seg.spiketrains:
                np.testing.assert_allclose(train.magnitude, centres, rtol=1e-12, atol=0)

    examples()
    assert_share(outcomes, 0.25, "valid matrices with odd parts")
