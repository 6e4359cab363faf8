"""The data formats of a run: one table that the config, the stages and ``cortexfit info`` read.

A :class:`DataFormat` says everything the rest of cortexfit needs to know about a value of
``[data] format``: what it is, how it is read (into a :class:`neo.Block` of trials, or
straight into a targets Dataset when it holds trial-averaged rates only), which ``[data]``
keys it needs, ignores or refuses, the defaults it fills in, which files a load reads (for
the load stage's fingerprint), and, for a generated recording, how it is generated and what
its ground truth is.

The table (:func:`data_formats`) holds the file formats this package reads (``nwb``,
``neo``, registered below) and the formats that :mod:`cortexfit.datasets` registers with
:func:`register_format` (the embedded ``synthetic`` recording, the ``devset`` development
recordings and the shared datasets, one line each in ``cortexfit/datasets/__init__.py``): it
is complete once :mod:`cortexfit.datasets` is imported, as the config, the stages and the
command do. This module imports nothing above :mod:`cortexfit.io`.

A reader is called as ``read_block(path, data)`` / ``read_targets(path, data)``: ``path`` is
``[data] path`` resolved (``None`` when not given; the generated file for a generated
format) and ``data`` the resolved ``[data]`` section (every default filled in).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..exceptions import ConfigError
from .neo import read_neo
from .nwb import read_nwb

__all__ = [
    "DataFormat",
    "data_formats",
    "format_names",
    "get_format",
    "register_format",
]

#: The order formats are listed in (the config's error, ``cortexfit info --formats``)
_SOURCES = ("generated", "file", "shared dataset")


@dataclass(frozen=True)
class DataFormat:
    """One value of ``[data] format``.

    Exactly one of ``read_block`` (trials) and ``read_targets`` (trial-averaged rates only,
    no trials: nothing to hold out, no spikes to show) is given.

    ``needs``: the ``[data]`` keys that must have a value (``path`` is checked when the
    config is read; the others once :attr:`defaults` are filled in). ``ignores``: the keys
    its reader does not use (allowed, without effect). ``refuses``: keys that must not be
    set, each with the reason (an error names it). ``defaults``: values of ``[data]`` keys the
    config leaves out.

    ``files(path)``: the files a load reads, whose size and modification time make the load
    stage's fingerprint (``None``: no files, e.g. a generated recording). ``dataset``: the
    shared dataset (a key of :data:`cortexfit.datasets.SHARED_DATASETS`) whose citation and
    licence the run records. ``generate(path, seed, data)`` writes a generated recording to
    ``path``; the run folder keeps it as ``generated_file``; ``truth(seed, data)`` is the
    ``expected_rate(condition, unit, time)`` its trial-averaged rates estimate (``data``: the
    resolved ``[data]`` section, e.g. for its ``variant``).

    ``variants``: when given, the values ``[data] variant`` may take, each with its own
    defaults (filled in after :attr:`defaults`, see :meth:`defaults_for`); another value is
    an error that lists them.
    """

    name: str
    description: str
    read_block: Callable[[Path | None, Mapping[str, Any]], Any] | None = None
    read_targets: Callable[[Path | None, Mapping[str, Any]], Any] | None = None
    needs: tuple[str, ...] = ()
    ignores: tuple[str, ...] = ()
    refuses: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    files: Callable[[Path | None], list[Path]] | None = None
    dataset: str | None = None
    generated_file: str | None = None
    generate: Callable[[Path, int, Mapping[str, Any]], Any] | None = None
    truth: Callable[[int, Mapping[str, Any]], Any] | None = None
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.read_block is None) == (self.read_targets is None):
            raise ValueError(f"data format {self.name!r}: give exactly one of read_block "
                             "(trials) and read_targets (rates only)")
        if (self.generate is None) != (self.generated_file is None):
            raise ValueError(f"data format {self.name!r}: a generated recording needs both "
                             "generate and generated_file")
        both = set(self.needs) & (set(self.ignores) | set(self.refuses))
        if both:
            raise ValueError(f"data format {self.name!r}: {sorted(both)} both needed and "
                             "ignored or refused")
        for name in ("needs", "ignores"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("refuses", "defaults"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        object.__setattr__(self, "variants", MappingProxyType(
            {str(k): MappingProxyType(dict(v)) for k, v in self.variants.items()}))

    @property
    def gives_trials(self) -> bool:
        """Single trials (a Block); ``False``: trial-averaged rates only."""
        return self.read_block is not None

    @property
    def source(self) -> str:
        """``"generated"``, ``"file"`` (a recording file of the user's) or ``"shared
        dataset"``."""
        if self.generate is not None:
            return "generated"
        return "file" if self.dataset is None else "shared dataset"

    def defaults_for(self, variant: str | None) -> dict[str, Any]:
        """The defaults of ``[data]`` with ``variant`` (:attr:`defaults`, then the
        variant's own)."""
        return {**self.defaults, **self.variants.get(variant, {})}

    def data_files(self, path: Path | None) -> list[Path]:
        """The files a load of this format reads (``path``: ``[data] path`` resolved)."""
        return [] if self.files is None else list(self.files(path))

    def as_dict(self) -> dict[str, Any]:
        """The table row as plain data (``cortexfit info --formats --json``)."""
        return {
            "name": self.name, "description": self.description, "source": self.source,
            "gives": "trials" if self.gives_trials else "trial-averaged rates only",
            "needs": list(self.needs), "ignores": list(self.ignores),
            "refuses": dict(self.refuses), "defaults": dict(self.defaults),
            "dataset": self.dataset, "generated_file": self.generated_file,
            "variants": {k: dict(v) for k, v in self.variants.items()},
        }


_TABLE: dict[str, DataFormat] = {}


def register_format(fmt: DataFormat, *, replace: bool = False) -> DataFormat:
    """Add ``fmt`` to the table (by its name). A second format of the same name is an error
    unless ``replace``; registering the same entry again does nothing."""
    old = _TABLE.get(fmt.name)
    if old is not None and old is not fmt and not replace:
        raise ValueError(f"a data format named {fmt.name!r} is already registered")
    _TABLE[fmt.name] = fmt
    return fmt


def data_formats() -> list[DataFormat]:
    """Every registered format: generated, then file formats, then shared datasets (each in
    the order registered)."""
    return sorted(_TABLE.values(), key=lambda f: _SOURCES.index(f.source))


def format_names() -> list[str]:
    """The names of :func:`data_formats`, in their order."""
    return [f.name for f in data_formats()]


def get_format(name: str | DataFormat) -> DataFormat:
    """The format registered as ``name``; a :class:`ConfigError` lists the registered ones."""
    if isinstance(name, DataFormat):
        return name
    try:
        return _TABLE[name]
    except (KeyError, TypeError):
        raise ConfigError("unknown data format", field="data.format", found=repr(name),
                          expected=" or ".join(repr(n) for n in format_names())) from None


# ---------------------------------------------------------------------- the file formats
def _the_file(path: Path | None) -> list[Path]:
    return [path]


def _read_nwb(path: Path | None, data: Mapping[str, Any]):
    return read_nwb(path, event_times=data["event_times"])


def _read_neo(path: Path | None, data: Mapping[str, Any]):
    return read_neo(path, allow_pickle=data["allow_pickle"])


NWB = register_format(DataFormat(
    name="nwb",
    description="an NWB file with a units and a trials table (pynwb)",
    read_block=_read_nwb,
    needs=("path", "align", "window"),
    ignores=("variant", "allow_pickle"),
    files=_the_file,
))

NEO = register_format(DataFormat(
    name="neo",
    description="any file Neo reads (NIX, Blackrock, Plexon, Spike2, ...), one Segment per "
                "trial",
    read_block=_read_neo,
    needs=("path", "align", "window"),
    ignores=("event_times", "variant"),
    files=_the_file,
))
