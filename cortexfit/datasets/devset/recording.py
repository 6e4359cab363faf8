"""The public face of the development set: :func:`make_dev_recording`, its result
:class:`DevRecording`, :func:`write_dev_nwb`, :data:`DEV_RECORDINGS` and
:data:`DEVSET_FORMAT`, the set as one data format of a run (``[data] variant`` picks the
recording)."""
from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import neo
import numpy as np
import xarray as xr

from ...exceptions import ConfigError
from ...io.formats import DataFormat
from ...io.nwb import read_nwb, write_nwb
from .common import (
    CONDITION_KEY,
    SIZES,
    _block,
    _condition_order,
    _session,
    _Spec,
    _streams,
    _time_grid,
    _truth,
)
from .lif import TRUTH_FACTOR, TRUTH_SMOOTHING, _simulate_lif
from .rates import (
    EPOCH,
    _brief_difference,
    _few_units,
    _long_ramps,
    _low_rate,
    _simulate_rates,
)

_MEAN_OF_TRIALS = ("the mean, over the recorded trials of each condition, of their exact "
                   "single-trial rate functions (the Poisson rates the spikes were drawn from)")

_SPECS: dict[str, _Spec] = {spec.name: spec for spec in (
    _Spec(
        name="lif_clustered",
        description="a recurrent E/I network of 800 leaky integrate-and-fire neurons (8 "
                    "clusters of excitatory cells, spike-frequency adaptation, background "
                    "noise); a 250 ms stimulus to clusters 0-2 (A) or 3-5 (B)",
        model="recurrent E/I LIF network, clustered, adapting (numba simulation)",
        align="stimulus_on_time", window=(-0.5, 1.0), conditions=("A", "B"),
        unit_prefix="lif",
        sizes={"full": {"n_units": 80, "n_trials_per_condition": 40},
               "small": {"n_units": 15, "n_trials_per_condition": 6}},
        simulate=_simulate_lif,
        expected_rate_method=(
            f"spike counts of {TRUTH_FACTOR}x as many further trials of the same network "
            "(not the recorded ones), averaged per condition in 1 ms bins and smoothed with "
            f"a Gaussian of s.d. {TRUTH_SMOOTHING * 1000:g} ms"),
    ),
    _Spec(
        name="low_rate",
        description="60 units at low rates (mean 0.5-10 Hz, median ~2 Hz): four Gaussian-"
                    "process latents (one shared, three condition-specific, plus single-"
                    "trial fluctuations) through an exponential nonlinearity; 3 cues",
        model="Gaussian-process latents, exponential nonlinearity, Poisson spikes",
        align="cue_on_time", window=(-0.5, 1.5), conditions=("A", "B", "C"),
        unit_prefix="low",
        sizes={"full": {"n_units": 60, "n_trials_per_condition": 40},
               "small": {"n_units": 12, "n_trials_per_condition": 6}},
        simulate=partial(_simulate_rates, _low_rate),
        expected_rate_method=_MEAN_OF_TRIALS,
    ),
    _Spec(
        name="few_units",
        description="3 cosine-tuned units around reaches in 4 directions (peaks 17-30 Hz), "
                    "aligned on the movement onset; a variable reaction time after the go cue",
        model="cosine tuning x movement-locked envelope, go-cue transient, Poisson spikes",
        align="movement_onset_time", window=(-0.3, 0.4),
        conditions=("reach_000", "reach_090", "reach_180", "reach_270"),
        unit_prefix="few",
        sizes={"full": {"n_units": 3, "n_trials_per_condition": 32},
               "small": {"n_units": 3, "n_trials_per_condition": 8}},
        simulate=partial(_simulate_rates, _few_units),
        expected_rate_method=_MEAN_OF_TRIALS,
    ),
    _Spec(
        name="long_ramps",
        description="40 units ramping up or down (or flat) for 2 s (fast) or 3 s (slow) from "
                    "the cue to a go cue, then back to baseline; 4 s analysis window",
        model="ramps with condition-dependent durations (slopes), Poisson spikes",
        align="cue_on_time", window=(-0.5, 3.5), conditions=("fast", "slow"),
        unit_prefix="ramp",
        sizes={"full": {"n_units": 40, "n_trials_per_condition": 30},
               "small": {"n_units": 10, "n_trials_per_condition": 6}},
        simulate=partial(_simulate_rates, _long_ramps),
        expected_rate_method=_MEAN_OF_TRIALS,
    ),
    _Spec(
        name="brief_difference",
        description=f"50 units whose rates are the same in both conditions except from "
                    f"{EPOCH[0]:g} to {EPOCH[1]:g} s after the sample, where 70 % of them add "
                    "a condition-specific bump",
        model="shared rate profiles plus a condition-specific epoch, Poisson spikes",
        align="sample_on_time", window=(-0.5, 2.0), conditions=("A", "B"),
        unit_prefix="brief",
        sizes={"full": {"n_units": 50, "n_trials_per_condition": 40},
               "small": {"n_units": 10, "n_trials_per_condition": 6}},
        simulate=partial(_simulate_rates, _brief_difference),
        expected_rate_method=_MEAN_OF_TRIALS + "; the trial gains are drawn per repetition "
                             "and shared by the two conditions, so the averages are equal "
                             "outside the epoch exactly",
    ),
)}

#: The names of the development recordings (``[data] variant`` of the ``devset`` format).
DEV_RECORDINGS: tuple[str, ...] = tuple(_SPECS)


@dataclass
class DevRecording:
    """A development recording and its ground truth.

    Attributes
    ----------
    block
        The recording, a :class:`neo.Block` in cortexfit's trial convention on the session
        clock (one Segment per trial, trial events, the ``condition`` annotation; units
        with ``cell_type`` where the model has one).
    truth
        :class:`xarray.Dataset` with ``expected_rate(condition, unit, time)`` (Hz, on a
        1 ms grid relative to the alignment event, over the whole trial), ``mean_rate(unit)``
        (over the window), the trial times and model-specific hidden parameters; ``attrs``
        say how ``expected_rate`` was computed (``expected_rate_method``).
    targets_kwargs
        ``align``, ``window`` and ``condition`` for :func:`cortexfit.targets.make_targets`.
    name, seed, size
        Which recording, the seed and ``"full"`` or ``"small"``.
    """

    block: neo.Block
    truth: xr.Dataset
    targets_kwargs: dict[str, Any]
    name: str
    seed: int
    size: str


def dev_targets_kwargs(name: str) -> dict[str, Any]:
    """``align``, ``window`` and ``condition`` for ``make_targets`` on recording ``name``."""
    return _spec_of(name).targets_kwargs


def _spec_of(name: Any) -> _Spec:
    if not isinstance(name, str) or name not in _SPECS:
        raise ConfigError("unknown development recording", field="name", found=repr(name),
                          expected=" or ".join(repr(n) for n in DEV_RECORDINGS))
    return _SPECS[name]


def _params(spec: _Spec, seed: Any, size: Any) -> dict[str, Any]:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError("seed must be a non-negative integer", field="seed", found=seed,
                          expected="an integer >= 0")
    if size not in SIZES:
        raise ConfigError("unknown size", field="size", found=repr(size),
                          expected=" or ".join(repr(s) for s in SIZES))
    return {"seed": int(seed), "size": size, **spec.sizes[size],
            "n_units_population": spec.sizes["full"]["n_units"]}


def _make(name: str, seed: int, size: str, with_spikes: bool) -> tuple[Any, xr.Dataset]:
    spec = _spec_of(name)
    p = _params(spec, seed, size)
    rngs = _streams(spec.name, p["seed"])
    tau = _time_grid(spec)
    cond_index = _condition_order(rngs[1], len(spec.conditions), p["n_trials_per_condition"])
    starts = _session(rngs[1], cond_index.size, spec.span[1] - spec.span[0])
    gen = spec.simulate(spec, p, rngs, tau, cond_index, with_spikes)
    truth = _truth(spec, p, gen, tau, starts)
    block = _block(spec, p, gen, starts) if with_spikes else None
    return block, truth


_TRUTH_CACHE: dict[tuple[str, int, str], xr.Dataset] = {}


def _remember(key: tuple[str, int, str], truth: xr.Dataset) -> None:
    """Keep the last truth made (the load stage asks for the truth of the recording it has
    just generated: the LIF network need not run again)."""
    _TRUTH_CACHE.clear()
    _TRUTH_CACHE[key] = truth


def make_dev_recording(name: str, seed: int = 0, *, size: str = "full") -> DevRecording:
    """Generate development recording ``name`` (one of :data:`DEV_RECORDINGS`).

    The same ``name``, ``seed`` and ``size`` give identical spikes; ``size="small"`` is the
    same recording with fewer units and trials (for unit tests), ``"full"`` the benchmark
    size. Raises :class:`~cortexfit.exceptions.ConfigError` for an unknown name or size or
    a bad seed. See :mod:`cortexfit.datasets.devset` for the recordings.
    """
    block, truth = _make(name, seed, size, with_spikes=True)
    _remember((name, int(seed), size), truth)
    return DevRecording(block=block, truth=truth.copy(deep=True),
                        targets_kwargs=dev_targets_kwargs(name), name=name, seed=int(seed),
                        size=size)


def dev_truth(name: str, seed: int = 0, *, size: str = "full") -> xr.Dataset:
    """``make_dev_recording(name, seed, size=size).truth``, without the Block (and, for the
    recordings of Poisson spikes, without drawing the spikes)."""
    key = (name, seed, size)
    if key in _TRUTH_CACHE:
        return _TRUTH_CACHE[key].copy(deep=True)
    _, truth = _make(name, seed, size, with_spikes=False)
    _remember((name, int(seed), size), truth)
    return truth.copy(deep=True)


def write_dev_nwb(path: str | os.PathLike, name: str, seed: int = 0, *, size: str = "full",
                  overwrite: bool = False) -> Path:
    """Generate development recording ``name`` and write it to an NWB file; return the path.

    The file's identifier and session start time are deterministic, so two files written
    with the same arguments hold the same content. An existing file is replaced only with
    ``overwrite=True``.
    """
    path = Path(path)
    rec = make_dev_recording(name, seed, size=size)
    settings = rec.block.annotations.get("parameters", "")
    digest = hashlib.sha1(f"{name}:{settings}".encode()).hexdigest()[:12]
    write_nwb(
        rec.block, path,
        session_description=(
            f"cortexfit development recording {name!r} (seed={rec.seed}, size={size}): "
            f"{_SPECS[name].description}; {len(rec.truth.unit)} units, "
            f"{len(rec.block.segments)} trials; generated by "
            "cortexfit.datasets.devset.make_dev_recording"),
        identifier=f"cortexfit-devset-{name}-seed{rec.seed}-{digest}",
        session_start_time=datetime(2000, 1, 1, tzinfo=UTC),
        overwrite=overwrite,
    )
    return path


# ---------------------------------------------------------------------------------------
# The set as a data format of a run (``[data] format = "devset"``, registered in
# cortexfit/datasets/__init__.py): ``[data] variant`` names the recording; it is generated
# from the run's seed at full size, written to NWB (kept in the run folder as devset.nwb)
# and read back.

def _generate(path: Path, seed: int, data: Mapping[str, Any]) -> None:
    write_dev_nwb(path, data["variant"], seed=seed, overwrite=True)


def _read_generated(path: Path | None, data: Mapping[str, Any]) -> neo.Block:
    return read_nwb(path)


def _expected_rate(seed: int, data: Mapping[str, Any]) -> xr.DataArray:
    return dev_truth(data["variant"], seed)["expected_rate"]


DEVSET_FORMAT = DataFormat(
    name="devset",
    description="the development set: generated recordings with known ground truth "
                "([data] variant picks one; written to NWB, read back)",
    read_block=_read_generated,
    needs=("variant",),
    ignores=("event_times", "allow_pickle"),
    refuses={"path": "the recording is generated"},
    variants={name: {"align": spec.align, "window": list(spec.window),
                     "condition": CONDITION_KEY}
              for name, spec in _SPECS.items()},
    generated_file="devset.nwb",
    generate=_generate,
    truth=_expected_rate,
)
