"""The diagnostics section, "Taking the network apart": lesion and shuffle, the spectrum,
the quasi-static prediction, the perturbation and the Lyapunov exponents, or why there
are none (disabled, unfinished)."""
from __future__ import annotations

from .. import figures
from ..html import Figure, Section
from ..runfiles import RunFiles
from .common import _csv_download, _svg_figure

#: what the diagnostics section says when there are no diagnostics to show
DIAGNOSTICS_DISABLED = "Diagnostics were not run ([diagnostics] enabled = false)."
DIAGNOSTICS_UNFINISHED = ("The diagnostics stage did not finish (interrupted?): rerun the "
                          "same command to run it.")

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
