"""Render a run's report as one self-contained HTML file with Jinja2."""
from __future__ import annotations

import base64
import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from .. import __version__


@dataclass
class Section:
    """One part of a report: a heading, paragraphs, figures (PNG bytes + caption), tables."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    figures: list[tuple[bytes, str]] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[object]]]] = field(default_factory=list)
    preformatted: str = ""


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
    for sec in sections:
        rendered.append({
            "title": sec.title,
            "paragraphs": sec.paragraphs,
            "figures": [
                {"data": base64.b64encode(png).decode("ascii"), "caption": caption}
                for png, caption in sec.figures
            ],
            "tables": [{"header": header, "rows": rows} for header, rows in sec.tables],
            "preformatted": sec.preformatted,
        })
    page = _env().get_template("report.html").render(
        title=title, subtitle=subtitle, sections=rendered, version=__version__,
        created=_dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
    )
    path.write_text(page, encoding="utf-8")
    return path
