"""Is a fit a result? Checks of a scored fit that the console summary and the report show.

A fit that silently fails is the worst outcome: a model whose recorded neurons do not fire,
or whose held-out score is near zero, must not pass as a result. :func:`fit_problems` reads
the run folder's ``scores.nc`` (the flat variables of
:func:`cortexfit.stages.scores_by_split`) and returns what is wrong, each problem with what
to try. An empty list means no check failed; it does not mean the fit is good.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from .targets.schema import crop_to_score_window

__all__ = [
    "ACTIVE_DATA_HZ",
    "CEILING_FRACTION_FLOOR",
    "PEARSON_FLOOR",
    "SILENT_MODEL_HZ",
    "SMALL_NETWORK",
    "Problem",
    "fit_problems",
]

#: a model neuron whose trial-averaged rate stays below this (Hz) is called silent
SILENT_MODEL_HZ = 0.1
#: ... when its unit fires at this rate (Hz) or more in the data (below it, silence is close)
ACTIVE_DATA_HZ = 0.5
#: a network with fewer neurons than this is named in the advice (too small to generate much)
SMALL_NETWORK = 100
#: a mean test-trial Pearson r below this is no fit
PEARSON_FLOOR = 0.3
#: a mean test r below this fraction of the mean noise ceiling is a poor fit
CEILING_FRACTION_FLOOR = 0.5


@dataclass(frozen=True)
class Problem:
    """One failed check: ``what`` went wrong (with numbers) and what to ``try``."""

    check: str
    what: str
    advice: str

    def __str__(self) -> str:
        return f"{self.what} {self.advice}"


def _data_rate(scores: xr.Dataset, targets: xr.Dataset | None) -> xr.DataArray | None:
    """The data's trial-averaged rate over (condition, unit), Hz."""
    if targets is not None and "rate" in targets:
        rate = crop_to_score_window(targets["rate"], targets)  # the model's scored bins
        if "unit" in rate.dims and "unit" in scores.dims:
            rate = rate.sel(unit=scores["unit"].values)
        return rate.mean("time")
    if "mean_rate" in scores.coords:
        return scores["mean_rate"]
    return None


def fit_problems(scores: xr.Dataset, targets: xr.Dataset | None = None) -> list[Problem]:
    """The checks a fit must pass to be shown as a result.

    ``scores`` is the run folder's ``scores.nc`` (``pearson_train``, optional
    ``pearson_heldout``, ``noise_ceiling``, ``model_rate``); ``targets`` (``targets.nc``)
    gives the data's rates. Checks:

    * **silent**: (condition, unit) pairs whose unit fires at >= ``ACTIVE_DATA_HZ`` in the
      data while its model neuron's trial-averaged rate stays below ``SILENT_MODEL_HZ``;
    * **low score**: the mean test (held-out) Pearson r below ``PEARSON_FLOOR``, or below
      ``CEILING_FRACTION_FLOOR`` of the mean noise ceiling (mean r over mean ceiling, the
      report's definition). Without held-out trials the training r is checked.
    """
    problems: list[Problem] = []
    n_neurons = int(targets.sizes["neuron"]) if targets is not None and "neuron" in \
        targets.dims else None
    size_note = ""
    if n_neurons is not None and n_neurons < SMALL_NETWORK:
        size_note = (f" The network has only {n_neurons} neurons: raise [auxiliary] aux_ratio "
                     f"so that it has at least a few hundred (the paper's ALM fit had 681).")
    if "model_rate" in scores:
        model = scores["model_rate"].mean("time")
        data = _data_rate(scores, targets)
        if data is not None:
            data = data.broadcast_like(model)
            active = data.values >= ACTIVE_DATA_HZ
            silent = active & (model.values < SILENT_MODEL_HZ)
            if silent.any():
                units = sorted({str(u) for u in np.asarray(model["unit"].values)[
                    np.nonzero(silent.any(axis=0))[0]]})
                shown = ", ".join(units[:8]) + (" ..." if len(units) > 8 else "")
                problems.append(Problem(
                    "silent",
                    f"{int(silent.sum())} of {int(active.sum())} (condition, unit) pairs that "
                    f"fire at {ACTIVE_DATA_HZ} Hz or more in the data have a silent model "
                    f"neuron (below {SILENT_MODEL_HZ} Hz; units {shown}).",
                    "Try more training loops, a larger network ([auxiliary] min_neurons or "
                    "aux_ratio) or a smaller [training] lam; without background noise "
                    "([training] noise = 0, or a neuron model other than theta) units below "
                    "a few Hz get silent model neurons (README, 'What works today')."
                    + size_note))
        if float(model.mean()) < SILENT_MODEL_HZ:
            problems.append(Problem(
                "all_silent",
                f"The model's recorded neurons are silent (mean rate "
                f"{float(model.mean()):.2f} Hz): the fit did not produce activity.",
                "Check the learning curve (history.nc): a rate near 0 from the first loop "
                "means the initial network is silent; try a larger bias or a stronger "
                "stimulus." + size_note))
    split = "heldout" if "pearson_heldout" in scores else "train"
    r = scores.get(f"pearson_{split}")
    if r is not None:
        mean_r = float(np.nanmean(r.values)) if np.isfinite(r.values).any() else float("nan")
        name = "test (held-out)" if split == "heldout" else "training"
        advice = ("Try more loops, a larger network ([auxiliary] aux_ratio), or another "
                  "tau_s / lam; see the learning curve for whether training had "
                  "plateaued." + size_note)
        if not np.isfinite(mean_r) or mean_r < PEARSON_FLOOR:
            problems.append(Problem(
                "low_score",
                f"The mean {name} Pearson r is {mean_r:.2f}, below the floor of "
                f"{PEARSON_FLOOR}: the model does not reproduce the recording.", advice))
        elif split == "heldout" and "noise_ceiling" in scores:
            ceiling = float(np.nanmean(scores["noise_ceiling"].values))
            if np.isfinite(ceiling) and ceiling > 0 and mean_r < CEILING_FRACTION_FLOOR * ceiling:
                problems.append(Problem(
                    "below_ceiling",
                    f"The mean test Pearson r ({mean_r:.2f}) is {mean_r / ceiling:.2f} of the "
                    f"mean noise ceiling ({ceiling:.2f}), below {CEILING_FRACTION_FLOOR}: a "
                    "poor fit.", advice))
    return problems
