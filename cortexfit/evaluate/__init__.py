"""Evaluate a fitted network against the data.

* :func:`model_rates` (:mod:`.model_rates`): simulate a fitted network on fresh trials and
  turn its spikes into rates exactly as the data's were made, so model and data can be
  compared bin for bin. It runs ``n_trials`` test trials per condition (fresh random
  initial conditions, the condition's stimulus, then the trained window), keeps the
  recorded units' model spikes with the data's alignment (time zero = the targets' time
  zero) and bins and smooths them with :func:`cortexfit.targets.rates_from_spike_times`
  with the **same** window, bin size and kernel as the targets. The result is a
  targets-shaped Dataset: ``rate`` (condition, unit, time) in Hz, trial-averaged over the
  model's trials (plus ``trial_rate`` with ``keep_trials=True``).
* :func:`split_half_reliability` / :func:`noise_ceiling` (:mod:`.ceiling`): how well a
  perfect, noiseless model could correlate with the data's trial averages, given their
  trial-to-trial noise (split-half reliability, Spearman-Brown corrected to each average's
  trial count; the derivation is in :func:`split_half_reliability`).
* :func:`model_rates_from_spikes` (:mod:`.model_rates`): the same for spikes from anywhere
  (another simulator, the data's own generator), given per trial in target time.
* :func:`score` (:mod:`.scores`): Pearson r, RMSE (Hz) and R² of the model's trial-averaged
  rates against the training and held-out averages per (condition, unit), with the noise
  ceiling of each and the fraction of it reached, as one NetCDF-ready Dataset
  (:func:`score_model_rates` for rates already made); :func:`summarize` turns it into plain
  numbers. **Fraction of the ceiling** has one definition everywhere
  (:func:`ceiling_fraction`): the mean held-out r divided by the mean noise ceiling over the
  same (condition, unit) pairs, those with a defined ceiling; a ratio of means, robust to
  tiny ceilings.
* :func:`validation_score` (:mod:`.scores`): the mean Pearson r of model rates against the
  validation trials (``rate_validation``), to choose among fits (e.g. the best training
  loop) without touching the held-out test trials; :func:`validation_judge` wraps it as a
  fit's ``validator`` (fresh model trials, seeds apart from the test trials').
* :func:`example_model_spikes` (:mod:`.examples`): the recorded units' spikes in a few test
  trials, for the report's model rasters.

**Which bins are scored.** Every score (held-out r, RMSE, R², the noise ceiling, the
validation score) uses only the bins of the targets' scoring window
(:func:`cortexfit.targets.score_window`; ``make_targets(..., margin=...)`` trains the model
on a longer axis so that inside it the model's rates come from its own spikes within the
kernel's reach, as the data's do). Targets without a scoring window are scored on their
whole axis.

The random streams (test trial seeds, the ceiling's splits) come from
:mod:`cortexfit.seeds`.
"""
from .ceiling import CEILING_TRIALS, noise_ceiling, split_half_reliability
from .examples import example_model_spikes
from .model_rates import DEFAULT_N_TRIALS, model_rates, model_rates_from_spikes
from .scores import (
    SCORE_VARIABLES,
    VALIDATION_SEED_OFFSET,
    VALIDATION_TRIALS,
    ceiling_fraction,
    score,
    score_model_rates,
    summarize,
    validation_judge,
    validation_score,
)

# isort: split
# private names importable from cortexfit.evaluate before it became a package
from .ceiling import _CEILING_METHOD as _CEILING_METHOD
from .ceiling import _CHUNK_VALUES as _CHUNK_VALUES
from .ceiling import _trial_sets as _trial_sets
from .checks import _check_int_arg as _check_int_arg
from .checks import _recorded_neurons as _recorded_neurons
from .scores import _data_counts as _data_counts

__all__ = [
    "CEILING_TRIALS",
    "DEFAULT_N_TRIALS",
    "SCORE_VARIABLES",
    "ceiling_fraction",
    "example_model_spikes",
    "model_rates",
    "model_rates_from_spikes",
    "noise_ceiling",
    "score",
    "score_model_rates",
    "split_half_reliability",
    "summarize",
    "validation_judge",
    "validation_score",
    "VALIDATION_SEED_OFFSET",
    "VALIDATION_TRIALS",
]
