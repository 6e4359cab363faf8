"""The seven stages of a run (see :mod:`cortexfit.pipeline` for the orchestration).

Each ``stage_<name>(ctx)`` writes its outputs into the run folder and returns a one-line
summary. Inputs a stage needs from an earlier, skipped stage are read back from the run
folder by :class:`RunContext` (``block``, ``targets``, ``fitted``), so any stage can run on
its own once its predecessors' files exist.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from . import __version__, diagnostics, seeds
from .atomic import atomic_path, record_matches, write_netcdf, write_text
from .auxiliary import add_auxiliary
from .config import RunConfig, auxiliary_section, resolve, to_toml, with_settings
from .console import Console
from .datasets import SHARED_DATASETS
from .evaluate import example_model_spikes, score, validation_judge
from .exceptions import ConfigError
from .fit import RLSFit
from .io.convention import event_time, trial_window, unit_ids
from .io.describe import describe
from .io.formats import get_format
from .report.build import build_report
from .runfolder import MANIFEST_NAME
from .targets import make_targets
from .tune import chosen_settings, search

_NC = {"engine": "h5netcdf"}


# ---------------------------------------------------------------------- context
class RunContext:
    """What the stages share: the config (validated and resolved), the run folder, the
    console, the resume flags, the manifest, and inputs loaded once per run."""

    def __init__(self, config: RunConfig, out: Path, console: Console, resume: bool,
                 restart: bool, resolved: dict[str, Any] | None = None):
        self.config = config
        self.base_config = config  # before [tune] chose settings
        self.resolved = resolve(config) if resolved is None else resolved
        self.out = out
        self.console = console
        self.resume = resume
        self.restart = restart
        self.seed = config.run.seed
        #: the row of ``[data] format`` in the table of data formats (cortexfit.io.formats)
        self.data_format = get_format(config.data.format)
        self.manifest: dict[str, Any] = {}  # stages.json's records (set by the pipeline)
        #: the load stage's fingerprint in this run (set by the pipeline): the run folder's
        #: generated recording is reused only when it was made for the same one
        self.load_fingerprint: str | None = None
        self.identity: dict[str, Any] | None = None  # the run's name and recording
        self._block = None
        self._generated: Path | None = None  # a generated recording, before it is moved in
        self._tmp = None
        self._psth_targets = None  # the targets of a format of trial-averaged rates only
        self._recorded = None  # the recorded units' targets (before auxiliary neurons)
        self._tuned = None  # the chosen candidate's fit from this run's search (NPZ bytes)
        self._targets = None
        self._fitted = None

    # -- lazily loaded inputs: a skipped stage's outputs are read back from the folder
    @property
    def block(self):
        if self._block is None:
            self._block = _load_block(self)
        return self._block

    @property
    def targets(self) -> xr.Dataset:
        if self._targets is None:
            with xr.open_dataset(self.out / "targets.nc", **_NC) as ds:
                self._targets = ds.load()
        return self._targets

    @property
    def fitted(self):
        if self._fitted is None:
            self._fitted = RLSFit.load(self.out / "model.npz")
        return self._fitted

    def save_manifest(self) -> None:
        write_text(self.out / MANIFEST_NAME, json.dumps(
            {"cortexfit_version": __version__, "run": self.identity,
             "stages": self.manifest}, indent=2))

    def preflight(self) -> None:
        """Read the recording and make the targets in memory, so that a data or targets
        error stops the run before it writes anything (idempotent)."""
        if self.data_format.gives_trials:
            self.block  # noqa: B018  (reads and checks the recording)
        if self._targets is None:
            self._targets = _model_targets(self)

    def drop_generated_source(self) -> None:
        """Remove the temporary copy (once it is in the run folder)."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = self._generated = None

    def generated_source(self) -> Path:
        """A generated recording (the embedded synthetic one or one of the development set, as
        NWB; ``[data] variant`` picks the latter): the run folder's copy when it is intact
        and was made by a load of the same settings (seed, ``[data]``), else generated into a
        temporary folder (moved in by the load stage)."""
        fmt = self.data_format
        name = fmt.generated_file
        load = self.manifest.get("load", {})
        record = load.get("outputs", {}) if isinstance(load, dict) else None
        if (isinstance(record, dict) and load.get("fingerprint") == self.load_fingerprint
                and record_matches(self.out / name, record.get(name))):
            return self.out / name
        if self._generated is None:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"cortexfit-{fmt.name}-")
            self._generated = Path(self._tmp.name) / name
            fmt.generate(self._generated, self.seed, self.resolved["data"])
        return self._generated

    def data_source(self) -> Path | None:
        """What the format's reader reads: the generated recording, else ``[data] path``
        resolved (``None`` when not given)."""
        if self.data_format.generated_file is not None:
            return self.generated_source()
        return self.config.data_path()


# ---------------------------------------------------------------------- data
def _write_nc(ds: xr.Dataset, path: Path) -> None:
    """NetCDF (HDF5) with every numeric variable compressed, written atomically."""
    write_netcdf(ds, path)


def _data_files(config: RunConfig) -> list[Path]:
    """The files a load reads, for the load stage's fingerprint."""
    return get_format(config.data.format).data_files(config.data_path())


def _file_stamp(paths: list[Path]) -> list[Any]:
    stamp = []
    for path in paths:
        if not path.is_file():
            raise ConfigError("the recording file does not exist", file=path,
                              field="data.path", found="no such file",
                              expected="an existing recording file (relative paths are "
                              "relative to the config file; 'shared:...' is in the shared "
                              "data folder)")
        st = path.stat()
        stamp.append([str(path.resolve()), st.st_size, st.st_mtime_ns])
    return stamp


def _load_block(ctx: RunContext):
    fmt = ctx.data_format
    if not fmt.gives_trials:
        return None  # trial-averaged rates only (alm_kim2023_psth): no Block
    return fmt.read_block(ctx.data_source(), ctx.resolved["data"])


def _dataset_info(ctx: RunContext) -> dict[str, Any] | None:
    """Citation and licence when the recording is one of the shared datasets (by format,
    or by file name and folder for an NWB / Neo file)."""
    name = ctx.data_format.dataset
    if name is not None:
        return {"name": name, **SHARED_DATASETS[name]}
    path = ctx.config.data_path()
    if path is None:
        return None
    for name, info in SHARED_DATASETS.items():
        if path.name in info["files"] and path.parent.name == info["folder"]:
            return {"name": name, **info}
    return None


def stage_load(ctx: RunContext) -> str:
    fmt = ctx.data_format
    attrs: dict[str, Any] = {"format": fmt.name, "cortexfit_version": __version__}
    info = _dataset_info(ctx)
    attrs["dataset"] = json.dumps(info or {})
    if fmt.generated_file is not None:  # the run folder keeps the generated recording
        source, kept = ctx.generated_source(), ctx.out / fmt.generated_file
        if source != kept:
            with atomic_path(kept) as tmp:
                shutil.copyfile(source, tmp)
            ctx.drop_generated_source()
    if not fmt.gives_trials:
        rates = fmt.read_targets(ctx.data_source(), ctx.resolved["data"])
        ctx._psth_targets = rates
        attrs.update(n_units=rates.sizes["unit"], n_trials=0, rates_only=1,
                     summary=f"{rates.sizes['unit']} units, trial-averaged rates of "
                     f"{rates.sizes['condition']} conditions, no single trials")
        ds = xr.Dataset(attrs=attrs)
        _write_nc(ds, ctx.out / "recording.nc")
        return (f"{rates.sizes['unit']} units, {rates.sizes['condition']} conditions "
                "(trial-averaged rates only)")
    block = ctx.block
    summary = describe(block)
    ds = _example_trials(block, ctx.resolved["data"])
    if fmt.truth is not None:  # the rates a generated recording's trial averages estimate
        truth = fmt.truth(ctx.seed, ctx.resolved["data"])
        ds["expected_rate"] = truth.rename({"time": "truth_time"}).astype(np.float32)
    ds.attrs.update(attrs, n_units=summary.n_units, n_trials=summary.n_trials,
                    rates_only=0, summary=str(summary),
                    summary_json=json.dumps(summary.as_dict(), default=str))
    _write_nc(ds, ctx.out / "recording.nc")
    key = ctx.resolved["data"]["condition"]
    values = summary.trial_attributes.get(key) if isinstance(key, str) else None
    cond_text = f", {len(values)} values of {key!r}" if isinstance(values, dict) else ""
    return f"{summary.n_units} units, {summary.n_trials} trials{cond_text}"


def _example_trials(block, data: dict) -> xr.Dataset:
    """Spikes of one trial per condition, relative to the alignment event, for rasters."""
    key = data["condition"]
    keys = [key] if isinstance(key, str) else list(key)
    seen: dict[str, int] = {}
    for index, seg in enumerate(block.segments):
        label = "/".join(str(seg.annotations.get(k, "")) for k in keys)
        if label not in seen and event_time(seg, data["align"]) is not None:
            seen[label] = index
        if len(seen) >= 6:
            break
    if not seen:  # no trial has the event: show the first trial from its start
        seen = {"/".join(str(block.segments[0].annotations.get(k, "")) for k in keys): 0}
    times, units, trials = [], [], []
    events: list[dict[str, float]] = []
    for j, (label, index) in enumerate(seen.items()):
        seg = block.segments[index]
        zero = event_time(seg, data["align"])
        zero = trial_window(seg)[0] if zero is None else zero
        for k, st in enumerate(seg.spiketrains):
            t = st.rescale("s").magnitude - zero
            times.append(t)
            units.append(np.full(t.size, k, dtype=np.int32))
            trials.append(np.full(t.size, j, dtype=np.int32))
        start, stop = trial_window(seg)
        ev = {"trial_start": start - zero, "trial_stop": stop - zero}
        for e in seg.events:
            when = event_time(seg, e.name)
            if when is not None:
                ev[e.name] = when - zero
        events.append(ev)
    names = sorted({n for ev in events for n in ev})
    return xr.Dataset(
        {
            "spike_time": ("spike", np.concatenate(times) if times else np.zeros(0),
                           {"units": "s", "long_name": "spike time from the alignment event"}),
            "spike_unit": ("spike", np.concatenate(units) if units else np.zeros(0, np.int32)),
            "spike_trial": ("spike", np.concatenate(trials) if trials else np.zeros(0, np.int32)),
            "event_time": (("example_trial", "event"),
                           np.array([[ev.get(n, np.nan) for n in names] for ev in events]),
                           {"units": "s", "long_name": "event time from the alignment event"}),
        },
        coords={"example_trial": [str(i) for i in seen.values()],
                "example_condition": ("example_trial", list(seen.keys())),
                "event": names, "unit": unit_ids(block)},
        attrs={"align_event": data["align"]},
    )


# ---------------------------------------------------------------------- targets
def _recorded_targets(ctx: RunContext) -> xr.Dataset:
    """The recorded units' targets (the training / validation / held-out split, the margin
    around the scored window, ``[targets] max_units``), made once per run."""
    if ctx._recorded is not None:
        return ctx._recorded
    data, tcfg = ctx.resolved["data"], ctx.resolved["targets"]
    if not ctx.data_format.gives_trials:
        targets = ctx._psth_targets
        if targets is None:
            targets = ctx._psth_targets = ctx.data_format.read_targets(ctx.data_source(), data)
    else:
        targets = make_targets(
            ctx.block, align=data["align"], window=tuple(data["window"]),
            condition=data["condition"], where=data["where"] or None,
            bin_size=tcfg["bin_size"], kernel=tcfg["kernel"],
            kernel_width=tcfg["kernel_width"], min_rate=tcfg["min_rate"],
            heldout_fraction=tcfg["heldout_fraction"], min_trials=tcfg["min_trials"],
            seed=ctx.seed, validation_fraction=tcfg["validation_fraction"],
            margin=tcfg["margin"],
        )
    max_units = tcfg["max_units"]
    if max_units is not None and targets.sizes["unit"] > max_units:
        rng = seeds.rng(ctx.seed, "unit_selection")
        keep = np.sort(rng.choice(targets.sizes["unit"], size=max_units, replace=False))
        n_all = targets.sizes["unit"]
        targets = targets.isel(unit=keep)
        targets.attrs["unit_selection"] = (f"{max_units} of {n_all} units chosen at random "
                                           f"(seed {ctx.seed}, targets.max_units)")
        targets.attrs["units_before_selection"] = n_all
    ctx._recorded = targets
    return targets


def _auxiliary_settings(resolved: dict[str, Any], seed: int) -> dict[str, Any]:
    """:func:`cortexfit.add_auxiliary`'s keyword arguments from a resolved config."""
    aux = resolved["auxiliary"]
    return dict(aux_ratio=aux["aux_ratio"], tau_c=aux["tau_c"], amplitude=aux["amplitude"],
                tau_s=aux["tau_s"], seed=seed,
                neuron_model=resolved["network"]["neuron_model"],
                min_neurons=aux["min_neurons"])


def _model_targets(ctx: RunContext) -> xr.Dataset:
    """The targets of the run: the recorded units' and the auxiliary neurons'."""
    return add_auxiliary(_recorded_targets(ctx), **_auxiliary_settings(ctx.resolved, ctx.seed))


def stage_targets(ctx: RunContext) -> str:
    if ctx._targets is None:
        ctx._targets = _model_targets(ctx)
    model_targets = ctx._targets
    _write_nc(model_targets, ctx.out / "targets.nc")
    n_rec = int((model_targets["role"] == "recorded").sum())
    n_aux = int((model_targets["role"] == "auxiliary").sum())
    n_all = model_targets.attrs.get("units_before_selection")
    note = f" (a random {n_rec} of {n_all})" if n_all else ""
    held = ("no held-out trials (rates only)" if "rate_heldout" not in model_targets
            else f"{int(model_targets['n_trials'].sel(split='heldout').sum())} held-out "
                 "trials")
    if "rate_validation" in model_targets:
        held += (f", {int(model_targets['n_trials'].sel(split='validation').sum())} "
                 "validation trials")
    attrs = model_targets.attrs
    margin = ""
    if attrs.get("margin_before", 0) or attrs.get("margin_after", 0):
        margin = (f" ({attrs['margin_before']:g} s + {attrs['margin_after']:g} s trained "
                  "beyond the scored window)")
    return (f"{model_targets.sizes['unit']} units{note} x "
            f"{model_targets.sizes['condition']} conditions x {model_targets.sizes['time']} "
            f"bins{margin}, {n_aux} auxiliary neurons, {held}")


# ---------------------------------------------------------------------- tune
def stage_tune(ctx: RunContext, fingerprint: str) -> str:
    """``[tune]``: fit every candidate setting (:mod:`cortexfit.tune`) on a Dask cluster and
    write their validation scores and the choice to ``tune.nc``. Finished candidates are
    kept in ``tune-progress/`` until the search ends, so a rerun after an interruption fits
    only the missing ones."""
    t = ctx.resolved["tune"]
    if not t["enabled"]:
        (ctx.out / "tune.nc").unlink(missing_ok=True)
        return "disabled ([tune] enabled = false)"
    recorded = _recorded_targets(ctx)
    if "rate_validation" not in recorded:
        raise ConfigError(
            "[tune] needs validation trials to choose on", field="targets.validation_fraction",
            found=("a recording of trial-averaged rates only" if not
                   ctx.data_format.gives_trials else
                   f"{ctx.resolved['targets']['validation_fraction']!r}"),
            expected="a recording with single trials and validation_fraction > 0 (e.g. 0.2)",
            hint="Set [targets] validation_fraction = 0.2, or [tune] enabled = false")
    base = ctx.base_config
    extra = {"training.loops": t["loops"]} if t["loops"] else {}

    def make(point: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        candidate = with_settings(base, {**point, **extra})
        settings = candidate.fit_settings()
        aux = {"auxiliary": auxiliary_section(candidate, settings["tau_s"]),
               "network": {"neuron_model": settings["neuron_model"]}}
        return settings, _auxiliary_settings(aux, ctx.seed)

    start = {}
    for key in t["grid"]:
        section, _, name = key.partition(".")
        start[key] = ctx.resolved[section].get(name)
    store = ctx.out / "tune-progress"
    for old in store.glob("*") if store.is_dir() else []:
        if old.name != fingerprint:  # finished candidates of other settings
            shutil.rmtree(old, ignore_errors=True)
    models: dict[str, Any] = {}
    result = search(recorded, t["grid"], make, start=start, method=t["method"],
                    eval_seed=ctx.resolved["evaluate"]["seed"],
                    scheduler=t["scheduler"] or None, n_workers=t["workers"] or None,
                    store=store / fingerprint, progress=ctx.console.bars, field="tune",
                    models=models)
    ctx._tuned = models if "chosen" in models else None
    _write_nc(result, ctx.out / "tune.nc")
    shutil.rmtree(store, ignore_errors=True)
    chosen = int(result.attrs["chosen"])
    scores = result["validation"].values
    failed = int((result["error"] != "").sum())
    choice = ", ".join(f"{k} = {v!r}" for k, v in chosen_settings(result).items())
    return (f"{result.sizes['candidate']} candidates ({t['method']}, "
            f"{result.attrs['where']}{f', {failed} failed' if failed else ''}): chose "
            f"{choice} (validation r {scores[chosen]:.3f}; all "
            f"{np.nanmin(scores):.3f}-{np.nanmax(scores):.3f})")


def apply_tune(ctx: RunContext) -> None:
    """After ``[tune]``: the run goes on with the chosen settings (``config.toml`` is
    rewritten with them, so it says what was fitted)."""
    if not ctx.resolved["tune"]["enabled"]:
        return
    with xr.open_dataset(ctx.out / "tune.nc", **_NC) as ds:
        chosen = json.loads(ds.attrs["chosen_settings"])
    ctx.config = with_settings(ctx.base_config, chosen)
    ctx.resolved = resolve(ctx.config)
    ctx._targets = None
    choice = ", ".join(f"{k} = {v!r}" for k, v in chosen.items())
    write_text(ctx.out / "config.toml", f"# [tune] chose {choice} on the validation "
               "trials (tune.nc); the settings below are the chosen ones\n"
               + to_toml(ctx.resolved))


# ---------------------------------------------------------------------- fit
#: the config sections a fit depends on (a checkpoint is valid for these settings only)
_FIT_INPUTS = ("run", "data", "targets", "auxiliary", "network", "training")


def _loops_done(ckpt: Path) -> int | None:
    try:
        with np.load(ckpt, allow_pickle=False) as data:
            return int(data["loops_done"])
    except (OSError, ValueError, KeyError, EOFError):
        return None


def _flat(settings: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(settings, dict):
        return {prefix: settings}
    out: dict[str, Any] = {}
    for key, value in settings.items():
        out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _changed_settings(old: Any, new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(key, old, new)`` for every setting that differs (empty when ``old`` is unknown)."""
    if not isinstance(old, dict):
        return []
    a, b = _flat(old), _flat(json.loads(json.dumps(new, default=str)))
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _reuse_tuned_fit(ctx: RunContext, settings: dict[str, Any]):
    """The chosen candidate's fit from this run's search, when it was fitted with exactly
    the settings and targets of this fit (``[tune] loops`` unset): it is the same fit
    (same seed, same settings; tested bit for bit), so it is not fitted again."""
    tuned = ctx._tuned
    if (tuned is None or tuned.get("settings") != settings
            or tuned.get("auxiliary") != _auxiliary_settings(ctx.resolved, ctx.seed)):
        return None
    path = ctx.out / "model.npz"
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(tuned["chosen"])
    ctx._tuned = None
    return RLSFit.load(path)


def stage_fit(ctx: RunContext, fingerprint: str) -> str:
    ckpt = ctx.out / "checkpoint.npz"
    settings = ctx.config.fit_settings()
    reused = _reuse_tuned_fit(ctx, settings)
    if reused is not None:
        ckpt.unlink(missing_ok=True)
        ctx.manifest["fit"] = {"started": fingerprint,
                               "settings": {name: ctx.resolved[name] for name in _FIT_INPUTS}}
        _write_nc(reused.history_, ctx.out / "history.nc")
        ctx._fitted = reused
        return _fit_summary(ctx, reused, settings) + " (the search's fit of the chosen " \
            "settings, not fitted again)"
    record = ctx.manifest.get("fit", {})
    mine = {name: ctx.resolved[name] for name in _FIT_INPUTS}
    resume = False
    if ckpt.exists():
        done = _loops_done(ckpt)
        if ctx.restart or done is None:
            ctx.console.say("  --restart: the interrupted fit's checkpoint was discarded"
                            if ctx.restart else "  an unreadable checkpoint was discarded")
            ckpt.unlink()
        elif record.get("started") != fingerprint:
            changed = _changed_settings(record.get("settings"), mine)
            raise ConfigError(
                "this run folder holds an interrupted fit made with other settings",
                file=ckpt, field=", ".join(k for k, _, _ in changed[:6]) or "--resume",
                found=(f"a checkpoint after loop {done}; changed since: " + "; ".join(
                    f"{k}: {a!r} -> {b!r}" for k, a, b in changed[:6])) if changed else
                      f"a checkpoint after loop {done}, made before the recording file or "
                      "the cortexfit version changed",
                expected="the settings it was made with, to continue it with --resume",
                hint="Undo the changes and rerun with --resume to continue the fit, or rerun "
                     "with --restart to discard it and train with the new settings")
        elif ctx.resume:
            ctx.console.say(f"  resuming the interrupted fit from its checkpoint (loop {done})")
            resume = True
        else:
            raise ConfigError(
                "this run folder holds an interrupted fit", file=ckpt, field="--resume",
                found=f"a checkpoint after loop {done} of "
                      f"{ctx.resolved['training']['loops']}",
                expected="--resume to continue it or --restart to discard it",
                hint="Rerun the same command with --resume",
            )
    ctx.manifest["fit"] = {"started": fingerprint, "settings": mine}
    ctx.save_manifest()
    fitted = RLSFit(**settings, checkpoint=str(ckpt),
                    checkpoint_every=ctx.config.training.checkpoint_every,
                    progress=ctx.console.bars,
                    validator=_validator(ctx)).fit(ctx.targets, resume=resume)
    fitted.save(ctx.out / "model.npz")
    _write_nc(fitted.history_, ctx.out / "history.nc")
    ckpt.unlink(missing_ok=True)
    ctx._fitted = fitted
    return _fit_summary(ctx, fitted, settings)


def _fit_summary(ctx: RunContext, fitted, settings: dict[str, Any]) -> str:
    n = fitted.network_.n_neurons
    n_rec = int(ctx.targets.sizes["unit"])
    last = fitted.history_.isel(loop=-1)
    return (f"{n} {settings['neuron_model']} neurons ({n_rec} recorded, {n - n_rec} "
            f"auxiliary), {settings['loops']} loops: training r = {float(last['pearson']):.2f}, "
            f"mean rate {float(last['rate']):.1f} Hz")


def _validator(ctx: RunContext):
    """The best loop's judge when the targets have validation trials
    (:func:`cortexfit.evaluate.validation_judge`); None without them (the last loop is
    kept)."""
    return validation_judge(ctx.targets, seed=ctx.resolved["evaluate"]["seed"])


# ---------------------------------------------------------------------- evaluate
def scores_by_split(scores: xr.Dataset) -> xr.Dataset:
    """:func:`cortexfit.evaluate.score` output with its ``split`` dimension flattened into
    the run folder's variables: ``pearson_train``, ``pearson_heldout``, ``rmse_*``,
    ``r2_*``, ``noise_ceiling`` (of the held-out average: the bound for
    ``pearson_heldout``), ``noise_ceiling_train``, all over (condition, unit), and
    ``fraction_of_ceiling`` (a number: mean ``pearson_heldout`` over mean
    ``noise_ceiling``, :func:`cortexfit.evaluate.ceiling_fraction`); plus ``model_rate``
    (on the scored bins), ``split_half_r``, ``n_data_trials``.
    Without held-out trials the ``*_heldout`` and ceiling variables are absent and
    ``attrs["heldout"]`` says why."""
    out = xr.Dataset(coords={k: v for k, v in scores.coords.items() if "split" not in v.dims})
    splits = [str(s) for s in scores["split"].values]
    for name in ("pearson", "rmse", "r2"):
        for split in splits:
            out[f"{name}_{split}"] = scores[name].sel(split=split, drop=True)
    has_ceiling = scores.attrs.get("ceiling_trials") != "none"
    if "heldout" in splits and has_ceiling:
        out["noise_ceiling"] = scores["noise_ceiling"].sel(split="heldout", drop=True)
        out["noise_ceiling_train"] = scores["noise_ceiling"].sel(split="train", drop=True)
        out["fraction_of_ceiling"] = scores["fraction_of_ceiling"].sel(split="heldout",
                                                                       drop=True)
        out["noise_ceiling"].attrs["long_name"] = (
            "noise ceiling of the held-out average (sqrt of its split-half reliability)")
        out.attrs["heldout"] = "held-out trials scored"
    else:
        out.attrs["heldout"] = ("none: the targets have no held-out trials (trial-averaged "
                                "rates only), so only the fit to the training targets is "
                                "scored and no noise ceiling exists")
    for name in ("model_rate", "split_half_r", "n_data_trials"):
        if name in scores:
            out[name] = scores[name]
    out.attrs.update({k: v for k, v in scores.attrs.items() if k != "heldout"})
    return out


def stage_evaluate(ctx: RunContext) -> str:
    ecfg = ctx.resolved["evaluate"]
    has_trials = "rate_heldout" in ctx.targets
    scores = score(ctx.fitted, ctx.targets, n_trials=ecfg["n_trials"], seed=ecfg["seed"],
                   n_splits=ecfg["n_splits"] if has_trials else 0)
    flat = scores_by_split(scores)
    # the report's model rasters: the first scored test trial of each condition (cheap)
    flat = flat.merge(example_model_spikes(ctx.fitted, ctx.targets, seed=ecfg["seed"]))
    _write_nc(flat, ctx.out / "scores.nc")
    text = f"pearson train {float(flat['pearson_train'].mean()):.2f}"
    if "pearson_heldout" in flat:
        text += (f", held-out {float(flat['pearson_heldout'].mean()):.2f} "
                 f"(noise ceiling {float(flat['noise_ceiling'].mean()):.2f}, fraction "
                 f"{float(flat['fraction_of_ceiling']):.2f})")
    else:
        text += " (no held-out trials)"
    return text


# ---------------------------------------------------------------------- diagnostics
def stage_diagnostics(ctx: RunContext) -> str:
    d = ctx.resolved["diagnostics"]
    if not d["enabled"]:
        return "disabled ([diagnostics] enabled = false)"
    fitted, targets, seed = ctx.fitted, ctx.targets, ctx.seed
    common = dict(n_repeats=d["n_repeats"], n_trials=d["n_trials"], seed=seed,
                  eval_seed=ctx.resolved["evaluate"]["seed"])
    # Shuffle the trained weights among recorded neurons; with fewer than two such synapses
    # (e.g. one recorded unit) shuffle every trained synapse instead (shuffle.nc attrs: scope)
    scope = "recorded"
    if diagnostics.shuffle_candidates(fitted.network_, fitted.targets_.roles, scope).size < 2:
        scope = "all"
    jobs: list[tuple[str, Callable[[], xr.Dataset]]] = [
        ("lesion", lambda: diagnostics.lesion(fitted, targets, fractions=d["lesion_fractions"],
                                              **common)),
        ("shuffle", lambda: diagnostics.shuffle(fitted, targets, scope=scope,
                                                fractions=d["shuffle_fractions"], **common)),
    ]
    if d["spectrum"]:
        jobs.append(("spectrum", lambda: diagnostics.spectrum(fitted)))
    if d["quasistatic"]:
        jobs.append(("quasistatic", lambda: diagnostics.quasistatic(fitted, seed=seed)))
    if d["perturbation"]:
        jobs.append(("perturbation", lambda: diagnostics.perturbation(fitted, seed=seed)))
    if d["lyapunov"]:
        jobs.append(("lyapunov", lambda: diagnostics.lyapunov(
            fitted, n_seeds=d["lyapunov_seeds"], duration=1.0, seed=seed)))
    found = {}
    with tqdm(total=len(jobs), desc="diagnostics", unit="test",
              disable=not ctx.console.bars) as bar:
        for name, job in jobs:
            bar.set_postfix_str(name)
            found[name] = job()
            bar.update()
    diagnostics.save_diagnostics(ctx.out / "diagnostics.nc", **found)
    lesion = found["lesion"]["mean_pearson"].mean("repeat")
    split = "heldout" if "heldout" in lesion["split"].values else "train"
    worst = float(lesion.sel(split=split).isel(fraction=-1))
    intact = float(found["lesion"]["mean_pearson_intact"].sel(split=split))
    scope_note = "" if scope == "recorded" else " (shuffle over all trained synapses)"
    return (f"{', '.join(found)}{scope_note}; lesioning {float(lesion['fraction'][-1]):.0%}: r "
            f"{intact:.2f} -> {worst:.2f} ({split})")


# ---------------------------------------------------------------------- report
def stage_report(ctx: RunContext) -> str:
    path = build_report(ctx.out)
    return f"{path.name} ({path.stat().st_size / 1e6:.1f} MB)"
