"""Matplotlib figures for reports; each function returns PNG bytes."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import neo  # noqa: E402
import numpy as np  # noqa: E402
import quantities as pq  # noqa: E402
import xarray as xr  # noqa: E402

from ..io.convention import event_time, trial_window  # noqa: E402

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def raster(block: neo.Block, trials: list[int], *, max_units: int = 100) -> bytes:
    """Spike rasters of the given trials (one panel each), events as vertical lines."""
    fig, axes = plt.subplots(1, len(trials), figsize=(4.2 * len(trials), 3.6), squeeze=False)
    for ax, index in zip(axes[0], trials):
        seg = block.segments[index]
        t0 = trial_window(seg)[0]
        for k, st in enumerate(seg.spiketrains[:max_units]):
            times = st.rescale(pq.s).magnitude - t0
            ax.plot(times, np.full(times.size, k), "|", color="k", markersize=2.5)
        for j, ev in enumerate(seg.events):
            time = event_time(seg, ev.name)
            if time is not None:
                ax.axvline(time - t0, color=_COLORS[j % len(_COLORS)], lw=1.2, label=ev.name)
        label = seg.annotations.get("condition", "")
        ax.set_title(f"trial {seg.annotations.get('trial_id', index)} {label}", fontsize=10)
        ax.set_xlabel("time from trial start (s)")
        ax.set_ylabel("unit")
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return _png(fig)


def target_heatmaps(targets: xr.Dataset, *, variable: str = "rate") -> bytes:
    """Rates (unit x time) per condition, units sorted by time of peak in the first condition."""
    rate = targets[variable]
    order = np.argsort(rate.isel(condition=0).argmax("time").values)
    n_cond = rate.sizes["condition"]
    fig, axes = plt.subplots(1, n_cond, figsize=(4.5 * n_cond, 4.0), squeeze=False, sharey=True)
    vmax = float(np.percentile(rate.values, 99)) or 1.0
    time = rate["time"].values
    for ax, cond in zip(axes[0], rate["condition"].values):
        image = ax.imshow(
            rate.sel(condition=cond).values[order], aspect="auto", origin="lower",
            extent=[time[0], time[-1], 0, rate.sizes["unit"]], vmin=0, vmax=vmax, cmap="viridis",
        )
        ax.axvline(0, color="w", lw=0.8, ls="--")
        ax.set_title(f"{cond}", fontsize=10)
        ax.set_xlabel(f"time from {targets.attrs.get('align_event', 'event')} (s)")
    axes[0][0].set_ylabel("unit (sorted by peak time)")
    fig.colorbar(image, ax=axes[0].tolist(), label="rate (Hz)", shrink=0.8)
    return _png(fig)


def _unit_grid(n: int):
    """A figure with one small panel per unit, three per row."""
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    return plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)


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
        ax.set_title(f"unit {unit}", fontsize=10)
        ax.set_xlim(time[0], time[-1])
        ax.set_xlabel("time (s)")
        ax.set_ylabel("rate (Hz)")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def auxiliary_traces(targets: xr.Dataset, n_show: int = 6) -> bytes:
    """A few auxiliary (OU-derived) target rates per condition."""
    aux = targets["target_rate"].where(targets["role"] == "auxiliary", drop=True)
    shown = aux.isel(neuron=slice(0, n_show))
    fig, axes = plt.subplots(1, aux.sizes["condition"], figsize=(4.5 * aux.sizes["condition"], 3),
                             squeeze=False, sharey=True)
    for ax, cond in zip(axes[0], aux["condition"].values):
        for neuron in shown["neuron"].values:
            ax.plot(shown["time"], shown.sel(condition=cond, neuron=neuron), lw=1)
        ax.set_title(f"auxiliary targets, {cond}", fontsize=10)
        ax.set_xlabel("time (s)")
    axes[0][0].set_ylabel("rate (Hz)")
    fig.tight_layout()
    return _png(fig)


def learning_curve(history: xr.Dataset) -> bytes:
    """Correlation with the targets, weight change and rate over training loops."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 2.8))
    loop = history["loop"].values
    for ax, name, label in zip(axes, ("pearson", "weight_change", "rate"),
                               ("Pearson r while training\n(single trial)",
                                history["weight_change"].attrs.get(
                                   "long_name", "weight change"), "mean rate (Hz)")):
        ax.plot(loop, history[name].values, "o-", ms=3)
        ax.set_xlabel("training loop")
        ax.set_ylabel(label, fontsize=9)
    fig.tight_layout()
    return _png(fig)


def model_vs_data(targets: xr.Dataset, model: xr.Dataset, units: list[str]) -> bytes:
    """Trial-averaged rates of a few units: data (training and held-out trials) and model."""
    n = len(units)
    fig, axes = _unit_grid(n)
    time = targets["time"].values
    for ax, unit in zip(axes.flat, units):
        for j, cond in enumerate(targets["condition"].values):
            color = _COLORS[j % len(_COLORS)]
            ax.plot(time, targets["rate"].sel(condition=cond, unit=unit), color=color, lw=1.0,
                    alpha=0.6, label=f"{cond} data")
            if "rate_heldout" in targets:
                ax.plot(time, targets["rate_heldout"].sel(condition=cond, unit=unit),
                        color=color, lw=0.8, ls=":", alpha=0.7)
            ax.plot(time, model["rate"].sel(condition=cond, unit=unit), color=color, lw=2.0,
                    label=f"{cond} model")
        ax.set_title(f"unit {unit}", fontsize=10)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("rate (Hz)")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def score_histogram(scores: xr.DataArray) -> bytes:
    """Distribution of per-unit correlations, one histogram per split."""
    fig, ax = plt.subplots(figsize=(5, 3))
    for split in scores["split"].values:
        values = scores.sel(split=split).values.ravel()
        ax.hist(values, bins=20, range=(-1, 1), alpha=0.6, label=f"{split} (mean {values.mean():.2f})")
    ax.set_xlabel("Pearson r, model vs data (per unit and condition)")
    ax.set_ylabel("count")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def diagnostics_overview(lesion: xr.Dataset, shuffle: xr.Dataset, spectrum: xr.Dataset,
                         perturbation: xr.Dataset) -> bytes:
    """Lesion and shuffle scores by fraction, the spectrum before/after, the perturbation."""
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.2))
    for ax, ds, title in ((axes[0], lesion, "lesion"), (axes[1], shuffle, "shuffle")):
        fractions = np.concatenate([[0.0], ds["fraction"].values])
        for j, split in enumerate(ds["split"].values):
            mean = ds["mean_pearson"].sel(split=split)
            values = np.concatenate([[float(ds["mean_pearson_intact"].sel(split=split))],
                                     mean.mean("repeat").values])
            spread = np.concatenate([[0.0], mean.std("repeat").values])
            ax.errorbar(fractions, values, yerr=spread, marker="o", color=_COLORS[j],
                        label=str(split), capsize=3)
        ax.set_xlabel(f"fraction {'lesioned' if title == 'lesion' else 'shuffled'}")
        ax.set_ylabel("mean Pearson r")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    ax = axes[2]
    for j, stage in enumerate(spectrum["stage"].values):
        ax.plot(spectrum["eig_real"].sel(stage=stage), spectrum["eig_imag"].sel(stage=stage),
                ".", ms=2, color=_COLORS[j], label=f"{stage} (radius "
                f"{float(spectrum['spectral_radius'].sel(stage=stage)):.2f})")
    ax.set_xlabel("Re")
    ax.set_ylabel("Im")
    ax.set_title("eigenvalues of W", fontsize=10)
    ax.legend(fontsize=7)
    ax = axes[3]
    for j, stage in enumerate(perturbation["stage"].values):
        ax.plot(perturbation["time"], perturbation["phase_divergence"].sel(stage=stage),
                color=_COLORS[j], label=str(stage))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("phase divergence (rad)")
    ax.set_title("one spike deleted", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


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
                     f"{recording['example_condition'].values[j]}", fontsize=10)
        ax.set_xlabel(f"time from {recording.attrs.get('align_event', 'the event')} (s)")
        if j == 0:
            ax.set_ylabel("unit")
            ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return _png(fig)


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
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("rate (Hz)")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


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
    ax.legend(fontsize=8)
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
