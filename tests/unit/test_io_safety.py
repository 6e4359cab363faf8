"""Loading is safe: no code runs from a data file, and damaged or unreadable files give a
one-paragraph error (exit status 2 from ``cortexfit info``), never a traceback or a crash.

* A crafted pickle (``__reduce__`` -> ``os.system("touch MARKER")``) does not run through
  ``load``, ``read_neo`` or ``cortexfit info``, whatever the file is called; with
  ``allow_pickle=True`` a real pickled Block loads.
* A directory where a file is expected, and a file that cannot be read (permissions), say so.
* ``cortexfit info`` over truncated and bit-flipped copies of a small NWB file: exit 0 or 2,
  and 2 comes with a short message that names the file.
"""
from __future__ import annotations

import builtins
import os
import pickle
import random
import re
import subprocess
import sys
from pathlib import Path

import h5py
import neo
import numpy as np
import pytest

from cortexfit import cli
from cortexfit.datasets.synthetic import write_synthetic_nwb
from cortexfit.exceptions import DataError, FileFormatError, UnsafeFileError
from cortexfit.io import from_spike_times, load, read_neo, read_nwb, unit_ids, write_nix
from cortexfit.io.files import no_unpickling, pickle_kind
from cortexfit.io.nwb import checks as nwb_checks

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


@pytest.fixture(scope="module")
def small_nwb(tmp_path_factory):
    """A small valid NWB file (4 units, 6 trials): the source of the damaged copies."""
    path = tmp_path_factory.mktemp("nwb") / "small.nwb"
    write_synthetic_nwb(path, seed=0, n_units=4, n_trials_per_condition=3,
                        trial_duration=1.0, stimulus_time=0.2, delay=0.4)
    return path


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
        # every pickle that can call something is recognised, whatever the protocol
        assert pickle_kind(pickle.dumps(_Evil(Path("/nonexistent")), protocol=protocol))
        plain = pickle_kind(pickle.dumps({"a": [1.0, 2.0]}, protocol=protocol))
        if protocol >= 2:
            assert plain == f"Python pickle (protocol {protocol})"  # by its header
        else:
            assert plain is None  # no header, and no global: it cannot run anything
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
    nwb_folder = tmp_path / "session.nwb"
    nwb_folder.mkdir()
    for reader in (load, read_nwb):
        with pytest.raises(FileFormatError, match="is a directory, but a file is expected"):
            reader(nwb_folder)
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


# --------------------------------------------------------------------------------------
# 3. Permissions
# --------------------------------------------------------------------------------------


def _deny(monkeypatch, path: Path) -> None:
    """Make ``path`` unreadable: chmod 000, or (root reads anything) a patched ``open``
    and ``h5py.File`` that raise PermissionError for it."""
    if os.geteuid() != 0:
        path.chmod(0)
        return
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    class DeniedFile(h5py.File):
        def __init__(self, name, *args, **kwargs):
            if isinstance(name, (str, os.PathLike)) and Path(name) == path:
                raise PermissionError(13, "Permission denied", str(name))
            super().__init__(name, *args, **kwargs)

    from hdmf.backends.hdf5 import h5tools

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(h5py, "File", DeniedFile)
    monkeypatch.setattr(h5tools, "File", DeniedFile)


def test_unreadable_files_say_permission_denied(tmp_path, small_nwb, monkeypatch, capsys):
    nwb = tmp_path / "locked.nwb"
    nwb.write_bytes(small_nwb.read_bytes())
    nix = write_nix(small_block(), tmp_path / "locked.nix")
    _deny(monkeypatch, nwb)
    with pytest.raises(FileFormatError, match="permission denied") as excinfo:
        read_nwb(nwb)
    assert str(nwb) in str(excinfo.value) and "corrupt" not in str(excinfo.value)
    status, _, err = run_info(nwb, capsys)
    assert status == 2 and "permission denied" in assert_one_paragraph(err, nwb)
    monkeypatch.undo()
    _deny(monkeypatch, nix)
    with pytest.raises(FileFormatError, match="permission denied") as excinfo:
        read_neo(nix)
    assert str(nix) in str(excinfo.value)
    status, _, err = run_info(nix, capsys)
    assert status == 2 and "permission denied" in assert_one_paragraph(err, nix)


def test_permission_denied_inside_pynwb_is_reported(tmp_path, small_nwb, monkeypatch):
    """The file can be opened for its signature but HDF5 (pynwb) is refused."""
    from hdmf.backends.hdf5 import h5tools

    path = tmp_path / "half_locked.nwb"
    path.write_bytes(small_nwb.read_bytes())

    class DeniedFile(h5py.File):
        def __init__(self, name, *args, **kwargs):
            if isinstance(name, (str, os.PathLike)) and Path(name) == path:
                raise PermissionError(13, "Permission denied", str(name))
            super().__init__(name, *args, **kwargs)

    monkeypatch.setattr(h5py, "File", DeniedFile)
    monkeypatch.setattr(h5tools, "File", DeniedFile)
    with pytest.raises(FileFormatError, match="permission denied"):
        read_nwb(path)


# --------------------------------------------------------------------------------------
# 4. Damaged NWB files
# --------------------------------------------------------------------------------------

N_FLIPPED = 44
TRUNCATIONS = ["0", "1", "4", "8", "100", "512", "2048", "quarter", "half", "all_but_one"]


def _truncated(data: bytes, how: str) -> bytes:
    n = {"quarter": len(data) // 4, "half": len(data) // 2,
         "all_but_one": len(data) - 1}.get(how)
    return data[: int(how) if n is None else n]


def _flipped(data: bytes, index: int) -> bytes:
    """1 to 4 random bit flips (seeded by ``index``); every third variant flips only
    within the first 40 kB, where the HDF5 metadata and the tables are."""
    rng = random.Random(20240 + index)
    blob = bytearray(data)
    span = min(len(blob), 40_000) if index % 3 == 0 else len(blob)
    for _ in range(rng.choice([1, 1, 2, 4])):
        position = rng.randrange(span)
        blob[position] ^= 1 << rng.randrange(8)
    return bytes(blob)


def _check_info_on(path: Path, capsys) -> int:
    status, out, err = run_info(path, capsys)
    assert status in (0, 2), (status, err)
    if status == 2:
        assert out == ""
        assert_one_paragraph(err, path)
    else:
        assert out.startswith("Recording:"), out
        assert "Traceback" not in err
        # a damaged value that still reads is never passed on as NaN or infinity
        assert not re.search(r"\b(nan|inf)\b", out, re.IGNORECASE), out
    return status


@pytest.mark.parametrize("how", TRUNCATIONS)
def test_info_on_truncated_nwb(tmp_path, small_nwb, capsys, how):
    path = tmp_path / f"truncated_{how}.nwb"
    path.write_bytes(_truncated(small_nwb.read_bytes(), how))
    assert _check_info_on(path, capsys) == 2  # a truncated file is never taken as whole


@pytest.mark.parametrize("index", range(N_FLIPPED))
def test_info_on_bit_flipped_nwb(tmp_path, small_nwb, capsys, index):
    path = tmp_path / f"flipped_{index}.nwb"
    path.write_bytes(_flipped(small_nwb.read_bytes(), index))
    _check_info_on(path, capsys)


def test_the_source_of_the_damaged_copies_reads(small_nwb, capsys):
    assert _check_info_on(small_nwb, capsys) == 0


_H5_WALK = """
import sys, h5py

def read_attributes(name, obj):
    for key in obj.attrs:
        obj.attrs[key]

with h5py.File(sys.argv[1], "r") as f:
    dict(f.attrs)
    f.visititems(read_attributes)
"""


def test_a_file_that_crashes_the_hdf5_library_is_reported(tmp_path, small_nwb, capsys):
    """One flipped bit in a string attribute's datatype (string -> an invalid variable-length
    type) makes HDF5 crash with a segmentation fault; the crash happens in the probe
    process, and the reader reports it."""
    blob = bytearray(small_nwb.read_bytes())
    at = blob.find(b"neurodata_type\x00\x00\x19\x01")  # name, then a VLEN string datatype
    assert at > 0
    blob[at + 17] |= 0x08
    path = tmp_path / "crasher.nwb"
    path.write_bytes(bytes(blob))
    walk = subprocess.run([sys.executable, "-c", _H5_WALK, str(path)], capture_output=True,
                          check=False)
    assert walk.returncode < 0  # it really crashes h5py (killed by a signal)
    with pytest.raises(FileFormatError, match="HDF5 library crashed") as excinfo:
        read_nwb(path)
    assert "SIG" in str(excinfo.value)
    status, _, err = run_info(path, capsys)
    assert status == 2 and "crashed" in assert_one_paragraph(err, path)


def test_a_probe_that_dies_is_reported_whatever_the_signal(tmp_path, small_nwb, monkeypatch):
    monkeypatch.setattr(nwb_checks, "_PROBE_SCRIPT", "import os, signal; os.abort()")
    with pytest.raises(FileFormatError, match="killed by SIGABRT"):
        read_nwb(small_nwb)


def _edit(small_nwb: Path, tmp_path: Path, name: str, edit) -> Path:
    path = tmp_path / name
    path.write_bytes(small_nwb.read_bytes())
    with h5py.File(path, "r+") as handle:
        edit(handle)
    return path


def _set(dataset: str, index: int, value):
    def edit(handle):
        handle[dataset][index] = value
    return edit


def _reverse_first_unit(handle):
    end = int(handle["units/spike_times_index"][0])
    handle["units/spike_times"][:end] = handle["units/spike_times"][:end][::-1]


@pytest.mark.parametrize(
    "edit, message",
    [
        (_set("units/spike_times", 3, np.nan), "NaN or infinite"),
        (_set("units/spike_times", 0, -0.5), "negative"),
        (_set("units/spike_times", 5, 3e15), "impossibly large"),
        (_set("intervals/trials/stop_time", 2, 1.3e155), "impossibly large"),
        (_set("intervals/trials/start_time", 1, np.nan), "missing or infinite"),
        (_set("intervals/trials/go_cue_time", 0, 7e20), "impossibly large"),
        (_set("units/spike_times_index", 1, 0), "index of the spike times does not fit"),
        (_set("units/spike_times_index", 3, 5), "index of the spike times does not fit"),
    ],
    ids=["nan_spike", "negative_spike", "huge_spike", "huge_stop", "nan_start", "huge_event",
         "index_decreases", "index_short"],
)
def test_readable_but_inconsistent_values_are_reported(tmp_path, small_nwb, capsys, edit,
                                                       message):
    path = _edit(small_nwb, tmp_path, "edited.nwb", edit)
    status, _, err = run_info(path, capsys)
    assert status == 2
    assert message in assert_one_paragraph(err, path)


def test_out_of_order_spikes_are_reported_as_a_note(tmp_path, small_nwb, capsys):
    path = _edit(small_nwb, tmp_path, "unsorted.nwb", _reverse_first_unit)
    status, out, _ = run_info(path, capsys)
    assert status == 0
    assert re.search(r"Note: .*out of order and have been sorted", out)


def test_a_column_shorter_than_its_table_is_reported(tmp_path, small_nwb, capsys):
    def shorten(handle):
        values = handle["intervals/trials/outcome"][:-1]
        del handle["intervals/trials/outcome"]
        handle.create_dataset("intervals/trials/outcome", data=values,
                              dtype=h5py.string_dtype())
        for key, value in {"neurodata_type": "VectorData", "namespace": "hdmf-common",
                           "description": "outcome", "object_id": "x-outcome"}.items():
            handle["intervals/trials/outcome"].attrs[key] = value

    path = _edit(small_nwb, tmp_path, "short_column.nwb", shorten)
    status, _, err = run_info(path, capsys)
    assert status == 2
    line = assert_one_paragraph(err, path)
    assert "Field: root/intervals/trials" in line  # pynwb's own check, its group and reason
    assert "Columns must be the same length" in line
