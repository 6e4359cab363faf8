"""The pipelines in pipelines/: every TOML parses and resolves, the synthetic one is the demo,
and each real-data pipeline runs end to end (shortened) on the shared recordings.

The real-data tests use the ``shared_data`` fixture (tests/conftest.py): they FAIL when CI is
set and ../shared/data is missing, so they can never pass silently there.
"""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from cortexfit.config import load_config, parse_config, resolve
from cortexfit.datasets import DEV_RECORDINGS
from cortexfit.pipeline import STAGES, run

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"
TOMLS = sorted(PIPELINES.glob("*.toml"))
REAL = ("alm_kim2023_psth", "pmd_yu2009", "alm_economo2018_nwb")

#: The run folder contract (reports/README.md), diagnostics.nc aside (it is tested where on).
CONTRACT = ("config.toml", "versions.json", "stages.json", "recording.nc", "targets.nc",
            "model.npz", "history.nc", "scores.nc", "index.html")


def test_the_expected_pipelines_exist():
    dev = {f"dev_{name}" for name in DEV_RECORDINGS}  # the development set (datasets.devset)
    assert {p.stem for p in TOMLS} == {"synthetic", *REAL, *dev}


@pytest.mark.parametrize("path", TOMLS, ids=lambda p: p.stem)
def test_every_pipeline_parses_and_resolves(path):
    config = load_config(path)
    resolved = resolve(config)
    assert resolved["run"]["name"] == path.stem  # reports/<name> matches the file name
    assert resolved["diagnostics"]["enabled"]  # the pipelines keep diagnostics on
    if config.data.path:
        assert config.data.path.startswith("shared:")  # never a copy inside the repository


def test_synthetic_pipeline_is_the_demo():
    ours = resolve(load_config(PIPELINES / "synthetic.toml"))
    demo = resolve(parse_config({"run": {"name": "demo", "seed": 0}}))  # as run_demo builds it
    ours["run"].pop("name")
    demo["run"].pop("name")
    assert ours == demo


# ---------------------------------------------------------------------- real data, short
def _short(name: str, diagnostics: bool = False, **overrides) -> dict:
    """The pipeline's TOML with a shortened fit, evaluation and diagnostics."""
    raw = tomllib.loads((PIPELINES / f"{name}.toml").read_text(encoding="utf-8"))
    raw.setdefault("training", {})["loops"] = 2
    raw.setdefault("evaluate", {}).update(n_trials=3, n_splits=10)
    raw["diagnostics"] = ({"enabled": True, "n_repeats": 1, "n_trials": 1,
                           "lesion_fractions": [0.4], "shuffle_fractions": [1.0],
                           "lyapunov_seeds": 1} if diagnostics else {"enabled": False})
    for key, value in overrides.items():
        section, field = key.split("__")
        raw.setdefault(section, {})[field] = value
    return raw


def _run(name: str, out: Path, diagnostics: bool = False, **overrides) -> xr.Dataset:
    config = parse_config(_short(name, diagnostics, **overrides), base_dir=PIPELINES,
                          file=PIPELINES / f"{name}.toml")
    result = run(config, out, verbosity=0)
    assert set(result.stages.values()) == {"ran"}
    for file in CONTRACT:
        assert (out / file).is_file(), file
    stages = json.loads((out / "stages.json").read_text())["stages"]
    assert [s for s in stages if "seconds" in stages[s]] == list(STAGES)
    assert stages["tune"]["summary"].startswith("disabled")  # no search unless asked
    with xr.open_dataset(out / "scores.nc", engine="h5netcdf") as ds:
        scores = ds.load()
    train = scores["pearson_train"]
    assert train.dims == ("condition", "unit")
    assert np.isfinite(train.values).all() and (np.abs(train.values) <= 1).all()
    assert (out / "diagnostics.nc").is_file() == diagnostics
    rate = scores["model_rate"]
    assert np.isfinite(rate.values).all() and (rate.values >= 0).all()
    return scores


def _training_r(out: Path) -> float:
    """The learning curve's last training r (the fit stage's own score)."""
    with xr.open_dataset(out / "history.nc", engine="h5netcdf") as ds:
        assert ds.sizes["loop"] == 2
        return float(ds["pearson"].isel(loop=-1))


def _check_heldout(scores: xr.Dataset) -> None:
    for name in ("pearson_heldout", "noise_ceiling"):
        assert scores[name].dims == ("condition", "unit")
        assert np.isfinite(scores[name].values).all(), name
    assert (scores["noise_ceiling"] >= 0).all() and (scores["noise_ceiling"] <= 1).all()


@pytest.mark.shared_data
def test_pmd_pipeline_fits_all_61_units(shared_data, tmp_path):
    scores = _run("pmd_yu2009", tmp_path / "pmd")
    assert _training_r(tmp_path / "pmd") > 0.1  # the full run: 0.27 after one loop
    assert 2 < float(scores["model_rate"].mean()) < 50  # Hz: a spiking, not silent, network
    assert scores.sizes["unit"] == 61 and scores.sizes["condition"] == 2
    _check_heldout(scores)
    assert scores["noise_ceiling"].mean() > 0.5  # 45 training / 11 held-out trials


@pytest.mark.shared_data
def test_alm_psth_pipeline_has_no_heldout_trials(shared_data, tmp_path):
    scores = _run("alm_kim2023_psth", tmp_path / "alm_psth", targets__max_units=40)
    assert scores.sizes["unit"] == 40 and scores.sizes["condition"] == 2
    assert _training_r(tmp_path / "alm_psth") > 0.05  # 300 units: 0.43 after two loops
    assert 1 < float(scores["model_rate"].mean()) < 50  # Hz
    assert "pearson_heldout" not in scores and "noise_ceiling" not in scores
    assert scores.attrs["heldout"].startswith("none")
    html = (tmp_path / "alm_psth" / "index.html").read_text(encoding="utf-8")
    assert "no held-out trials" in html  # the report says so


@pytest.mark.shared_data
def test_alm_nwb_pipeline_one_unit_two_conditions(shared_data, tmp_path):
    # diagnostics on: one recorded unit leaves no synapse between recorded neurons to
    # shuffle, so the stage shuffles every trained synapse instead of failing
    out = tmp_path / "alm_nwb"
    scores = _run("alm_economo2018_nwb", out, diagnostics=True)
    assert scores.sizes["unit"] == 1 and scores.sizes["condition"] == 2
    _check_heldout(scores)
    with xr.open_dataset(out / "targets.nc", engine="h5netcdf") as ds:
        # aux_ratio 20 would give 21 neurons: [auxiliary] min_neurons fills it up to 300
        assert int((ds["role"] == "auxiliary").sum()) == 299
        assert sorted(str(c) for c in ds["condition"].values) == ["lick left", "lick right"]
        # correct trials only: 291 of the session's 340, 20 % of each condition held out
        assert int(ds["n_trials"].sum()) == 291
    with xr.open_dataset(out / "diagnostics.nc", group="shuffle", engine="h5netcdf") as ds:
        assert ds.attrs["scope"] == "all"
    report = (out / "index.html").read_text(encoding="utf-8")
    assert "weights of all trained synapses (too few between recorded neurons)" in report
