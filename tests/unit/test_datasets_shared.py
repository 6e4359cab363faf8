"""Loaders of the shared real recordings (../shared/data): shapes, values, errors."""
from __future__ import annotations

import numpy as np
import pytest

from cortexfit.datasets import SHARED_DATASETS, dataset_dir, load_alm_psth, load_pmd_reach
from cortexfit.exceptions import ConfigError, DataError, FileFormatError
from cortexfit.io.convention import check_block, event_time, unit_annotations, unit_ids

ALM = "alm_kim2023_psth"
PMD = "pmd_yu2009"
ALM_FILES = {"lick_left": "movingrate_Pyr1Hz_lickleft.jld",
             "lick_right": "movingrate_Pyr1Hz_lickright.jld"}


def _h5(path):
    import h5py

    with h5py.File(path, "r") as f:
        return f["Pyr"][()]


def _mat(path):
    import scipy.io

    return scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)["D"]


# ------------------------------------------------------------------------------- ALM PSTH


@pytest.fixture(scope="module")
def alm_raw(shared_data):
    return {c: _h5(shared_data / ALM / f) for c, f in ALM_FILES.items()}


@pytest.mark.shared_data
def test_alm_psth_default(shared_data, alm_raw):
    ds = load_alm_psth(shared_data)
    assert ds.rate.dims == ("condition", "unit", "time")
    assert ds.rate.shape == (2, 1824, 100)
    assert list(ds.condition.values) == ["lick_left", "lick_right"]
    assert list(ds.unit.values[:2]) == ["pyr0000", "pyr0001"] and ds.unit.values[-1] == "pyr1823"
    assert len(set(ds.unit.values)) == 1824
    t = ds.time.values
    assert t[0] == pytest.approx(-1.99) and t[-1] == pytest.approx(-0.01)
    np.testing.assert_allclose(np.diff(t), 0.02)
    # bin centres: the window is exactly the 2 s before the go cue
    assert ds.attrs["window_start"] == pytest.approx(-2.0)
    assert ds.attrs["window_stop"] == pytest.approx(0.0, abs=1e-12)
    for i, cond in enumerate(ALM_FILES):
        raw = alm_raw[cond].T  # (unit, time)
        np.testing.assert_array_equal(ds.rate.values[i, :, :93], raw[:, :93])
        # the 7 points whose moving-average window included the empty 101st bin are repaired
        n = 108 - np.arange(93, 100)
        np.testing.assert_allclose(ds.rate.values[i, :, 93:], raw[:, 93:100] * n / (n - 1))
    assert float(ds.rate.mean()) > 0
    assert float(ds.rate.min()) >= 0
    assert (ds.mean_rate.values > 0).all()
    assert set(ds.cell_type.values) == {"pyramidal"}
    assert ds.attrs["align_event"] == "go_cue"
    assert ds.attrs["has_trials"] == 0
    assert ds.attrs["bin_size"] == pytest.approx(0.02)
    assert ds.attrs["kernel"] == "rectangular"
    assert ds.attrs["kernel_width"] == pytest.approx(0.3 / np.sqrt(12))
    assert ds.attrs["source"] == str(shared_data / ALM)
    assert "Kim" in ds.attrs["citation"] and "Finkelstein" in ds.attrs["citation"]
    assert "MIT" in ds.attrs["license"]


@pytest.mark.shared_data
def test_alm_psth_drop_and_keep_are_the_stored_values(shared_data, alm_raw):
    drop = load_alm_psth(shared_data, last_bin="drop")
    keep = load_alm_psth(shared_data, last_bin="keep")
    assert drop.rate.shape == (2, 1824, 100) and keep.rate.shape == (2, 1824, 101)
    assert keep.time.values[-1] == pytest.approx(0.01)
    for i, cond in enumerate(ALM_FILES):
        np.testing.assert_array_equal(keep.rate.values[i], alm_raw[cond].T)
        np.testing.assert_array_equal(drop.rate.values[i], alm_raw[cond].T[:, :100])


@pytest.mark.shared_data
def test_alm_last_bin_artefact_is_real_and_repaired(shared_data, alm_raw):
    """The stored rates are a +-7-bin moving average of bins whose 101st bin is empty.

    Undoing the moving average (pseudo-inverse; the 101st raw bin is identifiable) gives
    exactly 0 for every neuron, and the population mean drops by 1/15 at point 93 as
    stored, but is continuous after the repair.
    """
    n = 101
    a = np.zeros((n, n))
    for i in range(n):
        lo, hi = max(i - 7, 0), min(i + 7, n - 1)
        a[i, lo : hi + 1] = 1.0 / (hi - lo + 1)
    raw_bins = np.linalg.pinv(a) @ alm_raw["lick_left"]
    assert np.abs(raw_bins[-1]).max() < 1e-9
    assert raw_bins[:-1].mean() > 1.0
    stored = alm_raw["lick_left"].mean(axis=1)
    assert stored[93] / stored[92] == pytest.approx(14 / 15, abs=0.01)
    repaired = load_alm_psth(shared_data).rate.sel(condition="lick_left").mean("unit").values
    assert abs(repaired[93] / repaired[92] - 1) < 0.01


@pytest.mark.shared_data
def test_alm_psth_accepts_the_dataset_folder(shared_data):
    ds = load_alm_psth(shared_data / ALM)
    assert ds.rate.shape == (2, 1824, 100)


@pytest.mark.shared_data
def test_alm_psth_env_var(shared_data, monkeypatch):
    monkeypatch.setenv("CORTEXFIT_SHARED_DATA", str(shared_data))
    assert load_alm_psth().rate.shape == (2, 1824, 100)


def test_alm_psth_missing_folder(tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(DataError) as info:
        load_alm_psth(missing)
    assert str(missing) in str(info.value)


def test_alm_psth_missing_file(tmp_path):
    (tmp_path / ALM).mkdir()
    with pytest.raises(DataError) as info:
        load_alm_psth(tmp_path)
    err = info.value
    assert err.file == str(tmp_path / ALM / ALM_FILES["lick_left"])
    assert err.field == ALM_FILES["lick_left"]
    assert str(tmp_path / ALM) in str(err)


def test_alm_psth_wrong_shape(tmp_path):
    import h5py

    folder = tmp_path / ALM
    folder.mkdir()
    for name in ALM_FILES.values():
        with h5py.File(folder / name, "w") as f:
            f["Pyr"] = np.ones((100, 5))
    with pytest.raises(DataError) as info:
        load_alm_psth(tmp_path)
    assert info.value.field == "Pyr"
    assert "(100, 5)" in str(info.value) and ALM_FILES["lick_left"] in str(info.value)


def test_alm_psth_files_disagree(tmp_path):
    import h5py

    folder = tmp_path / ALM
    folder.mkdir()
    for k, name in enumerate(ALM_FILES.values()):
        with h5py.File(folder / name, "w") as f:
            f["Pyr"] = np.ones((101, 5 + k))
    with pytest.raises(DataError, match="different numbers of neurons"):
        load_alm_psth(tmp_path)


def test_alm_psth_missing_dataset_and_negative(tmp_path):
    import h5py

    folder = tmp_path / ALM
    folder.mkdir()
    for name in ALM_FILES.values():
        with h5py.File(folder / name, "w") as f:
            f["FS"] = np.ones((101, 5))
    with pytest.raises(DataError) as info:
        load_alm_psth(tmp_path)
    assert info.value.field == "Pyr" and "FS" in str(info.value)
    for name in ALM_FILES.values():
        with h5py.File(folder / name, "w") as f:
            f["Pyr"] = -np.ones((101, 5))
    with pytest.raises(DataError, match="negative"):
        load_alm_psth(tmp_path)


def test_alm_psth_not_hdf5(tmp_path):
    folder = tmp_path / ALM
    folder.mkdir()
    for name in ALM_FILES.values():
        (folder / name).write_text("not an HDF5 file")
    with pytest.raises(FileFormatError) as info:
        load_alm_psth(tmp_path)
    assert ALM_FILES["lick_left"] in str(info.value)


def test_alm_psth_bad_option(tmp_path):
    with pytest.raises(ConfigError):
        load_alm_psth(tmp_path, last_bin="nope")


# ------------------------------------------------------------------------------------ PMd


@pytest.fixture(scope="module")
def pmd_block(shared_data):
    return load_pmd_reach(shared_data)


@pytest.fixture(scope="module")
def pmd_mat(shared_data):
    return _mat(shared_data / PMD / "ex2_rawspiketrains.mat")


@pytest.mark.shared_data
def test_pmd_structure(pmd_block, pmd_mat):
    block = pmd_block
    check_block(block)
    assert len(block.segments) == 112
    conds = [seg.annotations["condition"] for seg in block.segments]
    assert conds.count("reach1") == 56 and conds.count("reach2") == 56
    assert conds == [str(d.condition) for d in pmd_mat]
    assert [seg.annotations["trial_id"] for seg in block.segments] == list(range(112))
    ids = unit_ids(block)
    assert len(ids) == 61 and ids[0] == "pmd00" and ids[-1] == "pmd60"
    assert all(a["location"] == "PMd" for a in unit_annotations(block))
    assert all(len(seg.spiketrains) == 61 for seg in block.segments)
    assert "Yu" in block.annotations["citation"] and "GPL" in block.annotations["license"]
    assert block.annotations["source"].endswith("ex2_rawspiketrains.mat")


@pytest.mark.shared_data
def test_pmd_trial_lengths_and_events(pmd_block, pmd_mat):
    lengths_ms = []
    for seg, d in zip(pmd_block.segments, pmd_mat):
        t0 = float(seg.spiketrains[0].t_start)
        t1 = float(seg.spiketrains[0].t_stop)
        assert t0 == 0.0
        assert t1 == pytest.approx(d.data.shape[1] / 1000)
        assert event_time(seg, "trial_start") == 0.0
        assert event_time(seg, "movement_onset") == pytest.approx(t1)
        lengths_ms.append(round(t1 * 1000))
    assert min(lengths_ms) == 1018 and max(lengths_ms) == 1526


@pytest.mark.shared_data
def test_pmd_spikes_match_the_mat(pmd_block, pmd_mat):
    seg0 = pmd_block.segments[0]
    assert sum(len(st) for st in seg0.spiketrains) == int(pmd_mat[0].data.sum())
    # every trial and unit: same counts, spikes at the bin centres of the 1s
    for seg, d in zip(pmd_block.segments, pmd_mat):
        counts = [len(st) for st in seg.spiketrains]
        assert counts == d.data.sum(axis=1).tolist()
    for u in (0, 30, 60):
        times = seg0.spiketrains[u].magnitude
        np.testing.assert_allclose(times, (np.flatnonzero(pmd_mat[0].data[u]) + 0.5) / 1000)


@pytest.mark.shared_data
def test_pmd_population_rate(pmd_block):
    n = 0
    duration = 0.0
    for seg in pmd_block.segments:
        n += sum(len(st) for st in seg.spiketrains)
        duration += float(seg.spiketrains[0].t_stop - seg.spiketrains[0].t_start)
    rate = n / duration / 61
    assert 10.0 < rate < 14.0


@pytest.mark.shared_data
def test_pmd_ex1(shared_data):
    block = load_pmd_reach(shared_data, variant="ex1")
    assert len(block.segments) == 210
    conds = [seg.annotations["condition"] for seg in block.segments]
    assert sorted(set(conds)) == [f"reach{i}" for i in range(1, 8)]
    assert all(conds.count(c) == 30 for c in set(conds))
    assert all(float(seg.spiketrains[0].t_stop) == pytest.approx(0.4) for seg in block.segments)
    assert event_time(block.segments[0], "movement_onset") is None
    assert block.annotations["variant"] == "ex1"


def test_pmd_missing_folder(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        load_pmd_reach(missing)
    assert str(missing) in str(info.value)


def test_pmd_missing_file(tmp_path):
    (tmp_path / PMD).mkdir()
    with pytest.raises(DataError) as info:
        load_pmd_reach(tmp_path)
    assert info.value.file == str(tmp_path / PMD / "ex2_rawspiketrains.mat")
    assert "ex2_rawspiketrains.mat" in str(info.value)


def test_pmd_bad_files(tmp_path):
    import scipy.io

    folder = tmp_path / PMD
    folder.mkdir()
    path = folder / "ex2_rawspiketrains.mat"
    path.write_bytes(b"\x00garbage" * 20)
    with pytest.raises(FileFormatError) as info:
        load_pmd_reach(tmp_path)
    assert str(path) in str(info.value)
    scipy.io.savemat(str(path), {"X": np.zeros(3)})
    with pytest.raises(DataError) as info:
        load_pmd_reach(tmp_path)
    assert info.value.field == "D"
    trials = np.zeros(2, dtype=[("data", object), ("condition", object)])
    trials[0] = (np.zeros((3, 10), dtype=np.uint8), "reach1")
    trials[1] = (np.zeros((4, 10), dtype=np.uint8), "reach2")
    scipy.io.savemat(str(path), {"D": trials})
    with pytest.raises(DataError) as info:
        load_pmd_reach(tmp_path)
    assert info.value.field == "D[1].data"


def test_pmd_small_file_round_trip(tmp_path):
    """A hand-made file: spike placement at bin centres and counts > 1."""
    import scipy.io

    folder = tmp_path / PMD
    folder.mkdir()
    data0 = np.zeros((2, 5), dtype=np.uint8)
    data0[0, [0, 3]] = 1
    data0[1, 4] = 2
    trials = np.zeros(2, dtype=[("data", object), ("condition", object)])
    trials[0] = (data0, "reach1")
    trials[1] = (np.zeros((2, 7), dtype=np.uint8), "reach2")
    scipy.io.savemat(str(folder / "ex2_rawspiketrains.mat"), {"D": trials})
    block = load_pmd_reach(tmp_path)
    assert unit_ids(block) == ["pmd00", "pmd01"]
    seg = block.segments[0]
    np.testing.assert_allclose(seg.spiketrains[0].magnitude, [0.0005, 0.0035])
    np.testing.assert_allclose(seg.spiketrains[1].magnitude, [0.0045, 0.0045])
    assert float(block.segments[1].spiketrains[0].t_stop) == pytest.approx(0.007)
    assert block.segments[1].annotations["condition"] == "reach2"


def test_pmd_bad_variant(tmp_path):
    with pytest.raises(ConfigError):
        load_pmd_reach(tmp_path, variant="ex3")


# ----------------------------------------------------------------------------- descriptions


def test_shared_datasets_descriptions():
    assert set(SHARED_DATASETS) == {"alm_economo2018_nwb", ALM, PMD}
    for info in SHARED_DATASETS.values():
        assert info["citation"] and info["license"] and info["files"] and info["description"]


@pytest.mark.shared_data
def test_shared_dataset_files_exist(shared_data):
    for name, info in SHARED_DATASETS.items():
        folder = dataset_dir(name, shared_data)
        for f in info["files"]:
            assert (folder / f).is_file(), folder / f


def test_dataset_dir_unknown_name(tmp_path):
    with pytest.raises(ConfigError):
        dataset_dir("nope", tmp_path)
