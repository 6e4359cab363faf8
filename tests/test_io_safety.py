"""Loading is safe: no code runs from a data file, and a directory where a file is
expected says so.

* A crafted pickle (``__reduce__`` -> ``os.system("touch MARKER")``) does not run through
  ``load``, ``read_neo`` or ``cortexfit info``, whatever the file is called; with
  ``allow_pickle=True`` a real pickled Block loads.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import neo
import numpy as np
import pytest

from cortexfit import cli
from cortexfit.exceptions import DataError, FileFormatError, UnsafeFileError
from cortexfit.io import from_spike_times, load, read_neo, unit_ids, write_nix
from cortexfit.io.files import no_unpickling, pickle_kind

# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


class _Evil:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def evil_pickle(path: Path, marker: Path, protocol: int = pickle.HIGHEST_PROTOCOL) -> Path:
    path.write_bytes(pickle.dumps(_Evil(marker), protocol=protocol))
    return path


def small_block():
    rng = np.random.default_rng(3)
    trials = [[np.sort(rng.uniform(0, 2, 6)) for _ in range(3)] for _ in range(4)]
    return from_spike_times(trials, t_stop=2.0, conditions=["l", "r", "l", "r"],
                            unit_ids=["a", "b", "c"], events={"go": [1.0, 1.1, 1.2, 1.3]})


def run_info(path, capsys, *extra):
    """``cortexfit info PATH`` in this process: (status, stdout, stderr)."""
    capsys.readouterr()
    status = cli.main(["info", *extra, str(path)])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_paragraph(err: str, path: Path) -> str:
    """The error output is the message (naming the file) and at most a hint line."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 2, err
    assert lines[0].startswith("cortexfit info: error: "), err
    assert str(path) in lines[0], err
    assert len(lines[0]) < 1200, err
    return lines[0]


def assert_pickle_refusal(message: str, path: Path) -> None:
    """Names the file, says why, and says how to trust it (Python, command line, config)."""
    assert str(path) in message
    assert "pickle can run any code" in message
    assert "allow_pickle=True" in message
    assert "--allow-pickle" in message
    assert "allow_pickle = true" in message


# --------------------------------------------------------------------------------------
# 1. No code runs from a data file
# --------------------------------------------------------------------------------------

# a pickle is caught by its extension (.pkl, .pickle) and by its first bytes (any name)
PICKLE_NAMES = ["rec.pkl", "rec.pickle", "rec.nix", "rec.h5", "rec.nwb", "rec.dat", "rec"]


@pytest.mark.parametrize("name", PICKLE_NAMES)
@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_crafted_pickle_does_not_run_through_load_or_read_neo(tmp_path, name, protocol):
    marker = tmp_path / "pwned"
    path = evil_pickle(tmp_path / name, marker, protocol)
    for reader in (load, read_neo):
        with pytest.raises(UnsafeFileError) as excinfo:
            reader(path)
        assert_pickle_refusal(str(excinfo.value), path)
        assert excinfo.value.file == str(path)
        assert not marker.exists()


@pytest.mark.parametrize("name", ["rec.pkl", "rec.nix", "rec.nwb"])
def test_crafted_pickle_does_not_run_through_cortexfit_info(tmp_path, capsys, name):
    marker = tmp_path / "pwned"
    path = evil_pickle(tmp_path / name, marker)
    status, out, err = run_info(path, capsys)
    assert status == 2
    assert out == ""
    assert_pickle_refusal(assert_one_paragraph(err, path), path)
    assert not marker.exists()


def test_a_trusted_pickle_of_a_block_loads_with_allow_pickle(tmp_path):
    block = small_block()
    path = tmp_path / "block.pkl"
    neo.io.PickleIO(str(path)).write_block(block)
    for reader in (load, read_neo):
        back = reader(path, allow_pickle=True)
        assert unit_ids(back) == ["a", "b", "c"]
        assert len(back.segments) == 4
        np.testing.assert_allclose(back.segments[2].spiketrains[1].magnitude,
                                   block.segments[2].spiketrains[1].magnitude)
    renamed = tmp_path / "block.nix"  # trusted: read as the pickle it is, whatever its name
    renamed.write_bytes(path.read_bytes())
    assert unit_ids(load(renamed, allow_pickle=True)) == ["a", "b", "c"]


def test_unpickling_readers_and_options_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = evil_pickle(tmp_path / "rec.dat", marker)
    with pytest.raises(UnsafeFileError, match="io_class=PickleIO"):
        read_neo(path, io_class=neo.io.PickleIO)
    nix = write_nix(small_block(), tmp_path / "ok.nix")
    with pytest.raises(UnsafeFileError, match="use_cache=True"):
        read_neo(nix, use_cache=True)  # neo's RawIO cache is a joblib pickle
    assert not marker.exists()
    assert unit_ids(read_neo(nix)) == ["a", "b", "c"]  # the same file without the option


class _HiddenPickleIO:
    """A reader that unpickles data hidden after a header (the first bytes look harmless):
    stands for any third-party reader that unpickles. Without allow_pickle the guard stops
    it; with it, it returns its Block."""

    def __init__(self, filename):
        self.filename = filename

    def read(self, lazy=False):
        with open(self.filename, "rb") as handle:
            handle.seek(16)
            return [pickle.load(handle)]


class _ObjectNpyIO(_HiddenPickleIO):
    """A reader that loads an object array with numpy.load(allow_pickle=True)."""

    def read(self, lazy=False):
        return [np.load(self.filename, allow_pickle=True)[()]]


def test_any_reader_that_unpickles_is_stopped_before_the_pickle_runs(tmp_path):
    marker = tmp_path / "pwned"
    hidden = tmp_path / "rec.bin"
    hidden.write_bytes(b"MYFORMAT-HEADER!" + pickle.dumps(_Evil(marker)))
    assert pickle_kind(hidden.read_bytes()[:64]) is None  # not recognisable by its start
    with pytest.raises(UnsafeFileError, match="tried to unpickle") as excinfo:
        read_neo(hidden, io_class=_HiddenPickleIO)
    assert_pickle_refusal(str(excinfo.value), hidden)
    assert "os.system" in str(excinfo.value) or "posix.system" in str(excinfo.value)
    npy = tmp_path / "rec.npy"
    np.save(npy, np.array(_Evil(marker), dtype=object), allow_pickle=True)
    with pytest.raises(UnsafeFileError, match="tried to unpickle"):
        read_neo(npy, io_class=_ObjectNpyIO)
    assert not marker.exists()
    # the guard is what stopped them: trusted, the same reader unpickles a real Block
    trusted = tmp_path / "trusted.bin"
    trusted.write_bytes(b"MYFORMAT-HEADER!" + pickle.dumps(small_block()))
    assert unit_ids(read_neo(trusted, io_class=_HiddenPickleIO, allow_pickle=True)) == \
        ["a", "b", "c"]


def test_the_guard_is_scoped(tmp_path):
    data = pickle.dumps(small_block())
    with pytest.raises(UnsafeFileError), no_unpickling(tmp_path / "x"):
        pickle.loads(data)
    assert unit_ids(pickle.loads(data)) == ["a", "b", "c"]  # outside it, pickle works


def test_pickle_detection_by_content():
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickle_kind(pickle.dumps(_Evil(Path("/nonexistent")), protocol=protocol))
        assert pickle_kind(pickle.dumps({"a": [1.0, 2.0]}, protocol=protocol)) if protocol >= 2 \
            else True
    for harmless in (b"", b"\x89HDF\r\n\x1a\n" + bytes(100), b"trial,start\n1,0.5\n",
                     b"NEURALEV" + bytes(100), b"\x80\x09garbage", b"cat\ndog\n"):
        assert pickle_kind(harmless) is None, harmless


# --------------------------------------------------------------------------------------
# 2. A directory where a file is expected
# --------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Could not find any data set")  # neo TDT, tried on it
def test_a_directory_is_not_a_missing_file(tmp_path, capsys):
    folder = tmp_path / "session"
    folder.mkdir()
    (folder / "notes.txt").write_text("nothing Neo reads from a folder")
    for reader in (load, read_neo):
        with pytest.raises(FileFormatError, match="is a directory, but a file is expected") \
                as excinfo:
            reader(folder)
        message = str(excinfo.value)
        assert "does not exist" not in message and str(folder) in message
        assert "NeuralynxIO" in message and "OpenEphysIO" in message  # Neo's folder formats
    status, _, err = run_info(folder, capsys)
    assert status == 2 and "is a directory" in assert_one_paragraph(err, folder)


def test_a_folder_format_is_read_by_neo(tmp_path):
    """A folder holding files of a folder format goes to that reader, not to the
    "directory" message: here NeuralynxIO reads the fake folder as holding no units."""
    folder = tmp_path / "neuralynx"
    folder.mkdir()
    (folder / "CSC1.ncs").write_bytes(b"not really neuralynx" * 10)
    with pytest.raises(DataError) as excinfo:
        read_neo(folder)
    assert "is a directory" not in str(excinfo.value)
    assert "no spike trains" in str(excinfo.value)
    assert str(folder) in str(excinfo.value)
