"""The data: the Recording section (what was recorded, example rasters and PSTHs, the
dataset's licence and citation) and the Targets section (what the network is fitted
to)."""
from __future__ import annotations

import json

import numpy as np
import xarray as xr

from .. import figures
from ..html import Figure, Section
from ..runfiles import RunFiles
from .common import _csv_download, _sentence, _svg_figure
from .spikes import SPIKE_COLUMNS, _data_spike_rows


def _recording_rows(recording: xr.Dataset, targets: xr.Dataset, config: dict) -> list[list]:
    """Units, trials and conditions of the recording (before any selection)."""
    summary = json.loads(recording.attrs.get("summary_json", "{}") or "{}")
    rates_only = bool(int(recording.attrs.get("rates_only", 0)))
    n_units = int(recording.attrs.get("n_units", summary.get("n_units", targets.sizes["unit"])))
    rows: list[list] = [["units", n_units]]
    cell_types = summary.get("unit_attributes", {}).get("cell_type")
    if isinstance(cell_types, dict) and cell_types:
        rows[0][1] = f"{n_units} ({', '.join(f'{k} {v}' for k, v in cell_types.items())})"
    if rates_only:
        rows.append(["trials", "none: trial-averaged rates only"])
    else:
        rows.append(["trials", int(recording.attrs.get("n_trials", summary.get("n_trials", 0)))])
        duration = summary.get("trial_duration")
        if isinstance(duration, list) and len(duration) == 3:
            rows.append(["trial duration (min / median / max)",
                         " / ".join(f"{d:.2f}" for d in duration) + " s"])
    key = config.get("data", {}).get("condition")
    counts = summary.get("trial_attributes", {}).get(key) if isinstance(key, str) else None
    if isinstance(counts, dict) and counts:
        rows.append([f"conditions ({key})",
                     ", ".join(f"{c}: {n} trials" for c, n in counts.items())])
    else:
        rows.append(["conditions", ", ".join(str(c) for c in targets["condition"].values)])
    rates = summary.get("mean_rate")
    if isinstance(rates, dict) and rates:
        values = np.array(list(rates.values()), dtype=float)
        rows.append(["mean rate per unit (min / median / max)",
                     f"{values.min():.2f} / {np.median(values):.2f} / {values.max():.2f} Hz"])
    events = summary.get("events")
    if isinstance(events, dict) and events:
        rows.append(["trial events (median time from trial start)",
                     ", ".join(f"{name} {ev.get('median', float('nan')):.2f} s"
                               for name, ev in events.items() if isinstance(ev, dict))])
    return rows


def _recording_section(run: RunFiles, examples: list[str]) -> Section:
    recording, targets = run.recording, run.targets
    paragraphs, figs = [], []
    if run.rates_only:
        paragraphs.append(
            f"{_sentence(recording.attrs.get('summary', ''))} The recording holds "
            "trial-averaged rates only: there are no spikes to show and no single trials to "
            "hold out.")
    elif "spike_time" in recording:
        fig = Figure(figures.raster_examples(recording).png,
                     "Spike rasters of one trial of each condition, aligned on "
                     f"{recording.attrs.get('align_event', 'the event')}; vertical lines mark "
                     "the trial events.")
        fig.downloads.append(_csv_download(run, "data-rasters", SPIKE_COLUMNS,
                                           _data_spike_rows(recording)))
        figs.append(fig)
    figs.append(_svg_figure(
        run, figures.psth_examples(targets, examples[:4], svg=True), "psth",
        "PSTHs per condition"
        + (" (trial-averaged rates as distributed)" if run.rates_only else
           " (average over the training trials, smoothed as in Targets)")
        + ": example units in colour, the mean of all "
        f"{run.n_units} fitted units in black, the 10-90 % range of units shaded."))
    dataset = run.dataset
    if dataset:
        paragraphs.append(f"Dataset: {dataset.get('description', dataset.get('name'))}")
        paragraphs.append(f"Licence: {dataset.get('license', 'not stated')}.")
        for cite in dataset.get("citation", []):
            paragraphs.append(f"Cite: {cite}")
    description = str(recording.attrs.get("summary", ""))
    return Section(
        "Recording", paragraphs=paragraphs, figures=figs,
        tables=[(["", ""], _recording_rows(recording, targets, run.config))],
        details=([("Full description of the recording", description)]
                 if description and not run.rates_only else []),
    )


# ---------------------------------------------------------------------- targets
def _targets_section(run: RunFiles, examples: list[str]) -> Section:
    targets, attrs = run.targets, run.targets.attrs
    paragraphs = []
    if "align_event" in attrs and "window_start" in attrs:
        start, stop = run.score_window
        text = (f"Trials aligned on {attrs['align_event']}, window [{start:g}, {stop:g}] s, "
                f"{attrs['bin_size'] * 1000:g} ms bins, {attrs['kernel']} kernel of width "
                f"{attrs['kernel_width'] * 1000:.3g} ms; {run.n_units} units kept.")
        if (attrs["window_start"], attrs["window_stop"]) != (start, stop):
            text += (f" The network is trained on [{attrs['window_start']:g}, "
                     f"{attrs['window_stop']:g}] s: the window extended by the smoothing "
                     "kernel's reach (the margin, clipped to what every trial covers), "
                     "where the data's rates draw on spikes outside the window; every score "
                     "uses the window only.")
        paragraphs.append(text)
        dropped = json.loads(attrs.get("dropped_units", "[]"))
        if dropped:
            paragraphs.append(f"Dropped below {attrs['min_rate']:g} Hz: "
                              f"{', '.join(dropped[:40])}" + (" ..." if len(dropped) > 40
                                                               else "") + ".")
    if "unit_selection" in attrs:
        paragraphs.append(f"Units: {attrs['unit_selection']}.")
    tables = []
    if "n_trials" in targets:
        n_trials = targets["n_trials"]
        splits = [s for s in ("train", "validation", "heldout")
                  if s in n_trials["split"].values]
        names = {"train": "training trials", "validation": "validation trials",
                 "heldout": "held-out (test) trials"}
        tables.append((["condition"] + [names[s] for s in splits],
                       [[c] + [int(n_trials.sel(condition=c, split=s)) for s in splits]
                        for c in run.conditions]))
        if "validation" in splits:
            paragraphs.append(
                "Each condition's trials are split at random into training trials (the "
                "targets), validation trials (to choose the fit, e.g. its best training "
                "loop) and held-out test trials (scored only at the end); no trial is in "
                "two of them.")
    truth = None
    if "expected_rate" in run.recording:
        truth = run.recording["expected_rate"].rename({"truth_time": "time"})
    n_aux = int((targets["role"] == "auxiliary").sum()) if "role" in targets else 0
    aux = run.config.get("auxiliary", {})
    paragraphs.append(
        f"{n_aux} auxiliary neurons (aux_ratio = {aux.get('aux_ratio', 0):g}) have targets from "
        f"OU processes (tau_c = {aux.get('tau_c', 0):g} s, amplitude "
        f"{aux.get('amplitude', 0):g}) passed through the theta f-I curve: they give the "
        "network room to generate the recorded activity (Kim & Chow 2018, Figure 5)."
        + (f" Network size: {targets.attrs['aux_reason']}." if targets.attrs.get("aux_reason")
           else ""))
    figs = [
        _svg_figure(run, figures.target_heatmaps(targets, svg=True), "target-heatmaps",
                    "Trial-averaged rates of the training trials, per condition."),
        _svg_figure(run, figures.example_units(targets, examples, truth, svg=True),
                    "example-units",
                    "PSTHs of example units: training-trial average (solid)"
                    + (", held-out average (dotted)" if "rate_heldout" in targets else "")
                    + (" and the ground truth (grey)" if truth is not None else "") + "."),
    ]
    if n_aux:
        figs.append(_svg_figure(run, figures.auxiliary_traces(targets, svg=True),
                                "auxiliary-targets", "A few auxiliary target rates."))
    return Section("Targets", paragraphs=paragraphs, tables=tables, figures=figs)
