"""What several sections share: numbers and sentences in the text, and downloads (a CSV
of a figure's or table's data, a figure as SVG)."""
from __future__ import annotations

import csv
import io

import numpy as np

from .. import figures
from ..html import Download, Figure
from ..runfiles import RunFiles


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
