"""Anything Neo reads (NIX, Blackrock, Plexon, Spike2, ...) or a Block you already have.

* :func:`read_neo` opens a file with the matching ``neo.io`` reader and checks it against
  the trial convention (one Segment per trial).
* :func:`from_block` checks a Block you built or loaded yourself.
* :func:`split_trials` cuts a continuous recording (one long Segment, as most acquisition
  systems write) into trials from start/stop times, attaching conditions and events.
* :func:`write_nix` saves a Block as NIX (round trip with :func:`read_neo`).
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import neo
import numpy as np
import quantities as pq

from ..exceptions import DataError, FileFormatError
from .convention import Trial, check_block, make_block
from .files import (
    UnpicklingBlocked,
    check_input_file,
    no_unpickling,
    os_error,
    pickle_kind,
    read_head,
    unsafe_pickle_error,
)

__all__ = ["folder_formats", "from_block", "read_neo", "split_trials", "write_nix"]


def from_block(block: Any, *, source: str | None = None) -> neo.Block:
    """Check a Block you already have against the trial convention and return it.

    Segments are trials; each spike train needs a ``unit_id`` annotation or a ``name``
    (else its position is used). Raises :class:`DataError` naming what does not fit.
    """
    return check_block(block, source=source)


# Neo readers that unpickle the file they read. Found by reading neo 0.14's neo/io and
# neo/rawio for pickle, joblib, marshal, eval/exec and numpy.load(allow_pickle=True):
# * PickleIO (.pkl, .pickle): pickle.load of the whole file;
# * any RawIO-based reader given use_cache=True (NeuralynxIO exposes it): joblib.load of
#   a cache file it finds next to the data (or in ~/.config/neo_rawio_cache), a pickle.
# Nothing else unpickles: numpy.load is called with its default allow_pickle=False
# (PhyIO, OpenEphysBinaryIO), NeoMatlabIO's scipy.io.loadmat builds no Python objects,
# ElphyIO's eval() evaluates a string it builds from integers, not from the file. On top
# of that, every read runs inside files.no_unpickling, which stops any unpickling,
# whichever library attempts it.
_UNPICKLING_IO_NAMES = frozenset({"PickleIO"})


def _unpickling_io(io_class: type | None) -> bool:
    return io_class is not None and any(
        getattr(cls, "__name__", "") in _UNPICKLING_IO_NAMES for cls in io_class.__mro__
    )


def folder_formats() -> list[str]:
    """The Neo readers that read a recording stored as a folder (``mode == "dir"``)."""
    return sorted({io.__name__ for io in neo.io.iolist if getattr(io, "mode", None) == "dir"})


_NEO_EXPECTED = (
    "a file in a format neo.io reads (NIX .nix, Blackrock .nev/.ns*, Plexon .plx, Spike2 "
    ".smr, ...), or a folder in one of Neo's folder formats"
)


def read_neo(
    path: str | os.PathLike,
    *,
    io_class: type | None = None,
    block_index: int = 0,
    allow_pickle: bool = False,
    **io_kwargs: Any,
) -> neo.Block:
    """Read a file with Neo and check it against the trial convention.

    Parameters
    ----------
    path
        Any file Neo reads, or a folder in one of its folder formats (Neuralynx, Open
        Ephys, Phy, SpikeGLX, TDT, ...: :func:`folder_formats`); the reader is chosen from
        the extension(s) unless ``io_class`` (e.g. ``neo.io.BlackrockIO``) is given.
    block_index
        Which Block of the file to take when it holds several.
    allow_pickle
        Read a Python pickle (neo's ``PickleIO``, ``.pkl``) or let a reader unpickle a
        cache (``use_cache=True``). Off by default: reading a pickle runs any code it
        contains, so only pass ``True`` for a file you trust. Without it such a file raises
        :class:`~cortexfit.exceptions.UnsafeFileError`, also when a pickle has been renamed
        (it is recognised by its first bytes) and whatever reader tries to unpickle.

    A continuous recording with a single Segment loads as one trial: cut it into trials
    with :func:`split_trials`.
    """
    path = Path(path)
    is_dir = _is_dir(path)
    if not is_dir:
        check_input_file(path, expected=_NEO_EXPECTED)
    candidates = _choose_readers(path, is_dir, io_class, allow_pickle, io_kwargs)
    reader = None
    with no_unpickling(path, allow=allow_pickle):
        errors = []
        for candidate in candidates:
            try:
                reader = candidate(os.fspath(path), **io_kwargs)
                break
            except UnpicklingBlocked:
                raise
            except Exception as exc:  # noqa: BLE001 - third-party readers raise anything
                errors.append(f"{candidate.__name__}: {type(exc).__name__}: {exc}")
        if reader is None and is_dir:
            raise FileFormatError(
                "the path is a directory, but a file is expected (or a folder in one of "
                "Neo's folder formats, and this one could not be read as any)", file=path,
                field="path", found="a directory; tried " + "; ".join(errors)[:300],
                expected=_NEO_EXPECTED,
                hint=f"Give one recording file; Neo's folder formats: {', '.join(folder_formats())}",
            )
        if reader is None:
            raise FileFormatError(
                "no Neo reader could open the file", file=path, field="format",
                found="; ".join(errors)[:300] or "no reader", expected=_NEO_EXPECTED,
                hint="For NWB use cortexfit.io.read_nwb",
            )
        try:
            blocks = reader.read(lazy=False)
        except UnpicklingBlocked:
            raise
        except PermissionError as exc:
            raise os_error(path, exc, _NEO_EXPECTED) from None
        except Exception as exc:  # noqa: BLE001 - third-party readers raise anything
            raise FileFormatError(
                "the Neo reader failed on the file", file=path, field=type(reader).__name__,
                found=f"{type(exc).__name__}: {exc}"[:300], expected="a readable, complete file",
            ) from None
        finally:
            close = getattr(reader, "close", None)
            if callable(close):
                with contextlib.suppress(Exception):  # closing a broken file may fail too
                    close()
    if not isinstance(blocks, (list, tuple)):
        blocks = [blocks]
    if not blocks or block_index >= len(blocks):
        raise FileFormatError("the file holds no such Block", file=path, field="block_index",
                              found=f"{len(blocks or [])} block(s)", expected=f"index {block_index}")
    block = blocks[block_index]
    if not isinstance(block, neo.Block):
        raise FileFormatError(
            "the file does not hold a Neo Block", file=path, field="block",
            found=type(block).__name__, expected="neo.Block",
        )
    block.annotations["source"] = os.fspath(path)
    for seg in block.segments:
        for st in seg.spiketrains:
            st.annotations.pop("nix_name", None)
        seg.annotations.pop("nix_name", None)
        for ev in seg.events:
            ev.annotations.pop("nix_name", None)
    block.annotations.pop("nix_name", None)
    return check_block(block, source=os.fspath(path))


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def _choose_readers(
    path: Path, is_dir: bool, io_class: type | None, allow_pickle: bool, io_kwargs: dict
) -> list[type]:
    """The reader classes to try, in order; refuses the ones that would unpickle."""
    if io_kwargs.get("use_cache") and not allow_pickle:
        raise unsafe_pickle_error(
            path, "use_cache=True: neo's RawIO cache is a joblib pickle read back from disk"
        )
    if io_class is not None:
        if _unpickling_io(io_class) and not allow_pickle:
            raise unsafe_pickle_error(path, f"io_class={io_class.__name__}, which unpickles the file")
        if not is_dir and not allow_pickle:
            _refuse_pickle_content(path)
        return [io_class]
    if is_dir:
        try:
            listed = neo.io.list_candidate_ios(os.fspath(path))
        except (OSError, ValueError) as exc:
            listed, reason = [], f"{type(exc).__name__}: {exc}"
        else:
            reason = ""
        candidates = [io for io in listed if getattr(io, "mode", None) == "dir"]
        if not candidates:
            raise FileFormatError(
                "the path is a directory, but a file is expected", file=path, field="path",
                found="a directory" + (f" ({reason[:150]})" if reason else
                                       " holding no recording in a folder format Neo reads"),
                expected=_NEO_EXPECTED,
                hint="Give one recording file; a folder is read only in a format stored as a "
                f"folder: {', '.join(folder_formats())}",
            )
        return candidates
    head_kind = _pickle_content(path)
    try:
        candidates = list(neo.io.list_candidate_ios(os.fspath(path)))
    except (OSError, ValueError) as exc:
        if head_kind is not None:
            candidates = []
        else:
            raise FileFormatError(
                "no Neo reader reads files of this kind", file=path, field="format",
                found=f"{type(exc).__name__}: {exc}"[:300], expected=_NEO_EXPECTED,
                hint="For NWB use cortexfit.io.read_nwb",
            ) from None
    unpickling = [io.__name__ for io in candidates if _unpickling_io(io)]
    if head_kind is not None:
        if not allow_pickle:
            if unpickling:
                found = f"a {head_kind}, which Neo would read with {', '.join(unpickling)}"
            else:
                found = (f"a file named {path.name!r} whose first bytes are a {head_kind}")
            raise unsafe_pickle_error(path, found)
        return [neo.io.PickleIO]  # trusted, and a pickle whatever it is called
    if unpickling and not allow_pickle:
        raise unsafe_pickle_error(
            path, f"a {path.suffix or 'extension-less'} file, which Neo reads with "
            f"{', '.join(unpickling)} (it unpickles the file)",
        )
    return candidates


def _pickle_content(path: Path) -> str | None:
    try:
        return pickle_kind(read_head(path))
    except OSError as exc:
        raise os_error(path, exc, _NEO_EXPECTED) from None


def _refuse_pickle_content(path: Path) -> None:
    kind = _pickle_content(path)
    if kind is not None:
        raise unsafe_pickle_error(path, f"a file named {path.name!r} whose first bytes are a {kind}")


def write_nix(block: neo.Block, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a convention Block to a NIX file (``neo.io.NixIO``)."""
    path = Path(path)
    check_block(block)
    if path.exists():
        if not overwrite:
            raise DataError("refusing to overwrite an existing file", file=path, field="path",
                            found="the file exists", expected="a new path, or overwrite=True")
        path.unlink()
    with neo.io.NixIO(os.fspath(path), mode="ow") as nix:
        nix.write_block(block)
    return path


def split_trials(
    block: neo.Block,
    t_start: Sequence[float],
    t_stop: Sequence[float],
    *,
    conditions: Sequence[Any] | None = None,
    events: Mapping[str, Sequence[float]] | None = None,
    trial_annotations: Mapping[str, Sequence[Any]] | None = None,
    segment_index: int = 0,
) -> neo.Block:
    """Cut one continuous Segment into trials (all times in seconds, same clock).

    ``events`` maps a name to one absolute time per trial (NaN where absent). Unit ids
    come from each spike train's ``unit_id`` annotation, its name, or its position.
    """
    src = block.annotations.get("source")
    if segment_index >= len(block.segments):
        raise DataError("no such segment", file=src, field="segment_index",
                        found=f"{len(block.segments)} segment(s)", expected=f"index {segment_index}")
    seg = block.segments[segment_index]
    starts = np.asarray(t_start, dtype=float)
    stops = np.asarray(t_stop, dtype=float)
    if starts.shape != stops.shape or starts.ndim != 1:
        raise DataError("t_start and t_stop must be 1-D and of equal length", file=src,
                        field="t_start/t_stop", found=(starts.shape, stops.shape),
                        expected="one start and one stop per trial")
    n_trials = starts.size
    ids, unit_ann, all_spikes = [], [], []
    for k, st in enumerate(seg.spiketrains):
        ids.append(str(st.annotations.get("unit_id", st.name if st.name is not None else k)))
        unit_ann.append({key: val for key, val in st.annotations.items()
                         if key != "unit_id" and isinstance(val, (str, int, float, bool))})
        try:
            all_spikes.append(np.sort(st.rescale(pq.s).magnitude.astype(np.float64)))
        except ValueError:
            raise DataError("spike times are not in units of time", file=src,
                            field=f"unit {ids[-1]}", found=str(st.units.dimensionality),
                            expected="seconds") from None
    per_trial_ann: list[dict[str, Any]] = [{"trial_id": i} for i in range(n_trials)]
    for key, values in {**({"condition": conditions} if conditions is not None else {}),
                        **dict(trial_annotations or {})}.items():
        values = list(values)
        if len(values) != n_trials:
            raise DataError("one value per trial is needed", file=src, field=key,
                            found=f"{len(values)} values", expected=f"{n_trials}")
        for i, value in enumerate(values):
            per_trial_ann[i][key] = value
    trials = []
    for i in range(n_trials):
        spikes = [times[(times >= starts[i]) & (times <= stops[i])] for times in all_spikes]
        trial_events = {}
        for name, times in (events or {}).items():
            times = list(times)
            if len(times) != n_trials:
                raise DataError("one event time per trial is needed", file=src,
                                field=f"events[{name!r}]", found=f"{len(times)} times",
                                expected=f"{n_trials}")
            trial_events[name] = times[i]
        trials.append(Trial(float(starts[i]), float(stops[i]), spikes,
                            annotations=per_trial_ann[i], events=trial_events))
    return make_block(trials, ids, unit_annotations=unit_ann, source=src,
                      block_annotations={"loader": "split_trials"})
