"""The run folder survives kills, torn files, concurrent runs, full disks and user mistakes
(issue 12): every case ends in a folder the next run repairs, or in a one-paragraph message
with exit status 2 and nothing damaged."""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import xarray as xr

import cortexfit.atomic as atomic
import cortexfit.runfolder as rf
import cortexfit.stages as st
from cortexfit.cli import main
from cortexfit.config import to_toml
from cortexfit.exceptions import ConfigError, RunFolderError
from cortexfit.pipeline import STAGES, run, stage_status

#: a small, complete run: 16 units, 2 loops, cheap diagnostics (lesion, shuffle, spectrum)
TINY = {
    "run": {"name": "tiny", "seed": 1},
    "targets": {"max_units": 16},
    "auxiliary": {"min_neurons": 0},  # 48 neurons: these tests are about the run folder
    "training": {"loops": 2, "checkpoint_every": 1},
    "evaluate": {"n_trials": 2, "n_splits": 10},
    "diagnostics": {"lesion_fractions": [0.5], "shuffle_fractions": [0.5], "n_repeats": 1,
                    "n_trials": 1, "quasistatic": False, "perturbation": False,
                    "lyapunov": False},
}
#: the file each stage writes last (a kill during its write leaves the stage unfinished)
LAST_OUTPUT = {"load": "recording.nc", "tune": "tune.nc", "targets": "targets.nc",
               "fit": "history.nc", "evaluate": "scores.nc", "diagnostics": "diagnostics.nc",
               "report": "index.html"}


def _with(base: dict, **sections) -> dict:
    out = {k: dict(v) for k, v in base.items()}
    for name, values in sections.items():
        out[name] = {**out.get(name, {}), **values}
    return out


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "tiny"
    result = run(TINY, out, verbosity=0)
    assert result.stages == {s: "ran" for s in STAGES}
    return out


def _copy(base: Path, dest: Path) -> Path:
    shutil.copytree(base, dest)
    return dest


def _opens(path: Path) -> None:
    """The file reads back completely (NetCDF groups included, NPZ arrays, HTML end)."""
    if path.suffix == ".nc":
        if path.name == "diagnostics.nc":
            from cortexfit.diagnostics import load_diagnostics

            assert load_diagnostics(path)
        else:
            with xr.open_dataset(path, engine="h5netcdf") as ds:
                ds.load()
    elif path.suffix == ".npz":
        import numpy as np

        with np.load(path, allow_pickle=False) as data:
            for name in data.files:
                data[name]
    elif path.suffix == ".html":
        assert path.read_text(encoding="utf-8").rstrip().endswith("</html>")


def _no_temp_files(out: Path) -> None:
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


class _Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so no handler of the pipeline sees it."""


@contextmanager
def _killed_during_write(monkeypatch, name: str):
    """Write ``name`` up to the rename and then die like a killed process: the temporary
    file stays, the old file stays, the manifest says the stage started but did not end."""
    original = atomic.atomic_path

    @contextmanager
    def dying(path, mode=0o644):
        if Path(path).name != name:
            with original(path, mode) as tmp:
                yield tmp
            return
        tmp = Path(path).with_name(f".{Path(path).name}.killed.tmp")
        tmp.write_bytes(b"")
        yield tmp
        raise _Killed

    users = [m for name, m in list(sys.modules.items()) if name.startswith("cortexfit")
             and getattr(m, "atomic_path", None) is original]  # every module that writes
    for module in users:
        monkeypatch.setattr(module, "atomic_path", dying)
    with pytest.raises(_Killed):
        yield
    for module in users:
        monkeypatch.setattr(module, "atomic_path", original)


def _cheap_report(monkeypatch) -> None:
    """The report stage writes a stub (it is the slowest stage and not under test here)."""
    monkeypatch.setattr(st, "stage_report", lambda ctx: (
        atomic.write_text(ctx.out / "index.html", "<html>stub</html>"), "stub")[1])


# a change that makes this stage (and the ones after it) run again
_RERUN = {
    "load": {"run": {"seed": 2}},
    # one candidate of one loop on one worker: the search's file handling, not its choice
    "tune": {"tune": {"enabled": True, "grid": {"training.lam": [1.0]}, "loops": 1,
                      "workers": 1}},
    "targets": {"targets": {"kernel_width": 0.06}},
    "fit": {"training": {"lam": 2.0}},
    "evaluate": {"evaluate": {"n_trials": 3}},
    "diagnostics": {"diagnostics": {"n_repeats": 2}},
    "report": {"report": {"title": "again"}},
}


@pytest.mark.parametrize("stage", STAGES)
def test_a_kill_while_a_stage_writes_leaves_a_folder_the_next_run_repairs(
        stage, base_run, tmp_path, monkeypatch):
    out = _copy(base_run, tmp_path / "run")
    if stage != "report":
        _cheap_report(monkeypatch)
    config = _with(TINY, **_RERUN[stage])
    with _killed_during_write(monkeypatch, LAST_OUTPUT[stage]):
        run(config, out, verbosity=0)
    assert (out / f".{LAST_OUTPUT[stage]}.killed.tmp").exists()
    record = stage_status(out)[stage]
    assert "fingerprint" not in record and record["started"]  # started, never finished
    # the next run sees the unfinished stage and runs it and everything after it (a fit
    # killed after its last checkpoint is continued with --resume, as the message says)
    if stage == "fit":
        with pytest.raises(ConfigError, match="--resume"):
            run(config, out, verbosity=0)
    result = run(config, out, resume=stage == "fit", verbosity=0)
    index = STAGES.index(stage)
    assert all(result.stages[s] == "skipped" for s in STAGES[:index]), result.stages
    assert all(result.stages[s] == "ran" for s in STAGES[index:]), result.stages
    _no_temp_files(out)
    for name in ("recording.nc", "targets.nc", "model.npz", "history.nc", "scores.nc",
                 "diagnostics.nc", "index.html"):
        _opens(out / name)
    # and then the folder is up to date
    assert set(run(config, out, verbosity=0).stages.values()) == {"skipped"}


@pytest.mark.parametrize("name, stage", [("scores.nc", "evaluate"), ("targets.nc", "targets"),
                                         ("model.npz", "fit"), ("index.html", "report")])
def test_a_torn_or_foreign_output_reruns_its_stage(name, stage, base_run, tmp_path,
                                                   monkeypatch):
    """The reported case: a kill left scores.nc at 96 bytes and the next run called every
    stage up to date. Now a file that does not match its recorded size and hash reruns."""
    out = _copy(base_run, tmp_path / "run")
    if stage != "report":
        _cheap_report(monkeypatch)
    path = out / name
    data = path.read_bytes()
    path.write_bytes(data[:96])
    result = run(TINY, out, verbosity=0)
    index = STAGES.index(stage)
    assert all(result.stages[s] == "skipped" for s in STAGES[:index]), result.stages
    assert all(result.stages[s] == "ran" for s in STAGES[index:]), result.stages
    _opens(path)
    # a file of the right size but other content (a foreign file) is not trusted either
    size = path.stat().st_size
    path.write_bytes(b"x" * size)
    assert run(TINY, out, verbosity=0).stages[stage] == "ran"
    _opens(path)


def test_a_real_sigkill_during_the_fit_then_resume(base_run, tmp_path):
    """A real process, killed with SIGKILL once it has written a checkpoint: the lock dies
    with it, no temporary file survives the next run, and --resume finishes the fit."""
    config = tmp_path / "tiny.toml"
    config.write_text(to_toml(_with(TINY, training={"loops": 30}, report={"title": "k"},
                                    diagnostics={"enabled": False})))
    out = tmp_path / "run"
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "cortexfit.cli", "run", str(config),
                             "--out", str(out), "-q"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.npz").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert (out / "checkpoint.npz").exists() and not (out / "model.npz").exists()
    # a plain rerun stops and says what to do; --resume finishes and the folder is whole
    with pytest.raises(ConfigError, match="interrupted fit"):
        run(config, out, verbosity=0)
    result = run(config, out, resume=True, verbosity=0)
    assert result.stages["fit"] == "ran" and result.stages["load"] == "skipped"
    _no_temp_files(out)
    for name in ("model.npz", "history.nc", "scores.nc", "index.html"):
        _opens(out / name)


# ---------------------------------------------------------------------- concurrent runs
def test_a_second_run_into_a_folder_in_use_stops_and_names_the_holder(base_run, tmp_path,
                                                                      capsys):
    out = _copy(base_run, tmp_path / "run")
    config = tmp_path / "tiny.toml"
    config.write_text(to_toml(TINY))
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()
              and p.name != rf.LOCK_NAME}
    with rf.RunLock(out):  # another run holds the folder
        assert main(["run", str(config), "--out", str(out), "--force"]) == 2
        err = capsys.readouterr().err
        assert "another cortexfit run is using this run folder" in err
        assert f"process {os.getpid()}" in err and "Traceback" not in err
        assert main(["report", str(out)]) == 2  # nor may a report be rendered into it
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()
             and p.name != rf.LOCK_NAME}
    assert after == before  # nothing touched


def test_two_concurrent_runs_one_proceeds_the_other_stops_cleanly(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(to_toml(_with(TINY, diagnostics={"enabled": False})))
    out = tmp_path / "run"
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "cortexfit.cli", "run", str(config), "--out", str(out),
               "-q"]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, _, err in results if code == 2)
    assert "another cortexfit run is using this run folder" in loser
    assert "Traceback" not in loser
    # the folder is whole, and a rerun finds it up to date
    _no_temp_files(out)
    for name in ("recording.nc", "targets.nc", "model.npz", "history.nc", "scores.nc",
                 "index.html"):
        _opens(out / name)
    assert set(run(config, out, verbosity=0).stages.values()) == {"skipped"}


def test_a_stale_lock_of_a_killed_run_is_taken_over(base_run, tmp_path, capsys):
    out = _copy(base_run, tmp_path / "run")
    (out / rf.LOCK_NAME).write_text(json.dumps(
        {"pid": 999999, "host": "somewhere", "started": "2026-01-01 00:00:00"}))
    result = run(TINY, out, verbosity=1)
    assert set(result.stages.values()) == {"skipped"}
    assert "took over the lock" in capsys.readouterr().err
    assert (out / rf.LOCK_NAME).read_text() == ""  # released


# ---------------------------------------------------------------------- what --out holds
def test_out_into_a_folder_of_other_files_stops_unless_forced(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    config = tmp_path / "tiny.toml"
    config.write_text(to_toml(TINY))
    assert main(["run", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds files that are not a cortexfit run" in err and "notes.txt" in err
    assert "--force" in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # untouched
    from cortexfit.pipeline import _check_out
    from cortexfit.config import parse_config, resolve

    assert _check_out(out, resolve(parse_config(TINY)), force=True)[0] == "other"


def test_out_into_another_run_stops_and_says_which(base_run, tmp_path):
    out = _copy(base_run, tmp_path / "run")
    other = _with(TINY, run={"name": "other"})
    with pytest.raises(RunFolderError, match="holds another run") as info:
        run(other, out, verbosity=0)
    assert "'tiny'" in str(info.value) and "'other'" in str(info.value)
    assert "--force" in str(info.value)


@pytest.mark.parametrize("name", ["../escape", "/tmp/abs", "a/b", "..", ".hidden", "x y"])
def test_the_run_name_is_a_plain_name(name):
    from cortexfit.config import parse_config

    with pytest.raises(ConfigError, match="run.name"):
        parse_config({"run": {"name": name}})


def test_data_and_target_errors_stop_before_the_folder_is_created(tmp_path, capsys):
    bad = tmp_path / "bad.nwb"
    bad.write_bytes(b"not an nwb file at all" * 10)
    config = tmp_path / "bad.toml"
    config.write_text('[data]\nformat = "nwb"\npath = "bad.nwb"\n'
                      'align = "go_cue_time"\nwindow = [0.0, 1.0]\n')
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 2
    assert "bad.nwb" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    # a targets error (an event the recording does not have) too
    config.write_text(to_toml(_with(TINY, data={"align": "no_such_event"})))
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 2
    assert "no_such_event" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------- failures of the disk
def test_a_read_only_folder_gives_the_message(base_run, tmp_path, capsys, monkeypatch):
    out = _copy(base_run, tmp_path / "run")
    config = tmp_path / "tiny.toml"
    config.write_text(to_toml(_with(TINY, report={"title": "changed"})))

    def denied(*args, **kwargs):  # what mkstemp raises in a folder without write permission
        raise PermissionError(errno.EACCES, "Permission denied", str(out / ".x.tmp"))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", denied)
    assert main(["run", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "permission denied" in err and "Traceback" not in err and "--out" in err
    assert len(err.strip().splitlines()) == 2  # one paragraph, and the --debug hint


def test_a_full_disk_gives_the_message_and_keeps_the_old_files(base_run, tmp_path, capsys,
                                                               monkeypatch):
    out = _copy(base_run, tmp_path / "run")
    config = tmp_path / "tiny.toml"
    config.write_text(to_toml(_with(TINY, evaluate={"n_trials": 3})))
    _cheap_report(monkeypatch)
    old_scores = (out / "scores.nc").read_bytes()
    original = xr.Dataset.to_netcdf

    def full(self, path=None, *args, **kwargs):  # half the file, then ENOSPC (as HDF5 says)
        original(self, path, *args, **kwargs)
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 2])
        raise OSError("Can't write data (file write failed: time = ..., filename = "
                      f"'{path}', errno = 28, error message = 'No space left on device')")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", full)
    assert main(["run", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "the disk is full" in err and "evaluate" in err and "Traceback" not in err
    assert (out / "scores.nc").read_bytes() == old_scores  # the old file is intact
    _no_temp_files(out)
    monkeypatch.setattr(xr.Dataset, "to_netcdf", original)
    result = run(config, out, verbosity=0)  # space freed: the run continues where it was
    assert result.stages["fit"] == "skipped" and result.stages["evaluate"] == "ran"
    _opens(out / "scores.nc")


# ---------------------------------------------------------------------- interruptions
def test_ctrl_c_during_diagnostics_says_to_rerun_not_to_resume_a_fit(base_run, tmp_path,
                                                                     capsys, monkeypatch):
    out = _copy(base_run, tmp_path / "run")
    config = tmp_path / "tiny.toml"
    config.write_text(to_toml(_with(TINY, diagnostics={"n_repeats": 2})))

    def interrupted(ctx):
        raise KeyboardInterrupt

    monkeypatch.setattr(st, "stage_diagnostics", interrupted)
    assert main(["run", str(config), "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "interrupted during the diagnostics stage" in err
    assert "Rerun the same command" in err and "--resume" not in err
    record = stage_status(out)["diagnostics"]
    assert "started" in record and "fingerprint" not in record  # the report can tell


def test_a_closed_pipe_ends_cortexfit_info_quietly(base_run):
    """`cortexfit info FILE | head -1`: no BrokenPipeError traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "cortexfit.cli", "info",
                             str(base_run / "synthetic.nwb")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # the reader goes away
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert proc.returncode == 0


def test_an_internal_error_exits_1_with_a_paragraph(tmp_path, capsys, monkeypatch):
    import cortexfit.cli as cli

    def bug(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cli, "_info", bug)
    assert main(["info", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "internal error (ZeroDivisionError" in err and "--debug" in err
    assert "Traceback" not in err
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "info", str(tmp_path)])


# ---------------------------------------------------------------------- a silent fit
def test_a_silent_fit_of_the_alm_file_says_so(shared_data, tmp_path, capsys):
    """Issue 12, finding 9: this config ran with exit 0, a model at 0.0 Hz and r = 0.00, and
    no warning anywhere. Now the console (even with -q) and the report say so. (With the
    defaults of issue 14 the same unit is fitted: 300 neurons and background noise; this
    config turns both off to make the silent fit the warning is for.)"""
    config = tmp_path / "session.toml"
    config.write_text(
        '[data]\nformat = "nwb"\n'
        f'path = "{shared_data}/alm_economo2018_nwb/sub-anm372793_ses-20170508.nwb"\n'
        'condition = "type"\nwhere = { response = "correct" }\n'
        'align = "cue_start_time"\nwindow = [-2.0, 1.0]\n\n'
        '[targets]\nbin_size = 0.02\nheldout_fraction = 0.2\n'
        '[auxiliary]\nmin_neurons = 0\n[training]\nnoise = 0.0\n')
    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out), "-q"]) == 0
    err = capsys.readouterr().err
    assert "WARNING: The model's recorded neurons are silent" in err
    assert "below the floor" in err and "only 3 neurons" in err
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "silent" in html and "only 3 neurons" in html


def test_a_crafted_pickle_in_a_config_does_not_run(tmp_path, capsys):
    """`[data] format = "neo"` with a .pkl path: refused before anything is read or written,
    unless the config says it trusts the file."""
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    (tmp_path / "rec.pkl").write_bytes(pickle.dumps(Evil()))
    config = tmp_path / "neo.toml"
    config.write_text('[data]\nformat = "neo"\npath = "rec.pkl"\n'
                      'align = "go"\nwindow = [0.0, 1.0]\n')
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "pickle" in err and "allow_pickle = true" in err and "Traceback" not in err
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "out").exists()
    from cortexfit.config import parse_config

    assert parse_config({"data": {"format": "neo", "path": "x.pkl", "align": "go",
                                  "window": [0.0, 1.0], "allow_pickle": True}}
                        ).data.allow_pickle is True


def test_a_full_disk_while_a_file_is_written_keeps_the_old_file(tmp_path, monkeypatch):
    page = tmp_path / "index.html"
    page.write_text("<html>old</html>")
    original = Path.write_text

    def full(self, text, *args, **kwargs):
        original(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OSError) as info:
        atomic.write_text(page, "<html>" + "new " * 1000 + "</html>")
    assert rf.os_error_message(info.value)[0] == "the disk is full"
    monkeypatch.setattr(Path, "write_text", original)
    assert page.read_text() == "<html>old</html>"
    _no_temp_files(tmp_path)
