"""Settings chosen on validation trials (cortexfit.tune) and the Dask engine under it
(cortexfit.parallel): on real local clusters of worker processes, never skipped."""
from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from cortexfit.config import parse_config, resolve
from cortexfit.exceptions import ConfigError, TrainingDiverged
from cortexfit.parallel import dask_client, run_jobs
from cortexfit.pipeline import run, stage_status
from cortexfit.tune import chosen_settings, tune


@pytest.fixture(scope="module")
def small_targets():
    """24 synthetic units with training, validation and held-out trials."""
    from cortexfit.datasets import make_synthetic_recording, recommended_targets_kwargs
    from cortexfit.targets import make_targets

    recording = make_synthetic_recording(seed=0)
    targets = make_targets(recording.block, **recommended_targets_kwargs(),
                           validation_fraction=0.2)
    return targets.isel(unit=slice(0, 24))


#: tiny noise-free fits (the search's mechanics, not the preset's quality)
SMALL = {"noise": 0.0, "loops": 6, "seed": 0}


# ---------------------------------------------------------------------- the engine
def test_jobs_run_on_worker_processes_errors_are_kept_and_a_rerun_reads_the_store(tmp_path):
    jobs = [{"s": '{"a": 1}'}, {"s": "{"}, {"s": '{"b": 2}'}]
    keys = ["one", "broken", "two"]
    store = tmp_path / "store"
    # "two" finished before an interruption: its stored result is read back, not run
    store.mkdir()
    (store / "two.json").write_text(json.dumps({"key": "two", "result": {"b": 99},
                                                "error": None}))
    with dask_client(n_workers=2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        pids = set(client.run(lambda: __import__("os").getpid()).values())
        threads = client.run(lambda: __import__("os").environ.get("NUMBA_NUM_THREADS"))
        outcomes = run_jobs(client, json.loads, jobs, keys, store=store, progress=False)
    assert len(pids) == 2 and __import__("os").getpid() not in pids  # separate processes
    assert set(threads.values()) == {"1"}  # numba limited to one thread per worker
    assert [o.key for o in outcomes] == keys
    assert outcomes[0].ok and outcomes[0].result == {"a": 1} and not outcomes[0].reused
    assert not outcomes[1].ok and "JSONDecodeError" in outcomes[1].error
    assert outcomes[2].reused and outcomes[2].result == {"b": 99}
    # every finished job (also the failed one) is in the store: a rerun runs nothing
    assert {p.stem for p in store.glob("*.json")} == set(keys)
    with dask_client(n_workers=1) as client:
        again = run_jobs(client, json.loads, jobs, keys, store=store, progress=False)
    assert all(o.reused for o in again)
    assert [o.result for o in again] == [o.result for o in outcomes]


def test_jobs_and_a_search_go_to_a_running_scheduler_by_its_address(small_targets):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster:
        with dask_client(cluster.scheduler_address) as client:
            out = run_jobs(client, dict, [{"x": 1}, {"x": 2}], ["a", "b"],
                           shared={"y": 3}, progress=False)
        result = tune(small_targets, {"aux_ratio": [1.0]}, settings={**SMALL, "loops": 1},
                      auxiliary={"min_neurons": 0}, scheduler=cluster.scheduler_address,
                      progress=False)
    assert [o.result for o in out] == [{"x": 1, "y": 3}, {"x": 2, "y": 3}]
    assert result.attrs["where"] == cluster.scheduler_address
    assert np.isfinite(result["validation"].values[0])


def test_an_unreachable_scheduler_is_a_config_error_naming_the_setting():
    with pytest.raises(ConfigError) as info:
        with dask_client("tcp://127.0.0.1:9", field="tune.scheduler", timeout=2):
            pass
    assert info.value.field == "tune.scheduler"
    assert "127.0.0.1:9" in str(info.value)


# ---------------------------------------------------------------------- the search
def test_the_search_chooses_what_the_validation_trials_favour_and_ignores_the_test_trials(
        small_targets):
    """aux_ratio 0 (24 neurons) against 3 (96): the paper's Figure 5e says the larger
    network fits better (measured 0.05 against 0.35); the search must find that on the
    validation trials alone, and give the same scores when the test (held-out) trials are
    replaced by noise."""
    grid = {"aux_ratio": [0.0, 3.0]}
    result = tune(small_targets, grid, settings=SMALL, auxiliary={"min_neurons": 0},
                  method="grid", n_workers=2, progress=False)
    assert result.sizes["candidate"] == 2
    assert chosen_settings(result) == {"aux_ratio": 3.0}
    v = result["validation"].values
    assert v[1] > v[0] + 0.15, v
    assert list(result["n_neurons"].values) == [24, 96]
    assert (result["error"] == "").all()
    scrambled = small_targets.copy()
    rng = np.random.default_rng(0)
    scrambled["rate_heldout"] = scrambled["rate_heldout"].copy(
        data=rng.permutation(scrambled["rate_heldout"].values.ravel()).reshape(
            scrambled["rate_heldout"].shape))
    again = tune(scrambled, grid, settings=SMALL, auxiliary={"min_neurons": 0},
                 method="grid", n_workers=2, progress=False)
    np.testing.assert_array_equal(again["validation"].values, v)


def test_sequential_search_tunes_one_setting_at_a_time_and_keeps_failures_apart(
        small_targets):
    """max_rate 1 Hz makes a fit stop as diverged: that candidate is reported with its
    error and the search goes on with the others; the second round starts from the
    first round's best."""
    result = tune(small_targets, {"max_rate": [1.0, 500.0], "aux_ratio": [1.0, 2.0]},
                  settings={**SMALL, "loops": 2}, auxiliary={"min_neurons": 0},
                  method="sequential", n_workers=2, progress=False)
    values = [[json.loads(v) for v in row] for row in result["value"].values]
    assert values[0] == [1.0, 1.0] and values[1] == [500.0, 1.0]  # the base aux_ratio: 1.0
    assert list(result["round"].values) == [0, 0, 1]
    assert "TrainingDiverged" in str(result["error"].values[0])
    assert np.isnan(result["validation"].values[0])
    assert values[2] == [500.0, 2.0]  # round 2 from round 1's best (the one that trained)
    chosen = int(result.attrs["chosen"])
    assert chosen in (1, 2)
    assert result["validation"].values[chosen] == np.nanmax(result["validation"].values)


def test_a_search_where_every_candidate_fails_stops_with_each_error(small_targets):
    with pytest.raises(TrainingDiverged) as info:
        tune(small_targets, {"max_rate": [1.0, 2.0]}, settings={**SMALL, "loops": 1},
             auxiliary={"min_neurons": 0}, method="grid", n_workers=1, progress=False)
    assert "every candidate" in str(info.value) and "max_rate" in str(info.value)


def test_bad_searches_are_named_errors_before_any_fit(small_targets):
    with pytest.raises(ConfigError) as info:
        tune(small_targets, {"tau_s": [-1.0]}, n_workers=1, progress=False)
    assert "tau_s" in str(info.value)
    with pytest.raises(ConfigError) as info:
        tune(small_targets, {"colour": [1]}, n_workers=1, progress=False)
    assert info.value.field == "grid.colour"
    with pytest.raises(ConfigError) as info:
        tune(small_targets.drop_vars("rate_validation"), {"tau_s": [0.05]}, progress=False)
    assert "validation" in str(info.value)


# ---------------------------------------------------------------------- [tune] in a run
def test_tune_config_errors_name_the_key():
    with pytest.raises(ConfigError) as info:
        parse_config({"tune": {"grid": {"network.tau": [0.05]}}})
    assert "did you mean 'network.tau_s'" in str(info.value)
    with pytest.raises(ConfigError) as info:
        resolve(parse_config({"tune": {"enabled": True, "grid": {"network.tau_s": [-0.1]}}}))
    assert "tune.grid" in info.value.field and "network.tau_s = -0.1" in info.value.field
    with pytest.raises(ConfigError) as info:
        parse_config({"tune": {"grid": {"network.preset": ["paper"]}}})
    assert "unknown setting 'network.preset'" in str(info.value)
    # the default grid; without the noise levels for LIF (theta units, not LIF's own)
    assert "training.noise" in resolve(parse_config({"tune": {"enabled": True}}))[
        "tune"]["grid"]
    lif = resolve(parse_config({"tune": {"enabled": True},
                                "network": {"neuron_model": "lif"}}))
    assert "training.noise" not in lif["tune"]["grid"]


def test_a_run_with_tune_fits_the_chosen_settings_and_reports_the_search(tmp_path):
    config = {
        "run": {"name": "tuned", "seed": 1},
        "targets": {"max_units": 12},
        "auxiliary": {"min_neurons": 0},
        "training": {"loops": 3, "noise": 0.0},
        "evaluate": {"n_trials": 2, "n_splits": 10},
        "diagnostics": {"enabled": False},
        "tune": {"enabled": True, "method": "grid", "workers": 2,
                 "grid": {"auxiliary.aux_ratio": [0.5, 2.0]}},
    }
    out = tmp_path / "run"
    result = run(config, out, verbosity=0)
    assert result.stages["tune"] == "ran"
    with xr.open_dataset(out / "tune.nc", engine="h5netcdf") as ds:
        found = ds.load()
    chosen = int(found.attrs["chosen"])
    choice = json.loads(found.attrs["chosen_settings"])["auxiliary.aux_ratio"]
    with xr.open_dataset(out / "targets.nc", engine="h5netcdf") as targets:
        assert float(targets.attrs["aux_ratio"]) == choice  # the targets use the choice
    # the final fit is the chosen candidate's fit, taken from the search (not fitted again)
    with xr.open_dataset(out / "history.nc", engine="h5netcdf") as history:
        assert history.attrs["best_validation"] == found["validation"].values[chosen]
    assert "not fitted again" in stage_status(out)["fit"]["summary"]
    # ... which is legitimate because fitting the chosen settings here gives the same
    # network, bit for bit (a worker process fits exactly what the run would)
    from cortexfit.evaluate import validation_judge
    from cortexfit.fit import RLSFit

    model = RLSFit.load(out / "model.npz")
    with xr.open_dataset(out / "targets.nc", engine="h5netcdf") as targets:
        targets = targets.load()
    settings = {k: v for k, v in model.settings().items() if k not in ("checkpoint",
                                                                      "progress")}
    here = RLSFit(**settings, progress=False,
                  validator=validation_judge(targets, seed=1000)).fit(targets)
    np.testing.assert_array_equal(here.network_.plastic.data, model.network_.plastic.data)
    assert "[tune] chose auxiliary.aux_ratio" in (out / "config.toml").read_text()
    html = (out / "index.html").read_text()
    assert "Settings search" in html and "validation r" in html
    assert not (out / "tune-progress").exists()
    # a rerun skips the search and still fits (here: skips) with the chosen settings
    again = run(config, out, verbosity=0)
    assert again.stages["tune"] == "skipped" and again.stages["fit"] == "skipped"
    # a rates-only recording cannot be tuned: a named error before any work
    with pytest.raises(ConfigError) as info:
        run({**config, "data": {"format": "synthetic"},
             "targets": {"max_units": 12, "validation_fraction": 0.0}}, tmp_path / "r2",
            verbosity=0)
    assert info.value.field == "targets.validation_fraction"


def test_an_interrupted_search_says_that_finished_candidates_are_kept(tmp_path, monkeypatch):
    from cortexfit import stages
    from cortexfit.pipeline import RunInterrupted

    def interrupted(*args, store=None, **kwargs):
        store.mkdir(parents=True)
        (store / "done.json").write_text("{}")  # one candidate finished, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(stages, "search", interrupted)
    config = {"run": {"name": "cut", "seed": 1}, "targets": {"max_units": 4},
              "tune": {"enabled": True, "grid": {"training.lam": [1.0]}}}
    with pytest.raises(RunInterrupted) as info:
        run(config, tmp_path / "run", verbosity=0)
    assert info.value.stage == "tune" and "tune-progress" in info.value.advice
    assert (tmp_path / "run" / "tune-progress").is_dir()
    assert "finished" not in stage_status(tmp_path / "run")["tune"]
