"""The table of data formats (cortexfit.io.formats): the config, the stages and
`cortexfit info --formats` read it; a format registered in it is a format of the pipeline."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from cortexfit.cli import main
from cortexfit.config import DATA_FORMATS, DataSection, parse_config, resolve
from cortexfit.console import Console
from cortexfit.datasets import SYNTHETIC_TARGETS, make_synthetic_recording
from cortexfit.exceptions import ConfigError
from cortexfit.io import formats
from cortexfit.io.describe import describe_formats
from cortexfit.io.formats import DataFormat, data_formats, format_names, get_format
from cortexfit.pipeline import _outputs
from cortexfit.stages import RunContext, _data_files, stage_load
from cortexfit.targets import targets_from_rates

#: every format of the pipeline, in the order the config's error lists them
BUILT_IN = ["synthetic", "devset", "nwb", "neo", "pmd_yu2009", "alm_kim2023_psth"]


def _minimal(fmt: DataFormat) -> dict:
    """The smallest ``[data]`` section the format accepts."""
    data: dict = {"format": fmt.name}
    if "path" in fmt.needs:
        data["path"] = "recording.file"
    if "align" in fmt.needs:
        data["align"] = "go"
    if "window" in fmt.needs:
        data["window"] = [-0.5, 0.5]
    if "variant" in fmt.needs:
        data["variant"] = next(iter(fmt.variants))
    return data


def test_the_table_holds_every_format_of_the_pipeline_in_order():
    assert format_names() == BUILT_IN
    assert list(DATA_FORMATS) == BUILT_IN
    assert {f.name: f.description for f in data_formats()} == DATA_FORMATS


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_registered_format_is_accepted_and_resolved_by_the_config(name, tmp_path):
    fmt = get_format(name)
    resolved = resolve(parse_config({"data": _minimal(fmt)}, base_dir=tmp_path))
    data = resolved["data"]
    assert data["format"] == name and resolved["run"]["name"] == name
    for key, value in fmt.defaults_for(data["variant"]).items():  # the format's own defaults
        assert data[key] == value
    for key in fmt.needs:
        assert data[key] is not None


def test_the_table_names_only_data_keys_and_says_what_each_format_needs():
    keys = set(DataSection.model_fields) - {"format"}
    for fmt in data_formats():
        named = set(fmt.needs) | set(fmt.ignores) | set(fmt.refuses) | set(fmt.defaults)
        assert named <= keys, (fmt.name, named - keys)
        assert fmt.gives_trials == (fmt.read_block is not None)
        assert fmt.source in ("generated", "file", "shared dataset")
        if "path" in fmt.needs:
            with pytest.raises(ConfigError, match=f"path is required for format '{fmt.name}'"):
                parse_config({"data": {"format": fmt.name}})
        for key in fmt.refuses:
            with pytest.raises(ConfigError, match=f"{key} is not used for format"):
                parse_config({"data": {**_minimal(fmt), key: "something"}})
        for key in set(fmt.needs) - {"path"}:  # checked once the defaults are filled in
            raw = _minimal(fmt)
            raw.pop(key)
            with pytest.raises(ConfigError, match=f"data.{key} is required"):
                resolve(parse_config({"data": raw}))


@pytest.mark.parametrize("value", ["csv", 5, ["nwb"], "NWB"])
def test_an_unknown_format_lists_the_formats_of_the_table(value):
    with pytest.raises(ConfigError) as info:
        parse_config({"data": {"format": value}}, file="my.toml")
    assert info.value.field == "data.format"
    listed = ", ".join(repr(n) for n in BUILT_IN[:-1]) + f" or {BUILT_IN[-1]!r}"
    assert f"Input should be {listed}" in str(info.value)
    with pytest.raises(ConfigError, match="unknown data format") as info:
        get_format(value if isinstance(value, str) else "csv")
    assert all(repr(n) in info.value.expected for n in BUILT_IN)


def test_cortexfit_info_lists_every_registered_format(capsys):
    assert main(["info", "--formats"]) == 0
    text = capsys.readouterr().out
    assert text == describe_formats() + "\n"
    for fmt in data_formats():
        assert f"  {fmt.name}: {fmt.description}" in text
    assert main(["info", "--formats", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == BUILT_IN
    assert rows == json.loads(json.dumps([f.as_dict() for f in data_formats()]))
    for argv, words in ((["info"], "one of the arguments path --formats is required"),
                        (["info", "--formats", "rec.nwb"], "not allowed with")):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2 and words in capsys.readouterr().err


def test_a_row_is_checked_and_a_name_registered_once():
    def read(path, data):
        return None

    with pytest.raises(ValueError, match="exactly one of read_block"):
        DataFormat(name="x", description="x")
    with pytest.raises(ValueError, match="exactly one of read_block"):
        DataFormat(name="x", description="x", read_block=read, read_targets=read)
    with pytest.raises(ValueError, match="generate and generated_file"):
        DataFormat(name="x", description="x", read_block=read, generated_file="x.nwb")
    with pytest.raises(ValueError, match="both needed and"):
        DataFormat(name="x", description="x", read_block=read, needs=("path",),
                   ignores=("path",))
    with pytest.raises(ValueError, match="already registered"):
        formats.register_format(DataFormat(name="nwb", description="x", read_block=read))
    nwb = get_format("nwb")
    assert formats.register_format(nwb) is nwb  # the same row again: nothing happens
    assert format_names() == BUILT_IN


# ---------------------------------------------------------------------- a new format
def _small_block(path, data):
    return make_synthetic_recording(seed=3, n_units=6, n_trials_per_condition=6).block


def _small_rates(path, data):
    time = np.arange(20) * 0.05
    rates = 5 + np.random.default_rng(0).uniform(0, 5, (2, 4, time.size))
    return targets_from_rates(rates, time, conditions=["a", "b"], align_event="go")


@pytest.fixture
def registered(monkeypatch):
    """Register test formats (removed again afterwards)."""
    def add(fmt: DataFormat) -> DataFormat:
        monkeypatch.setitem(formats._TABLE, fmt.name, fmt)
        return fmt
    return add


@pytest.mark.parametrize("trials", [True, False], ids=["trials", "rates-only"])
def test_a_registered_format_runs_through_the_config_and_the_load_stage(registered, tmp_path,
                                                                        trials):
    """Nothing outside the table names a format: a new row is accepted by the config, read
    by the load and targets stages, and listed by `cortexfit info --formats`."""
    read = {"read_block": _small_block} if trials else {"read_targets": _small_rates}
    fmt = registered(DataFormat(
        name="test_small", description="a small test recording", **read,
        defaults={k: (list(v) if isinstance(v, tuple) else v)
                  for k, v in SYNTHETIC_TARGETS.items()} if trials else {},
        files=lambda path: [Path("a.file"), Path("b.file")]))
    assert "test_small" in format_names()
    with pytest.raises(ConfigError, match="'test_small'"):
        parse_config({"data": {"format": "csv"}})
    config = parse_config({"data": {"format": "test_small"}, "auxiliary": {"aux_ratio": 0.0}})
    assert _data_files(config) == [Path("a.file"), Path("b.file")]
    assert _outputs("load", resolve(config)) == ["recording.nc"]
    ctx = RunContext(config, tmp_path, Console(0), False, False)
    assert ctx.data_format is fmt
    ctx.preflight()
    assert stage_load(ctx)
    with xr.open_dataset(tmp_path / "recording.nc", engine="h5netcdf") as rec:
        assert rec.attrs["format"] == "test_small"
        assert int(rec.attrs["rates_only"]) == (0 if trials else 1)
        assert int(rec.attrs["n_units"]) == (6 if trials else 4)
    assert ctx.targets.sizes["unit"] == (6 if trials else 4)
    assert "test_small: a small test recording" in describe_formats()


# ---------------------------------------------------------------------- layering
_IO = Path(__file__).resolve().parents[2] / "cortexfit" / "io"
#: what cortexfit.io may import of cortexfit: itself and the base layer
_BASE = {"exceptions", "atomic", "console", "health", "provenance"}


@pytest.mark.parametrize("path", sorted(_IO.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(_IO)))
def test_io_imports_nothing_above_it(path):
    """io is a leaf: no import of targets, datasets, config, ... (anywhere in the module)."""
    depth = len(path.relative_to(_IO).parts)  # 1: cortexfit/io/x.py, 2: cortexfit/io/nwb/x.py
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level > depth:  # out of cortexfit.io
            target = (node.module or "").split(".")[0]
            names = {a.name for a in node.names}
            assert target in _BASE or (not target and names <= {"__version__"}), (
                f"{path.name} imports from cortexfit.{target or names}")
        absolute = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                    [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0
                    else [])
        for module in absolute:
            if module and module.startswith("cortexfit."):
                assert module.startswith("cortexfit.io") or module.split(".")[1] in _BASE, (
                    f"{path.name} imports {module}")
