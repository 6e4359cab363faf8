"""Render a run's report as one self-contained HTML file with Jinja2.

The page has inline CSS, figures embedded as base64 PNG ``data:`` URIs, download links
(SVG of a figure, CSV of its data) embedded as ``data:`` URIs with the ``download``
attribute, every text autoescaped, and no JavaScript and no external resource, so it opens
offline in any browser.
"""
from __future__ import annotations

import base64
import datetime as _dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from .. import __version__, atomic

__all__ = ["Alert", "Download", "Figure", "Section", "Table", "slug", "write_report"]


def slug(text: str) -> str:
    """``text`` as a lower-case ASCII name (letters, digits and hyphens)."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "section"



@dataclass(frozen=True)
class Download:
    """A file the reader can save from the page: ``data`` embedded as a ``data:`` URI."""

    filename: str
    mime: str  # "image/svg+xml", "text/csv"
    data: bytes
    label: str = ""  # the link text (default: the file's extension, e.g. "SVG")


@dataclass
class Figure:
    """A PNG figure with its caption, an optional short explanation (``note``, shown under
    the caption) and download links."""

    png: bytes
    caption: str
    note: str = ""
    downloads: list[Download] = field(default_factory=list)


@dataclass
class Table:
    """A table; ``scroll`` puts it in a box of limited height that scrolls (many rows);
    ``numeric`` right-aligns every column but the first."""

    header: list[str]
    rows: list[list[object]]
    caption: str = ""
    scroll: bool = False
    numeric: bool = False
    downloads: list[Download] = field(default_factory=list)


@dataclass(frozen=True)
class Alert:
    """One problem shown in the red box at the top of the page: what is wrong and what to
    try."""

    what: str
    advice: str = ""


@dataclass
class Section:
    """One part of a report: a heading, paragraphs, tables, figures, a preformatted block,
    key-value pairs shown inline (``keyvalues``, e.g. package versions) and collapsed blocks
    of preformatted text (``details``: summary line, text).

    ``figures`` holds :class:`Figure` objects or (PNG bytes, caption) pairs; ``tables``
    holds :class:`Table` objects or (header, rows) pairs. ``anchor`` is the section's HTML
    id (default: a slug of the title). A table whose header cells are all empty is drawn
    without a header row.
    """

    title: str
    paragraphs: list[str] = field(default_factory=list)
    figures: list[Figure | tuple[bytes, str]] = field(default_factory=list)
    tables: list[Table | tuple[list[str], list[list[object]]]] = field(default_factory=list)
    preformatted: str = ""
    keyvalues: list[tuple[str, object]] = field(default_factory=list)
    keyvalues_label: str = ""
    details: list[tuple[str, str]] = field(default_factory=list)
    anchor: str = ""


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("cortexfit.report", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )


def _download(d: Download) -> dict:
    label = d.label or d.filename.rsplit(".", 1)[-1].upper()
    return {"filename": d.filename, "label": label, "size": _size(len(d.data)),
            "href": f"data:{d.mime};base64,{base64.b64encode(d.data).decode('ascii')}"}


def _size(n: int) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.1f} MB"
    return f"{n / 1e3:.0f} kB" if n >= 1e3 else f"{n} B"


def _figure(f: Figure | tuple[bytes, str]) -> dict:
    if not isinstance(f, Figure):
        f = Figure(*f)
    return {"data": base64.b64encode(f.png).decode("ascii"), "caption": f.caption,
            "note": f.note, "downloads": [_download(d) for d in f.downloads]}


def _table(t: Table | tuple[list[str], list[list[object]]]) -> dict:
    if not isinstance(t, Table):
        t = Table(*t)
    return {"header": t.header if any(str(h) for h in t.header) else [], "rows": t.rows,
            "caption": t.caption, "scroll": t.scroll, "numeric": t.numeric,
            "downloads": [_download(d) for d in t.downloads]}


def write_report(path: str | Path, title: str, sections: list[Section], *, subtitle: str = "",
                 alerts: list[Alert] | None = None, alerts_title: str = "") -> Path:
    """Write ``sections`` as a single HTML file at ``path`` (atomically) and return the path.

    ``alerts`` are shown first, in a red box headed ``alerts_title``."""
    path = Path(path)
    rendered = []
    used: set[str] = set()
    for sec in sections:
        anchor = sec.anchor or slug(sec.title)
        while anchor in used:
            anchor += "-2"
        used.add(anchor)
        rendered.append({
            "title": sec.title,
            "anchor": anchor,
            "paragraphs": sec.paragraphs,
            "figures": [_figure(f) for f in sec.figures],
            "tables": [_table(t) for t in sec.tables],
            "preformatted": sec.preformatted,
            "keyvalues": [(str(k), str(v)) for k, v in sec.keyvalues],
            "keyvalues_label": sec.keyvalues_label,
            "details": sec.details,
        })
    page = _env().get_template("report.html").render(
        title=title, subtitle=subtitle, sections=rendered, version=__version__,
        alerts=list(alerts or []), alerts_title=alerts_title or "This fit is not a result",
        created=_dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
    )
    # atomically (temporary file, fsync, rename): a kill or a full disk leaves the old page
    return atomic.write_text(path, page)
