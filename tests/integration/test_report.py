"""The run report (index.html): one self-contained, escaped, JavaScript-free HTML file whose
figures are embedded PNGs, checked by parsing it and by rendering it in headless Chromium;
the red box of a fit that is not a result, the diagnostics' state, literal labels, the
per-unit table, the model's rasters and heat maps, the download links, the explanations
under the Lyapunov and spectrum figures and the legends' placement.

Two run folders are built once per session: a small demo (synthetic recording, held-out
trials, every diagnostic but the Lyapunov exponents) and the rates-only ALM PSTH dataset
(no spikes, no held-out trials; needs the shared data, so it fails in CI when the data are
missing). Chromium comes from Debian's ``chromium`` package (``.ci/ensure-chromium``, run by
``make test``); without it the browser test fails when ``CI`` is set and skips otherwise.
"""
from __future__ import annotations

import base64
import binascii
import csv
import html as html_lib
import io
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import matplotlib
import markupsafe
import matplotlib.image
import numpy as np
import pytest
import xarray as xr

from cortexfit.fit import FittedNetwork
from cortexfit.health import fit_problems
from cortexfit.pipeline import run
from cortexfit.report import Section, write_report
from cortexfit.report import build as report_build
from cortexfit.report import figures as report_figures
from cortexfit.report.html import Alert, Download, Figure, Table
from cortexfit.targets import crop_to_score_window

XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
SECTIONS = {  # id -> heading
    "summary": "Summary",
    "recording": "Recording",
    "targets": "Targets",
    "training": "Training",
    "fit": "Fit",
    "units": "Per unit",
    "diagnostics": "Taking the network apart",
    "run": "Run",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr"}
_SMALL_DIAGNOSTICS = {"n_repeats": 1, "n_trials": 1, "lyapunov_seeds": 2,
                      "lesion_fractions": [0.1, 0.4], "shuffle_fractions": [0.5, 1.0]}
_NC = {"engine": "h5netcdf"}
#: a condition label and a unit suffix that matplotlib's math parser rejects, with markup
WEIRD_CONDITION = "$x_$ <i>cond</i> a_b^c"
WEIRD_UNIT = " $y^$ a_b^c"


# ------------------------------------------------------------------ run folders
@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """The demo with few loops and repeats; the title carries markup."""
    out = tmp_path_factory.mktemp("report") / "demo"
    run({"run": {"name": "demo"},
         "training": {"loops": 2},
         "evaluate": {"n_trials": 4, "n_splits": 20},
         "diagnostics": _SMALL_DIAGNOSTICS,
         "report": {"title": f"Demo report {XSS}", "example_units": 4}},
        out, verbosity=0)
    return out


@pytest.fixture(scope="session")
def psth_run(shared_data, tmp_path_factory) -> Path:
    """The rates-only ALM PSTH dataset (no held-out trials, no spikes)."""
    out = tmp_path_factory.mktemp("report") / "psth"
    run({"run": {"name": "psth"},
         "data": {"format": "alm_kim2023_psth"},
         "targets": {"max_units": 30},
         "auxiliary": {"min_neurons": 0},
         "training": {"loops": 2},
         "evaluate": {"n_trials": 4},
         "diagnostics": _SMALL_DIAGNOSTICS},
        out, verbosity=0)
    return out


# ------------------------------------------------------------------ parsing
class _Page(HTMLParser):
    """Collects what the checks need and the structural errors (unbalanced tags)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.ids: list[str] = []
        self.text: dict[str, list[str]] = {}  # tag -> texts directly inside it
        self.all_text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if "id" in attrs:
            self.ids.append(attrs["id"])

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}> "
                               f"at line {self.getpos()[0]}")
            if tag in self.stack:  # recover
                while self.stack.pop() != tag:
                    pass
            return
        self.stack.pop()

    def handle_data(self, data):
        if self.stack:
            self.text.setdefault(self.stack[-1], []).append(data)
        self.all_text.append(data)

    @property
    def plain(self) -> str:
        """All text, whitespace collapsed."""
        return " ".join(" ".join(self.all_text).split())


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page


def _read(run_dir: Path) -> tuple[str, _Page]:
    text = (run_dir / "index.html").read_text(encoding="utf-8")
    return text, _parse(text)


def _check_structure(text: str, page: _Page) -> None:
    assert text.lstrip().lower().startswith("<!doctype html>")
    assert not page.errors, page.errors[:5]
    assert not page.stack, f"unclosed tags: {page.stack}"
    tag_names = [t for t, _ in page.tags]
    for tag in ("html", "head", "title", "body", "main"):
        assert tag_names.count(tag) == 1, tag
    assert [t for t in tag_names if t == "h1"] == ["h1"]
    assert len(page.ids) == len(set(page.ids)), "duplicate ids"
    h2 = [" ".join(h.split()) for h in page.text.get("h2", [])]
    h2 = [h for h in h2 if h != report_build.ALERTS_TITLE]  # the red box's heading
    assert h2 == list(SECTIONS.values()), h2
    sections = [a.get("id") for t, a in page.tags if t == "section"]
    assert sections == list(SECTIONS), sections
    # every link points at an element that exists, or is a download embedded in the page
    for tag, attrs in page.tags:
        if tag == "a":
            href = attrs.get("href") or ""
            if "download" in attrs:
                assert href.startswith(("data:image/svg+xml;base64,", "data:text/csv;base64,")), \
                    href[:60]
            else:
                assert href.startswith("#") and href[1:] in page.ids, href


def _check_self_contained(text: str, page: _Page) -> None:
    for tag, attrs in page.tags:
        assert tag not in ("script", "link", "iframe", "object", "embed", "base"), tag
        for name in ("src", "href", "srcset", "action", "data", "poster"):
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//", "file:", "javascript:")), \
                (tag, name, value[:80])
        assert not any(name.startswith("on") for name in attrs), (tag, attrs.keys())
    lowered = text.lower()
    assert "<script" not in lowered  # JavaScript-free
    assert "url(" not in lowered and "@import" not in lowered  # no CSS fetches


def _images(page: _Page) -> list[np.ndarray]:
    """Every <img> decoded: a base64 PNG data URI that matplotlib can read."""
    decoded = []
    for tag, attrs in page.tags:
        if tag != "img":
            continue
        src = attrs.get("src") or ""
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix), src[:60]
        try:
            png = base64.b64decode(src[len(prefix):], validate=True)
        except binascii.Error as exc:  # pragma: no cover - the assertion message
            pytest.fail(f"an image is not valid base64: {exc}")
        assert png.startswith(PNG_SIGNATURE)
        assert len(png) > 5_000, len(png)
        assert attrs.get("alt"), "an image without alt text"
        pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
        assert pixels.ndim == 3 and pixels.shape[0] >= 150 and pixels.shape[1] >= 300, \
            pixels.shape
        assert float(pixels[..., :3].var()) > 1e-3, "a blank image"
        decoded.append(pixels)
    return decoded


def _check_versions_and_config(run_dir: Path, page: _Page) -> None:
    plain = page.plain
    versions = json.loads((run_dir / "versions.json").read_text(encoding="utf-8"))
    assert versions["packages"]
    for name, version in versions["packages"].items():
        assert f"{name} {version}" in plain, name
    config = (run_dir / "config.toml").read_text(encoding="utf-8")
    assert config.strip() in [t.strip() for t in page.text.get("pre", [])]
    # the config sits in a collapsed <details> element
    tags = [t for t, _ in page.tags]
    assert "details" in tags and "summary" in tags


# ------------------------------------------------------------------ the demo report
def test_demo_report_parses_with_every_section(demo_run):
    text, page = _read(demo_run)
    _check_structure(text, page)
    plain = page.plain
    assert "held-out" in plain and "noise ceiling" in plain
    assert "report this page (index.html)" in plain  # the stages table


def test_demo_report_images_are_embedded_non_blank_pngs(demo_run):
    _, page = _read(demo_run)
    images = _images(page)
    # raster, PSTHs, heatmaps, example units, auxiliary, learning curve, held-out fit, heat
    # maps and rasters of data and model, score distributions, lesion and shuffle, spectrum,
    # perturbation, Lyapunov
    assert len(images) == 14


def test_demo_report_is_self_contained(demo_run):
    text, page = _read(demo_run)
    _check_self_contained(text, page)


def test_demo_report_escapes_text(demo_run):
    text, page = _read(demo_run)
    assert XSS not in text
    assert f"Demo report {XSS_ESCAPED}" in text  # <title> and <h1>
    assert str(markupsafe.escape(f'title = "Demo report {XSS}"')) in text  # config.toml
    assert page.text["title"] == [f"Demo report {XSS}"]
    assert page.text["h1"] == [f"Demo report {XSS}"]


def test_demo_report_shows_config_and_versions(demo_run):
    _check_versions_and_config(demo_run, _read(demo_run)[1])


def test_demo_report_rebuilds_from_the_run_folder(demo_run, tmp_path, monkeypatch):
    """``build_report`` renders the page again from the files alone. While it draws, every
    figure is checked: no legend over any axes; the heat maps of data and model share one
    colour scale and one unit order."""
    drawn = []
    save = report_figures._save

    def checked(fig, fmt):
        if fmt == "png":
            titles = [ax.get_title() for ax in fig.axes]
            images = [(ax.get_title(), im) for ax in fig.axes for im in ax.get_images()]
            drawn.append((titles, _legend_overlaps(fig), images))
        return save(fig, fmt)

    monkeypatch.setattr(report_figures, "_save", checked)
    copy = tmp_path / "copy"
    shutil.copytree(demo_run, copy)
    (copy / "index.html").unlink()
    path = report_build.build_report(copy)
    text, page = _read(copy)
    assert path == copy / "index.html"
    _check_structure(text, page)
    assert len(_images(page)) == 14
    assert len(drawn) == 14  # every figure of the page
    for titles, overlaps, _ in drawn:
        assert overlaps == [], (titles, overlaps)
    heat, = [images for titles, _, images in drawn
             if any(t.startswith("model: ") for t in titles)]
    targets, scores = _load(demo_run / "targets.nc"), _load(demo_run / "scores.nc")
    targets = crop_to_score_window(targets)  # the heat maps show the scored window
    order = np.argsort(targets["rate"].isel(condition=0).argmax("time").values, kind="stable")
    assert len(heat) == 2 * targets.sizes["condition"]
    assert len({im.get_clim() for _, im in heat}) == 1
    for title, im in heat:
        source, condition = title.split(": ", 1)
        rate = (targets["rate"] if source == "data" else scores["model_rate"]).sel(
            condition=condition)
        np.testing.assert_allclose(np.asarray(im.get_array()), rate.values[order])


def _legend_overlaps(fig) -> list[str]:
    """Legends (of axes or of the figure) that overlap the area of any visible axes."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    found = []
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in panels:
            if box.overlaps(ax.get_window_extent(renderer)):
                found.append(f"legend {[t.get_text() for t in legend.get_texts()][:3]} over "
                             f"the axes {ax.get_title()!r}")
    return found


# ------------------------------------------------------------------ the rates-only report
@pytest.mark.shared_data
def test_psth_report_structure_images_and_resources(psth_run):
    text, page = _read(psth_run)
    _check_structure(text, page)
    _check_self_contained(text, page)
    # PSTHs, heatmaps, example units, auxiliary, learning curve, fit, heat maps of data and
    # model, model rasters, scores, lesion and shuffle, spectrum, perturbation, Lyapunov
    assert len(_images(page)) == 13
    _check_versions_and_config(psth_run, page)
    # the per-unit table has the columns that exist without held-out trials
    assert _table_rows(_section_html(text, "units"))[0] == [
        "unit", "data rate (Hz)", "model rate (Hz)", "train r"]


@pytest.mark.shared_data
def test_psth_report_cites_the_dataset_and_has_no_heldout_trials(psth_run):
    from cortexfit.datasets.shared import SHARED_DATASETS

    info = SHARED_DATASETS["alm_kim2023_psth"]
    plain = _read(psth_run)[1].plain
    assert " ".join(str(info["license"]).split()) in plain
    citations = info["citation"]
    assert citations
    for cite in citations:
        assert " ".join(cite.split()) in plain
    lowered = plain.lower()
    assert "no held-out trials" in lowered
    assert "trial-averaged rates only" in lowered
    assert "Pearson r, held-out trials" not in plain  # no held-out rows in the summary


# ------------------------------------------------------------------ html.py on its own
def test_write_report_escapes_every_field(tmp_path):
    png = _tiny_png()
    download = Download(f"{XSS}.csv", "text/csv", XSS.encode(), label=XSS)
    section = Section(XSS, paragraphs=[XSS],
                      figures=[(png, XSS), Figure(png, XSS, note=XSS, downloads=[download])],
                      tables=[([XSS, "b"], [[XSS, 1]]),
                              Table([XSS], [[XSS]], caption=XSS, scroll=True,
                                    downloads=[download])],
                      preformatted=XSS, keyvalues=[(XSS, XSS)], keyvalues_label=XSS,
                      details=[(XSS, XSS)])
    path = write_report(tmp_path / "index.html", XSS, [section], subtitle=XSS,
                        alerts=[Alert(XSS, XSS)], alerts_title=XSS)
    text = path.read_text(encoding="utf-8")
    assert XSS not in text and "<script" not in text.lower()
    # 13 fields as before; figure caption, alt, note, table header, cell, caption, alert
    # title, what and advice; two download labels and two file names
    assert text.count(XSS_ESCAPED) >= 13 + 9 + 4
    page = _parse(text)
    assert not page.errors and not page.stack
    links = [a for t, a in page.tags if t == "a" and "download" in a]
    assert [a["download"] for a in links] == [f"{XSS}.csv"] * 2
    for a in links:  # the download's bytes, base64 in a data: URI
        assert base64.b64decode(a["href"].split(",", 1)[1]) == XSS.encode()


def _tiny_png() -> bytes:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [0, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def test_figures_are_pure(demo_run):
    """Same data in, same PNG (and SVG) out; inputs and matplotlib's settings untouched."""
    from cortexfit.diagnostics import load_diagnostics

    figures = report_figures
    diag = load_diagnostics(demo_run / "diagnostics.nc")
    targets = _load(demo_run / "targets.nc")
    before = {k: v.copy(deep=True) for k, v in diag.items()}
    targets_before = targets.copy(deep=True)
    rc_before = dict(matplotlib.rcParams)
    units = [str(u) for u in targets["unit"].values[:3]]
    first = figures.lesion_shuffle(diag["lesion"], diag["shuffle"], svg=True)
    psth = figures.psth_examples(targets, units)
    assert first.png.startswith(PNG_SIGNATURE) and first.svg.startswith(b"<?xml")
    assert psth.svg is None  # SVG only when asked for
    assert figures.lesion_shuffle(diag["lesion"], diag["shuffle"], svg=True) == first
    assert figures.psth_examples(targets, units) == psth
    spectrum = figures.spectrum(diag["spectrum"])
    assert spectrum.png.startswith(PNG_SIGNATURE) and spectrum.png != first.png
    for key, ds in diag.items():
        assert ds.identical(before[key]), key
    assert targets.identical(targets_before)
    assert dict(matplotlib.rcParams) == rc_before


# ------------------------------------------------------------------ helpers for run folders
def _load(path: Path) -> xr.Dataset:
    with xr.open_dataset(path, **_NC) as ds:
        return ds.load()


def _rewrite(path: Path, edit) -> None:
    """Replace a run folder's NetCDF file by ``edit(its Dataset)``."""
    ds = edit(_load(path))
    path.unlink()
    ds.to_netcdf(path, **_NC)


def _copy(run_dir: Path, dst: Path) -> Path:
    """A copy of a run folder without its report."""
    shutil.copytree(run_dir, dst)
    (dst / "index.html").unlink()
    return dst


def _section_html(text: str, anchor: str) -> str:
    found = re.search(rf'<section id="{anchor}">(.*?)</section>', text, re.S)
    assert found, anchor
    return found.group(1)


class _Rows(HTMLParser):
    """The text of every table cell, row by row."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _table_rows(fragment: str) -> list[list[str]]:
    parser = _Rows()
    parser.feed(fragment)
    return parser.rows


def _downloads(fragment: str) -> dict[str, tuple[str, bytes]]:
    """file name -> (MIME type, bytes) of every download link in ``fragment``."""
    found = {}
    for tag, attrs in _parse(fragment).tags:
        if tag == "a" and "download" in attrs:
            mime, data = attrs["href"][len("data:"):].split(";base64,", 1)
            found[attrs["download"]] = (mime, base64.b64decode(data, validate=True))
    return found


def _figures_html(text: str) -> list[str]:
    return re.findall(r"<figure>(.*?)</figure>", text, re.S)


def _caption(fragment: str) -> str:
    return " ".join(html_lib.unescape(
        re.search(r"<figcaption>(.*?)</figcaption>", fragment, re.S).group(1)).split())


def _svg_text(svg: bytes) -> str:
    """Every text of an SVG (matplotlib keeps text as text: svg.fonttype = none)."""
    return " ".join(ET.fromstring(svg).itertext())


def _relabel(ds: xr.Dataset, mapping: dict[str, str]) -> xr.Dataset:
    """Every string coordinate or variable with its values renamed through ``mapping``."""
    for name in list(ds.coords) + list(ds.data_vars):
        var = ds[name]
        if var.dtype.kind in "UO" and var.ndim:
            values = np.array([mapping.get(str(v), str(v)) for v in var.values.ravel()])
            new = (var.dims, values.reshape(var.shape), var.attrs)
            ds = ds.assign_coords({name: new}) if name in ds.coords else ds.assign({name: new})
    return ds


# ------------------------------------------------------------------ the red box
def test_red_box_at_the_top_when_the_model_is_silent(demo_run, tmp_path):
    copy = _copy(demo_run, tmp_path / "silent")
    _rewrite(copy / "scores.nc", lambda ds: ds.assign(model_rate=ds["model_rate"] * 0.0))
    targets = _load(copy / "targets.nc")
    problems = fit_problems(_load(copy / "scores.nc"), targets)
    assert {"silent", "all_silent"} <= {p.check for p in problems}
    report_build.build_report(copy)
    text, page = _read(copy)
    _check_structure(text, page)
    box = re.search(r'<main>\s*<div class="alert" id="problems" role="alert">(.*?)</div>',
                    text, re.S)
    assert box, "the red box is not the first thing of the page's content"
    plain = _parse(box.group(1)).plain
    assert plain.startswith(report_build.ALERTS_TITLE)
    for problem in problems:  # each problem's text and what to try
        assert " ".join(problem.what.split()) in plain
        assert " ".join(problem.advice.split()) in plain
    assert plain.count("What to try:") == len(problems)
    assert re.search(r"\.alert \{[^}]*border: 3px solid #c62828", text)  # a red border
    # the per-unit table marks every unit as silent
    rows = _table_rows(_section_html(text, "units"))[1:]
    assert len(rows) == targets.sizes["unit"]
    assert all(row[5].endswith("(silent)") for row in rows)


def test_no_red_box_for_a_good_fit(demo_run, tmp_path):
    # the demo's own report has the box exactly when the health checks find a problem
    text, _ = _read(demo_run)
    found = fit_problems(_load(demo_run / "scores.nc"), _load(demo_run / "targets.nc"))
    assert ('id="problems"' in text) == bool(found)
    # a fit whose model reproduces the data: no box at all
    copy = _copy(demo_run, tmp_path / "good")
    rate = _load(copy / "targets.nc")["rate"]

    def good(ds: xr.Dataset) -> xr.Dataset:
        model = ds["model_rate"]  # on the scored bins of the targets' time axis
        ds["model_rate"] = model.copy(data=rate.sel(unit=model["unit"], time=model["time"])
                                      .transpose(*model.dims).values)
        ds["pearson_train"] = xr.full_like(ds["pearson_train"], 0.9)
        ds["pearson_heldout"] = 0.95 * ds["noise_ceiling"]
        return ds

    _rewrite(copy / "scores.nc", good)
    assert fit_problems(_load(copy / "scores.nc"), _load(copy / "targets.nc")) == []
    report_build.build_report(copy)
    text, page = _read(copy)
    _check_structure(text, page)
    assert 'class="alert"' not in text and report_build.ALERTS_TITLE not in text
    assert "(silent)" not in _section_html(text, "units")


# ------------------------------------------------------------------ diagnostics' state
def test_finished_diagnostics_are_shown(demo_run):
    section = report_build._diagnostics_section(report_build._read_run(demo_run))
    assert report_build.DIAGNOSTICS_UNFINISHED not in section.paragraphs
    assert report_build.DIAGNOSTICS_DISABLED not in section.paragraphs
    assert len(section.figures) == 4  # lesion and shuffle, spectrum, perturbation, Lyapunov


@pytest.mark.parametrize("case", ["disabled", "no diagnostics.nc", "stage not finished"])
def test_diagnostics_state_is_told_truthfully(demo_run, tmp_path, case):
    copy = _copy(demo_run, tmp_path / "run")
    if case == "disabled":
        config = copy / "config.toml"
        text = config.read_text(encoding="utf-8")
        assert "[diagnostics]\nenabled = true\n" in text
        config.write_text(text.replace("[diagnostics]\nenabled = true\n",
                                       "[diagnostics]\nenabled = false\n"), encoding="utf-8")
        (copy / "diagnostics.nc").unlink()  # what the pipeline does when they are disabled
        expected = report_build.DIAGNOSTICS_DISABLED
    elif case == "no diagnostics.nc":  # killed before the file was written
        (copy / "diagnostics.nc").unlink()
        expected = report_build.DIAGNOSTICS_UNFINISHED
    else:  # killed in a rerun: stages.json says started, diagnostics.nc is an older run's
        manifest = json.loads((copy / "stages.json").read_text(encoding="utf-8"))
        assert "finished" in manifest["stages"]["diagnostics"]
        manifest["stages"]["diagnostics"] = {"started": "0123456789abcdef",
                                             "started_at": "2026-01-01T00:00:00+00:00"}
        (copy / "stages.json").write_text(json.dumps(manifest), encoding="utf-8")
        expected = report_build.DIAGNOSTICS_UNFINISHED
    section = report_build._diagnostics_section(report_build._read_run(copy))
    assert section.paragraphs == [expected] and section.figures == []
    assert section.title == SECTIONS["diagnostics"] and section.anchor == "diagnostics"
    page = write_report(tmp_path / "diag.html", "t", [section]).read_text(encoding="utf-8")
    assert str(markupsafe.escape(expected)) in page


# ------------------------------------------------------------------ labels shown literally
def test_labels_with_math_and_markup_are_shown_literally(demo_run, tmp_path):
    import matplotlib.pyplot as plt

    fig = plt.figure()  # matplotlib's default would parse the labels as math and fail
    fig.text(0.5, 0.5, WEIRD_CONDITION)
    with pytest.raises(ValueError):
        fig.canvas.draw()
    plt.close(fig)

    copy = _copy(demo_run, tmp_path / "labels")
    targets = _load(copy / "targets.nc")
    condition = str(targets["condition"].values[0])
    units = [str(u) for u in targets["unit"].values]
    mapping = {condition: WEIRD_CONDITION, **{u: u + WEIRD_UNIT for u in units}}
    for name in ("recording.nc", "targets.nc", "scores.nc"):
        _rewrite(copy / name, lambda ds: _relabel(ds, mapping))
    report_build.build_report(copy)
    text, page = _read(copy)
    _check_structure(text, page)
    assert "<i>" not in text  # the markup in the label is escaped
    assert str(markupsafe.escape(WEIRD_CONDITION)) in text
    assert WEIRD_CONDITION in page.plain and units[0] + WEIRD_UNIT in page.plain
    assert _table_rows(_section_html(text, "units"))[1][0] == units[0] + WEIRD_UNIT
    # the figures drew the labels as written (their SVGs keep text as text)
    svgs = {name: body for name, (_, body) in _downloads(text).items()
            if name.endswith(".svg")}
    heat = _svg_text(svgs["demo-heatmaps-data-model.svg"])
    assert f"data: {WEIRD_CONDITION}" in heat and f"model: {WEIRD_CONDITION}" in heat
    assert WEIRD_UNIT.strip() in _svg_text(svgs["demo-model-vs-data.svg"])
    assert f"{WEIRD_CONDITION} model" in _svg_text(svgs["demo-model-vs-data.svg"])  # legend
    assert len(_images(page)) == 14


# ------------------------------------------------------------------ the per-unit table
UNIT_HEADER = ["unit", "held-out r", "noise ceiling", "fraction of ceiling", "data rate (Hz)",
               "model rate (Hz)", "train r"]


def test_per_unit_table(demo_run):
    text, page = _read(demo_run)
    section = _section_html(text, "units")
    assert '<div class="scroll">' in section  # 80 rows: in a box that scrolls
    rows = _table_rows(section)
    assert rows[0] == UNIT_HEADER
    scores, targets = _load(demo_run / "scores.nc"), _load(demo_run / "targets.nc")
    units = [str(u) for u in targets["unit"].values]
    assert [row[0] for row in rows[1:]] == units
    for row in rows[1:]:
        s, unit = scores.sel(unit=row[0]), row[0]
        held = float(s["pearson_heldout"].mean())
        ceiling = float(s["noise_ceiling"].mean())
        expected = [unit, f"{held:.2f}", f"{ceiling:.2f}", f"{held / ceiling:.2f}",
                    # data and model rates: means over the scored window
                    f"{float(crop_to_score_window(targets)['rate'].sel(unit=unit).mean()):.2f}",
                    f"{float(s['model_rate'].mean()):.2f}",
                    f"{float(s['pearson_train'].mean()):.2f}"]
        assert row[:5] + [row[5].removesuffix(" (silent)"), row[6]] == expected, unit
    # the CSV download holds the same table, as numbers
    (mime, body), = [v for k, v in _downloads(section).items() if k == "demo-units.csv"]
    table = list(csv.reader(io.StringIO(body.decode("utf-8"))))
    assert mime == "text/csv" and table[0] == UNIT_HEADER and len(table) == len(rows)
    for csv_row, row in zip(table[1:], rows[1:]):
        assert csv_row[0] == row[0]
        shown = [float(cell.removesuffix(" (silent)")) for cell in row[1:]]
        assert [float(v) for v in csv_row[1:]] == pytest.approx(shown, abs=0.005 + 1e-9)


def test_fraction_of_the_ceiling_is_the_same_in_the_report_and_scores_nc(demo_run):
    """One definition: mean held-out r over mean noise ceiling (cortexfit.evaluate
    .ceiling_fraction), the number in scores.nc and the one the Summary shows."""
    scores = _load(demo_run / "scores.nc")
    stored = float(scores["fraction_of_ceiling"])
    assert scores["fraction_of_ceiling"].dims == ()
    assert stored == pytest.approx(float(scores["pearson_heldout"].mean())
                                   / float(scores["noise_ceiling"].mean()), rel=1e-12)
    section = report_build._summary_section(report_build._read_run(demo_run))
    (_, rows), = section.tables
    shown, = [value for key, value in rows if key == "fraction of the ceiling"]
    assert shown == f"{stored:.2f}"
    assert f"{100 * stored:.0f} % of what the data allow" in section.paragraphs[0]
    assert "mean held-out r divided by the mean noise ceiling" in section.paragraphs[0]


def test_scores_use_the_scored_window_only(demo_run):
    """The demo trains beyond its window (margin "auto") and scores the window alone."""
    scores, targets = _load(demo_run / "scores.nc"), _load(demo_run / "targets.nc")
    start, stop = targets.attrs["score_start"], targets.attrs["score_stop"]
    assert (start, stop) == (-0.2, 2.0)
    assert targets.attrs["window_start"] < start and targets.attrs["window_stop"] > stop
    time = scores["time"].values
    assert time.size == 110 and time[0] > start and time[-1] < stop
    assert (scores.attrs["score_start"], scores.attrs["score_stop"]) == (start, stop)
    assert "validation" in targets["split"].values and "rate_validation" in targets
    text, _ = _read(demo_run)
    assert "every score uses the window only" in _section_html(text, "targets")
    assert "validation trials" in _section_html(text, "targets")


def test_per_unit_table_without_heldout_trials(demo_run):
    run_files = report_build._read_run(demo_run)
    run_files.scores = run_files.scores.drop_vars(
        [v for v in run_files.scores.data_vars
         if v.endswith("_heldout") or v.startswith(("noise_ceiling", "fraction_of_ceiling"))])
    section = report_build._units_section(run_files)
    table, = section.tables
    assert table.header == ["unit", "data rate (Hz)", "model rate (Hz)", "train r"]
    assert len(table.rows) == run_files.targets.sizes["unit"]
    assert all(len(row) == 4 for row in table.rows)
    assert "no held-out trials" in section.paragraphs[0]


# ------------------------------------------------------------------ the model's rasters
def test_scores_hold_model_example_spikes(demo_run):
    import tomllib

    from cortexfit.evaluate import example_model_spikes
    from cortexfit.fit import RLSFit

    scores, targets = _load(demo_run / "scores.nc"), _load(demo_run / "targets.nc")
    conditions = [str(c) for c in targets["condition"].values]
    assert [str(c) for c in scores["model_example_condition"].values] == conditions
    unit = scores["model_spike_unit"].values
    trial = scores["model_spike_trial"].values
    time = scores["model_spike_time"].values
    n_units = targets.sizes["unit"]
    assert unit.size > 100 and unit.min() >= 0 and unit.max() < n_units
    assert set(trial.tolist()) == set(range(len(conditions)))
    start, stop = scores["model_spike_time"].attrs["window"]
    assert stop == targets.attrs["window_stop"] and start < 0
    assert time.min() >= start and time.max() <= stop
    # stage_evaluate wrote the first scored test trial of each condition
    seed = tomllib.loads((demo_run / "config.toml").read_text())["evaluate"]["seed"]
    again = example_model_spikes(RLSFit.load(demo_run / "model.npz"), targets, seed=seed)
    for name in ("model_spike_time", "model_spike_unit", "model_spike_trial"):
        np.testing.assert_array_equal(again[name].values, scores[name].values)
    # each spike is credited to its own unit: counts follow the units' model rates
    for j, condition in enumerate(conditions):
        counts = np.bincount(unit[trial == j], minlength=n_units) / (stop - start)
        rate = scores["model_rate"].sel(condition=condition).mean("time").values
        assert np.corrcoef(counts, rate)[0, 1] > 0.8


class _StubFit(FittedNetwork):
    """Just what example_model_spikes uses of a fit: model neuron 0 is unit u1, neuron 1
    auxiliary, neuron 2 unit u0; the window starts at -0.1 s; run_trial gives fixed spikes
    and records its calls."""

    def run_trial(self, condition, *, seed):
        self.settings["calls"].append((condition, seed))
        return xr.Dataset({"spike_time": ("spike", [0.2, 0.3, -0.5, 0.9, 1.5]),
                           "spike_neuron": ("spike", [0, 1, 2, 2, 2])})


def _stub_fit() -> _StubFit:
    from types import SimpleNamespace

    targets = SimpleNamespace(conditions=["a", "b"], neuron_ids=["u1", "x0", "u0"],
                              roles=["recorded", "auxiliary", "recorded"],
                              recorded_unit=["u1", "", "u0"])
    protocol = SimpleNamespace(window_start=-0.1, update_times=np.array([0.0, 0.5, 1.0]))
    return _StubFit(network=object(), targets=targets, protocol=protocol, frozen=None,
                    initial_weights=None, final_state=None, history=None,
                    settings={"calls": []})


def test_example_model_spikes_keeps_recorded_units_in_the_targets_order():
    from cortexfit.evaluate import example_model_spikes

    stub = _stub_fit()
    targets = xr.Dataset(coords={"condition": ["b", "a"], "unit": ["u0", "u1"]},
                         attrs={"window_stop": 1.2})
    ds = example_model_spikes(stub, targets, seed=10, n_per_condition=2)
    # the targets' condition order; the model's condition index picks the seed
    assert stub.settings["calls"] == [(1, 10 + 7919), (1, 10 + 7920), (0, 10), (0, 11)]
    assert ds["model_example_condition"].values.tolist() == ["b", "b", "a", "a"]
    assert ds["model_example_seed"].values.tolist() == [7929, 7930, 10, 11]
    # auxiliary spikes and spikes outside [-0.1, 1.2] s dropped; neuron 0 -> u1 (index 1)
    assert ds["model_spike_time"].values.tolist() == [0.2, 0.9] * 4
    assert ds["model_spike_unit"].values.tolist() == [1, 0] * 4
    assert ds["model_spike_trial"].values.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert list(ds["model_spike_time"].attrs["window"]) == pytest.approx([-0.1, 1.2])


def test_model_rasters_and_heatmaps_beside_the_data(demo_run):
    text, _ = _read(demo_run)
    fit = _section_html(text, "fit")
    captions = [_caption(f) for f in _figures_html(fit)]
    assert any(c.startswith("Trial-averaged rates of the data (top") for c in captions)
    raster, = [f for f in _figures_html(fit) if _caption(f).startswith("Spike rasters")]
    assert "(left)" in _caption(raster) and "model (right" in _caption(raster)
    # the rasters' CSV: one row per trial and unit (silent ones too), its spike times
    (_, body), = _downloads(raster).values()
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"))))
    assert rows[0] == ["source"] + report_build.SPIKE_COLUMNS
    scores, recording = _load(demo_run / "scores.nc"), _load(demo_run / "recording.nc")
    units = [str(u) for u in scores["unit"].values]
    conditions = [str(c) for c in scores["condition"].values]
    for row in rows[1:]:
        times = [float(t) for t in row[5].split()]
        assert len(times) == int(row[4]) and times == sorted(times)
    model = [r for r in rows[1:] if r[0] == "model"]
    assert [(r[2], r[3]) for r in model] == [(c, u) for c in conditions for u in units]
    assert sum(int(r[4]) for r in model) == scores.sizes["model_spike"]
    busiest = max(model, key=lambda r: int(r[4]))  # its times are scores.nc's, to 0.1 ms
    j, k = conditions.index(busiest[2]), units.index(busiest[3])
    mine = (scores["model_spike_trial"].values == j) & (scores["model_spike_unit"].values == k)
    assert mine.sum() == int(busiest[4]) > 0
    np.testing.assert_allclose([float(t) for t in busiest[5].split()],
                               np.sort(scores["model_spike_time"].values[mine]), atol=5e-5)
    data = [r for r in rows[1:] if r[0] == "data"]
    assert {r[3] for r in data} == set(units) and {r[2] for r in data} == set(conditions)
    n_data = sum(str(recording["unit"].values[u]) in units
                 for u in recording["spike_unit"].values)
    assert sum(int(r[4]) for r in data) == n_data > 0


# ------------------------------------------------------------------ downloads, explanations
def test_every_figure_is_downloadable_as_svg_or_csv(demo_run):
    text, _ = _read(demo_run)
    figs = _figures_html(text)
    assert len(figs) == 14
    kinds = []
    for fragment in figs:
        links = _downloads(fragment)
        assert len(links) == 1, _caption(fragment)
        (name, (mime, body)), = links.items()
        assert name.startswith("demo-")
        if name.endswith(".svg"):
            assert mime == "image/svg+xml"
            assert ET.fromstring(body).tag == "{http://www.w3.org/2000/svg}svg"
            assert len(body) < 300_000, (name, len(body))
        else:
            assert name.endswith(".csv") and mime == "text/csv"
            rows = list(csv.reader(io.StringIO(body.decode("utf-8"))))
            assert len(rows) > 10 and {len(r) for r in rows} == {len(rows[0])}
        kinds.append(name.rsplit(".", 1)[1])
    assert kinds.count("csv") == 3  # the two rasters and the eigenvalues
    # the whole page stays a reasonable size (PNG of at most 256 colours, CSV for spikes)
    assert (demo_run / "index.html").stat().st_size < 2_500_000


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text.strip()) if s]


def test_lyapunov_and_spectrum_figures_are_explained(demo_run):
    text, _ = _read(demo_run)
    notes = {}
    for fragment in _figures_html(text):
        note = re.search(r'<p class="note">(.*?)</p>', fragment, re.S)
        if note:
            notes[_caption(fragment).split(" ")[0]] = html_lib.unescape(note.group(1))
    assert notes == {"Eigenvalues": report_build.SPECTRUM_NOTE,
                     "Largest": report_build.LYAPUNOV_NOTE}
    for note in notes.values():
        assert 2 <= len(_sentences(note)) <= 3, note


# ------------------------------------------------------------------ headless Chromium
_PROBE = """<script>
window.__cfErrors = [];
window.onerror = function (message) { window.__cfErrors.push(String(message)); };
window.addEventListener("error", function (event) {
  var t = event.target;
  if (t && t !== window && t.tagName) { window.__cfErrors.push("failed to load " + t.tagName); }
}, true);
window.addEventListener("load", function () {
  var images = document.images, decoded = 0;
  for (var i = 0; i < images.length; i++) {
    if (images[i].complete && images[i].naturalWidth > 0) { decoded++; }
  }
  var out = document.createElement("pre");
  out.id = "cortexfit-probe";
  out.textContent = JSON.stringify({images: images.length, decoded: decoded,
                                    errors: window.__cfErrors});
  document.body.appendChild(out);
});
</script>
"""


def _chromium() -> str:
    exe = shutil.which("chromium")
    if exe is None:
        message = ("`chromium` is not on PATH: install Debian's chromium package "
                   "(.ci/ensure-chromium, which `make test` runs first)")
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {message}")
        pytest.skip(message)
    return exe


def _render(report: Path, tmp_path: Path) -> dict:
    """Load a copy of ``report`` with a probe script injected (only into the copy) in
    headless Chromium and return what the probe wrote into the DOM."""
    exe = _chromium()
    text = report.read_text(encoding="utf-8")
    assert "<head>" in text
    copy = tmp_path / "probe.html"
    copy.write_text(text.replace("<head>", "<head>\n" + _PROBE, 1), encoding="utf-8")
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
           "--virtual-time-budget=5000", "--dump-dom", copy.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="cortexfit-probe">(.*?)</pre>', done.stdout, re.S)
    assert found, ("the probe did not run (no load event?); stderr:\n"
                   + done.stderr[-2000:] + "\nstdout head:\n" + done.stdout[:500])
    return json.loads(html_lib.unescape(found.group(1)))


def _check_rendered(run_dir: Path, tmp_path: Path) -> None:
    n_img = sum(1 for tag, _ in _read(run_dir)[1].tags if tag == "img")
    probe = _render(run_dir / "index.html", tmp_path)
    assert probe["errors"] == []
    assert probe["images"] == n_img > 0
    assert probe["decoded"] == n_img, probe


def test_demo_report_renders_in_headless_chromium(demo_run, tmp_path):
    _check_rendered(demo_run, tmp_path)


@pytest.mark.shared_data
def test_psth_report_renders_in_headless_chromium(psth_run, tmp_path):
    _check_rendered(psth_run, tmp_path)


def test_a_dale_fit_reports_the_ei_assignment_and_the_recordings_cell_types(tmp_path):
    """Under Dale's law the recorded units with a cell type in the recording (the synthetic
    recording labels each unit E or I) get that sign, and the report says which: the
    Training text counts them and the Per unit table has an E/I column matching the
    fitted network."""
    out = tmp_path / "dale"
    run({"run": {"name": "dale", "seed": 1}, "targets": {"max_units": 16},
         "auxiliary": {"min_neurons": 0}, "network": {"dale": True, "J": 1.0, "g": 4.0},
         "training": {"loops": 1}, "evaluate": {"n_trials": 1, "n_splits": 10},
         "diagnostics": {"enabled": False}}, out, verbosity=0)
    with np.load(out / "model.npz") as data:
        exc = data["excitatory"]
        roles = [str(r) for r in data["roles"]]
        recorded = [str(u) for u in data["recorded_unit"]]
        cells = [str(c) for c in data["cell_type"]]
    assert all(cells[i] for i, r in enumerate(roles) if r == "recorded")
    want = {u: "E" if e else "I" for u, e, r in zip(recorded, exc, roles) if r == "recorded"}
    page = (out / "index.html").read_text()
    assert f"{int(exc.sum())} excitatory and {int((~exc).sum())} inhibitory neurons" in page
    assert "16 recorded units took their sign from the recording" in page
    body = page[page.index('id="units"'):]
    rows = re.findall(r"<tr><td>([^<]+)</td>.*?<td>([EI]) \(data\)</td></tr>", body, re.S)
    assert len(rows) == 16 and dict(rows) == want
    # the data's labels decided the sign: pyramidal -> E, fast-spiking (FS) -> I
    for unit, sign in want.items():
        assert sign == {"pyramidal": "E", "FS": "I"}[cells[recorded.index(unit)]]
    assert set(want.values()) == {"E", "I"}
