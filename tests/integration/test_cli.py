"""The `cortexfit` command: info on good and bad files, the demo run folder."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from cortexfit.cli import main
from cortexfit.io import from_spike_times, write_nix
from cortexfit.io.describe import describe


def _block():
    rng = np.random.default_rng(0)
    trials = [[np.sort(rng.uniform(0, 2, 10)) for _ in range(2)] for _ in range(6)]
    return from_spike_times(
        trials, t_stop=2.0, conditions=["l", "r"] * 3, events={"go_cue": [1.0] * 6},
        trial_annotations={"outcome": ["correct"] * 5 + ["incorrect"]},
    )


def test_describe_counts_everything():
    summary = describe(_block())
    assert summary.n_units == 2 and summary.n_trials == 6
    assert summary.trial_attributes["condition"] == {"l": 3, "r": 3}
    assert summary.trial_attributes["outcome"] == {"correct": 5, "incorrect": 1}
    assert summary.events["go_cue"]["median"] == pytest.approx(1.0)
    assert summary.mean_rate["0"] == pytest.approx(10 / 2.0)  # 10 spikes per 2 s trial
    assert summary.time_span == (0.0, 2.0)
    assert "align='go_cue'" in summary.suggestion and "condition='condition'" in summary.suggestion
    assert "where={'outcome': 'correct'}" in summary.suggestion


def test_info_on_a_nix_file(tmp_path, capsys):
    path = write_nix(_block(), tmp_path / "rec.nix")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Units: 2" in out and "Trials: 6" in out and "go_cue" in out and "l (3)" in out
    assert main(["info", "--json", str(path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["n_trials"] == 6


@pytest.mark.parametrize("content", ["not an NWB file", ""])
def test_info_on_a_bad_file_exits_without_traceback(tmp_path, content):
    path = tmp_path / "broken.nwb"
    path.write_text(content)
    proc = subprocess.run([sys.executable, "-m", "cortexfit.cli", "info", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "broken.nwb" in proc.stderr and "error" in proc.stderr
    assert "Traceback" not in proc.stderr
    debug = subprocess.run([sys.executable, "-m", "cortexfit.cli", "--debug", "info", str(path)],
                           capture_output=True, text=True)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_info_on_a_missing_file(capsys, tmp_path):
    assert main(["info", str(tmp_path / "nope.nix")]) == 2
    assert "nope.nix" in capsys.readouterr().err


def test_info_on_both_alm_sessions(alm_nwb_paths, capsys):
    for path, n_trials in zip(alm_nwb_paths, (178, 340)):
        assert main(["info", str(path)]) == 0
        out = capsys.readouterr().out
        assert f"Trials: {n_trials}" in out
        assert "cue_start_time" in out and "lick left" in out and "correct" in out
        assert "Units: 1" in out


def test_demo_writes_a_run_folder_and_a_rerun_skips_the_fit(tmp_path, monkeypatch):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--seed", "3", "--loops", "2"]) == 0
    for name in ("index.html", "targets.nc", "config.toml", "versions.json", "synthetic.nwb",
                 "model.npz", "history.nc", "scores.nc", "diagnostics.nc"):
        assert (out / name).is_file(), name
    html = (out / "index.html").read_text()
    assert html.count("data:image/png;base64,") >= 8
    scores = xr.open_dataset(out / "scores.nc", engine="h5netcdf")
    for name in ("pearson_train", "pearson_heldout", "noise_ceiling"):
        assert scores[name].dims == ("condition", "unit"), name
        assert np.isfinite(scores[name]).all(), name
    history = xr.open_dataset(out / "history.nc", engine="h5netcdf")
    assert history.sizes["loop"] == 2
    assert "loops = 2" in (out / "config.toml").read_text()
    with xr.open_dataset(out / "diagnostics.nc", group="lesion", engine="h5netcdf") as lesion:
        assert set(lesion["fraction"].values) == {0.05, 0.1, 0.4}
    assert "<script src=" not in html and "<link " not in html  # self-contained
    targets = xr.open_dataset(out / "targets.nc", engine="h5netcdf")
    assert set(targets["role"].values) == {"recorded", "auxiliary"}
    assert np.isfinite(targets["rate"].values).all()
    assert "seed = 3" in (out / "config.toml").read_text()
    versions = json.loads((out / "versions.json").read_text())
    assert versions["packages"]["numpy"] == np.__version__
    # the synthetic NWB it wrote is a valid input for `info`
    assert main(["info", str(out / "synthetic.nwb")]) == 0

    # the same command again skips the fit (one demo run serves both checks: it is the
    # slowest thing the tests do)
    first = np.load(out / "model.npz")["plastic_data"]
    import cortexfit.rls as fit_module

    def no_training(*args, **kwargs):  # the rerun must not train again
        raise AssertionError("the fit ran again although nothing changed")

    monkeypatch.setattr(fit_module.RLSState, "update", no_training)
    assert main(["demo", "--out", str(out), "--seed", "3", "--loops", "2"]) == 0
    np.testing.assert_array_equal(np.load(out / "model.npz")["plastic_data"], first)


def test_run_tune_flag_turns_the_search_on_and_its_requirements_are_checked_first(
        tmp_path, capsys):
    """--tune sets [tune] enabled: a config without validation trials then stops before any
    work with the key to change (exit 2, no run folder)."""
    config = tmp_path / "c.toml"
    config.write_text("[targets]\nvalidation_fraction = 0.0\n")
    out2 = tmp_path / "out2"
    assert main(["run", str(config), "--out", str(out2), "--tune"]) == 2
    err = capsys.readouterr().err
    assert "targets.validation_fraction" in err and "[tune]" in err and "Traceback" not in err
    assert not out2.exists()
    # --scheduler without the search is a mistake, not silently ignored
    assert main(["run", str(config), "--out", str(out2), "--scheduler", "tcp://x:1"]) == 2
    assert "--scheduler" in capsys.readouterr().err and not out2.exists()
