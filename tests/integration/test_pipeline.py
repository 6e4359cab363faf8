"""`cortexfit run`: config validation, the run folder, stage skipping, resume / restart."""
from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest
import xarray as xr

from cortexfit.cli import main
from cortexfit.config import load_config, parse_config, resolve, to_toml
from cortexfit.exceptions import ConfigError
from cortexfit.pipeline import STAGES, run, stage_status
from cortexfit.runfolder import LOCK_NAME

#: a quick synthetic run: few loops, few model trials, no diagnostics
QUICK = {
    "run": {"name": "quick", "seed": 1},
    # 240 neurons, no noise: these tests are about the pipeline, and "3 loops already fit
    # something" (r > 0.3) needs a noise-free fit: with the default noise (0.2) this fit
    # reached r 0.09 after 3 loops (noise slows early learning; pipelines/README.md)
    "auxiliary": {"min_neurons": 0},
    "training": {"loops": 3, "checkpoint_every": 1, "noise": 0.0},
    "evaluate": {"n_trials": 2, "n_splits": 10},
    "diagnostics": {"enabled": False},
}


def _with(base: dict, **sections) -> dict:
    out = {k: dict(v) for k, v in base.items()}
    for name, values in sections.items():
        out[name] = {**out.get(name, {}), **values}
    return out


# ---------------------------------------------------------------------- config
@pytest.mark.parametrize("raw, key, words", [
    ({"targets": {"bin_sise": 0.02}}, "targets.bin_sise", "did you mean 'bin_size'"),
    ({"trainng": {}}, "trainng", "did you mean 'training'"),
    ({"targets": {"bin_size": "0.02"}}, "targets.bin_size", "valid number"),
    ({"targets": {"bin_size": -0.02}}, "targets.bin_size", "greater than 0"),
    ({"targets": {"heldout_fraction": 1.0}}, "targets.heldout_fraction", "less than 1"),
    ({"training": {"loops": 2.5}}, "training.loops", "valid integer"),
    ({"run": {"seed": -1}}, "run.seed", "greater than or equal to 0"),
    ({"data": {"format": "csv"}}, "data.format", "'nwb'"),
    ({"data": {"format": "nwb"}}, "data", "path is required"),
    ({"data": {"window": [1.0, 0.0]}}, "data.window", "start < stop"),
    ({"diagnostics": {"lesion_fractions": [0.1, 1.5]}}, "diagnostics.lesion_fractions[1]",
     "less than or equal to 1"),
    ({"network": {"neuron_model": "hodgkin"}}, "network.neuron_model", "'theta'"),
    ({"network": {"k_plastic": "some"}}, "network.k_plastic", "'all'"),
])
def test_bad_config_values_name_the_key_value_and_what_is_allowed(raw, key, words):
    with pytest.raises(ConfigError) as info:
        parse_config(raw, file="my.toml")
    assert info.value.field == key
    assert words in str(info.value)
    assert "my.toml" in str(info.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        parse_config({"targets": {"bin_size": 0, "kernel": "square"}})
    assert "targets.bin_size" in str(info.value) and "targets.kernel" in str(info.value)


def test_a_config_file_that_is_not_toml(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[data\nformat = 'nwb'")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_config(path)
    assert str(path) in str(info.value)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


def test_nwb_needs_an_alignment_event_and_a_window(tmp_path):
    config = parse_config({"data": {"format": "nwb", "path": "rec.nwb"}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="data.align"):
        resolve(config)


def test_paths_resolve_against_the_config_file_and_the_shared_folder(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "run.toml"
    path.write_text('[data]\nformat = "nwb"\npath = "rec.nwb"\nalign = "go"\nwindow = [0, 1]\n')
    assert load_config(path).data_path() == tmp_path / "sub" / "rec.nwb"
    monkeypatch.setenv("CORTEXFIT_SHARED_DATA", str(tmp_path))
    config = parse_config({"data": {"format": "nwb", "path": "shared:x/rec.nwb"}})
    assert config.data_path() == tmp_path / "x" / "rec.nwb"


def test_the_resolved_config_is_complete_and_reads_back_to_itself():
    resolved = resolve(parse_config({"training": {"loops": 7}, "network": {"dale": True}}))
    # the preset's values are written out, the given ones win
    assert resolved["training"]["loops"] == 7 and resolved["network"]["dale"] is True
    assert resolved["network"]["p"] == 0.3 and resolved["training"]["rate_gate"] is False
    assert resolved["data"]["align"] == "stimulus_on_time"
    again = resolve(parse_config(tomllib.loads(to_toml(resolved))))
    assert again == resolved


def test_the_recordings_preset_and_the_paper_preset_differ_only_where_documented():
    rec = parse_config({}).fit_settings()
    paper = parse_config({"network": {"preset": "paper"}}).fit_settings()
    differ = {k for k in rec if rec[k] != paper[k]}
    # noise: the recordings preset's background noise (RLSFit.for_recordings, issue 14)
    assert differ == {"dale", "p", "fi_smoothing", "rate_gate", "noise"}


# ---------------------------------------------------------------------- runs
@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "quick"
    result = run(QUICK, out, verbosity=0)
    return out, result


def test_a_run_writes_the_contracted_run_folder(quick_run):
    out, result = quick_run
    assert result.stages == {stage: "ran" for stage in STAGES}
    for name in ("index.html", "targets.nc", "history.nc", "scores.nc", "model.npz",
                 "config.toml", "versions.json", "stages.json", "recording.nc"):
        assert (out / name).is_file(), name
    assert not (out / "checkpoint.npz").exists()  # removed once the fit is saved
    with xr.open_dataset(out / "scores.nc", engine="h5netcdf") as scores:
        for name in ("pearson_train", "pearson_heldout", "noise_ceiling"):
            assert scores[name].dims == ("condition", "unit")
            assert np.isfinite(scores[name]).all()
        assert float(scores["pearson_train"].mean()) > 0.3  # 3 loops already fit something
        assert float(scores["noise_ceiling"].mean()) > float(scores["pearson_heldout"].mean())
    config = tomllib.loads((out / "config.toml").read_text())
    assert config["run"]["seed"] == 1 and config["training"]["loops"] == 3
    versions = json.loads((out / "versions.json").read_text())
    assert versions["packages"]["xarray"] == xr.__version__
    status = stage_status(out)
    assert all(status[s]["seconds"] >= 0 and status[s]["summary"] for s in STAGES)


def test_a_rerun_skips_every_stage_and_changes_no_file(quick_run):
    out, _ = quick_run
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()
              if p.name not in ("config.toml", "versions.json", "stages.json", LOCK_NAME)}
    result = run(QUICK, out, verbosity=0)
    assert result.stages == {stage: "skipped" for stage in STAGES}
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name in before}
    assert after == before


def test_a_changed_setting_reruns_its_stage_and_the_ones_after_it(tmp_path):
    out = tmp_path / "run"
    run(QUICK, out, verbosity=0)
    model = (out / "model.npz").stat().st_mtime_ns
    result = run(_with(QUICK, evaluate={"n_trials": 3}), out, verbosity=0)
    assert result.stages == {"load": "skipped", "tune": "skipped", "targets": "skipped",
                             "fit": "skipped",
                             "evaluate": "ran", "diagnostics": "ran", "report": "ran"}
    assert (out / "model.npz").stat().st_mtime_ns == model
    with xr.open_dataset(out / "scores.nc", engine="h5netcdf") as scores:
        assert scores.attrs["n_trials"] == 3
    result = run(_with(QUICK, evaluate={"n_trials": 3}, targets={"bin_size": 0.025}), out,
                 verbosity=0)
    assert result.stages["load"] == "skipped" and result.stages["tune"] == "skipped"
    assert all(result.stages[s] == "ran" for s in STAGES[2:])
    # a deleted output is made again
    (out / "scores.nc").unlink()
    result = run(_with(QUICK, evaluate={"n_trials": 3}, targets={"bin_size": 0.025}), out,
                 verbosity=0)
    assert result.stages["evaluate"] == "ran" and result.stages["fit"] == "skipped"


class _Interrupt:
    """Make the fit stop (like Ctrl-C) right after the checkpoint of loop ``after``."""

    def __init__(self, monkeypatch, after: int):
        from cortexfit.fit import training

        original = training.save_checkpoint

        def save(path, fingerprint, loops_done, *args, **kwargs):
            original(path, fingerprint, loops_done, *args, **kwargs)
            if loops_done == after:
                raise KeyboardInterrupt

        monkeypatch.setattr(training, "save_checkpoint", save)


def _interrupted_run(out, after: int) -> None:
    """Run QUICK into ``out`` and stop it (Ctrl-C) after the checkpoint of loop ``after``."""
    with pytest.MonkeyPatch.context() as patch:
        _Interrupt(patch, after=after)
        with pytest.raises(KeyboardInterrupt):
            run(QUICK, out, verbosity=0)


def test_an_interrupted_fit_resumes_to_the_same_weights(tmp_path, monkeypatch, quick_run):
    out = tmp_path / "run"
    _interrupted_run(out, after=2)
    assert (out / "checkpoint.npz").is_file() and not (out / "model.npz").exists()
    # without --resume the run stops and says what to do, and keeps the checkpoint
    with pytest.raises(ConfigError, match="interrupted fit") as info:
        run(QUICK, out, verbosity=0)
    assert "--resume" in str(info.value) and "loop 2 of 3" in str(info.value)
    assert (out / "checkpoint.npz").is_file()

    import cortexfit.rls as fit_module

    calls = []
    original = fit_module.RLSState.update
    monkeypatch.setattr(fit_module.RLSState, "update",
                        lambda *a, **k: (calls.append(1), original(*a, **k))[1])
    result = run(QUICK, out, resume=True, verbosity=0)
    assert result.stages["fit"] == "ran" and result.stages["load"] == "skipped"
    uninterrupted = np.load(quick_run[0] / "model.npz")["plastic_data"]
    np.testing.assert_array_equal(np.load(out / "model.npz")["plastic_data"], uninterrupted)
    assert not (out / "checkpoint.npz").exists()
    # the resumed run trained one loop only: the first two came from the checkpoint
    resumed_calls = len(calls)
    calls.clear()
    from cortexfit.fit import RLSFit

    with xr.open_dataset(out / "targets.nc", engine="h5netcdf") as targets:
        settings = {**parse_config(QUICK).fit_settings(), "loops": 1, "progress": False}
        RLSFit(**settings).fit(targets.load())
    assert resumed_calls == len(calls) > 0


def test_restart_discards_the_checkpoint(tmp_path):
    out = tmp_path / "run"
    _interrupted_run(out, after=1)
    result = run(QUICK, out, restart=True, verbosity=0)
    assert result.stages["fit"] == "ran"
    with xr.open_dataset(out / "history.nc", engine="h5netcdf") as history:
        assert history.sizes["loop"] == 3


def test_a_checkpoint_of_other_settings_stops_and_names_the_changes(tmp_path):
    out = tmp_path / "run"
    _interrupted_run(out, after=1)
    changed = _with(QUICK, training={"lam": 2.0}, auxiliary={"aux_ratio": 1.0})
    for resume in (False, True):  # never discarded silently, with or without --resume
        with pytest.raises(ConfigError, match="interrupted fit made with other settings") \
                as info:
            run(changed, out, resume=resume, verbosity=0)
        text = str(info.value)
        assert "training.lam: 1.0 -> 2.0" in text and "auxiliary.aux_ratio: 2.0 -> 1.0" in text
        assert "--restart" in text and "loop 1" in text
        assert (out / "checkpoint.npz").is_file()
    result = run(changed, out, restart=True, verbosity=0)
    assert result.stages["fit"] == "ran" and not (out / "checkpoint.npz").exists()


# ---------------------------------------------------------------------- the command
def test_cortexfit_run_from_a_toml_file(tmp_path, capsys):
    config = tmp_path / "quick.toml"
    config.write_text(to_toml(QUICK))
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"Report: {(out / 'index.html').resolve()}" in captured.out
    for number, stage in enumerate(STAGES, 1):
        assert f"[{number}/{len(STAGES)}] {stage}" in captured.err
    assert main(["run", str(config), "--out", str(out), "-q"]) == 0
    captured = capsys.readouterr()
    # -q: nothing but the report's path and the fit's warnings (a 3-loop fit has silent
    # model neurons, which even -q must show)
    assert "Report:" in captured.out and "[1/" not in captured.err
    assert all(line.startswith(("WARNING: ", "         ")) for line in
               captured.err.splitlines())
    assert main(["run", str(config), "--out", str(out), "-v"]) == 0
    captured = capsys.readouterr()
    assert "[training]" in captured.err and "up to date" in captured.err
    (out / "index.html").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "index.html").is_file()


def test_cortexfit_run_with_a_bad_config_exits_2_without_traceback(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text("[targets]\nbin_size = -1\n")
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "targets.bin_size" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # validated before any work
    assert main(["report", str(tmp_path)]) == 2
    assert "not a complete cortexfit run" in capsys.readouterr().err
    assert main(["run", str(config), "--resume", "--restart"]) == 2


def test_a_shared_recording_is_recognised_for_its_citation_and_licence(tmp_path):
    from cortexfit.pipeline import Console, _dataset_info, _Run

    config = parse_config({"data": {
        "format": "nwb", "path": "shared:alm_economo2018_nwb/sub-anm369963_ses-20170228.nwb",
        "align": "cue_start_time", "window": [-1.0, 1.0]}})
    info = _dataset_info(_Run(config, tmp_path, Console(0), False, False))
    assert info["license"] == "CC-BY-4.0" and "Economo" in info["citation"][0]
    mine = parse_config({"data": {"format": "nwb", "path": "mine.nwb", "align": "go",
                                  "window": [0.0, 1.0]}})
    assert _dataset_info(_Run(mine, tmp_path, Console(0), False, False)) is None


def test_a_neo_file_runs_through_the_whole_pipeline(tmp_path):
    """The Neo path of `cortexfit run` (format = "neo"): a NIX file of the synthetic
    recording, from a config file beside it (relative path), to scores and the report."""
    from cortexfit.datasets import make_synthetic_recording
    from cortexfit.io import write_nix

    # small: neo's NixIO takes ~8 ms per spike train to write and to read (80 x 80 trains:
    # 99 s to write, 52 s to read)
    rec = make_synthetic_recording(seed=2, n_units=20, n_trials_per_condition=12)
    write_nix(rec.block, tmp_path / "rec.nix")
    config = tmp_path / "neo.toml"
    config.write_text(to_toml(_with(QUICK, run={"name": "neo"}, data={
        "format": "neo", "path": "rec.nix", "condition": "condition",
        "align": "stimulus_on_time", "window": [-0.2, 2.0]})))
    out = tmp_path / "out"
    result = run(config, out, verbosity=0)
    assert result.stages == {stage: "ran" for stage in STAGES}
    with xr.open_dataset(out / "scores.nc", engine="h5netcdf") as scores:
        assert scores.sizes["unit"] == 20 and list(scores["condition"].values) == ["left",
                                                                                  "right"]
        assert np.isfinite(scores["pearson_train"]).all()
        assert np.isfinite(scores["noise_ceiling"]).all()
    # the NIX file round trip loses nothing: the run's targets are those of the Block itself
    from cortexfit.targets import make_targets

    direct = make_targets(rec.block, align="stimulus_on_time", window=(-0.2, 2.0),
                          condition="condition", seed=1,
                          validation_fraction=0.2, margin="auto")  # the run config's defaults
    with xr.open_dataset(out / "targets.nc", engine="h5netcdf") as targets:
        np.testing.assert_allclose(targets["rate"].values, direct["rate"].values, atol=1e-9)
        np.testing.assert_allclose(targets["rate_heldout"].values, direct["rate_heldout"].values,
                                   atol=1e-9)
    resolved = tomllib.loads((out / "config.toml").read_text())
    assert resolved["data"]["path"] == str(tmp_path / "rec.nix")
    assert "rec.nix" in (out / "index.html").read_text(encoding="utf-8")


def test_a_missing_recording_or_a_file_as_run_folder_stops_before_any_work(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text('[data]\nformat = "nwb"\npath = "nowhere.nwb"\n'
                      'align = "go_cue_time"\nwindow = [0.0, 1.0]\n')
    with pytest.raises(ConfigError, match="recording file does not exist") as info:
        run(config, tmp_path / "out", verbosity=0)
    assert info.value.field == "data.path" and str(tmp_path / "nowhere.nwb") in str(info.value)
    assert not (tmp_path / "out").exists()
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 2
    assert "nowhere.nwb" in capsys.readouterr().err
    afile = tmp_path / "a_file"
    afile.write_text("")
    with pytest.raises(ConfigError, match="run folder is a file"):
        run(QUICK, afile, verbosity=0)
