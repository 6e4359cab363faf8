"""The run report (index.html): one self-contained, escaped, JavaScript-free HTML file whose
figures are embedded PNGs, checked by parsing it and by rendering it in headless Chromium.

Two run folders are built once per session: a small demo (synthetic recording, held-out
trials, every diagnostic but the Lyapunov exponents) and the rates-only ALM PSTH dataset
(no spikes, no held-out trials; needs the shared data, so it fails in CI when the data are
missing). Chromium comes from Debian's ``chromium`` package (``.ci/ensure-chromium``, run by
``make test``); without it the browser test fails when ``CI`` is set and skips otherwise.
"""
from __future__ import annotations

import base64
import binascii
import html as html_lib
import io
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib
import markupsafe
import matplotlib.image
import numpy as np
import pytest

from cortexfit.pipeline import run
from cortexfit.report import Section, write_report

XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
SECTIONS = {  # id -> heading
    "summary": "Summary",
    "recording": "Recording",
    "targets": "Targets",
    "training": "Training",
    "fit": "Fit",
    "diagnostics": "Taking the network apart",
    "run": "Run",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr"}
_SMALL_DIAGNOSTICS = {"n_repeats": 1, "n_trials": 1, "lyapunov": False,
                      "lesion_fractions": [0.1, 0.4], "shuffle_fractions": [0.5, 1.0]}


# ------------------------------------------------------------------ run folders
@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """The demo with few loops and repeats; the title and the run name carry markup."""
    out = tmp_path_factory.mktemp("report") / "demo"
    run({"run": {"name": f"demo {XSS}"},
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
    assert h2 == list(SECTIONS.values()), h2
    sections = [a.get("id") for t, a in page.tags if t == "section"]
    assert sections == list(SECTIONS), sections
    # every in-page link points at an element that exists
    for tag, attrs in page.tags:
        if tag == "a":
            href = attrs.get("href") or ""
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
    # raster, PSTHs, heatmaps, example units, auxiliary, learning curve, held-out fit,
    # score distributions, diagnostics
    assert len(images) == 9


def test_demo_report_is_self_contained(demo_run):
    text, page = _read(demo_run)
    _check_self_contained(text, page)


def test_demo_report_escapes_text(demo_run):
    text, page = _read(demo_run)
    assert XSS not in text
    assert f"Demo report {XSS_ESCAPED}" in text  # <title> and <h1>
    assert str(markupsafe.escape(f'name = "demo {XSS}"')) in text  # config.toml
    assert page.text["title"] == [f"Demo report {XSS}"]
    assert page.text["h1"] == [f"Demo report {XSS}"]


def test_demo_report_shows_config_and_versions(demo_run):
    _check_versions_and_config(demo_run, _read(demo_run)[1])


def test_demo_report_rebuilds_from_the_run_folder(demo_run, tmp_path):
    from cortexfit.report.build import build_report

    copy = tmp_path / "copy"
    shutil.copytree(demo_run, copy)
    (copy / "index.html").unlink()
    path = build_report(copy)
    text, page = _read(copy)
    assert path == copy / "index.html"
    _check_structure(text, page)
    assert len(_images(page)) == 9


# ------------------------------------------------------------------ the rates-only report
@pytest.mark.shared_data
def test_psth_report_structure_images_and_resources(psth_run):
    text, page = _read(psth_run)
    _check_structure(text, page)
    _check_self_contained(text, page)
    # PSTHs, heatmaps, example units, auxiliary, learning curve, fit, scores, diagnostics
    assert len(_images(page)) == 8
    _check_versions_and_config(psth_run, page)


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
    section = Section(XSS, paragraphs=[XSS], figures=[(png, XSS)],
                      tables=[([XSS, "b"], [[XSS, 1]])], preformatted=XSS,
                      keyvalues=[(XSS, XSS)], keyvalues_label=XSS, details=[(XSS, XSS)])
    path = write_report(tmp_path / "index.html", XSS, [section], subtitle=XSS)
    text = path.read_text(encoding="utf-8")
    assert XSS not in text and "<script" not in text.lower()
    assert text.count(XSS_ESCAPED) >= 13
    page = _parse(text)
    assert not page.errors and not page.stack


def _tiny_png() -> bytes:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [0, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def test_figures_are_pure(demo_run):
    """Same data in, same PNG out; inputs and matplotlib's settings left untouched."""
    from cortexfit.diagnostics import load_diagnostics
    from cortexfit.report import figures
    import xarray as xr

    diag = load_diagnostics(demo_run / "diagnostics.nc")
    with xr.open_dataset(demo_run / "targets.nc", engine="h5netcdf") as ds:
        targets = ds.load()
    before = {k: v.copy(deep=True) for k, v in diag.items()}
    targets_before = targets.copy(deep=True)
    rc_before = dict(matplotlib.rcParams)
    units = [str(u) for u in targets["unit"].values[:3]]
    first = figures.diagnostics_overview(diag["lesion"], diag["shuffle"], diag["spectrum"],
                                         diag["perturbation"])
    psth = figures.psth_examples(targets, units)
    assert figures.diagnostics_overview(diag["lesion"], diag["shuffle"], diag["spectrum"],
                                        diag["perturbation"]) == first
    assert figures.psth_examples(targets, units) == psth
    only_curves = figures.diagnostics_overview(diag["lesion"], diag["shuffle"])
    assert only_curves.startswith(PNG_SIGNATURE) and only_curves != first
    for key, ds in diag.items():
        assert ds.identical(before[key]), key
    assert targets.identical(targets_before)
    assert dict(matplotlib.rcParams) == rc_before


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
