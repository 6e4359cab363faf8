"""The development set: five generated recordings with known ground truth that differ from
the embedded synthetic recording, for judging fit settings on more than one recording.

:func:`make_dev_recording(name, seed, size=...) <make_dev_recording>` returns a
:class:`DevRecording` with

* ``block``: a :class:`neo.Block` in the trial convention of the synthetic recording (one
  Segment per trial on an absolute session clock, trials in shuffled condition order with
  gaps of 1-2 s, trial events, the ``condition`` and ``trial_id`` annotations; units with a
  ``cell_type`` annotation where the model has cell types);
* ``truth``: an :class:`xarray.Dataset` with ``expected_rate(condition, unit, time)`` (Hz, on
  a 1 ms grid relative to the alignment event, over the whole trial): what trial-averaged
  rates of the recording estimate (``truth.attrs["expected_rate_method"]`` says how it was
  computed), ``mean_rate(unit)`` over the window, the trial times and hidden parameters;
* ``targets_kwargs``: ``align``, ``window`` and ``condition`` for
  :func:`cortexfit.targets.make_targets`.

Every trial covers its window plus 0.5 s on either side (the smoothing kernel needs spikes
beyond the window's edges). The same name, seed and size give identical spikes; the
recording's name is part of the seed's entropy. ``size="full"`` is the benchmark size,
``size="small"`` the same recording with fewer units (the first units of the full
population, for the Poisson recordings) and fewer trials, for unit tests.

The recordings (:data:`DEV_RECORDINGS`)
---------------------------------------
==================  ======  =====  ===========  ========================  ======================
name                units   cond.  trials/cond  align, window (s)         generative model
==================  ======  =====  ===========  ========================  ======================
lif_clustered       80      2      40           stimulus_on_time,         recurrent E/I LIF
                    (64 E,                      -0.5 to 1.0               network (800 cells),
                    16 I)                                                 :mod:`.lif`
low_rate            60      3      40           cue_on_time, -0.5 to 1.5  GP latents, exp
few_units           3       4      32           movement_onset_time,      cosine tuning
                                                -0.3 to 0.4
long_ramps          40      2      30           cue_on_time, -0.5 to 3.5  slow ramps
brief_difference    50      2      40           sample_on_time,           epoch-limited
                                                -0.5 to 2.0               difference
==================  ======  =====  ===========  ========================  ======================

``lif_clustered``
    A different generative model from the synthetic recording's: 800 leaky
    integrate-and-fire neurons, 80 % excitatory in 8 clusters with 3x stronger
    within-cluster weights, spike-frequency adaptation on excitatory cells (150 ms),
    background white noise, and a 250 ms stimulus to clusters 0-2 (condition ``"A"``) or
    3-5 (``"B"``): the stimulated clusters respond with an adapting transient and an
    undershoot after the stimulus, the others are suppressed and rebound. 80 recorded units
    (64 ``"pyramidal"``, 16 ``"FS"``) among the cells firing 2-40 Hz. ``expected_rate``: the
    average of ten times as many further trials of the network (400 per condition at full
    size), smoothed with a 10 ms Gaussian. Details in :mod:`.lif`.
``low_rate``
    Inhomogeneous Poisson spikes from four Gaussian-process latents (one shared by the
    conditions, three specific to each of 3 conditions, plus single-trial latent
    fluctuations) through an exponential nonlinearity; each unit's offset is set so that its
    mean rate over the trials and the window is a stratified log-uniform draw from
    0.5-10 Hz (median about 2.2 Hz).
``few_units``
    3 units, cosine-tuned to 4 reach directions (peaks 17-30 Hz at the preferred direction)
    with a movement-locked envelope, plus a non-directional transient after a go cue that
    comes 0.25-0.4 s before the movement onset (the alignment event), and a per-trial gain.
``long_ramps``
    40 units that ramp up (55 %), down (30 %) or stay flat (15 %) from 0.2 s after the cue
    to a go cue at 2.2 s (``"fast"``) or 3.2 s (``"slow"``), +-10 % per trial, then decay
    to baseline (250 ms); a per-trial gain. Trials are 5 s (the 4 s window and 0.5 s on
    either side).
``brief_difference``
    50 units with smooth rate profiles (a sample-onset transient and a slow modulation)
    identical in both conditions; from 0.8 to 1.0 s after the sample 70 % of them add a
    condition-specific bump (a sin^2 window, exactly zero outside the epoch). The per-trial
    gains are drawn per repetition and shared by the conditions, so ``expected_rate`` is
    identical in the two conditions outside the epoch.

For the four Poisson recordings ``expected_rate`` is, as for the synthetic recording, the
mean over each condition's recorded trials of their exact rate functions. Spikes are drawn
exactly for rates constant within each 1 ms bin (the synthetic recording's sampler).

As a data format of a run
-------------------------
:data:`DEVSET_FORMAT` (``[data] format = "devset"``) generates the recording named by
``[data] variant`` (required; an unknown name is a :class:`~cortexfit.exceptions.ConfigError`
that lists them) at full size from the run's seed, writes it to NWB (kept in the run folder
as ``devset.nwb``) and reads it back; ``align``, ``window`` and ``condition`` default to the
recording's ``targets_kwargs``. ``pipelines/dev_<name>.toml`` run each one.
"""
from __future__ import annotations

from .recording import (
    DEV_RECORDINGS,
    DEVSET_FORMAT,
    DevRecording,
    dev_targets_kwargs,
    dev_truth,
    make_dev_recording,
    write_dev_nwb,
)

__all__ = [
    "DEVSET_FORMAT",
    "DEV_RECORDINGS",
    "DevRecording",
    "dev_targets_kwargs",
    "dev_truth",
    "make_dev_recording",
    "write_dev_nwb",
]
