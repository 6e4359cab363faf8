"""The public face of the synthetic recording: :func:`make_synthetic_recording`, its
result :class:`SyntheticRecording`, :func:`write_synthetic_nwb` and the targets call that
suits it (:func:`recommended_targets_kwargs`); :data:`SYNTHETIC_FORMAT`, the recording as a
data format of a run."""
from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import neo
import xarray as xr

from ...io.formats import DataFormat
from ...io.nwb import read_nwb, write_nwb
from .model import CONDITION_KEY, STIMULUS_EVENT
from .output import _block, _truth
from .params import _check_params
from .simulation import _simulate

#: The targets call that suits the default synthetic recording: align on the stimulus,
#: 200 ms of baseline, 2 s after it (the delay, the go cue and ~0.4 s of go response).
RECOMMENDED_TARGETS_KWARGS: dict[str, Any] = {
    "align": STIMULUS_EVENT,
    "window": (-0.2, 2.0),
    "condition": CONDITION_KEY,
}

#: Alias of :data:`RECOMMENDED_TARGETS_KWARGS` (the name the demo pipeline uses).
SYNTHETIC_TARGETS = RECOMMENDED_TARGETS_KWARGS


def recommended_targets_kwargs() -> dict[str, Any]:
    """Keyword arguments for ``make_targets`` that suit the default synthetic recording.

    ``make_targets(rec.block, **recommended_targets_kwargs())`` aligns on the stimulus
    onset (``"stimulus_on_time"``), takes the window -0.2 s to 2.0 s around it (baseline,
    delay, go cue and the start of the go response; the trials cover -0.5 s to 2.5 s with
    the default settings) and splits trials by the ``"condition"`` annotation.
    Returns a fresh copy of :data:`RECOMMENDED_TARGETS_KWARGS`.
    """
    return dict(RECOMMENDED_TARGETS_KWARGS)


@dataclass
class SyntheticRecording:
    """A synthetic recording and its ground truth.

    Attributes
    ----------
    block
        The recording, a :class:`neo.Block` in cortexfit's trial convention, on the session
        clock (absolute times, trials in order and non-overlapping).
    truth
        :class:`xarray.Dataset`: ``rate(condition, unit, time)`` (noise-free template, Hz),
        ``expected_rate(condition, unit, time)`` (mean of the generated trials' rate
        functions, Hz), ``latent(condition, factor, time)``, ``loading(unit, factor)`` (Hz),
        ``baseline_rate(unit)``, ``peak_rate(unit)``, ``selective(unit)``,
        ``selectivity(unit)``, ``preferred_condition(unit)`` and per-trial ``trial_gain``,
        ``trial_delay``, ``trial_start``, ``trial_stop``, ``stimulus_on_time``,
        ``go_cue_time`` (absolute s),
        with coords ``cell_type(unit)``, ``trial_condition(trial)``, ``trial_outcome(trial)``.
        ``time`` is in seconds relative to the stimulus onset (bin centres of the ``dt``
        grid); ``attrs`` hold the seed and every generation parameter.
    seed
        The seed used.
    """

    block: neo.Block
    truth: xr.Dataset
    seed: int

    @property
    def targets_kwargs(self) -> dict[str, Any]:
        """Same as :func:`recommended_targets_kwargs`."""
        return recommended_targets_kwargs()


def make_synthetic_recording(
    seed: int = 0,
    *,
    n_units: int = 80,
    n_trials_per_condition: int = 40,
    conditions: Sequence[str] = ("left", "right"),
    trial_duration: float = 3.0,
    stimulus_time: float = 0.5,
    delay: float = 1.5,
    delay_jitter: float = 0.1,
    inter_trial_gap: float | tuple[float, float] = (1.0, 2.0),
    gain_sd: float = 0.2,
    fraction_fs: float = 0.2,
    fraction_incorrect: float = 0.1,
    dt: float = 0.001,
) -> SyntheticRecording:
    """Generate the synthetic recording (Block on the session clock) and its ground truth.

    Parameters
    ----------
    seed
        Non-negative integer; the same seed and settings give identical spikes.
    n_units, n_trials_per_condition, conditions
        Population size, trials per condition (conditions are shuffled across the session)
        and condition labels.
    trial_duration
        Length of each trial (s), a whole number of ``dt``.
    stimulus_time
        Stimulus onset after the trial start (s).
    delay, delay_jitter
        Go cue after the stimulus: ``delay + U(-delay_jitter, delay_jitter)`` per trial (s).
    inter_trial_gap
        Gap before each trial (s): a number or a ``(min, max)`` uniform range.
    gain_sd
        Standard deviation of the per-trial multiplicative gain (log-normal, mean 1).
    fraction_fs
        Fraction of units labelled ``"FS"`` (the rest ``"pyramidal"``).
    fraction_incorrect
        Fraction of trials with ``outcome == "incorrect"`` (a label only).
    dt
        Simulation grid (s); rates are constant within a step and ``truth`` uses this grid.

    Raises :class:`~cortexfit.exceptions.ConfigError` for out-of-range settings.
    See the module docstring for the generative model.
    """
    p = _check_params(seed, n_units, n_trials_per_condition, conditions, trial_duration,
                      stimulus_time, delay, delay_jitter, inter_trial_gap, gain_sd,
                      fraction_fs, fraction_incorrect, dt)
    tau, pop, tr, expected, spikes = _simulate(p)
    return SyntheticRecording(block=_block(p, pop, tr, spikes),
                              truth=_truth(p, tau, pop, tr, expected), seed=p["seed"])


def write_synthetic_nwb(
    path: str | os.PathLike,
    seed: int = 0,
    overwrite: bool = False,
    **kwargs: Any,
) -> Path:
    """Generate the synthetic recording and write it to an NWB file; return the path.

    ``kwargs`` go to :func:`make_synthetic_recording`; the same ``seed`` and ``kwargs``
    regenerate the ground truth (``make_synthetic_recording(seed, **kwargs).truth``). The
    file's identifier and session start time are deterministic (derived from the settings),
    so two files written with the same settings hold the same content. Writing goes through
    :func:`cortexfit.io.nwb.write_nwb`; an existing file is replaced only with
    ``overwrite=True``.
    """
    path = Path(path)
    rec = make_synthetic_recording(seed, **kwargs)
    settings = rec.block.annotations.get("parameters", "")
    digest = hashlib.sha1(settings.encode()).hexdigest()[:12]
    write_nwb(
        rec.block,
        path,
        session_description=(
            f"cortexfit synthetic recording (seed={rec.seed}): delayed-response task, "
            f"{len(rec.truth.unit)} units, {len(rec.block.segments)} trials; generated by "
            "cortexfit.datasets.synthetic.make_synthetic_recording"
        ),
        identifier=f"cortexfit-synthetic-seed{rec.seed}-{digest}",
        session_start_time=datetime(2000, 1, 1, tzinfo=timezone.utc),
        overwrite=overwrite,
    )
    return path


# ---------------------------------------------------------------------------------------
# The synthetic recording as a data format of a run (``[data] format = "synthetic"``, the
# default; registered in cortexfit/datasets/__init__.py): generated from the run's seed,
# written to NWB (kept in the run folder as synthetic.nwb) and read back.

def _generate(path: Path, seed: int, data: Mapping[str, Any] | None = None) -> None:
    write_synthetic_nwb(path, seed=seed, overwrite=True)


def _read_generated(path: Path | None, data: Mapping[str, Any]) -> neo.Block:
    return read_nwb(path)


_SETTINGS = ("n_units", "n_trials_per_condition", "conditions", "trial_duration",
             "stimulus_time", "delay", "delay_jitter", "inter_trial_gap", "gain_sd",
             "fraction_fs", "fraction_incorrect", "dt")
"""make_synthetic_recording's settings in _check_params' order."""


def _expected_rate(seed: int, data: Mapping[str, Any] | None = None) -> xr.DataArray:
    """The truth of the run's recording without drawing its spikes again (the report's
    ground truth; equal to ``make_synthetic_recording(seed).truth``)."""
    defaults = inspect.signature(make_synthetic_recording).parameters
    p = _check_params(seed, *(defaults[name].default for name in _SETTINGS))
    tau, pop, tr, expected, _ = _simulate(p, with_spikes=False)
    return _truth(p, tau, pop, tr, expected)["expected_rate"]


SYNTHETIC_FORMAT = DataFormat(
    name="synthetic",
    description="the embedded synthetic recording (generated, written to NWB, read back)",
    read_block=_read_generated,
    ignores=("event_times", "variant", "allow_pickle"),
    refuses={"path": "the recording is generated"},
    defaults={"align": SYNTHETIC_TARGETS["align"],
              "window": list(SYNTHETIC_TARGETS["window"]),
              "condition": SYNTHETIC_TARGETS["condition"]},
    generated_file="synthetic.nwb",
    generate=_generate,
    truth=_expected_rate,
)
