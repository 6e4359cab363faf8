"""Build a run folder's report from the files in it (``cortexfit report RUN_DIR``).

Everything the report shows is read back from the run folder (the contract in
``reports/README.md``), so a report can be re-rendered at any time without the recording
or any computation: ``config.toml``, ``versions.json``, ``stages.json``, ``recording.nc``,
``targets.nc``, ``history.nc``, ``scores.nc`` and ``diagnostics.nc``.

:func:`build_report` reads the folder into a :class:`RunFiles` and calls one function per
part of the page: the red box of :func:`cortexfit.health.fit_problems` when the fit is not a
result, then Summary, Recording, Targets, Training, Fit, Per unit, the diagnostics and Run.
"""
from __future__ import annotations

import csv
import io
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from ..exceptions import DataError
from ..health import ACTIVE_DATA_HZ, SILENT_MODEL_HZ, fit_problems
from . import figures
from .html import Alert, Download, Figure, Section, Table, slug, write_report

__all__ = ["REQUIRED_FILES", "RunFiles", "build_report", "diagnostics_state"]

REQUIRED_FILES = ("config.toml", "versions.json", "recording.nc", "targets.nc", "history.nc",
                  "scores.nc")
_NC = {"engine": "h5netcdf"}

#: what the diagnostics section says when there are no diagnostics to show
DIAGNOSTICS_DISABLED = "Diagnostics were not run ([diagnostics] enabled = false)."
DIAGNOSTICS_UNFINISHED = ("The diagnostics stage did not finish (interrupted?): rerun the "
                          "same command to run it.")

#: the heading of the red box at the top of the page (:func:`cortexfit.health.fit_problems`)
ALERTS_TITLE = "Problems with this fit: what went wrong and what to try"

SPECTRUM_NOTE = (
    "Each dot is one eigenvalue of the connection matrix W (real part across, imaginary part "
    "up), before and after training. In a random network the eigenvalues fill a disk (dashed "
    "circle: the radius random-matrix theory gives for the initial network); eigenvalues that "
    "training moved far outside it are the structure RLS added: patterns of activity that the "
    "recurrent connections amplify (large real part) or rotate (large imaginary part), which "
    "carry the fitted activity.")
LYAPUNOV_NOTE = (
    "The largest Lyapunov exponent says how fast two almost identical states of the network "
    "drift apart: a positive value (1/s) means chaotic activity, where a tiny difference "
    "grows e-fold every 1/value seconds (10 1/s: every 0.1 s), so single trials differ even "
    "with the same stimulus; zero or below means a small difference does not grow. Thin "
    "lines are the running estimate from each initial condition, thick lines their mean: "
    "read the value where the lines level off at the right; a lower value after training "
    "means the trained network's activity is more reproducible.")


def _open(path: Path) -> xr.Dataset:
    with xr.open_dataset(path, **_NC) as ds:
        return ds.load()


def _pick_units(scores: xr.Dataset, n: int) -> list[str]:
    """Units spread over the score distribution: best, worst and quantiles between."""
    var = "pearson_heldout" if "pearson_heldout" in scores else "pearson_train"
    per_unit = scores[var].mean("condition")
    order = per_unit.fillna(-2).argsort().values[::-1]  # best first
    units = per_unit["unit"].values
    if len(units) <= n:
        return [str(u) for u in units[order]]
    picks = np.unique(np.round(np.linspace(0, len(units) - 1, n)).astype(int))
    return [str(units[order[i]]) for i in picks]


def _fmt(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _sentence(text: str) -> str:
    """``text`` as a sentence: no 'none:' prefix, capitalised, ending with a full stop."""
    text = str(text).strip()
    if text.lower().startswith("none:"):
        text = text[5:].strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _first_sentence(text: str, limit: int = 160) -> str:
    """The first sentence of ``text`` (cut at ``limit`` characters with an ellipsis)."""
    text = " ".join(str(text).split())
    cut = text.find(". ")
    if 0 < cut < limit:
        return text[:cut + 1]
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " ..."


# ---------------------------------------------------------------------- the run folder
@dataclass
class RunFiles:
    """A run folder's files, read: what every part of the report draws from."""

    run_dir: Path
    config: dict
    versions: dict
    stages: dict | None  # stages.json's records; None without stages.json
    recording: xr.Dataset
    targets: xr.Dataset
    history: xr.Dataset
    scores: xr.Dataset
    diagnostics: dict[str, xr.Dataset] | None
    diagnostics_state: str  # "done", "disabled" or "unfinished"

    @property
    def name(self) -> str:
        return str(self.config.get("run", {}).get("name", self.run_dir.name))

    @property
    def dataset(self) -> dict:
        return json.loads(self.recording.attrs.get("dataset", "{}") or "{}")

    @property
    def conditions(self) -> list[str]:
        return [str(c) for c in self.targets["condition"].values]

    @property
    def n_units(self) -> int:
        return int(self.targets.sizes["unit"])

    @property
    def has_heldout(self) -> bool:
        return "pearson_heldout" in self.scores

    @property
    def rates_only(self) -> bool:
        return bool(int(self.recording.attrs.get("rates_only", 0)))

    @property
    def fit_settings(self) -> dict:
        return {**self.config.get("network", {}), **self.config.get("training", {})}

    @property
    def align_event(self) -> str:
        return str(self.targets.attrs.get("align_event", "the event"))

    def filename(self, name: str, ext: str) -> str:
        """A download's file name: the run's name and what it holds."""
        return f"{slug(self.name)}-{name}.{ext}"


def diagnostics_state(run_dir: Path, config: dict, stages: dict | None) -> str:
    """``"disabled"`` when ``[diagnostics] enabled = false``; ``"unfinished"`` when they are
    enabled but ``diagnostics.nc`` is missing or ``stages.json`` (when there is one) has no
    finished diagnostics record (an interrupted stage); else ``"done"``."""
    if not config.get("diagnostics", {}).get("enabled", True):
        return "disabled"
    if not (Path(run_dir) / "diagnostics.nc").is_file():
        return "unfinished"
    if stages is not None and "finished" not in stages.get("diagnostics", {}):
        return "unfinished"
    return "done"


def _read_run(run_dir: Path) -> RunFiles:
    missing = [name for name in REQUIRED_FILES if not (run_dir / name).is_file()]
    if missing:
        raise DataError("the folder is not a complete cortexfit run", file=run_dir,
                        field="files", found=f"missing {', '.join(missing)}",
                        expected=", ".join(REQUIRED_FILES),
                        hint="Run `cortexfit run CONFIG.toml --out RUN_DIR` first (it skips "
                             "the stages that are already done)")
    config = tomllib.loads((run_dir / "config.toml").read_text(encoding="utf-8"))
    stages_path = run_dir / "stages.json"
    stages = (json.loads(stages_path.read_text(encoding="utf-8")).get("stages", {})
              if stages_path.is_file() else None)
    state = diagnostics_state(run_dir, config, stages)
    diag = None
    if state == "done":
        from ..diagnostics import load_diagnostics

        diag = load_diagnostics(run_dir / "diagnostics.nc")
    return RunFiles(
        run_dir=run_dir, config=config,
        versions=json.loads((run_dir / "versions.json").read_text(encoding="utf-8")),
        stages=stages, recording=_open(run_dir / "recording.nc"),
        targets=_open(run_dir / "targets.nc"), history=_open(run_dir / "history.nc"),
        scores=_open(run_dir / "scores.nc"), diagnostics=diag, diagnostics_state=state)


# ---------------------------------------------------------------------- downloads
def _csv(header: list[str], rows) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([f"{v:.6g}" if isinstance(v, (float, np.floating)) else v
                         for v in row])
    return buf.getvalue().encode("utf-8")


def _csv_download(run: RunFiles, name: str, header: list[str], rows,
                  label: str = "CSV of the data") -> Download:
    return Download(run.filename(name, "csv"), "text/csv", _csv(header, rows), label)


def _svg_figure(run: RunFiles, rendered: figures.Rendered, name: str, caption: str,
                note: str = "") -> Figure:
    """A figure drawn with ``svg=True``, downloadable as SVG."""
    downloads = []
    if rendered.svg is not None:
        downloads.append(Download(run.filename(name, "svg"), "image/svg+xml", rendered.svg,
                                  "SVG"))
    return Figure(rendered.png, caption, note=note, downloads=downloads)


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
        rows += [["Pearson r, held-out trials", _fmt(held_r)],
                 ["noise ceiling (held-out)", _fmt(ceiling)],
                 ["fraction of the ceiling", _fmt(held_r / ceiling if ceiling else np.nan)]]
    verdict = (
        f"The model's trial-averaged rates correlate with the training targets at "
        f"{train_r:.2f} (mean over {recorded} units x {len(run.conditions)} conditions)."
    )
    if run.has_heldout:
        verdict += (
            f" On trials the fit never saw (held out), the correlation is {held_r:.2f}. The "
            f"data's own noise ceiling on those trials is {_fmt(ceiling)}: a perfect model "
            f"would score about that, so the fit reaches "
            f"{_fmt(100 * held_r / ceiling if ceiling else np.nan, 0)} % of what the data "
            "allow."
        )
    else:
        why = _sentence(scores.attrs.get("heldout", ""))
        if "no held-out trials" not in why.lower():
            why = ("There are no held-out trials. " + why).strip()
        verdict += (" " + why + " The score therefore says how well the network reproduces "
                    "the targets, not how well it predicts unseen data.")
    return Section("Summary", paragraphs=[verdict], tables=[(["", ""], rows)])


# ---------------------------------------------------------------------- recording
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


#: the columns of a raster's CSV: one row per trial and unit, its spike times space-separated
SPIKE_COLUMNS = ["trial", "condition", "unit", "n_spikes", "spike_times_s"]


def _spike_rows(times: np.ndarray, units: np.ndarray, trials: np.ndarray,
                unit_labels: dict[int, str], trial_labels, condition_labels):
    """Spikes (time, unit index, trial index) as CSV rows of :data:`SPIKE_COLUMNS`, one per
    trial and unit of ``unit_labels`` (unit index -> label; silent units included), times
    in s to 0.1 ms: a raster's data in a quarter of the bytes of one row per spike."""
    n_units = max(unit_labels, default=-1) + 1
    key = trials.astype(np.int64) * n_units + units
    order = np.lexsort((times, key))
    key, times = key[order], times[order]
    for j, (trial, condition) in enumerate(zip(trial_labels, condition_labels)):
        for u, label in unit_labels.items():
            lo, hi = np.searchsorted(key, [j * n_units + u, j * n_units + u + 1])
            yield [trial, condition, label, int(hi - lo),
                   " ".join(f"{t:.4f}" for t in times[lo:hi])]


def _data_spike_rows(recording: xr.Dataset, units: set[str] | None = None,
                     conditions: list[str] | None = None):
    """recording.nc's example spikes as :func:`_spike_rows` (only ``units`` and
    ``conditions`` when given)."""
    labels = ([str(u) for u in recording["unit"].values] if "unit" in recording.coords else
              [str(u) for u in range(int(recording["spike_unit"].max()) + 1)])
    trials = [str(t) for t in recording["example_trial"].values]
    shown = [str(c) for c in recording["example_condition"].values]
    keep = [j for j, c in enumerate(shown) if conditions is None or c in conditions]
    index = np.full(len(trials), -1)
    index[keep] = np.arange(len(keep))
    spike_trial = index[recording["spike_trial"].values]
    inside = spike_trial >= 0
    yield from _spike_rows(
        recording["spike_time"].values[inside], recording["spike_unit"].values[inside],
        spike_trial[inside], {k: u for k, u in enumerate(labels) if units is None or u in units},
        [trials[j] for j in keep], [shown[j] for j in keep])


def _model_spike_rows(run: RunFiles):
    """scores.nc's model example spikes as :func:`_spike_rows`."""
    scores = run.scores
    conditions = [str(c) for c in scores["model_example_condition"].values]
    yield from _spike_rows(
        scores["model_spike_time"].values, scores["model_spike_unit"].values,
        scores["model_spike_trial"].values,
        dict(enumerate(str(u) for u in run.targets["unit"].values)),
        [str(t) for t in scores["model_example_trial"].values], conditions)


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
        paragraphs.append(
            f"Trials aligned on {attrs['align_event']}, window [{attrs['window_start']:g}, "
            f"{attrs['window_stop']:g}] s, {attrs['bin_size'] * 1000:g} ms bins, "
            f"{attrs['kernel']} kernel of width {attrs['kernel_width'] * 1000:.3g} ms; "
            f"{run.n_units} units kept.")
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
        tables.append((["condition", "training trials", "held-out trials"],
                       [[c, int(n_trials.sel(condition=c, split="train")),
                         int(n_trials.sel(condition=c, split="heldout"))]
                        for c in run.conditions]))
    truth = None
    if "expected_rate" in run.recording:
        truth = run.recording["expected_rate"].rename({"truth_time": "time"})
    n_aux = int((targets["role"] == "auxiliary").sum()) if "role" in targets else 0
    aux = run.config.get("auxiliary", {})
    paragraphs.append(
        f"{n_aux} auxiliary neurons (aux_ratio = {aux.get('aux_ratio', 0):g}) have targets from "
        f"OU processes (tau_c = {aux.get('tau_c', 0):g} s, amplitude "
        f"{aux.get('amplitude', 0):g}) passed through the theta f-I curve: they give the "
        "network room to generate the recorded activity (Kim & Chow 2018, Figure 5).")
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
            f"{float(last['rate']):.1f} Hz, frozen synapses {float(last['frozen']):.1%}.")],
        figures=[_svg_figure(run, figures.learning_curve(history, svg=True), "learning-curve",
                             "Learning curve over training loops.")],
    )


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
    order = figures.peak_order(run.targets["rate"])
    row_of_unit = np.empty(order.size, dtype=np.int64)
    row_of_unit[order] = np.arange(order.size)
    data, model = _raster_panels(run, row_of_unit)
    window = run.scores["model_spike_time"].attrs.get("window")
    time = run.targets["time"].values
    start = float(run.targets.attrs.get("window_start", time[0]))
    stop = float(run.targets.attrs.get("window_stop", time[-1]))
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
    targets, scores = run.targets, run.scores
    text = (f"The model's trial average over {scores.attrs.get('n_trials', '?')} fresh "
            "trials per condition, binned and smoothed exactly like the data.")
    if not run.has_heldout:
        text += (" There are no held-out trials, so the model is compared with the targets it "
                 "was trained on.")
    paragraphs = [text]
    figs = [
        _svg_figure(run, figures.heldout_fit(targets, scores, examples, svg=True),
                    "model-vs-data",
                    ("Held-out data (dotted) and the model (solid); each panel gives the unit's "
                     "mean r and its noise ceiling." if run.has_heldout else
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
        held = scores["pearson_heldout"].mean("condition").values
        cols.append(("held-out r", held, 2))
        if "noise_ceiling" in scores:
            ceiling = scores["noise_ceiling"].mean("condition").values
            with np.errstate(divide="ignore", invalid="ignore"):
                fraction = np.where(ceiling > 0, held / ceiling, np.nan)
            cols += [("noise ceiling", ceiling, 2), ("fraction of ceiling", fraction, 2)]
    cols.append(("data rate (Hz)", run.targets["rate"].mean(("condition", "time")).values, 2))
    cols.append(("model rate (Hz)", scores["model_rate"].mean(("condition", "time")).values, 2))
    cols.append(("train r", scores["pearson_train"].mean("condition").values, 2))
    return cols


def _silent_units(run: RunFiles) -> np.ndarray:
    """Per unit (targets' order): in some condition the unit fires at ``ACTIVE_DATA_HZ`` or
    more in the data while its model neuron stays below ``SILENT_MODEL_HZ`` (the check of
    :func:`cortexfit.health.fit_problems`)."""
    units = run.targets["unit"].values
    data = run.targets["rate"].mean("time").transpose("condition", "unit").values
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
    csv_rows = ([unit] + [float(v[i]) for _, v, _ in cols] for i, unit in enumerate(units))
    what = ("Held-out r and noise ceiling are means over conditions; fraction of ceiling = "
            "held-out r / noise ceiling. " if run.has_heldout else
            "There are no held-out trials: only the fit to the training targets is scored. ")
    paragraphs = [
        what + "Rates are means over conditions and time (data: the training trials' "
        "average; model: its test trials' average); train r is the correlation with the "
        f"training targets. {int(silent.sum())} of {len(units)} units have a silent model "
        f"neuron (marked silent: below {SILENT_MODEL_HZ:g} Hz in a condition where the unit "
        f"fires at {ACTIVE_DATA_HZ:g} Hz or more in the data)."]
    table = Table(header, rows, scroll=len(rows) > 15, numeric=True,
                  downloads=[_csv_download(run, "units", header, csv_rows,
                                           "CSV of the table")])
    return Section("Per unit", paragraphs=paragraphs, tables=[table], anchor="units")


# ---------------------------------------------------------------------- diagnostics
def _diagnostics_paragraphs(run: RunFiles) -> list[str]:
    diag, d = run.diagnostics or {}, run.config.get("diagnostics", {})
    paragraphs = []
    if "lesion" in diag and "shuffle" in diag:
        among = ("among recorded neurons" if diag["shuffle"].attrs.get("scope", "recorded")
                 == "recorded" else "of all trained synapses (too few between recorded "
                 "neurons)")
        repeats = d.get("n_repeats", "?")
        paragraphs.append(
            "Lesion: every outgoing synapse of a random fraction of neurons cut; shuffle: the "
            f"trained weights {among} permuted. Both are scored again on the same test trials "
            f"({repeats} repeat{'' if repeats == 1 else 's'}).")
    if "quasistatic" in diag:
        paragraphs.append("Quasi-static prediction u = W phi(u + I): mean r "
                          f"{float(diag['quasistatic']['mean_pearson'].mean()):.2f}.")
    if "lyapunov" in diag:
        lam = diag["lyapunov"]["lyapunov_mean"]
        paragraphs.append("Largest Lyapunov exponent (1/s), "
                          + ", ".join(f"{s}: {float(lam.sel(stage=s)):.1f}"
                                      for s in lam["stage"].values) + ".")
    return paragraphs


def _diagnostics_figures(run: RunFiles) -> list[Figure]:
    diag = run.diagnostics or {}
    figs = []
    if "lesion" in diag and "shuffle" in diag:
        figs.append(_svg_figure(
            run, figures.lesion_shuffle(diag["lesion"], diag["shuffle"], svg=True),
            "lesion-shuffle", "Lesion and shuffle scores by fraction (0 = the intact network; "
            "mean and standard deviation over repeats)."))
    if "spectrum" in diag:
        spec = diag["spectrum"]
        fig = Figure(figures.spectrum(spec).png,
                     "Eigenvalues of the weight matrix W before and after training (dashed: "
                     "the random-matrix bulk radius of the initial network).",
                     note=SPECTRUM_NOTE)
        fig.downloads.append(_csv_download(
            run, "spectrum", ["stage", "real", "imaginary"],
            ([str(s), float(re), float(im)] for s in spec["stage"].values
             for re, im in zip(spec["eig_real"].sel(stage=s).values,
                               spec["eig_imag"].sel(stage=s).values))))
        figs.append(fig)
    if "perturbation" in diag:
        figs.append(_svg_figure(
            run, figures.perturbation(diag["perturbation"], svg=True), "perturbation",
            "Phase divergence between two runs of the network that differ by one deleted "
            "spike, before and after training."))
    if "lyapunov" in diag:
        lyap = diag["lyapunov"]
        free = " of the network running freely (no stimulus)" \
            if str(lyap.attrs.get("stimulus", "")) == "none" else ""
        figs.append(_svg_figure(
            run, figures.lyapunov(lyap, svg=True), "lyapunov",
            f"Largest Lyapunov exponent{free}, before and after training: running estimate "
            f"over the simulated time for {lyap.sizes.get('seed', 1)} initial conditions.",
            note=LYAPUNOV_NOTE))
    return figs


def _diagnostics_section(run: RunFiles) -> Section:
    title = "Taking the network apart"
    if run.diagnostics_state == "disabled":
        return Section(title, paragraphs=[DIAGNOSTICS_DISABLED], anchor="diagnostics")
    if run.diagnostics_state == "unfinished":
        return Section(title, paragraphs=[DIAGNOSTICS_UNFINISHED], anchor="diagnostics")
    return Section(title, paragraphs=_diagnostics_paragraphs(run),
                   figures=_diagnostics_figures(run), anchor="diagnostics")


# ---------------------------------------------------------------------- run
def _run_section(run: RunFiles) -> Section:
    # the report stage is recorded after this page is written: its row is this page
    stage_rows = [[name, f"{rec.get('seconds', 0):.1f}", rec.get("summary", "")]
                  for name, rec in (run.stages or {}).items()
                  if "summary" in rec and name != "report"]
    stage_rows.append(["report", "", "this page (index.html)"])
    run_dir, versions = run.run_dir, run.versions
    return Section(
        "Run",
        paragraphs=[(f"Run folder: {run_dir.name}. Created {versions.get('created', '?')} "
                     f"on {versions.get('platform', '?')}. Re-render this page with "
                     f"`cortexfit report {run_dir.name}`.")],
        tables=[(["stage", "seconds", "summary"], stage_rows)],
        keyvalues=list(versions.get("packages", {}).items()),
        keyvalues_label="Versions:",
        details=[("Configuration (config.toml, every setting resolved)",
                  (run_dir / "config.toml").read_text(encoding="utf-8"))],
    )


# ---------------------------------------------------------------------- the page
def build_report(run_dir: str | Path) -> Path:
    """Render ``RUN_DIR/index.html`` from the run folder's files; returns its path."""
    run = _read_run(Path(run_dir))
    examples = _pick_units(run.scores,
                           int(run.config.get("report", {}).get("example_units", 6)))
    sections = [
        _summary_section(run),
        _recording_section(run, examples),
        _targets_section(run, examples),
        _training_section(run),
        _fit_section(run, examples),
        _units_section(run),
        _diagnostics_section(run),
        _run_section(run),
    ]
    title = run.config.get("report", {}).get("title") or f"cortexfit: {run.name}"
    subtitle = f"seed {run.config.get('run', {}).get('seed', 0)}"
    if run.dataset:
        subtitle += (f" | data: {run.dataset.get('name', 'shared dataset')}, licence and "
                     "citation under Recording")
    return write_report(run.run_dir / "index.html", title, sections, subtitle=subtitle,
                        alerts=_alerts(run), alerts_title=ALERTS_TITLE)
