"""The top of the page: the red box of the fit's problems and the Summary section."""
from __future__ import annotations

import numpy as np

from ...evaluate import ceiling_fraction
from ...health import fit_problems
from ..html import Alert, Section
from ..runfiles import RunFiles
from .common import _first_sentence, _fmt, _sentence

#: the heading of the red box at the top of the page (:func:`cortexfit.health.fit_problems`)
ALERTS_TITLE = "Problems with this fit: what went wrong and what to try"


# ---------------------------------------------------------------------- the red box
def _alerts(run: RunFiles) -> list[Alert]:
    """The fit's problems (:func:`cortexfit.health.fit_problems`), each with what to try."""
    return [Alert(p.what, p.advice) for p in fit_problems(run.scores, run.targets)]


# ---------------------------------------------------------------------- summary
def _summary_section(run: RunFiles) -> Section:
    scores, config = run.scores, run.config
    recorded = run.n_units
    n_neurons = run.targets.sizes.get("neuron", recorded)
    fit_cfg = run.fit_settings
    train_r = float(scores["pearson_train"].mean())
    held_r = float(scores["pearson_heldout"].mean()) if run.has_heldout else None
    ceiling = float(scores["noise_ceiling"].mean()) if "noise_ceiling" in scores else None
    # the one definition of the fraction (scores.nc's fraction_of_ceiling): mean r over mean
    # ceiling, on the pairs with a ceiling; computed here too, for run folders made before
    fraction = (ceiling_fraction(scores["pearson_heldout"], scores["noise_ceiling"])
                if run.has_heldout and ceiling is not None else np.nan)
    dataset = run.dataset
    rows = [
        ["recording", _first_sentence(dataset.get("description", config["data"]["format"]))
         if dataset else config["data"].get("path") or config["data"]["format"]],
        ["recorded units fitted", recorded],
        ["conditions", ", ".join(run.conditions)],
        ["network", (f"{n_neurons} {fit_cfg.get('neuron_model', 'theta')} neurons "
                     f"({recorded} recorded + {n_neurons - recorded} auxiliary), "
                     f"{'Dale' if fit_cfg.get('dale') else 'no Dale constraint'}")],
        ["training loops", len(run.history["loop"])],
        ["Pearson r, training targets", _fmt(train_r)],
    ]
    if run.has_heldout:
        rows += [["Pearson r, held-out (test) trials", _fmt(held_r)],
                 ["noise ceiling (held-out)", _fmt(ceiling)],
                 ["fraction of the ceiling", _fmt(fraction)]]
    verdict = (
        f"The model's trial-averaged rates correlate with the training targets at "
        f"{train_r:.2f} (mean over {recorded} units x {len(run.conditions)} conditions)."
    )
    if run.has_heldout:
        verdict += (
            f" On test trials the fit never saw (held out from training and from choosing "
            f"the fit), the correlation is {held_r:.2f}. The "
            f"data's own noise ceiling on those trials is {_fmt(ceiling)}: a perfect model "
            f"would score about that, so the fit reaches "
            f"{_fmt(100 * fraction, 0)} % of what the data allow (the fraction of the "
            "ceiling: the mean held-out r divided by the mean noise ceiling, over the same "
            "(condition, unit) pairs)."
        )
    else:
        why = _sentence(scores.attrs.get("heldout", ""))
        if "no held-out trials" not in why.lower():
            why = ("There are no held-out trials. " + why).strip()
        verdict += (" " + why + " The score therefore says how well the network reproduces "
                    "the targets, not how well it predicts unseen data.")
    return Section("Summary", paragraphs=[verdict], tables=[(["", ""], rows)])
