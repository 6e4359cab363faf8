"""Render a run's report as one self-contained HTML file with Jinja2.

The page has inline CSS, figures embedded as base64 PNG ``data:`` URIs, every text
autoescaped, and no JavaScript and no external resource, so it opens offline in any browser.
"""
from __future__ import annotations

import base64
import datetime as _dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from .. import __version__


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


@dataclass
class Section:
    """One part of a report: a heading, paragraphs, tables, figures (PNG bytes + caption),
    a preformatted block, key-value pairs shown inline (``keyvalues``, e.g. package
    versions) and collapsed blocks of preformatted text (``details``: summary line, text).

    ``anchor`` is the section's HTML id (default: a slug of the title). A table whose
    header cells are all empty is drawn without a header row.
    """

    title: str
    paragraphs: list[str] = field(default_factory=list)
    figures: list[tuple[bytes, str]] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[object]]]] = field(default_factory=list)
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


def write_report(path: str | Path, title: str, sections: list[Section], *, subtitle: str = "") -> Path:
    """Write ``sections`` as a single HTML file at ``path`` and return the path."""
    path = Path(path)
    rendered = []
    used: set[str] = set()
    for sec in sections:
        anchor = sec.anchor or _slug(sec.title)
        while anchor in used:
            anchor += "-2"
        used.add(anchor)
        rendered.append({
            "title": sec.title,
            "anchor": anchor,
            "paragraphs": sec.paragraphs,
            "figures": [
                {"data": base64.b64encode(png).decode("ascii"), "caption": caption}
                for png, caption in sec.figures
            ],
            "tables": [{"header": header if any(str(h) for h in header) else [], "rows": rows}
                       for header, rows in sec.tables],
            "preformatted": sec.preformatted,
            "keyvalues": [(str(k), str(v)) for k, v in sec.keyvalues],
            "keyvalues_label": sec.keyvalues_label,
            "details": sec.details,
        })
    page = _env().get_template("report.html").render(
        title=title, subtitle=subtitle, sections=rendered, version=__version__,
        created=_dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
    )
    path.write_text(page, encoding="utf-8")
    return path
