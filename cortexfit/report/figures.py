"""Matplotlib figures for reports.

Each public function is pure: it draws only from the arrays passed to it (no file, no global
state is read or changed) and returns the figure as PNG bytes.
"""
from __future__ import annotations

import functools
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402


_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


#: Font sizes for every report figure (applied per figure, global state is left alone).
_STYLE = {"font.size": 10.5, "axes.titlesize": 11.5, "axes.labelsize": 10.5,
          "legend.fontsize": 8.5, "xtick.labelsize": 9.5, "ytick.labelsize": 9.5}


def _styled(func):
    """Draw the figure under the report's font sizes (``matplotlib.rc_context``)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with plt.rc_context(_STYLE):
            return func(*args, **kwargs)

    return wrapper


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


@_styled
def target_heatmaps(targets: xr.Dataset, *, variable: str = "rate") -> bytes:
    """Rates (unit x time) per condition, units sorted by time of peak in the first condition."""
    rate = targets[variable]
    order = np.argsort(rate.isel(condition=0).argmax("time").values)
    n_cond = rate.sizes["condition"]
    fig, axes = plt.subplots(1, n_cond, figsize=(4.5 * n_cond, 4.0), squeeze=False, sharey=True)
    vmax = float(np.percentile(rate.values, 99)) or 1.0
    time = rate["time"].values
    half = (time[1] - time[0]) / 2 if time.size > 1 else 0.5
    for ax, cond in zip(axes[0], rate["condition"].values):
        image = ax.imshow(
            rate.sel(condition=cond).values[order], aspect="auto", origin="lower",
            extent=[time[0] - half, time[-1] + half, 0, rate.sizes["unit"]], vmin=0, vmax=vmax,
            cmap="viridis",
        )
        ax.axvline(0, color="w", lw=0.8, ls="--")
        ax.set_title(f"{cond}")
        ax.set_xlabel(f"time from {targets.attrs.get('align_event', 'event')} (s)")
    axes[0][0].set_ylabel("unit (sorted by peak time)")
    fig.colorbar(image, ax=axes[0].tolist(), label="rate (Hz)", shrink=0.8)
    return _png(fig)


def _unit_grid(n: int):
    """A figure with one small panel per unit, three per row."""
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    return plt.subplots(rows, cols, figsize=(3.7 * cols, 2.7 * rows), squeeze=False)


@_styled
def example_units(targets: xr.Dataset, units: list[str], truth: xr.DataArray | None = None) -> bytes:
    """Training-trial rates, held-out rates and (if known) the true rate of a few units."""
    n = len(units)
    fig, axes = _unit_grid(n)
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
    axes.flat[0].legend()
    fig.tight_layout()
    return _png(fig)


@_styled
def auxiliary_traces(targets: xr.Dataset, n_show: int = 6) -> bytes:
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
    return _png(fig)


@_styled
def learning_curve(history: xr.Dataset) -> bytes:
    """Correlation with the targets, weight change and rate over training loops."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 2.8))
    loop = history["loop"].values
    for ax, name, label in zip(axes, ("pearson", "weight_change", "rate"),
                               ("Pearson r while training\n(single trial)",
                                history["weight_change"].attrs.get(
                                   "long_name", "weight change"), "mean rate (Hz)")):
        ax.plot(loop, history[name].values, "o-", ms=3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("training loop")
        ax.set_ylabel(label)
    fig.tight_layout()
    return _png(fig)


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
                    label=str(split), capsize=3, lw=1.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean Pearson r")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(title="trials")


@_styled
def diagnostics_overview(lesion: xr.Dataset, shuffle: xr.Dataset,
                         spectrum: xr.Dataset | None = None,
                         perturbation: xr.Dataset | None = None) -> bytes:
    """Lesion and shuffle scores by fraction, and (when given) the eigenvalue spectrum of W
    before/after training and the divergence after one deleted spike: a 2 x 2 grid (1 x 2
    when neither of the last two is given)."""
    extra = [x for x in (spectrum, perturbation) if x is not None]
    rows = 2 if extra else 1
    fig, axes = plt.subplots(rows, 2, figsize=(10.5, 4.5 * rows), squeeze=False)
    _fraction_curve(axes[0][0], lesion, "Lesion: outgoing synapses of neurons cut",
                    "fraction of neurons lesioned")
    _fraction_curve(axes[0][1], shuffle, "Shuffle: recorded-to-recorded weights permuted"
                    if shuffle.attrs.get("scope", "recorded") == "recorded"
                    else "Shuffle: all trained weights permuted",
                    "fraction of weights shuffled")
    free = list(axes[1]) if extra else []
    if spectrum is not None:
        ax = free.pop(0)
        for j, stage in enumerate(spectrum["stage"].values):
            ax.plot(spectrum["eig_real"].sel(stage=stage), spectrum["eig_imag"].sel(stage=stage),
                    "o", ms=3, alpha=0.6, mew=0, color=_COLORS[j % len(_COLORS)],
                    label=f"{stage} training (radius "
                          f"{float(spectrum['spectral_radius'].sel(stage=stage)):.2f})")
        if "radius_theory" in spectrum:
            radius = float(np.ravel(spectrum["radius_theory"].values)[0])
            if np.isfinite(radius) and radius > 0:
                angle = np.linspace(0, 2 * np.pi, 200)
                ax.plot(radius * np.cos(angle), radius * np.sin(angle), color="0.4", lw=1,
                        ls="--", label=f"random-matrix radius {radius:.2f}")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xlabel("real part")
        ax.set_ylabel("imaginary part")
        ax.set_title("Eigenvalues of W")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
    if perturbation is not None:
        ax = free.pop(0)
        for j, stage in enumerate(perturbation["stage"].values):
            ax.plot(perturbation["time"], perturbation["phase_divergence"].sel(stage=stage),
                    color=_COLORS[j % len(_COLORS)], lw=1.8, label=f"{stage} training")
        ax.set_xlabel("time from the deleted spike (s)")
        ax.set_ylabel("phase divergence (rad)")
        ax.set_title("Perturbation: one spike deleted")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
    for ax in free:
        ax.axis("off")
    fig.tight_layout()
    return _png(fig)


@_styled
def psth_examples(targets: xr.Dataset, units: list[str], *, variable: str = "rate") -> bytes:
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
        ax.set_xlabel(f"time from {targets.attrs.get('align_event', 'the event')} (s)")
    for ax in axes[:, 0]:
        ax.set_ylabel("rate (Hz)")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 4),
               bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.1 / rows))
    return _png(fig)


@_styled
def raster_examples(recording: xr.Dataset, *, max_units: int = 120) -> bytes:
    """Spike rasters of one example trial per condition (``recording.nc``), times from the
    alignment event, trial events as vertical lines."""
    n = recording.sizes["example_trial"]
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.6), squeeze=False, sharey=True)
    time = recording["spike_time"].values
    unit = recording["spike_unit"].values
    trial = recording["spike_trial"].values
    events = recording["event_time"]
    for j, ax in enumerate(axes[0]):
        keep = (trial == j) & (unit < max_units)
        ax.plot(time[keep], unit[keep], "|", color="k", markersize=2.5 if max_units > 30 else 8)
        for k, name in enumerate(events["event"].values):
            when = float(events.isel(example_trial=j).sel(event=name))
            if np.isfinite(when) and name not in ("trial_start", "trial_stop"):
                ax.axvline(when, color=_COLORS[k % len(_COLORS)], lw=1.2, label=str(name))
        start = float(events.isel(example_trial=j).sel(event="trial_start"))
        stop = float(events.isel(example_trial=j).sel(event="trial_stop"))
        ax.set_xlim(start, stop)
        ax.set_title(f"trial {recording['example_trial'].values[j]}: "
                     f"{recording['example_condition'].values[j]}")
        ax.set_xlabel(f"time from {recording.attrs.get('align_event', 'the event')} (s)")
        if j == 0:
            ax.set_ylabel("unit")
            ax.legend(loc="upper right")
    fig.tight_layout()
    return _png(fig)


@_styled
def heldout_fit(targets: xr.Dataset, scores: xr.Dataset, units: list[str]) -> bytes:
    """Data (held-out trials, else the training targets) against the model, per unit and
    condition, with the unit's correlation and noise ceiling in the title."""
    n = len(units)
    fig, axes = _unit_grid(n)
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
    axes.flat[0].legend()
    fig.tight_layout()
    return _png(fig)


@_styled
def score_distributions(scores: xr.Dataset) -> bytes:
    """Histograms of the per-(unit, condition) scores and, when there is a noise ceiling,
    held-out correlation against the ceiling (points under the diagonal are below it)."""
    names = [v for v in ("pearson_train", "pearson_heldout", "noise_ceiling") if v in scores]
    with_ceiling = "noise_ceiling" in scores and "pearson_heldout" in scores
    fig, axes = plt.subplots(1, 2 if with_ceiling else 1, figsize=(10 if with_ceiling else 5.5, 3.2),
                             squeeze=False)
    ax = axes[0][0]
    for j, name in enumerate(names):
        values = scores[name].values.ravel()
        values = values[np.isfinite(values)]
        ax.hist(values, bins=20, range=(-1, 1), alpha=0.55, color=_COLORS[j],
                label=f"{name} (mean {values.mean():.2f})" if values.size else name)
    ax.set_xlabel("Pearson r per unit and condition")
    ax.set_ylabel("count")
    ax.legend()
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
    fig.tight_layout()
    return _png(fig)
