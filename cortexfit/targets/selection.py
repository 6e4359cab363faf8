"""Which trials make the targets: the ``where`` filter, the condition labels, the
alignment on the task event with the window inside every trial, and the split into
training, validation and held-out trials (each step checked, with an error that says what
to change).
"""
from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import seeds
from ..exceptions import ConfigError, TargetError
from ..io.convention import event_names, event_time, trial_annotations, trial_window
from .checks import _TIME_TOL


@dataclass
class _TrialSelection:
    """The trials :func:`~cortexfit.targets.make_targets` uses, in Block order."""

    keys: list[str]              # the condition annotation keys
    selection: str               # JSON description of ``where``
    n_selected: int              # trials passing ``where``
    n_missing_event: int         # of those, lacking the alignment event
    kept: list[int]              # segment index of every trial used
    kept_labels: list[str]       # its condition label
    events: list[float]          # its alignment event time (s, on the trial's clock)
    spans: list[tuple[float, float]]  # its trial window (s)
    cond_order: list[str]        # the condition labels, sorted by their values
    trial_split: np.ndarray      # per trial used: "train", "validation" or "heldout"
    splits: list[str]            # the splits: ["train", ("validation",) "heldout"]
    counts: np.ndarray           # (condition, split) trial counts, in the order of splits

    @property
    def is_heldout(self) -> np.ndarray:
        return self.trial_split == "heldout"


def _matches(value: Any, accepted: Any) -> bool:
    """Annotation ``value`` matches ``accepted``: equal, or equal as strings ('1' ~ 1)."""
    if value is None:
        return False
    with contextlib.suppress(Exception):  # exotic types: fall back to the string form
        if bool(value == accepted):
            return True
    return str(value) == str(accepted)


def _sorted_values(values: Sequence[Any]) -> list[Any]:
    distinct: list[Any] = []
    for v in values:
        if v is not None and not any(_matches(v, d) and type(v) is type(d) for d in distinct):
            distinct.append(v)
    try:
        return sorted(distinct)
    except TypeError:
        return sorted(distinct, key=str)


def _trial_label(seg: Any, index: int) -> Any:
    return seg.annotations.get("trial_id", index)


def _select_trials(block, where, ann: dict[str, list[Any]], src) -> tuple[list[int], str]:
    """Indices of the segments that pass ``where``, and a JSON description of it."""
    n = len(block.segments)
    if where is None:
        return list(range(n)), json.dumps("all trials")
    if callable(where) and not isinstance(where, Mapping):
        name = getattr(where, "__qualname__", None) or getattr(where, "__name__", None) \
            or type(where).__name__
        keep = []
        for i, seg in enumerate(block.segments):
            try:
                ok = bool(where(dict(seg.annotations)))
            except Exception as exc:  # the user's function failed
                raise TargetError(
                    "the where filter raised an error", file=src, field="where",
                    found=f"{type(exc).__name__}: {exc} (on trial {_trial_label(seg, i)!r})",
                    expected="a function of a trial's annotations (dict) returning True/False",
                ) from exc
            if ok:
                keep.append(i)
        description = json.dumps(f"callable: {name}")
        if not keep:
            raise TargetError(
                "no trial passes the where filter", file=src, field="where",
                found=f"0 of {n} trials pass {name}", expected="at least one trial",
            )
        return keep, description
    if not isinstance(where, Mapping):
        raise ConfigError(
            "where must be a dict or a function", field="where",
            found=f"{type(where).__name__}: {where!r}"[:120],
            expected="{annotation: value or list of values}, or a function of the "
            "trial annotations returning True/False",
        )
    mask = np.ones(n, dtype=bool)
    description: dict[str, list[Any]] = {}
    for key, accepted in where.items():
        if key not in ann:
            raise TargetError(
                "unknown trial annotation in where", file=src, field=f"where[{key!r}]",
                found=key, expected=f"one of the trial annotations {sorted(map(str, ann))}",
            )
        if isinstance(accepted, (list, tuple, set, frozenset, np.ndarray)):
            values = list(accepted)
        else:
            values = [accepted]
        if not values:
            raise ConfigError(
                "where lists no accepted value", field=f"where[{key!r}]", found=accepted,
                expected="a value or a non-empty list of values",
            )
        column = ann[key]
        present = _sorted_values(column)
        for v in values:
            if not any(_matches(p, v) for p in present):
                raise TargetError(
                    "no trial has this value", file=src, field=f"where[{key!r}]",
                    found=repr(v), expected=f"one of the values present: {present[:30]}",
                )
        mask &= np.array([any(_matches(p, v) for v in values) for p in column], dtype=bool)
        description[str(key)] = values
    keep = [int(i) for i in np.flatnonzero(mask)]
    text = json.dumps(description, default=str)
    if not keep:
        raise TargetError(
            "no trial passes all the where conditions together", file=src, field="where",
            found=f"0 of {n} trials match {text}", expected="at least one trial",
        )
    return keep, text


def _condition_keys(condition: Any) -> list[str]:
    expected = "a trial annotation key, or a non-empty list of keys"
    keys = [condition] if isinstance(condition, str) else condition
    if isinstance(keys, (bytes, Mapping)) or not isinstance(keys, Sequence) or not keys:
        raise ConfigError("condition must name trial annotations", field="condition",
                          found=f"{type(condition).__name__}: {condition!r}"[:120],
                          expected=expected)
    keys = list(keys)
    if not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys):
        raise ConfigError("condition must name trial annotations", field="condition",
                          found=repr(condition)[:120], expected=expected + " (unique strings)")
    return keys

def _trial_span(seg) -> tuple[float, float]:
    """The trial window (the convention's: that of its spike trains), in seconds."""
    return trial_window(seg)


def _trial_selection(
    block: Any,
    *,
    align: Any,
    condition: Any,
    where: Any,
    window: tuple[float, float],
    bin_size: float,
    heldout_fraction: float,
    min_trials: int,
    seed: int,
    src: Any,
    validation_fraction: float = 0.0,
) -> _TrialSelection:
    """The trials to use (a checked convention Block): ``where``, the condition labels,
    the alignment event and the window inside each trial, then the split, in this order."""
    if not isinstance(align, str):
        raise ConfigError("align must be an event name", field="align",
                          found=f"{type(align).__name__}: {align!r}"[:120],
                          expected=f"one of {event_names(block)}")
    keys = _condition_keys(condition)

    # ---- trial selection ----------------------------------------------------------
    ann = trial_annotations(block)
    missing_keys = [k for k in keys if k not in ann]
    if missing_keys:
        raise TargetError(
            "unknown condition annotation", file=src, field="condition",
            found=missing_keys, expected=f"trial annotations among {sorted(map(str, ann))}",
            hint="Pass condition= one of these keys (or a list of them)",
        )
    selected, selection = _select_trials(block, where, ann, src)
    n_selected = len(selected)
    labels, raw_values = _condition_labels(block, selected, keys, ann, src)
    events, kept, kept_labels, spans = _align_trials(block, selected, labels, align, window,
                                                     bin_size, src)
    cond_order, trial_split, splits, counts = _split_trials(
        kept_labels, raw_values, keys, heldout_fraction, min_trials, seed, src,
        validation_fraction)
    return _TrialSelection(
        keys=keys, selection=selection, n_selected=n_selected,
        n_missing_event=n_selected - len(kept), kept=kept, kept_labels=kept_labels,
        events=events, spans=spans, cond_order=cond_order, trial_split=trial_split,
        splits=splits, counts=counts,
    )


def _condition_labels(block: Any, selected: list[int], keys: list[str],
                      ann: dict[str, list[Any]], src: Any) -> tuple[list[str], dict[str, tuple]]:
    """Each selected trial's condition label (values joined by ``"|"``), and the values of
    every label."""
    labels: list[str] = []
    raw_values: dict[str, tuple] = {}
    lacking = []
    for i in selected:
        vals = tuple(ann[k][i] for k in keys)
        if any(v is None for v in vals):
            lacking.append(_trial_label(block.segments[i], i))
            labels.append("")
            continue
        label = "|".join(str(v) for v in vals)
        labels.append(label)
        raw_values.setdefault(label, vals)
    if lacking:
        raise TargetError(
            "some selected trials lack the condition annotation", file=src,
            field=f"condition {'|'.join(keys)}",
            found=f"{len(lacking)} trial(s), e.g. trial ids {lacking[:5]}",
            expected="a value for every selected trial",
            hint="Filter those trials out with where=",
        )
    return labels, raw_values


def _align_trials(block: Any, selected: list[int], labels: list[str], align: str,
                  window: tuple[float, float], bin_size: float, src: Any):
    """The trials that hold the event ``align``: event times, segment indices, labels and
    spans; every one must hold the window."""
    start, stop = window
    names = event_names(block)
    if align not in names:
        raise TargetError("unknown alignment event", file=src, field="align",
                          found=align, expected=f"one of the events {names}")
    events: list[float] = []
    kept: list[int] = []
    kept_labels: list[str] = []
    for i, label in zip(selected, labels):
        t = event_time(block.segments[i], align)
        if t is None:
            continue
        events.append(t)
        kept.append(i)
        kept_labels.append(label)
    n_selected = len(selected)
    if not kept:
        raise TargetError(
            "none of the selected trials has the alignment event", file=src,
            field="align", found=f"{align!r} absent from all {n_selected} selected trials",
            expected="the event in at least one trial",
        )
    spans = [_trial_span(block.segments[i]) for i in kept]
    tol = _TIME_TOL * bin_size
    outside = [
        (_trial_label(block.segments[i], i), ev, t0, t1)
        for i, ev, (t0, t1) in zip(kept, events, spans)
        if ev + start < t0 - tol or ev + stop > t1 + tol
    ]
    if outside:
        tid, ev, t0, t1 = outside[0]
        raise TargetError(
            "the window falls outside some trials", file=src, field="window",
            found=f"{len(outside)} trial(s), trial ids {[o[0] for o in outside[:5]]}; "
            f"e.g. trial {tid!r}: window [{ev + start:g}, {ev + stop:g}] s "
            f"({align} {ev:g} s {start:+g}/{stop:+g} s) vs trial span [{t0:g}, {t1:g}] s",
            expected="the window inside every selected trial",
            hint="Shorten the window, or filter these trials out with where=",
        )
    return events, kept, kept_labels, spans


def _split_trials(kept_labels: list[str], raw_values: dict[str, tuple], keys: list[str],
                  heldout_fraction: float, min_trials: int, seed: int, src: Any,
                  validation_fraction: float = 0.0):
    """The conditions (sorted by their values) and each one's random split into training,
    validation and held-out trials: ``cond_order``, the split of each trial, the splits
    (``["train", "heldout"]``, with ``"validation"`` between them when
    ``validation_fraction > 0``) and ``counts(condition, split)``.

    One random permutation per condition (its own generator): its first ``n_heldout``
    trials are held out, the next ``n_validation`` are validation trials, the rest train.
    The held-out trials are therefore the same whatever ``validation_fraction`` is, and
    with ``validation_fraction = 0`` the split is the train / held-out split of before."""
    cond_order = list(raw_values)
    try:
        cond_order.sort(key=lambda lab: raw_values[lab])
    except TypeError:
        cond_order.sort()
    label_arr = np.array(kept_labels, dtype=object)
    trial_split = np.full(len(kept_labels), "train", dtype=object)
    with_validation = validation_fraction > 0
    splits = ["train", "validation", "heldout"] if with_validation else ["train", "heldout"]
    counts = np.zeros((len(cond_order), len(splits)), dtype=np.int64)
    problems = []
    for c, label in enumerate(cond_order):
        idx = np.flatnonzero(label_arr == label)
        n = idx.size
        n_held = math.floor(heldout_fraction * n + 0.5)
        n_val = math.floor(validation_fraction * n + 0.5)
        n_train = n - n_held - n_val
        counts[c] = (n_train, n_val, n_held) if with_validation else (n_train, n_held)
        if (n_train < min_trials or (heldout_fraction > 0 and n_held < 1)
                or (with_validation and n_val < 1)):
            problems.append(f"{label!r}: {n} trials -> {n_train} train, "
                            + (f"{n_val} validation, " if with_validation else "")
                            + f"{n_held} held out")
        # one generator per condition, so a condition's split does not depend on the others
        rng = seeds.rng(seed, "heldout_split", label)
        order = idx[rng.permutation(n)]
        trial_split[order[:n_held]] = "heldout"
        trial_split[order[n_held:n_held + n_val]] = "validation"
    if problems:
        need = f"at least {min_trials} training trial(s)"
        if heldout_fraction > 0:
            need += ", 1 held-out trial"
        if with_validation:
            need += ", 1 validation trial"
        fractions = f"heldout_fraction {heldout_fraction:g}, " + (
            f"validation_fraction {validation_fraction:g}, " if with_validation else "")
        raise TargetError(
            "too few trials in some conditions", file=src, field=f"condition {'|'.join(keys)}",
            found="; ".join(problems[:10]),
            expected=f"{need} per condition ({fractions}min_trials {min_trials})",
            hint="Lower min_trials, heldout_fraction or validation_fraction, relax where=, "
                 "or merge conditions",
        )
    return cond_order, trial_split, splits, counts
