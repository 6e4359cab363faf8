"""The fit: the Training section (learning curve), the Fit section (the model against the
data: PSTHs, heat maps, rasters, score distributions) and the Per unit table."""
from __future__ import annotations

import numpy as np

from ...evaluate import ceiling_fraction
from ...health import ACTIVE_DATA_HZ, SILENT_MODEL_HZ
from .. import figures
from ..html import Figure, Section, Table
from ..runfiles import RunFiles
from .common import _csv_download, _fmt, _svg_figure
from .spikes import SPIKE_COLUMNS, _data_spike_rows, _model_spike_rows


# ---------------------------------------------------------------------- training
def _training_section(run: RunFiles) -> Section:
    history, fit_cfg = run.history, run.fit_settings
    last = history.isel(loop=-1)
    return Section(
        "Training",
        paragraphs=[(
            f"RLS (Kim & Chow 2018) for {len(history['loop'])} loops over the "
            f"{len(run.conditions)} conditions, each with its own stimulus, updating every "
            f"{fit_cfg.get('update_every', 0) * 1000:g} ms (lambda = {fit_cfg.get('lam')}). "
            f"Last loop: single-trial r = {float(last['pearson']):.2f}, relative weight "
            f"change {float(last['weight_change']):.2f}, mean rate "
            f"{float(last['rate']):.1f} Hz, frozen synapses {float(last['frozen']):.1%}."
            + _noise_text(fit_cfg) + _ei_text(run) + _best_loop_text(history))],
        figures=[_svg_figure(run, figures.learning_curve(history, svg=True), "learning-curve",
                             "Learning curve over training loops.")],
    )


def _noise_text(fit_cfg: dict) -> str:
    noise = float(fit_cfg.get("noise") or 0.0)
    if noise <= 0:
        return " No background noise: rate training used the smoothed f-I curve."
    return (f" Every neuron received white background noise (sigma = {noise:g}) in training "
            "and in every trial; rate training used the neuron's f-I curve under that noise "
            "(cortexfit/neurons/noisy.py).")


def _unit_ei(run: RunFiles) -> list[str] | None:
    """Per recorded unit (targets order): its model neuron's sign, "E" or "I", with
    " (data)" when it came from the recording's cell type; None without E/I identity."""
    types = run.ei_types
    if types is None:
        return None
    cells = types["cell_type"] or [""] * len(types["roles"])
    sign = {}
    for exc, role, unit, cell in zip(types["excitatory"], types["roles"],
                                     types["recorded_unit"], cells):
        if role == "recorded":
            sign[unit] = ("E" if exc else "I") + (" (data)" if cell else "")
    return [sign.get(str(u), "") for u in run.targets["unit"].values]


def _ei_text(run: RunFiles) -> str:
    types = run.ei_types
    if types is None:
        return ""
    exc = types["excitatory"]
    labels = _unit_ei(run) or []
    known = [x for x in labels if x.endswith("(data)")]
    text = (f" E/I network under Dale's law: {int(exc.sum())} excitatory and "
            f"{int((~exc).sum())} inhibitory neurons")
    if known:
        n_e = sum(x.startswith("E") for x in known)
        text += (f"; {len(known)} recorded units took their sign from the recording's cell "
                 f"type ({n_e} E, {len(known) - n_e} I), the others were drawn at random "
                 "(column E/I under Per unit).")
    else:
        text += ("; the recording names no cell types, so every sign was drawn at random "
                 "(column E/I under Per unit).")
    return text


def _best_loop_text(history) -> str:
    best = history.attrs.get("best_loop")
    if best is None:
        return " The last loop's weights are the fit (no validation trials to choose by)."
    return (f" The fit keeps the weights of loop {int(best)}, the best by the validation "
            f"trials (r = {float(history.attrs['best_validation']):.2f}; scored every "
            "few loops, dots in the learning curve); the test trials chose nothing.")


# ---------------------------------------------------------------------- fit
def _raster_panels(run: RunFiles, row_of_unit: np.ndarray):
    """Per condition of the targets: the data's example trial and the model's, as (title,
    spike times, rows) in the targets' units (row = position in the heat maps' order)."""
    recording, scores = run.recording, run.scores
    data: list = []
    if "spike_time" in recording and "unit" in recording.coords:
        index = {str(u): k for k, u in enumerate(run.targets["unit"].values)}
        # recording unit index -> row (-1: a unit that was not fitted)
        rec_row = np.array([row_of_unit[index[str(u)]] if str(u) in index else -1
                            for u in recording["unit"].values], dtype=np.int64)
        labels = [str(c) for c in recording["example_condition"].values]
        for cond in run.conditions:
            if cond not in labels:
                data.append(None)
                continue
            j = labels.index(cond)
            keep = recording["spike_trial"].values == j
            rows = rec_row[recording["spike_unit"].values[keep]]
            times = recording["spike_time"].values[keep]
            data.append((f"data, trial {recording['example_trial'].values[j]}: {cond}",
                         times[rows >= 0], rows[rows >= 0]))
    else:
        data = [None] * len(run.conditions)
    model = []
    labels = [str(c) for c in scores["model_example_condition"].values]
    for cond in run.conditions:
        j = labels.index(cond) if cond in labels else -1
        keep = scores["model_spike_trial"].values == j
        model.append((f"model, test trial: {cond}", scores["model_spike_time"].values[keep],
                      row_of_unit[scores["model_spike_unit"].values[keep]]))
    return data, model


def _rasters_figure(run: RunFiles) -> Figure:
    order = figures.peak_order(run.scored_targets["rate"])  # the heat maps' order
    row_of_unit = np.empty(order.size, dtype=np.int64)
    row_of_unit[order] = np.arange(order.size)
    data, model = _raster_panels(run, row_of_unit)
    window = run.scores["model_spike_time"].attrs.get("window")
    start, stop = run.score_window  # the scored window, as every comparison of the section
    if window is not None:
        start = max(start, float(np.ravel(window)[0]))
    rendered = figures.rasters_data_model(data, model, run.n_units, (start, stop),
                                          align_event=run.align_event)
    if any(entry is not None for entry in data):
        caption = ("Spike rasters of the fitted units: one recorded trial of each condition "
                   "(left) and one test trial of the model (right, from fresh initial "
                   "conditions), in the heat maps' unit order.")
    else:
        caption = ("Spike rasters of one test trial of the model per condition (from fresh "
                   "initial conditions), in the heat maps' unit order. The recording has no "
                   "single-trial spikes to show beside them.")
    rows = []
    if "spike_time" in run.recording and "unit" in run.recording.coords:
        fitted = {str(u) for u in run.targets["unit"].values}
        rows = [["data"] + r for r in _data_spike_rows(run.recording, fitted, run.conditions)]
    rows += [["model"] + r for r in _model_spike_rows(run)]
    return Figure(rendered.png, caption, downloads=[_csv_download(
        run, "rasters-data-model", ["source"] + SPIKE_COLUMNS, rows)])


def _fit_section(run: RunFiles, examples: list[str]) -> Section:
    targets, scores = run.scored_targets, run.scores
    text = (f"The model's trial average over {scores.attrs.get('n_trials', '?')} fresh "
            "trials per condition, binned and smoothed exactly like the data.")
    start, stop = run.score_window
    before = float(run.targets.attrs.get("margin_before", 0.0))
    after = float(run.targets.attrs.get("margin_after", 0.0))
    if before or after:
        text += (f" Model and data are compared on the window [{start:g}, {stop:g}] s only; "
                 f"the network was trained on it extended by {before:g} s before and "
                 f"{after:g} s after (the smoothing kernel's reach), so that its rates in the "
                 "window come from its own spikes around it, as the data's do.")
    if not run.has_heldout:
        text += (" There are no held-out trials, so the model is compared with the targets it "
                 "was trained on.")
    paragraphs = [text]
    figs = [
        _svg_figure(run, figures.heldout_fit(targets, scores, examples, svg=True),
                    "model-vs-data",
                    ("Held-out data (dotted) and the model (solid); each panel gives the unit's "
                     "mean r and its noise ceiling (test trials: held out from training "
                     "and from choosing the fit)." if run.has_heldout else
                     "Targets (dotted) and the model (solid); each panel gives the unit's mean "
                     "r.") + " Units span the range of scores, best first."),
        _svg_figure(run, figures.rate_heatmaps(targets["rate"], scores["model_rate"],
                                               align_event=run.align_event, svg=True),
                    "heatmaps-data-model",
                    "Trial-averaged rates of the data (top: training trials) and of the model "
                    "(bottom), per condition: same colour scale, same unit order (by the time "
                    "of the data's peak in the first condition)."),
    ]
    if "model_spike_time" in scores:
        figs.append(_rasters_figure(run))
    else:
        paragraphs.append("This run's scores.nc has no model example spikes (it was made by "
                          "an older cortexfit), so there are no model rasters.")
    figs.append(_svg_figure(
        run, figures.score_distributions(scores, svg=True), "score-distributions",
        "Distribution of per-unit, per-condition scores"
        + ("; right: held-out r against the noise ceiling (dashed: equal)."
           if run.has_heldout and "noise_ceiling" in scores else ".")))
    return Section("Fit", paragraphs=paragraphs, figures=figs)


# ---------------------------------------------------------------------- per unit
def _unit_columns(run: RunFiles) -> list[tuple[str, np.ndarray, int]]:
    """(header, value per unit, decimals) of the per-unit table, in the targets' unit order."""
    scores = run.scores.sel(unit=run.targets["unit"].values)
    cols = []
    if run.has_heldout:
        held = scores["pearson_heldout"]
        cols.append(("held-out r", held.mean("condition").values, 2))
        if "noise_ceiling" in scores:
            ceiling = scores["noise_ceiling"]
            # the one definition (ceiling_fraction), applied to each unit's conditions
            fraction = np.array([ceiling_fraction(held.sel(unit=u), ceiling.sel(unit=u))
                                 for u in held["unit"].values])
            cols += [("noise ceiling", ceiling.mean("condition").values, 2),
                     ("fraction of ceiling", fraction, 2)]
    cols.append(("data rate (Hz)",
                 run.scored_targets["rate"].mean(("condition", "time")).values, 2))
    cols.append(("model rate (Hz)", scores["model_rate"].mean(("condition", "time")).values, 2))
    cols.append(("train r", scores["pearson_train"].mean("condition").values, 2))
    return cols


def _silent_units(run: RunFiles) -> np.ndarray:
    """Per unit (targets' order): in some condition the unit fires at ``ACTIVE_DATA_HZ`` or
    more in the data while its model neuron stays below ``SILENT_MODEL_HZ`` (the check of
    :func:`cortexfit.health.fit_problems`)."""
    units = run.targets["unit"].values
    data = run.scored_targets["rate"].mean("time").transpose("condition", "unit").values
    model = (run.scores["model_rate"].sel(unit=units, condition=run.targets["condition"].values)
             .mean("time").transpose("condition", "unit").values)
    return ((data >= ACTIVE_DATA_HZ) & (model < SILENT_MODEL_HZ)).any(axis=0)


def _units_section(run: RunFiles) -> Section:
    units = [str(u) for u in run.targets["unit"].values]
    cols = _unit_columns(run)
    silent = _silent_units(run)
    rows = []
    for i, unit in enumerate(units):
        row: list[object] = [unit]
        for header, values, digits in cols:
            cell = _fmt(float(values[i]), digits)
            if header == "model rate (Hz)" and silent[i]:
                cell += " (silent)"
            row.append(cell)
        rows.append(row)
    header = ["unit"] + [h for h, _, _ in cols]
    csv_rows = [[unit] + [float(v[i]) for _, v, _ in cols] for i, unit in enumerate(units)]
    ei = _unit_ei(run)
    if ei is not None:  # the model neuron's sign (Dale's law)
        header.append("E/I")
        for row, csv_row, sign in zip(rows, csv_rows, ei):
            row.append(sign)
            csv_row.append(sign)
    what = ("Held-out r and noise ceiling are means over conditions; fraction of ceiling = "
            "held-out r / noise ceiling (mean r over mean ceiling, as in the Summary). "
            if run.has_heldout else
            "There are no held-out trials: only the fit to the training targets is scored. ")
    paragraphs = [
        what + "Rates are means over conditions and the scored window (data: the training trials' "
        "average; model: its test trials' average); train r is the correlation with the "
        f"training targets. {int(silent.sum())} of {len(units)} units have a silent model "
        f"neuron (marked silent: below {SILENT_MODEL_HZ:g} Hz in a condition where the unit "
        f"fires at {ACTIVE_DATA_HZ:g} Hz or more in the data)."]
    table = Table(header, rows, scroll=len(rows) > 15, numeric=True,
                  downloads=[_csv_download(run, "units", header, csv_rows,
                                           "CSV of the table")])
    return Section("Per unit", paragraphs=paragraphs, tables=[table], anchor="units")
