"""Anything Neo reads (NIX, Blackrock, Plexon, Spike2, ...) or a Block you already have.

* :func:`read_neo` opens a file with the matching ``neo.io`` reader and checks it against
  the trial convention (one Segment per trial).
* :func:`from_block` checks a Block you built or loaded yourself.
* :func:`split_trials` cuts a continuous recording (one long Segment, as most acquisition
  systems write) into trials from start/stop times, attaching conditions and events.
* :func:`write_nix` saves a Block as NIX (round trip with :func:`read_neo`).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import neo
import numpy as np
import quantities as pq

from ..exceptions import DataError, FileFormatError
from .convention import Trial, check_block, make_block

__all__ = ["read_neo", "from_block", "split_trials", "write_nix"]


def from_block(block: Any, *, source: str | None = None) -> neo.Block:
    """Check a Block you already have against the trial convention and return it.

    Segments are trials; each spike train needs a ``unit_id`` annotation or a ``name``
    (else its position is used). Raises :class:`DataError` naming what does not fit.
    """
    return check_block(block, source=source)


def read_neo(
    path: str | os.PathLike,
    *,
    io_class: type | None = None,
    block_index: int = 0,
    **io_kwargs: Any,
) -> neo.Block:
    """Read a file with Neo and check it against the trial convention.

    Parameters
    ----------
    path
        Any file or folder a ``neo.io`` reader opens; the reader is chosen from the
        extension unless ``io_class`` (e.g. ``neo.io.BlackrockIO``) is given.
    block_index
        Which Block of the file to take when it holds several.

    A continuous recording with a single Segment loads as one trial: cut it into trials
    with :func:`split_trials`.
    """
    path = Path(path)
    if not path.exists():
        raise FileFormatError("file not found", file=path, field="path", found="no such file",
                              expected="an existing file or folder Neo can read")
    try:
        reader = io_class(os.fspath(path), **io_kwargs) if io_class else \
            neo.io.get_io(os.fspath(path), **io_kwargs)
    except (OSError, ValueError, IOError, KeyError, TypeError, IndexError) as exc:
        raise FileFormatError(
            "no Neo reader could open the file", file=path, field="format",
            found=f"{type(exc).__name__}: {exc}"[:300],
            expected="a format neo.io reads (NIX .nix, Blackrock .nev/.ns*, Plexon .plx, "
            "Spike2 .smr, ...), or use cortexfit.io.read_nwb for NWB",
        ) from None
    try:
        blocks = reader.read(lazy=False)
    except Exception as exc:  # noqa: BLE001 - third-party readers raise anything
        raise FileFormatError(
            "the Neo reader failed on the file", file=path, field=type(reader).__name__,
            found=f"{type(exc).__name__}: {exc}"[:300], expected="a readable, complete file",
        ) from None
    finally:
        close = getattr(reader, "close", None)
        if callable(close):
            close()
    if not blocks or block_index >= len(blocks):
        raise FileFormatError("the file holds no such Block", file=path, field="block_index",
                              found=f"{len(blocks or [])} block(s)", expected=f"index {block_index}")
    block = blocks[block_index]
    block.annotations["source"] = os.fspath(path)
    for seg in block.segments:
        for st in seg.spiketrains:
            st.annotations.pop("nix_name", None)
        seg.annotations.pop("nix_name", None)
        for ev in seg.events:
            ev.annotations.pop("nix_name", None)
    block.annotations.pop("nix_name", None)
    return check_block(block, source=os.fspath(path))


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
