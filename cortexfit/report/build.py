"""Build a run folder's report from the files in it (``cortexfit report RUN_DIR``).

Everything the report shows is read back from the run folder (the contract in
``reports/README.md``), so a report can be re-rendered at any time without the recording
or any computation: ``config.toml``, ``versions.json``, ``stages.json``, ``recording.nc``,
``targets.nc``, ``history.nc``, ``scores.nc`` and ``diagnostics.nc``.

:func:`build_report` reads the folder into a :class:`RunFiles` and calls one function per
part of the page: the red box of :func:`cortexfit.health.fit_problems` when the fit is not a
result, then Summary, Recording, Targets, Settings search (with ``tune.nc``), Training, Fit, Per unit, the diagnostics and Run.

The folder is read in :mod:`cortexfit.report.runfiles`; the sections are built in
:mod:`cortexfit.report.sections` (``summary``: the red box and Summary; ``data``:
Recording and Targets; ``fit``: Training, Fit and Per unit; ``diagnostics``; ``run``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from .html import write_report
from .runfiles import REQUIRED_FILES, RunFiles, _read_run, diagnostics_state
from .sections.data import _recording_section, _targets_section
from .sections.diagnostics import (
    DIAGNOSTICS_DISABLED,
    DIAGNOSTICS_UNFINISHED,
    LYAPUNOV_NOTE,
    SPECTRUM_NOTE,
    _diagnostics_section,
)
from .sections.fit import _fit_section, _training_section, _units_section
from .sections.run import _run_section
from .sections.spikes import SPIKE_COLUMNS
from .sections.summary import ALERTS_TITLE, _alerts, _summary_section
from .sections.tune import _tune_section

__all__ = [
    "ALERTS_TITLE",
    "DIAGNOSTICS_DISABLED",
    "DIAGNOSTICS_UNFINISHED",
    "LYAPUNOV_NOTE",
    "REQUIRED_FILES",
    "SPECTRUM_NOTE",
    "SPIKE_COLUMNS",
    "RunFiles",
    "build_report",
    "diagnostics_state",
]


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
        _tune_section(run),
        _training_section(run),
        _fit_section(run, examples),
        _units_section(run),
        _diagnostics_section(run),
        _run_section(run),
    ]
    sections = [s for s in sections if s is not None]
    title = run.config.get("report", {}).get("title") or f"cortexfit: {run.name}"
    subtitle = f"seed {run.config.get('run', {}).get('seed', 0)}"
    if run.dataset:
        subtitle += (f" | data: {run.dataset.get('name', 'shared dataset')}, licence and "
                     "citation under Recording")
    return write_report(run.run_dir / "index.html", title, sections, subtitle=subtitle,
                        alerts=_alerts(run), alerts_title=ALERTS_TITLE)
