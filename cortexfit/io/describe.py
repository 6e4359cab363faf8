"""What a newcomer needs to set up a fit: a summary of a convention Block, and the data
formats a run config can name.

``describe(block)`` returns a :class:`RecordingSummary` (plain data, also as a dict);
``str()`` of it is what ``cortexfit info PATH`` prints. ``describe_formats()`` is what
``cortexfit info --formats`` prints: the table of :mod:`cortexfit.io.formats`.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import neo
import numpy as np

from .convention import (
    check_block,
    event_names,
    event_time,
    trial_annotations,
    trial_window,
    unit_ids,
)
from .formats import DataFormat, data_formats

__all__ = ["RecordingSummary", "describe", "describe_formats"]

_MAX_LEVELS = 12  # annotations with at most this many distinct values are listed with counts


@dataclass
class RecordingSummary:
    source: str
    n_units: int
    unit_ids: list[str]
    unit_attributes: dict[str, dict[str, int]]
    n_trials: int
    time_span: tuple[float, float]
    trial_duration: tuple[float, float, float]
    trial_attributes: dict[str, dict[str, int] | int]
    events: dict[str, dict[str, float]]
    mean_rate: dict[str, float]
    suggestion: str = ""
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        lines = [f"Recording: {self.source}"]
        shown = ", ".join(self.unit_ids[:10]) + (" ..." if self.n_units > 10 else "")
        lines.append(f"Units: {self.n_units} ({shown})")
        for key, counts in self.unit_attributes.items():
            lines.append(f"  {key}: " + ", ".join(f"{v} x{n}" for v, n in counts.items()))
        lines.append(
            f"Trials: {self.n_trials}, spanning {self.time_span[0]:.3f} to {self.time_span[1]:.3f} s; "
            f"durations {self.trial_duration[0]:.3f} / {self.trial_duration[1]:.3f} / "
            f"{self.trial_duration[2]:.3f} s (min / median / max)"
        )
        lines.append("Trial annotations (candidate condition keys show their values):")
        for key, value in self.trial_attributes.items():
            if isinstance(value, dict):
                lines.append(f"  {key}: " + ", ".join(f"{v!s} ({n})" for v, n in value.items()))
            else:
                lines.append(f"  {key}: {value} distinct values")
        if self.events:
            lines.append("Events (time after trial start, s: median [min, max]; trials with it):")
            for name, info in self.events.items():
                lines.append(
                    f"  {name}: {info['median']:.3f} [{info['min']:.3f}, {info['max']:.3f}]; "
                    f"{int(info['n_trials'])} of {self.n_trials} trials"
                )
        else:
            lines.append("Events: none (targets need an event to align on)")
        rates = np.array(list(self.mean_rate.values()))
        lines.append(
            f"Mean rates (Hz, over whole trials): min {rates.min():.2f}, median "
            f"{np.median(rates):.2f}, max {rates.max():.2f}"
        )
        if self.n_units <= 10:
            lines.append("  " + ", ".join(f"{u}: {r:.2f}" for u, r in self.mean_rate.items()))
        for note in self.notes:
            lines.append(f"Note: {note}")
        if self.suggestion:
            lines.append("To make targets:")
            lines.append(f"  {self.suggestion}")
        return "\n".join(lines)


def _counts(values: list[Any]) -> dict[str, int]:
    counter = Counter("None" if v is None else str(v) for v in values)
    return dict(sorted(counter.items(), key=lambda item: (-item[1], item[0])))


def describe(block: neo.Block) -> RecordingSummary:
    """Summarise units, trials, conditions, annotations, events, time span and rates."""
    check_block(block)
    ids = unit_ids(block)
    segments = block.segments
    windows = np.array([trial_window(seg) for seg in segments])
    starts, stops = windows[:, 0], windows[:, 1]
    durations = stops - starts

    unit_attrs: dict[str, dict[str, int]] = {}
    for st in segments[0].spiketrains:
        for key, value in st.annotations.items():
            if key == "unit_id":
                continue
            unit_attrs.setdefault(key, {})
    for key in unit_attrs:
        unit_attrs[key] = _counts([st.annotations.get(key) for st in segments[0].spiketrains])
        if len(unit_attrs[key]) > _MAX_LEVELS:
            top = dict(list(unit_attrs[key].items())[:_MAX_LEVELS])
            unit_attrs[key] = top

    trial_attrs: dict[str, dict[str, int] | int] = {}
    for key, values in trial_annotations(block).items():
        counts = _counts(values)
        trial_attrs[key] = counts if len(counts) <= _MAX_LEVELS else len(counts)

    events: dict[str, dict[str, float]] = {}
    for name in event_names(block):
        times = [event_time(seg, name) for seg in segments]
        have = np.array([t is not None for t in times])
        abs_t = np.array([t for t in times if t is not None])
        rel = abs_t - starts[have]
        events[name] = {
            "median": float(np.median(rel)), "min": float(rel.min()), "max": float(rel.max()),
            "n_trials": float(rel.size),
            # the largest window around the event that every trial with it covers
            "room_before": float(rel.min()), "room_after": float((stops[have] - abs_t).min()),
        }

    total = float(durations.sum())
    counts = np.zeros(len(ids))
    for seg in segments:
        for k, st in enumerate(seg.spiketrains):
            counts[k] += len(st)
    mean_rate = {uid: float(c / total) for uid, c in zip(ids, counts)}

    notes = []
    if np.any(starts[1:] < stops[:-1]):
        notes.append("some trials overlap in time (their spikes are counted in each)")
    return RecordingSummary(
        source=str(block.annotations.get("source", "")),
        n_units=len(ids),
        unit_ids=ids,
        unit_attributes=unit_attrs,
        n_trials=len(segments),
        time_span=(float(starts.min()), float(stops.max())),
        trial_duration=(float(durations.min()), float(np.median(durations)),
                        float(durations.max())),
        trial_attributes=trial_attrs,
        events=events,
        mean_rate=mean_rate,
        suggestion=_suggest(trial_attrs, events),
        notes=notes,
    )


def _suggest(trial_attrs: dict, events: dict) -> str:
    """A make_targets call that fits this recording, as a starting point."""
    if not events:
        return ""
    condition = None
    for key in ("condition", "type", "trial_type", "stimulus", "direction"):
        if isinstance(trial_attrs.get(key), dict) and 2 <= len(trial_attrs[key]) <= _MAX_LEVELS:
            condition = key
            break
    if condition is None:
        for key, value in trial_attrs.items():
            if key != "trial_id" and isinstance(value, dict) and 2 <= len(value) <= 8:
                condition = key
                break
    align = next((n for n in events if "cue" in n or "go" in n or "stim" in n), next(iter(events)))
    info = events[align]
    before = max(0.1, min(1.0, info["room_before"]))
    after = max(0.1, min(1.0, info["room_after"]))
    args = [f"align={align!r}", f"window=({-round(before, 2)}, {round(after, 2)})"]
    if condition:
        args.append(f"condition={condition!r}")
    outcome = next((k for k in ("response", "outcome") if isinstance(trial_attrs.get(k), dict)), None)
    if outcome and "correct" in trial_attrs[outcome]:
        args.append(f"where={{{outcome!r}: 'correct'}}")
    return "cortexfit.targets.make_targets(block, " + ", ".join(args) + ")"


def describe_formats(formats: Iterable[DataFormat] | None = None) -> str:
    """The data formats (default: every registered one) as ``cortexfit info --formats``
    prints them: per format its description, what it gives, where it comes from, the
    ``[data]`` keys it needs, its variants, the keys it refuses and ignores, and its
    defaults."""
    formats = data_formats() if formats is None else list(formats)
    lines = ["Data formats ([data] format in a run config):"]
    for fmt in formats:
        lines.append(f"  {fmt.name}: {fmt.description}")
        gives = "single trials" if fmt.gives_trials else "trial-averaged rates only (no trials)"
        origin = {"generated": "generated from the run's seed, kept in the run folder as "
                               f"{fmt.generated_file}",
                  "file": "read from the file that path names",
                  "shared dataset": f"the shared dataset {fmt.dataset} (path, optional: the "
                                    "shared data folder or the dataset's folder)"}
        lines.append(f"    {gives}; {origin[fmt.source]}")
        if fmt.needs:
            lines.append("    needs: " + ", ".join(fmt.needs))
        if fmt.variants:
            lines.append("    variants: " + ", ".join(fmt.variants))
        for key, why in fmt.refuses.items():
            lines.append(f"    refuses: {key} ({why})")
        if fmt.ignores:
            lines.append("    ignores: " + ", ".join(fmt.ignores))
        if fmt.defaults:
            lines.append("    defaults: " + ", ".join(f"{k} = {json.dumps(v)}"
                                                      for k, v in fmt.defaults.items()))
    return "\n".join(lines)
