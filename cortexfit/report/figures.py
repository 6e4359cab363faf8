"""Matplotlib figures for reports.

Each public function is pure: it draws only from the arrays passed to it (no file, no global
state is read or changed) and returns the figure as a :class:`Rendered`: PNG bytes, plus SVG
bytes when called with ``svg=True`` (the report's download links).

Every text is drawn literally: math parsing is off (``text.parse_math``), so a label such as
``"$x$ cond"`` or ``"a_b^c"`` shows as written. No legend sits inside the axes: legends go
to the right of the axes or in a row above the panels, where they cannot cover data.
"""
from __future__ import annotations

import functools
import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.ticker import MaxNLocator

__all__ = [
    "Rendered",
    "auxiliary_traces",
    "example_units",
    "heldout_fit",
    "learning_curve",
    "lesion_shuffle",
    "lyapunov",
    "peak_order",
    "perturbation",
    "psth_examples",
    "raster_examples",
    "rasters_data_model",
    "rate_heatmaps",
    "score_distributions",
    "spectrum",
    "target_heatmaps",
    "tune_candidates",
]

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


#: Settings of every report figure (applied per figure with ``rc_context``, global state is
#: left alone): font sizes; labels drawn literally (no mathtext: a ``$`` in a condition or
#: unit label must not be parsed); SVG text kept as text and ids reproducible.
_STYLE = {"font.size": 10.5, "axes.titlesize": 11.5, "axes.labelsize": 10.5,
          "legend.fontsize": 8.5, "xtick.labelsize": 9.5, "ytick.labelsize": 9.5,
          "text.parse_math": False, "text.usetex": False,
          "font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
          "svg.fonttype": "none", "svg.hashsalt": "cortexfit"}


@dataclass(frozen=True)
class Rendered:
    """A drawn figure: PNG bytes and, when asked for, the same figure as SVG."""

    png: bytes
    svg: bytes | None = None


def _save(fig, fmt: str) -> bytes:
    """The figure as SVG, or as a PNG of at most 256 colours: a quarter of the bytes of
    matplotlib's RGBA PNG, and the same look (lines, text and the viridis heat maps)."""
    buf = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else None
    fig.savefig(buf, format=fmt, dpi=110, bbox_inches="tight", metadata=metadata)
    if fmt != "png":
        return buf.getvalue()
    from PIL import Image

    buf.seek(0)
    with Image.open(buf) as image:
        paletted = image.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE,
                                                  dither=Image.Dither.NONE)
    out = io.BytesIO()
    paletted.save(out, format="png")
    return out.getvalue()


def _figure(func):
    """Run a drawing function (which returns a matplotlib figure) under the report's style
    and return it as :class:`Rendered`; ``svg=True`` also saves it as SVG."""

    @functools.wraps(func)
    def wrapper(*args, svg: bool = False, **kwargs) -> Rendered:
        with plt.rc_context(_STYLE):
            fig = func(*args, **kwargs)
            try:
                png = _save(fig, "png")
                vector = _save(fig, "svg") if svg else None
            finally:
                plt.close(fig)
        return Rendered(png, vector)

    return wrapper


def _legend_right(ax, **kwargs) -> None:
    """The axes' legend to the right of the axes (never over the data)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              title_fontsize=plt.rcParams["legend.fontsize"], **kwargs)


def _legend_above(fig, axes, *, rows: int = 1) -> None:
    """One legend for the whole figure, in a row above the panels (from ``axes``' first
    panel's labelled artists), and the panels laid out below it."""
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        ncol = min(len(labels), 5)
        fig.legend(handles, labels, loc="upper center", ncol=ncol, bbox_to_anchor=(0.5, 1.0),
                   frameon=False)
        lines = int(np.ceil(len(labels) / ncol))
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.07 * lines / rows))
    else:
        fig.tight_layout()


def _time_label(attrs, default: str = "the event") -> str:
    return f"time from {attrs.get('align_event', default)} (s)"


def peak_order(rate: xr.DataArray) -> np.ndarray:
    """Unit order of the heat maps: by the time of each unit's peak in the first condition."""
    return np.argsort(rate.isel(condition=0).argmax("time").values, kind="stable")


def _heatmap(ax, values: np.ndarray, time: np.ndarray, vmax: float):
    half = (time[1] - time[0]) / 2 if time.size > 1 else 0.5
    # "none": one rectangle per (unit, bin), and SVG embeds the data-sized image; beyond a
    # few hundred units a display-sized resample keeps the SVG small (as the PNG shows it)
    image = ax.imshow(values, aspect="auto", origin="lower",
                      interpolation="none" if values.size <= 40_000 else "nearest",
                      extent=[time[0] - half, time[-1] + half, 0, values.shape[0]], vmin=0,
                      vmax=vmax, cmap="viridis")
    ax.axvline(0, color="w", lw=0.8, ls="--")
    return image


@_figure
def target_heatmaps(targets: xr.Dataset, *, variable: str = "rate"):
    """Rates (unit x time) per condition, units sorted by time of peak in the first condition."""
    rate = targets[variable]
    order = peak_order(rate)
    n_cond = rate.sizes["condition"]
    fig, axes = plt.subplots(1, n_cond, figsize=(4.5 * n_cond, 4.0), squeeze=False, sharey=True)
    vmax = float(np.percentile(rate.values, 99)) or 1.0
    time = rate["time"].values
    for ax, cond in zip(axes[0], rate["condition"].values):
        image = _heatmap(ax, rate.sel(condition=cond).values[order], time, vmax)
        ax.set_title(str(cond))
        ax.set_xlabel(_time_label(targets.attrs, "event"))
    axes[0][0].set_ylabel("unit (sorted by peak time)")
    fig.colorbar(image, ax=axes[0].tolist(), label="rate (Hz)", shrink=0.8)
    return fig


@_figure
def rate_heatmaps(data: xr.DataArray, model: xr.DataArray, *, align_event: str = "the event"):
    """The data's and the model's trial-averaged rates (unit x time), one column per
    condition, data on top and model below: one colour scale (the 99th percentile of both)
    and one unit order (peak time of the data in the first condition)."""
    model = model.sel(unit=data["unit"].values, condition=data["condition"].values)
    order = peak_order(data)
    n_cond = data.sizes["condition"]
    fig, axes = plt.subplots(2, n_cond, figsize=(4.5 * n_cond, 7.2), squeeze=False,
                             sharex=True, sharey=True)
    vmax = float(np.nanpercentile(np.concatenate([data.values.ravel(), model.values.ravel()]),
                                  99)) or 1.0
    for j, cond in enumerate(data["condition"].values):
        for row, (source, rate) in enumerate((("data", data), ("model", model))):
            ax = axes[row][j]
            image = _heatmap(ax, rate.sel(condition=cond).values[order], rate["time"].values,
                             vmax)
            ax.set_title(f"{source}: {cond}")
        axes[1][j].set_xlabel(f"time from {align_event} (s)")
    for row in axes:
        row[0].set_ylabel("unit (sorted by data peak time)")
    fig.colorbar(image, ax=axes.ravel().tolist(), label="rate (Hz)", shrink=0.6)
    return fig


def _unit_grid(n: int):
    """A figure with one small panel per unit, three per row."""
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.7 * cols, 2.7 * rows), squeeze=False)
    return fig, axes, rows


@_figure
def example_units(targets: xr.Dataset, units: list[str], truth: xr.DataArray | None = None):
    """Training-trial rates, held-out rates and (if known) the true rate of a few units."""
    n = len(units)
    fig, axes, rows = _unit_grid(n)
    time = targets["time"].values
    for ax, unit in zip(axes.flat, units):
        for j, cond in enumerate(targets["condition"].values):
            color = _COLORS[j % len(_COLORS)]
            ax.plot(time, targets["rate"].sel(condition=cond, unit=unit), color=color,
                    lw=1.6, label=f"{cond} train")
            if "rate_heldout" in targets:
                ax.plot(time, targets["rate_heldout"].sel(condition=cond, unit=unit), color=color,
                        lw=1.0, ls=":", label=f"{cond} held-out")
            if truth is not None:
                true = truth.sel(condition=cond, unit=unit)
                ax.plot(true["time"], true, color="k", lw=0.8, alpha=0.6,
                        label="truth" if j == 0 else None)
        ax.set_title(f"unit {unit}")
        ax.set_xlim(time[0], time[-1])
        ax.set_xlabel("time (s)")
        ax.set_ylabel("rate (Hz)")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    _legend_above(fig, axes.flat, rows=rows)
    return fig


@_figure
def auxiliary_traces(targets: xr.Dataset, n_show: int = 6):
    """A few auxiliary (OU-derived) target rates per condition."""
    aux = targets["target_rate"].where(targets["role"] == "auxiliary", drop=True)
    shown = aux.isel(neuron=slice(0, n_show))
    fig, axes = plt.subplots(1, aux.sizes["condition"], figsize=(4.5 * aux.sizes["condition"], 3),
                             squeeze=False, sharey=True)
    for ax, cond in zip(axes[0], aux["condition"].values):
        for neuron in shown["neuron"].values:
            ax.plot(shown["time"], shown.sel(condition=cond, neuron=neuron), lw=1)
        ax.set_title(f"auxiliary targets, {cond}")
        ax.set_xlabel("time (s)")
    axes[0][0].set_ylabel("rate (Hz)")
    fig.tight_layout()
    return fig


@_figure
def learning_curve(history: xr.Dataset):
    """Correlation with the targets, weight change and rate over training loops."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 2.8))
    loop = history["loop"].values
    for ax, name, label in zip(axes, ("pearson", "weight_change", "rate"),
                               ("Pearson r while training\n(single trial)",
                                history["weight_change"].attrs.get(
                                   "long_name", "weight change"), "mean rate (Hz)")):
        ax.plot(loop, history[name].values, "o-", ms=3)
        if name == "pearson" and "validation" in history \
                and np.isfinite(history["validation"].values).any():
            scored = np.isfinite(history["validation"].values)
            ax.plot(loop[scored], history["validation"].values[scored], "s", ms=5,
                    color="tab:orange")
            best = history.attrs.get("best_loop")
            if best is not None:
                ax.axvline(int(best), color="tab:orange", ls=":", lw=1)
            ax.set_title("orange: validation trials' average\n(dotted: the loop kept)",
                         fontsize=8, color="tab:orange")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("training loop")
        ax.set_ylabel(label)
    fig.tight_layout()
    return fig


_SPLIT_LABEL = {"train": "training trials", "heldout": "held-out trials"}


def _fraction_curve(ax, ds: xr.Dataset, title: str, xlabel: str) -> None:
    """Mean Pearson r against the fraction lesioned/shuffled (0 = intact), mean and spread
    over repeats, one line per split."""
    fractions = np.concatenate([[0.0], ds["fraction"].values])
    for j, split in enumerate(ds["split"].values):
        mean = ds["mean_pearson"].sel(split=split)
        values = np.concatenate([[float(ds["mean_pearson_intact"].sel(split=split))],
                                 mean.mean("repeat").values])
        spread = np.concatenate([[0.0], mean.std("repeat").values])
        ax.errorbar(fractions, values, yerr=spread, marker="o", color=_COLORS[j % len(_COLORS)],
                    label=_SPLIT_LABEL.get(str(split), str(split)), capsize=3, lw=1.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean Pearson r")
    ax.set_title(title)
    ax.grid(alpha=0.3)


@_figure
def lesion_shuffle(lesion: xr.Dataset, shuffle: xr.Dataset):
    """Lesion and shuffle scores by fraction (0 = the intact network), side by side."""
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.2), sharey=True)
    _fraction_curve(axes[0], lesion, "Lesion: outgoing synapses of neurons cut",
                    "fraction of neurons lesioned")
    _fraction_curve(axes[1], shuffle, "Shuffle: recorded-to-recorded weights permuted"
                    if shuffle.attrs.get("scope", "recorded") == "recorded"
                    else "Shuffle: all trained weights permuted",
                    "fraction of weights shuffled")
    _legend_above(fig, axes)
    return fig


@_figure
def spectrum(spec: xr.Dataset):
    """Eigenvalues of W in the complex plane before/after training, with the random-matrix
    radius of the initial network (dashed circle)."""
    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    for j, stage in enumerate(spec["stage"].values):
        ax.plot(spec["eig_real"].sel(stage=stage), spec["eig_imag"].sel(stage=stage),
                "o", ms=3, alpha=0.6, mew=0, color=_COLORS[j % len(_COLORS)],
                label=f"{stage} training (radius "
                      f"{float(spec['spectral_radius'].sel(stage=stage)):.2f})")
    if "radius_theory" in spec:
        radius = float(np.ravel(spec["radius_theory"].values)[0])
        if np.isfinite(radius) and radius > 0:
            angle = np.linspace(0, 2 * np.pi, 200)
            ax.plot(radius * np.cos(angle), radius * np.sin(angle), color="0.4", lw=1,
                    ls="--", label=f"random-matrix radius {radius:.2f}")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("real part")
    ax.set_ylabel("imaginary part")
    ax.set_title("Eigenvalues of W")
    ax.grid(alpha=0.3)
    _legend_right(ax, markerscale=2)
    fig.tight_layout()
    return fig


@_figure
def perturbation(pert: xr.Dataset):
    """Phase divergence after one deleted spike, before and after training."""
    fig, ax = plt.subplots(figsize=(8.0, 3.4))
    for j, stage in enumerate(pert["stage"].values):
        ax.plot(pert["time"], pert["phase_divergence"].sel(stage=stage),
                color=_COLORS[j % len(_COLORS)], lw=1.8, label=f"{stage} training")
    ax.set_xlabel("time from the deleted spike (s)")
    ax.set_ylabel("phase divergence (rad)")
    ax.set_title("Perturbation: one spike deleted")
    ax.grid(alpha=0.3)
    _legend_right(ax)
    fig.tight_layout()
    return fig


@_figure
def lyapunov(lyap: xr.Dataset):
    """The running estimate of the largest Lyapunov exponent over the simulated time, per
    initial condition (thin) and its mean (thick), before and after training."""
    fig, ax = plt.subplots(figsize=(8.0, 3.6))
    time = lyap["time"].values
    for j, stage in enumerate(lyap["stage"].values):
        color = _COLORS[j % len(_COLORS)]
        running = lyap["running"].sel(stage=stage)
        for seed in running["seed"].values:
            ax.plot(time, running.sel(seed=seed), color=color, lw=0.8, alpha=0.45)
        final = float(lyap["lyapunov_mean"].sel(stage=stage))
        ax.plot(time, running.mean("seed"), color=color, lw=2.2,
                label=f"{stage} training: {final:.1f} 1/s")
    ax.axhline(0, color="0.3", lw=0.8, ls="--")
    ax.set_xlabel("simulated time used for the estimate (s)")
    ax.set_ylabel("largest Lyapunov\nexponent (1/s)")
    ax.set_title("Largest Lyapunov exponent")
    ax.grid(alpha=0.3)
    _legend_right(ax, title="mean over initial conditions")
    fig.tight_layout()
    return fig


@_figure
def psth_examples(targets: xr.Dataset, units: list[str], *, variable: str = "rate"):
    """Trial-averaged rates per condition (one panel each): a few example units in colour
    and the population mean (black, with the 10-90 % range of units shaded)."""
    rate = targets[variable]
    conditions = rate["condition"].values
    n = len(conditions)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), squeeze=False,
                             sharey=True)
    time = rate["time"].values
    for ax, cond in zip(axes.flat, conditions):
        per_cond = rate.sel(condition=cond)
        low, high = np.percentile(per_cond.values, [10, 90], axis=0)
        ax.fill_between(time, low, high, color="0.85", lw=0, label="10-90 % of units")
        for j, unit in enumerate(units):
            ax.plot(time, per_cond.sel(unit=unit), color=_COLORS[j % len(_COLORS)], lw=1.2,
                    label=f"unit {unit}")
        ax.plot(time, per_cond.mean("unit"), color="k", lw=2.2, label="mean of all units")
        ax.axvline(0, color="0.4", lw=0.8, ls="--")
        ax.set_title(str(cond))
        ax.set_xlim(time[0], time[-1])
        ax.set_xlabel(_time_label(targets.attrs))
    for ax in axes[:, 0]:
        ax.set_ylabel("rate (Hz)")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    _legend_above(fig, axes.flat, rows=rows)
    return fig


def _raster(ax, times: np.ndarray, rows: np.ndarray, n_rows: int) -> None:
    ax.plot(times, rows, "|", color="k", markersize=float(np.clip(300 / max(n_rows, 1), 1.5, 8)),
            mew=0.8)
    ax.set_ylim(-0.5, max(n_rows, 1) - 0.5)


@_figure
def raster_examples(recording: xr.Dataset, *, max_units: int = 120):
    """Spike rasters of one example trial per condition (``recording.nc``), times from the
    alignment event, trial events as vertical lines."""
    n = recording.sizes["example_trial"]
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.6), squeeze=False, sharey=True)
    time = recording["spike_time"].values
    unit = recording["spike_unit"].values
    trial = recording["spike_trial"].values
    events = recording["event_time"]
    n_units = min(recording.sizes.get("unit", max_units), max_units)
    for j, ax in enumerate(axes[0]):
        keep = (trial == j) & (unit < max_units)
        _raster(ax, time[keep], unit[keep], n_units)
        for k, name in enumerate(events["event"].values):
            when = float(events.isel(example_trial=j).sel(event=name))
            if np.isfinite(when) and name not in ("trial_start", "trial_stop"):
                ax.axvline(when, color=_COLORS[k % len(_COLORS)], lw=1.2, label=str(name))
        start = float(events.isel(example_trial=j).sel(event="trial_start"))
        stop = float(events.isel(example_trial=j).sel(event="trial_stop"))
        ax.set_xlim(start, stop)
        ax.set_title(f"trial {recording['example_trial'].values[j]}: "
                     f"{recording['example_condition'].values[j]}")
        ax.set_xlabel(_time_label(recording.attrs))
    axes[0][0].set_ylabel("unit")
    _legend_above(fig, axes[0])
    return fig


@_figure
def rasters_data_model(data: list[tuple[str, np.ndarray, np.ndarray] | None],
                       model: list[tuple[str, np.ndarray, np.ndarray]], n_units: int,
                       window: tuple[float, float], *, align_event: str = "the event"):
    """Spike rasters of the data (left) and the model (right), one row per condition.

    ``data`` and ``model`` hold one entry per condition: (title, spike times in s, row of
    each spike in 0..n_units-1); a ``None`` data entry is drawn as "no example trial", and
    without any data entry (a recording of rates only) only the model's column is drawn.
    The columns share the unit order (rows) and the time axis (``window``).
    """
    n = len(model)
    columns = [data, model] if any(entry is not None for entry in data) else [model]
    height = max(2.6, min(0.012 * n_units + 2.2, 6.0))
    fig, axes = plt.subplots(n, len(columns), figsize=(5.25 * len(columns) + 0.5, height * n),
                             squeeze=False, sharex=True, sharey=True)
    for j in range(n):
        for col, entries in enumerate(columns):
            ax, entry = axes[j][col], entries[j]
            if entry is None:
                ax.text(0.5, 0.5, "no example trial of the data", ha="center", va="center",
                        transform=ax.transAxes, color="0.4")
                ax.set_title("data")
            else:
                title, times, rows = entry
                _raster(ax, times, rows, n_units)
                ax.set_title(title)
            ax.axvline(0, color="0.4", lw=0.8, ls="--")
            ax.set_xlim(*window)
        axes[j][0].set_ylabel("unit (sorted by data peak time)")
    for ax in axes[-1]:
        ax.set_xlabel(f"time from {align_event} (s)")
    fig.tight_layout()
    return fig


@_figure
def heldout_fit(targets: xr.Dataset, scores: xr.Dataset, units: list[str]):
    """Data (held-out trials, else the training targets) against the model, per unit and
    condition, with the unit's correlation and noise ceiling in the title."""
    n = len(units)
    fig, axes, rows = _unit_grid(n)
    time = targets["time"].values
    data_var = "rate_heldout" if "rate_heldout" in targets else "rate"
    score_var = "pearson_heldout" if "pearson_heldout" in scores else "pearson_train"
    for ax, unit in zip(axes.flat, units):
        for j, cond in enumerate(targets["condition"].values):
            color = _COLORS[j % len(_COLORS)]
            ax.plot(time, targets[data_var].sel(condition=cond, unit=unit), color=color,
                    lw=1.0, ls=":", label=f"{cond} data")
            ax.plot(time, scores["model_rate"].sel(condition=cond, unit=unit), color=color,
                    lw=2.0, label=f"{cond} model")
        r = float(scores[score_var].sel(unit=unit).mean())
        title = f"unit {unit}: r = {r:.2f}"
        if "noise_ceiling" in scores:
            title += f" (ceiling {float(scores['noise_ceiling'].sel(unit=unit).mean()):.2f})"
        ax.set_title(title)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("rate (Hz)")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    _legend_above(fig, axes.flat, rows=rows)
    return fig


@_figure
def score_distributions(scores: xr.Dataset):
    """Histograms of the per-(unit, condition) scores and, when there is a noise ceiling,
    held-out correlation against the ceiling (points under the diagonal are below it)."""
    names = [v for v in ("pearson_train", "pearson_heldout", "noise_ceiling") if v in scores]
    with_ceiling = "noise_ceiling" in scores and "pearson_heldout" in scores
    fig, axes = plt.subplots(1, 2 if with_ceiling else 1,
                             figsize=(10 if with_ceiling else 5.5, 3.2), squeeze=False)
    ax = axes[0][0]
    for j, name in enumerate(names):
        values = scores[name].values.ravel()
        values = values[np.isfinite(values)]
        ax.hist(values, bins=20, range=(-1, 1), alpha=0.55, color=_COLORS[j],
                label=f"{name} (mean {values.mean():.2f})" if values.size else name)
    ax.set_xlabel("Pearson r per unit and condition")
    ax.set_ylabel("count")
    if with_ceiling:
        ax = axes[0][1]
        ceiling = scores["noise_ceiling"].values.ravel()
        held = scores["pearson_heldout"].values.ravel()
        ax.plot(ceiling, held, ".", ms=4, alpha=0.7)
        ax.plot([-0.2, 1], [-0.2, 1], color="0.5", lw=0.8, ls="--")
        ax.set_xlabel("noise ceiling (held-out)")
        ax.set_ylabel("model r (held-out)")
        ax.set_xlim(-0.2, 1.02)
        ax.set_ylim(-0.6, 1.02)
    _legend_above(fig, axes[0])
    return fig


@_figure
def tune_candidates(result: xr.Dataset):
    """The settings search: each candidate's validation score (a bar, the chosen one in
    orange; failed candidates marked), labelled by its settings."""
    n = result.sizes["candidate"]
    names = [str(k) for k in result["setting"].values]
    labels = ["\n".join(f"{k.split('.')[-1]}={v}" for k, v in
                        zip(names, result["value"].isel(candidate=i).values))
              for i in range(n)]
    scores = result["validation"].values
    chosen = int(result.attrs.get("chosen", -1))
    fig, ax = plt.subplots(figsize=(min(1.0 + 0.9 * n, 11), 3.6))
    colors = ["tab:orange" if i == chosen else "#9ab" for i in range(n)]
    ax.bar(np.arange(n), np.nan_to_num(scores, nan=0.0), color=colors)
    for i in np.flatnonzero(~np.isfinite(scores)):
        ax.text(i, 0, "failed", ha="center", va="bottom", color="tab:red", fontsize=8,
                rotation=90)
    ax.set_xticks(np.arange(n), labels, fontsize=7.5)
    ax.set_ylabel("validation r (best loop)")
    finite = scores[np.isfinite(scores)]
    if finite.size:
        low, high = float(finite.min()), float(finite.max())
        pad = max(0.05, 0.5 * (high - low))
        ax.set_ylim(min(0.0, low - pad) if low < 0 else max(0.0, low - pad), high + pad / 2)
    ax.set_title("orange: the chosen settings")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
