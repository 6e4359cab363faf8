"""The Settings search section: the candidates of ``[tune]``, their validation scores and
the choice (``tune.nc``)."""
from __future__ import annotations

import json

import numpy as np

from .. import figures
from ..html import Section
from ..runfiles import RunFiles
from .common import _csv_download, _fmt, _svg_figure


def _tune_section(run: RunFiles) -> Section | None:
    result = run.tune
    if result is None:
        return None
    names = [str(k) for k in result["setting"].values]
    chosen = int(result.attrs["chosen"])
    choice = json.loads(result.attrs["chosen_settings"])
    n = result.sizes["candidate"]
    failed = int((result["error"] != "").sum())
    header = ["", *names, "validation r", "best loop", "training r", "rate (Hz)",
              "neurons", "seconds", "error"]
    rows = []
    for i in range(n):
        c = result.isel(candidate=i)
        rows.append(["chosen" if i == chosen else "",
                     *[json.loads(str(v)) for v in c["value"].values],
                     _fmt(float(c["validation"]), 3), _int(c["best_loop"]),
                     _fmt(float(c["pearson_train"])), _fmt(float(c["model_rate"]), 1),
                     _int(c["n_neurons"]), _fmt(float(c["seconds"]), 0), str(c["error"].values)])
    method = result.attrs.get("method", "grid")
    how = ("every combination of the values" if method == "grid" else
           "one setting at a time in the order listed, keeping the best value of each")
    text = (f"The fit settings were chosen on the validation trials, not by hand: {n} "
            f"candidate fits ({how}; on a {result.attrs.get('where', 'Dask cluster')}), each "
            "scored by the mean r of the model's trial average with the validation trials' "
            "average at its best loop. Chosen: "
            + ", ".join(f"{k} = {v!r}" for k, v in choice.items())
            + f" (validation r {float(result['validation'][chosen]):.3f}). The test "
            "(held-out) trials chose nothing: the scores under Fit are on them alone.")
    if failed:
        text += f" {failed} candidate(s) failed (their error is in the table)."
    figure = _svg_figure(run, figures.tune_candidates(result, svg=True), "tune",
                         "Validation score of each candidate setting (orange: chosen).")
    figure.downloads.append(_csv_download(run, "tune", header[1:], [r[1:] for r in rows]))
    return Section("Settings search", paragraphs=[text], figures=[figure],
                   tables=[(header, rows)])


def _int(value) -> str:
    v = float(value)
    return "n/a" if not np.isfinite(v) else str(int(v))
