"""Build a run folder's report from the files in it (``cortexfit report RUN_DIR``).

Everything the report shows is read back from the run folder (the contract in
``reports/README.md``), so a report can be re-rendered at any time without the recording
or any computation: ``config.toml``, ``versions.json``, ``stages.json``, ``recording.nc``,
``targets.nc``, ``history.nc``, ``scores.nc`` and ``diagnostics.nc``.
"""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import xarray as xr

from ..exceptions import DataError
from . import figures
from .html import Section, write_report

__all__ = ["build_report", "REQUIRED_FILES"]

REQUIRED_FILES = ("config.toml", "versions.json", "recording.nc", "targets.nc", "history.nc",
                  "scores.nc")
_NC = {"engine": "h5netcdf"}


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


def _fmt(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.2f}"


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


def build_report(run_dir: str | Path) -> Path:
    """Render ``RUN_DIR/index.html`` from the run folder's files; returns its path."""
    run_dir = Path(run_dir)
    missing = [name for name in REQUIRED_FILES if not (run_dir / name).is_file()]
    if missing:
        raise DataError("the folder is not a complete cortexfit run", file=run_dir,
                        field="files", found=f"missing {', '.join(missing)}",
                        expected=", ".join(REQUIRED_FILES),
                        hint="Run `cortexfit run CONFIG.toml --out RUN_DIR` first (it skips "
                             "the stages that are already done)")
    config = tomllib.loads((run_dir / "config.toml").read_text(encoding="utf-8"))
    versions = json.loads((run_dir / "versions.json").read_text(encoding="utf-8"))
    stages_path = run_dir / "stages.json"
    stages = (json.loads(stages_path.read_text(encoding="utf-8")).get("stages", {})
              if stages_path.is_file() else {})
    recording = _open(run_dir / "recording.nc")
    targets = _open(run_dir / "targets.nc")
    history = _open(run_dir / "history.nc")
    scores = _open(run_dir / "scores.nc")
    diag = None
    if (run_dir / "diagnostics.nc").is_file():
        from ..diagnostics import load_diagnostics

        diag = load_diagnostics(run_dir / "diagnostics.nc")
    dataset = json.loads(recording.attrs.get("dataset", "{}") or "{}")

    recorded = targets.sizes["unit"]
    n_neurons = targets.sizes.get("neuron", recorded)
    conditions = [str(c) for c in targets["condition"].values]
    has_heldout = "pearson_heldout" in scores
    train_r = float(scores["pearson_train"].mean())
    held_r = float(scores["pearson_heldout"].mean()) if has_heldout else None
    ceiling = float(scores["noise_ceiling"].mean()) if "noise_ceiling" in scores else None
    fit_cfg = {**config.get("network", {}), **config.get("training", {})}
    examples = _pick_units(scores, int(config.get("report", {}).get("example_units", 6)))
    name = config.get("run", {}).get("name", run_dir.name)
    title = config.get("report", {}).get("title") or f"cortexfit: {name}"

    # ------------------------------------------------------------ summary
    rows = [
        ["recording", _first_sentence(dataset.get("description", config["data"]["format"]))
         if dataset else config["data"].get("path") or config["data"]["format"]],
        ["recorded units fitted", recorded],
        ["conditions", ", ".join(conditions)],
        ["network", f"{n_neurons} {fit_cfg.get('neuron_model', 'theta')} neurons "
                    f"({recorded} recorded + {n_neurons - recorded} auxiliary), "
                    f"{'Dale' if fit_cfg.get('dale') else 'no Dale constraint'}"],
        ["training loops", len(history["loop"])],
        ["Pearson r, training targets", _fmt(train_r)],
    ]
    if has_heldout:
        rows += [["Pearson r, held-out trials", _fmt(held_r)],
                 ["noise ceiling (held-out)", _fmt(ceiling)],
                 ["fraction of the ceiling", _fmt(held_r / ceiling if ceiling else np.nan)]]
    verdict = (
        f"The model's trial-averaged rates correlate with the training targets at "
        f"{train_r:.2f} (mean over {recorded} units x {len(conditions)} conditions)."
    )
    if has_heldout:
        verdict += (
            f" On trials the fit never saw (held out), the correlation is {held_r:.2f}. The "
            f"data's own noise ceiling on those trials is {ceiling:.2f}: a perfect model would "
            f"score about that, so the fit reaches {held_r / ceiling:.0%} of what the data "
            "allow."
        )
    else:
        why = _sentence(scores.attrs.get("heldout", ""))
        if "no held-out trials" not in why.lower():
            why = ("There are no held-out trials. " + why).strip()
        verdict += (" " + why + " The score therefore says how well the network reproduces "
                    "the targets, not how well it predicts unseen data.")
    sections = [Section("Summary", paragraphs=[verdict], tables=[(["", ""], rows)])]

    # ------------------------------------------------------------ recording
    rec_paragraphs = []
    rec_figures = []
    rates_only = bool(int(recording.attrs.get("rates_only", 0)))
    if rates_only:
        rec_paragraphs.append(
            f"{_sentence(recording.attrs.get('summary', ''))} The recording holds "
            "trial-averaged rates only: there are no spikes to show and no single trials to "
            "hold out.")
    elif "spike_time" in recording:
        rec_figures.append((figures.raster_examples(recording),
                            "Spike rasters of one trial of each condition, aligned on "
                            f"{recording.attrs.get('align_event', 'the event')}; vertical "
                            "lines mark the trial events."))
    rec_figures.append((figures.psth_examples(targets, examples[:4]),
                        "PSTHs per condition"
                        + (" (trial-averaged rates as distributed)" if rates_only else
                           " (average over the training trials, smoothed as in Targets)")
                        + ": example units in colour, the mean of all "
                        f"{recorded} fitted units in black, the 10-90 % range of units shaded."))
    if dataset:
        rec_paragraphs.append(f"Dataset: {dataset.get('description', dataset.get('name'))}")
        rec_paragraphs.append(f"Licence: {dataset.get('license', 'not stated')}.")
        for cite in dataset.get("citation", []):
            rec_paragraphs.append(f"Cite: {cite}")
    description = str(recording.attrs.get("summary", ""))
    sections.append(Section(
        "Recording", paragraphs=rec_paragraphs, figures=rec_figures,
        tables=[(["", ""], _recording_rows(recording, targets, config))],
        details=([("Full description of the recording", description)]
                 if description and not rates_only else []),
    ))

    # ------------------------------------------------------------ targets
    attrs = targets.attrs
    t_par = []
    if "align_event" in attrs and "window_start" in attrs:
        t_par.append(
            f"Trials aligned on {attrs['align_event']}, window [{attrs['window_start']:g}, "
            f"{attrs['window_stop']:g}] s, {attrs['bin_size'] * 1000:g} ms bins, "
            f"{attrs['kernel']} kernel of width {attrs['kernel_width'] * 1000:.3g} ms; "
            f"{recorded} units kept.")
        dropped = json.loads(attrs.get("dropped_units", "[]"))
        if dropped:
            t_par.append(f"Dropped below {attrs['min_rate']:g} Hz: {', '.join(dropped[:40])}"
                         + (" ..." if len(dropped) > 40 else "") + ".")
    if "unit_selection" in attrs:
        t_par.append(f"Units: {attrs['unit_selection']}.")
    tables = []
    if "n_trials" in targets:
        n_trials = targets["n_trials"]
        tables.append((["condition", "training trials", "held-out trials"],
                       [[c, int(n_trials.sel(condition=c, split="train")),
                         int(n_trials.sel(condition=c, split="heldout"))] for c in conditions]))
    truth = None
    if "expected_rate" in recording:
        truth = recording["expected_rate"].rename({"truth_time": "time"})
    n_aux = int((targets["role"] == "auxiliary").sum()) if "role" in targets else 0
    aux = config.get("auxiliary", {})
    t_par.append(
        f"{n_aux} auxiliary neurons (aux_ratio = {aux.get('aux_ratio', 0):g}) have targets from "
        f"OU processes (tau_c = {aux.get('tau_c', 0):g} s, amplitude "
        f"{aux.get('amplitude', 0):g}) passed through the theta f-I curve: they give the "
        "network room to generate the recorded activity (Kim & Chow 2018, Figure 5).")
    t_figs = [(figures.target_heatmaps(targets), "Trial-averaged rates of the training trials, "
               "per condition.")]
    t_figs.append((figures.example_units(targets, examples, truth),
                   "PSTHs of example units: training-trial average (solid)"
                   + (", held-out average (dotted)" if "rate_heldout" in targets else "")
                   + (" and the ground truth (grey)" if truth is not None else "") + "."))
    if n_aux:
        t_figs.append((figures.auxiliary_traces(targets), "A few auxiliary target rates."))
    sections.append(Section("Targets", paragraphs=t_par, tables=tables, figures=t_figs))

    # ------------------------------------------------------------ training
    last = history.isel(loop=-1)
    sections.append(Section(
        "Training",
        paragraphs=[
            f"RLS (Kim & Chow 2018) for {len(history['loop'])} loops over the "
            f"{len(conditions)} conditions, each with its own stimulus, updating every "
            f"{fit_cfg.get('update_every', 0) * 1000:g} ms (lambda = {fit_cfg.get('lam')}). "
            f"Last loop: single-trial r = {float(last['pearson']):.2f}, relative weight "
            f"change {float(last['weight_change']):.2f}, mean rate "
            f"{float(last['rate']):.1f} Hz, frozen synapses {float(last['frozen']):.1%}.",
        ],
        figures=[(figures.learning_curve(history), "Learning curve over training loops.")],
    ))

    # ------------------------------------------------------------ fit
    fit_text = (f"The model's trial average over {scores.attrs.get('n_trials', '?')} fresh "
                "trials per condition, binned and smoothed exactly like the data.")
    if not has_heldout:
        fit_text += (" There are no held-out trials, so the model is compared with the "
                     "targets it was trained on.")
    fit_figs = [
        (figures.heldout_fit(targets, scores, examples),
         ("Held-out data (dotted) and the model (solid); each panel gives the unit's mean r "
          "and its noise ceiling." if has_heldout else
          "Targets (dotted) and the model (solid); each panel gives the unit's mean r.")
         + " Units span the range of scores, best first."),
        (figures.score_distributions(scores),
         "Distribution of per-unit, per-condition scores"
         + ("; right: held-out r against the noise ceiling (dashed: equal)." if has_heldout
            else ".")),
    ]
    sections.append(Section("Fit", paragraphs=[fit_text], figures=fit_figs))

    # ------------------------------------------------------------ diagnostics
    if diag is not None and "lesion" in diag and "shuffle" in diag:
        among = ("among recorded neurons" if diag["shuffle"].attrs.get("scope", "recorded")
                 == "recorded" else "of all trained synapses (too few between recorded "
                 "neurons)")
        d_par = [
            "Lesion: every outgoing synapse of a random fraction of neurons cut; shuffle: the "
            f"trained weights {among} permuted. Both are scored again on the "
            f"same test trials ({config['diagnostics']['n_repeats']} "
            f"repeat{'' if config['diagnostics']['n_repeats'] == 1 else 's'}).",
        ]
        if "quasistatic" in diag:
            d_par.append("Quasi-static prediction u = W phi(u + I): mean r "
                         f"{float(diag['quasistatic']['mean_pearson'].mean()):.2f}.")
        if "lyapunov" in diag:
            lam = diag["lyapunov"]["lyapunov_mean"]
            d_par.append("Largest Lyapunov exponent (1/s), "
                         + ", ".join(f"{s}: {float(lam.sel(stage=s)):.1f}"
                                     for s in lam["stage"].values) + ".")
        caption = ("Top: lesion and shuffle scores by fraction (0 = the intact network; mean "
                   "and standard deviation over repeats).")
        if "spectrum" in diag:
            caption += (" Eigenvalues of the weight matrix W before and after training (dashed: "
                        "the random-matrix bulk radius of the initial network).")
        if "perturbation" in diag:
            caption += (" Phase divergence between two runs of the network that differ by one "
                        "deleted spike, before and after training.")
        d_figs = [(figures.diagnostics_overview(diag["lesion"], diag["shuffle"],
                                                diag.get("spectrum"), diag.get("perturbation")),
                   caption)]
        sections.append(Section("Taking the network apart", paragraphs=d_par, figures=d_figs,
                                anchor="diagnostics"))
    else:
        sections.append(Section("Taking the network apart",
                                paragraphs=["Diagnostics were not run ([diagnostics] enabled "
                                            "= false)."], anchor="diagnostics"))

    # ------------------------------------------------------------ run
    # the report stage is recorded after this page is written: its row is this page
    stage_rows = [[name, f"{rec.get('seconds', 0):.1f}", rec.get("summary", "")]
                  for name, rec in stages.items() if "summary" in rec and name != "report"]
    stage_rows.append(["report", "", "this page (index.html)"])
    packages = versions.get("packages", {})
    sections.append(Section(
        "Run",
        paragraphs=[f"Run folder: {run_dir.name}. Created {versions.get('created', '?')} on "
                    f"{versions.get('platform', '?')}. Re-render this page with "
                    f"`cortexfit report {run_dir.name}`."],
        tables=[(["stage", "seconds", "summary"], stage_rows)],
        keyvalues=list(packages.items()),
        keyvalues_label="Versions:",
        details=[("Configuration (config.toml, every setting resolved)",
                  (run_dir / "config.toml").read_text(encoding="utf-8"))],
    ))
    subtitle = f"seed {config.get('run', {}).get('seed', 0)}"
    if dataset:
        subtitle += f" | data: {dataset.get('name', 'shared dataset')}, licence and citation " \
                    "under Recording"
    return write_report(run_dir / "index.html", title, sections, subtitle=subtitle)
