"""Run configuration: a TOML file validated into typed settings before any work starts.

A config has these sections (every key optional; ``cortexfit demo`` is the empty config)::

    [run]          name, seed
    [data]         format, path, event_times, condition, where, align, window, variant,
                   allow_pickle
    [targets]      bin_size, kernel, kernel_width, min_rate, heldout_fraction,
                   validation_fraction, min_trials, margin, max_units
    [auxiliary]    aux_ratio, tau_c, amplitude, tau_s
    [network]      preset and the network settings of :class:`cortexfit.fit.RLSFit`
    [training]     the training settings of :class:`cortexfit.fit.RLSFit`
    [evaluate]     n_trials, seed, n_splits
    [diagnostics]  enabled, lesion_fractions, shuffle_fractions, n_repeats, n_trials,
                   spectrum, quasistatic, perturbation, lyapunov, lyapunov_seeds
    [tune]         enabled, grid, method, loops, scheduler, workers: settings chosen on
                   the validation trials (:mod:`cortexfit.tune`)
    [report]       title, example_units

Every default and every choice that a library function also checks is declared once, by
the library (its signature's default, a constant or ``Literal`` next to it: e.g.
:data:`cortexfit.targets.Kernel`, :data:`cortexfit.evaluate.DEFAULT_N_TRIALS`), and read
from there; ``tests/contract/test_contract.py`` asserts that the config and the library agree on
every key's default, choices and bounds. Two defaults differ from the library's on
purpose: ``[targets] validation_fraction`` (0.2; ``make_targets``: 0, no trial set aside)
and ``[targets] margin`` (``"auto"``; ``make_targets``: 0, the time axis is the window), so
that library calls keep their behaviour while a run sets validation trials aside and scores
without edge bias. ``[auxiliary] tau_s`` defaults to
``[network] tau_s`` (the paper filters the auxiliary targets with the synaptic time
constant); setting the two to different values is an error.

Validation is done by pydantic models with ``extra="forbid"`` and strict types (TOML has
real integers, floats, booleans and strings, so ``"0.02"`` for a number is a mistake, not a
conversion). Every problem becomes one :class:`~cortexfit.exceptions.ConfigError` naming the
file, the key (``targets.bin_size``), the value and what is allowed.

Paths in ``[data] path`` are relative to the config file's folder; a path starting with
``shared:`` is relative to the shared data folder (``CORTEXFIT_SHARED_DATA``, else
``../shared/data``, see :func:`cortexfit.datasets.paths.shared_data_dir`).

:func:`resolve` fills in every default (the data format's own alignment, the training
preset's values) so that the run folder's ``config.toml`` says exactly what ran.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import inspect
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from . import diagnostics
from .auxiliary import add_auxiliary

# cortexfit.datasets registers the synthetic and shared formats in the table of data
# formats (cortexfit.io.formats): imported before anything here reads the table
from .datasets import shared_data_dir
from .evaluate import score
from .exceptions import ConfigError
from .fit import RLSFit
from .fit.estimator import PARAMETER_CONSTRAINTS
from .io.formats import data_formats, format_names, get_format
from .neurons.base import model_names
from .params import pydantic_bounds
from .targets import Kernel, make_targets
from .tune import tune as tune_search

__all__ = ["RunConfig", "load_config", "parse_config", "resolve", "DATA_FORMATS", "to_toml",
           "with_settings", "DEFAULT_TUNE_GRID"]

#: Where each data format comes from: name -> description, read from the table of data
#: formats (:mod:`cortexfit.io.formats`, which ``[data] format`` is validated against).
DATA_FORMATS = {fmt.name: fmt.description for fmt in data_formats()}

_STRICT = ConfigDict(extra="forbid", strict=True, validate_default=True)
PositiveFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(gt=0, le=1)]
Scalar = Union[str, int, float, bool]


def _default(func, name: str) -> Any:
    """The default of ``func``'s argument ``name``: the library owns the default, the
    config reads it (so the two cannot drift apart)."""
    if dataclasses.is_dataclass(func):
        value = {f.name: f.default for f in dataclasses.fields(func)}[name]
    else:
        value = inspect.signature(func).parameters[name].default
    if value in (inspect.Parameter.empty, dataclasses.MISSING):
        raise TypeError(f"{func.__qualname__}({name}) has no default")
    return list(value) if isinstance(value, tuple) else value


class _Section(BaseModel):
    model_config = _STRICT


class RunSection(_Section):
    """What the run is called and its seed (every random choice derives from it)."""

    name: str = Field("", max_length=100)
    seed: int = Field(0, ge=0)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name):
        # the default run folder is reports/<name>: a name must not lead anywhere else
        if name and (not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*", name)
                     or name in (".", "..")):
            raise ValueError("name must be a plain name (letters, digits, '_', '-', '.'; "
                             "no '/', no '..', not starting with '.'): it names the folder "
                             "reports/<name>; use --out to write elsewhere")
        return name


class DataSection(_Section):
    """Which recording, which trials, aligned on what."""

    #: one of the table of data formats (:func:`cortexfit.io.formats.format_names`)
    format: str = "synthetic"
    path: str | None = None
    event_times: Literal["auto", "absolute", "relative"] = "auto"
    variant: str | None = None
    condition: str | list[str] | None = None
    where: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)
    align: str | None = None
    window: list[float] | None = Field(None, min_length=2, max_length=2)
    allow_pickle: bool = False

    @field_validator("format", mode="before")
    @classmethod
    def _known_format(cls, name):
        names = format_names()
        if not isinstance(name, str) or name not in names:
            shown = [repr(n) for n in names]  # worded as pydantic words a Literal's choices
            choices = ", ".join(shown[:-1]) + " or " + shown[-1] if len(shown) > 1 else shown[0]
            raise ValueError(f"Input should be {choices}")
        return name

    @field_validator("variant")
    @classmethod
    def _known_variant(cls, variant, info):
        """A format with a list of variants (``devset``) takes one of them."""
        name = info.data.get("format")  # absent when the format itself was refused
        variants = get_format(name).variants if name is not None else {}
        if variants and variant is not None and variant not in variants:
            shown = [repr(v) for v in variants]
            raise ValueError(f"unknown variant of format {name!r}: one of "
                             + ", ".join(shown[:-1]) + " or " + shown[-1])
        return variant

    @field_validator("window")
    @classmethod
    def _ordered(cls, window):
        if window is not None and not window[0] < window[1]:
            raise ValueError("window must be [start, stop] with start < stop (seconds)")
        return window

    @model_validator(mode="after")
    def _path_needed(self):
        """The keys the format needs that no default can give (``path``; the others are
        checked by :func:`resolve`, once the format's defaults are filled in), and the keys
        it refuses."""
        fmt = get_format(self.format)
        if "path" in fmt.needs and not self.path:
            raise ValueError(f"path is required for format {self.format!r}: the recording "
                             "file (relative to the config file, or 'shared:...')")
        for key, why in fmt.refuses.items():
            if getattr(self, key):
                raise ValueError(f"{key} is not used for format {self.format!r} ({why}); "
                                 "remove it")
        return self


class TargetsSection(_Section):
    """Binning and smoothing of the trial-averaged targets, the training / validation /
    held-out split, the margin around the scored window."""

    bin_size: PositiveFloat = _default(make_targets, "bin_size")
    kernel: Kernel = _default(make_targets, "kernel")  # the library's Literal
    kernel_width: PositiveFloat = _default(make_targets, "kernel_width")
    min_rate: float = Field(_default(make_targets, "min_rate"), ge=0)
    heldout_fraction: float = Field(_default(make_targets, "heldout_fraction"), ge=0, lt=1)
    #: not the library's default (0): a run sets trials aside to choose the best loop on
    validation_fraction: float = Field(0.2, ge=0, lt=1)
    min_trials: int = Field(_default(make_targets, "min_trials"), ge=1)
    #: not the library's default (0): a run is trained beyond the window it is scored on
    margin: Annotated[float, Field(ge=0)] | Literal["auto"] = "auto"
    max_units: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _fractions(self):
        if self.heldout_fraction + self.validation_fraction >= 1:
            raise ValueError(
                f"heldout_fraction + validation_fraction = {self.heldout_fraction:g} + "
                f"{self.validation_fraction:g} leaves no training trials; their sum must "
                "be below 1")
        return self


class AuxiliarySection(_Section):
    """Auxiliary neurons with OU-process targets (the paper's Figure 5)."""

    aux_ratio: float = Field(_default(add_auxiliary, "aux_ratio"), ge=0, le=1000)
    tau_c: PositiveFloat = _default(add_auxiliary, "tau_c")
    amplitude: PositiveFloat = _default(add_auxiliary, "amplitude")
    #: not the library's default (0): a run fills the network up to this size with
    #: auxiliary neurons when few units are recorded (issue 14; pipelines/README.md)
    min_neurons: int = Field(300, ge=0, le=20_000)
    #: None: ``[network] tau_s`` (filled in by :func:`resolve`; a different value is an error)
    tau_s: PositiveFloat | None = None


def _from_fit(name: str, default: Any = None) -> Any:
    """A field whose bounds are RLSFit's declared constraint on ``name``
    (:data:`cortexfit.fit.estimator.PARAMETER_CONSTRAINTS`): one declaration for both."""
    return Field(default, **pydantic_bounds(PARAMETER_CONSTRAINTS[name]))


class NetworkSection(_Section):
    """The network; unset keys take the values of ``preset`` (see :class:`RLSFit`)."""

    preset: Literal["recordings", "paper"] = "recordings"
    neuron_model: str | None = None
    dale: bool | None = None
    frac_exc: float | None = _from_fit("frac_exc")
    p: float | None = _from_fit("p")
    J: float | None = _from_fit("J")
    g: float | None = _from_fit("g")
    sigma: float | None = _from_fit("sigma")
    zero_row_sum: bool | None = None
    k_plastic: int | Literal["all"] | None = None
    tau_s: float | None = _from_fit("tau_s")
    bias: float | None = None

    @field_validator("k_plastic")
    @classmethod
    def _k_positive(cls, k):
        if isinstance(k, int) and k < 1:
            raise ValueError("k_plastic must be 'all' or an integer >= 1")
        return k

    @field_validator("neuron_model")
    @classmethod
    def _known_model(cls, name):
        if name is not None:
            if name not in model_names():
                raise ValueError(f"unknown neuron model; one of {sorted(model_names())}")
        return name


class TrainingSection(_Section):
    """RLS training; unset keys take the values of ``[network] preset``."""

    # "drive" (RLSFit's third form) needs drive targets, which no data format gives
    form: Literal["auto", "rate"] | None = None
    lam: float | None = _from_fit("lam")
    update_every: float | None = _from_fit("update_every")
    stim_duration: float | None = _from_fit("stim_duration")
    stim_amplitude: float | None = _from_fit("stim_amplitude")
    pre_duration: float | None = _from_fit("pre_duration")
    loops: int | None = _from_fit("loops")
    # narrower than the library (>= 0): 0 is the sharp curve, on which silent neurons never learn
    fi_smoothing: float | None = Field(None, gt=0)
    rate_gate: float | Literal[False] | None = None  # false: no suprathreshold gate
    noise: float | None = _from_fit("noise")
    compensate_filter: bool | None = None
    dt: float | None = Field(None, gt=0, le=0.01)
    max_rate: float | None = _from_fit("max_rate")
    checkpoint_every: int = _from_fit("checkpoint_every", _default(RLSFit, "checkpoint_every"))


class EvaluateSection(_Section):
    """Scoring the fitted network: fresh model trials per condition, the split-half ceiling."""

    n_trials: int = Field(_default(score, "n_trials"), ge=1)
    seed: int = Field(_default(score, "seed"), ge=0)
    n_splits: int = Field(_default(score, "n_splits"), ge=1)


class DiagnosticsSection(_Section):
    """Taking the fitted network apart."""

    enabled: bool = True
    lesion_fractions: list[Fraction] = Field(
        default_factory=lambda: _default(diagnostics.lesion, "fractions"), min_length=1)
    shuffle_fractions: list[Fraction] = Field(
        default_factory=lambda: _default(diagnostics.shuffle, "fractions"), min_length=1)
    n_repeats: int = Field(_default(diagnostics.lesion, "n_repeats"), ge=1)
    n_trials: int = Field(_default(diagnostics.lesion, "n_trials"), ge=1)
    spectrum: bool = True
    quasistatic: bool = True
    perturbation: bool = True
    lyapunov: bool = True
    lyapunov_seeds: int = Field(_default(diagnostics.lyapunov, "n_seeds"), ge=1)


#: the sections whose keys a settings search may vary (``[tune] grid``)
TUNABLE_SECTIONS = ("auxiliary", "network", "training")
#: keys of those sections a search may not vary
UNTUNABLE = {"network.preset", "training.checkpoint_every", "auxiliary.tau_s"}
#: ``[tune] grid`` when it is not given, searched one setting at a time (5 fits). The
#: settings whose best value differed between development recordings on their validation
#: trials (pipelines/README.md, "Settings search"): the noise level (few_units 0.1, low_rate
#: 0.2) and the network size (300 / 600); tau_s 0.05 or 0.1 (0.025 was far worse on both)
DEFAULT_TUNE_GRID: dict[str, list[Any]] = {
    "network.tau_s": [0.05, 0.1],
    "training.noise": [0.1, 0.2, 0.3],
    "auxiliary.min_neurons": [300, 600],
}


class TuneSection(_Section):
    """Settings chosen on the validation trials (:mod:`cortexfit.tune`): off by default."""

    enabled: bool = False
    #: "section.key" -> candidate values; empty: :data:`DEFAULT_TUNE_GRID`
    grid: dict[str, list[Scalar]] = Field(default_factory=dict)
    method: Literal["grid", "sequential"] = _default(tune_search, "method")
    #: training loops of each candidate (None: [training] loops, so the chosen candidate's
    #: fit is the final fit's)
    loops: int | None = Field(_default(tune_search, "loops"), ge=1)
    #: a running Dask scheduler (tcp://host:8786); "": a local cluster on this machine
    scheduler: str = ""
    #: local cluster's worker processes; 0: one per core
    workers: int = Field(0, ge=0)

    @field_validator("grid")
    @classmethod
    def _known_keys(cls, grid):
        for key, values in grid.items():
            section, _, name = key.partition(".")
            fields = {"auxiliary": AuxiliarySection, "network": NetworkSection,
                      "training": TrainingSection}.get(section)
            if fields is None or name not in fields.model_fields or key in UNTUNABLE:
                allowed = sorted(f"{sec}.{k}" for sec, model in (
                    ("auxiliary", AuxiliarySection), ("network", NetworkSection),
                    ("training", TrainingSection)) for k in model.model_fields
                    if f"{sec}.{k}" not in UNTUNABLE)
                close = difflib.get_close_matches(key, allowed, n=1)
                raise ValueError(f"unknown setting {key!r} to search"
                                 + (f" (did you mean {close[0]!r}?)" if close else "")
                                 + f"; allowed: {', '.join(allowed)}")
            if not values:
                raise ValueError(f"{key}: a list of at least one candidate value")
        return grid


class ReportSection(_Section):
    """The HTML report."""

    title: str = ""
    example_units: int = Field(6, ge=1, le=24)


class RunConfig(_Section):
    """A whole run's settings. Build with :func:`load_config` or :func:`parse_config`."""

    run: RunSection = Field(default_factory=RunSection)
    data: DataSection = Field(default_factory=DataSection)
    targets: TargetsSection = Field(default_factory=TargetsSection)
    auxiliary: AuxiliarySection = Field(default_factory=AuxiliarySection)
    network: NetworkSection = Field(default_factory=NetworkSection)
    training: TrainingSection = Field(default_factory=TrainingSection)
    evaluate: EvaluateSection = Field(default_factory=EvaluateSection)
    diagnostics: DiagnosticsSection = Field(default_factory=DiagnosticsSection)
    tune: TuneSection = Field(default_factory=TuneSection)
    report: ReportSection = Field(default_factory=ReportSection)
    #: the folder relative paths are resolved against (the config file's folder)
    base_dir: str = Field(".", exclude=True)

    # -------------------------------------------------------------- helpers
    def data_path(self) -> Path | None:
        """``[data] path`` resolved (``shared:`` prefix, relative to the config file)."""
        path = self.data.path
        if not path:
            return None
        if path.startswith("shared:"):
            return shared_data_dir() / path[len("shared:"):].lstrip("/")
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else Path(self.base_dir) / candidate

    def fit_settings(self) -> dict[str, Any]:
        """Keyword arguments of :class:`cortexfit.fit.RLSFit` (preset, then the keys set)."""
        given = {k: v for section in (self.network, self.training)
                 for k, v in section.model_dump().items()
                 if v is not None and k not in ("preset", "checkpoint_every")}
        if given.get("rate_gate") is False:
            given["rate_gate"] = None
        given["seed"] = self.run.seed
        base = RLSFit.for_recordings() if self.network.preset == "recordings" else RLSFit()
        settings = {**base.settings(), **given}
        for k in ("checkpoint", "checkpoint_every", "progress", "network"):
            settings.pop(k, None)
        return settings


# ---------------------------------------------------------------------- loading
def load_config(path: str | Path) -> RunConfig:
    """Read and validate a TOML config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("the config file does not exist", file=path, field="CONFIG",
                          expected="a TOML file (see pipelines/ for examples)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("the config file is not valid TOML", file=path, found=str(exc),
                          expected="TOML (https://toml.io)") from None
    return parse_config(raw, base_dir=path.parent, file=path)


def parse_config(raw: dict[str, Any], *, base_dir: str | Path = ".",
                 file: str | Path | None = None) -> RunConfig:
    """Validate a config given as a dict (the parsed TOML)."""
    if not isinstance(raw, dict):
        raise ConfigError("a config must be a table of sections", file=file, found=type(raw),
                          expected="a dict / TOML document")
    try:
        return RunConfig.model_validate({**raw, "base_dir": str(base_dir)})
    except ValidationError as exc:
        raise _config_error(exc, raw, file) from None


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys allowed at ``loc`` (a section's fields, or the section names)."""
    target = model
    for part in loc[:-1]:
        field = target.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            target = annotation
        else:
            return []
    return [k for k in target.model_fields if k != "base_dir"]


def _lookup(raw: Any, loc: tuple) -> Any:
    for part in loc:
        try:
            raw = raw[part]
        except (KeyError, IndexError, TypeError):
            return None
    return raw


def _key_of(loc: tuple) -> tuple[tuple, str]:
    """``("data", "condition", "list[str]", 0)`` -> the config path and its text."""
    names = [p for p in loc[:2] if isinstance(p, str)]
    if len(names) == 2 and names[0] not in RunConfig.model_fields:
        names = names[:1]
    index = [p for p in loc[len(names):] if isinstance(p, int)]
    text = ".".join(names) + "".join(f"[{i}]" for i in index[:1])
    return tuple(names) + tuple(index[:1]), text or "(top level)"


def _config_error(exc: ValidationError, raw: dict, file) -> ConfigError:
    problems: dict[str, list[str]] = {}
    found_at: dict[str, Any] = {}
    for err in exc.errors():
        loc, key = _key_of(tuple(err["loc"]))
        found = _lookup(raw, loc)
        found_at.setdefault(key, found)
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(RunConfig, loc)
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            text = ("unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
                    + f"; allowed: {', '.join(allowed)}")
        else:
            text = err["msg"].removeprefix("Value error, ")
        if text not in problems.setdefault(key, []):
            problems[key].append(text)
    parts = []
    for key, texts in problems.items():
        shown = "" if key == "(top level)" else f" = {found_at[key]!r}"
        parts.append(f"{key}{shown}: " + ", or ".join(texts))
    key = next(iter(problems))
    message = "invalid configuration" if len(parts) > 1 else "invalid configuration value"
    return ConfigError(message + ": " + "; ".join(parts), file=file, field=key,
                       found=found_at[key], hint="Fix the key in the config file; every "
                       "key and its default is listed in pipelines/README.md")


# ---------------------------------------------------------------------- resolving
def resolve(config: RunConfig) -> dict[str, Any]:
    """The config with every default filled in, as plain TOML-ready data."""
    fmt = get_format(config.data.format)
    data = config.data.model_dump()
    data["path"] = str(config.data_path()) if config.data.path else None
    # the data format's own alignment, window, ... (and its variant's, when it has variants)
    for key, value in fmt.defaults_for(data.get("variant") or fmt.defaults.get("variant")
                                       ).items():
        if data.get(key) is None:
            data[key] = copy.deepcopy(value)
    if data.get("condition") is None:
        data["condition"] = "condition"
    missing = next((key for key in fmt.needs if key != "path" and data.get(key) is None), None)
    if missing is not None:
        expected = ("one of " + ", ".join(repr(v) for v in fmt.variants)
                    if missing == "variant" and fmt.variants else
                    "the trial event to align on (see `cortexfit info FILE`) and the window "
                    "[start, stop] in s")
        raise ConfigError(f"data.{missing} is required for format {config.data.format!r}",
                          field=f"data.{missing}", expected=expected)
    fit = _fit_sections(config)
    out = {
        "run": {**config.run.model_dump(), "name": config.run.name or config.data.format},
        "data": data,
        "targets": config.targets.model_dump(),
        "auxiliary": auxiliary_section(config, fit["network"]["tau_s"]),
        **fit,
        "evaluate": config.evaluate.model_dump(),
        "diagnostics": config.diagnostics.model_dump(),
        "tune": _tune(config),
        "report": config.report.model_dump(),
    }
    return out


def with_settings(config: RunConfig, values: dict[str, Any], *,
                  field: str = "tune.grid") -> RunConfig:
    """``config`` with ``values`` (``"section.key" -> value``) set, validated as a config
    (a bad value is a :class:`ConfigError` naming ``field`` and the key)."""
    raw = config.model_dump(exclude_none=True)
    for key, value in values.items():
        section, _, name = key.partition(".")
        raw.setdefault(section, {})[name] = value
    try:
        new = parse_config(raw, base_dir=config.base_dir)
        _fit_sections(new)  # the network and training settings checked together
    except ConfigError as exc:
        raise ConfigError(
            f"a candidate setting is not valid ({exc.args[0].split('.', 1)[0]})",
            field=f"{field}: {', '.join(f'{k} = {v!r}' for k, v in values.items())}",
            found=exc.found, expected=exc.expected,
            hint="Fix the candidate values in [tune] grid") from None
    return new


def tune_candidates(config: RunConfig) -> dict[str, list[Any]]:
    """``[tune] grid``, or :data:`DEFAULT_TUNE_GRID` when it is empty (without the noise
    levels for LIF and Izhikevich: they are in theta units, and those models' noise is in
    their own units, mV sqrt(ms) / sqrt(ms); give them a grid of their own)."""
    if config.tune.grid:
        return dict(config.tune.grid)
    grid = copy.deepcopy(DEFAULT_TUNE_GRID)
    if config.fit_settings()["neuron_model"] != "theta":
        grid.pop("training.noise", None)
    return grid


def _tune(config: RunConfig) -> dict[str, Any]:
    """``[tune]`` with the grid written out; every candidate value is checked (as a config)
    when the search is enabled, so that a bad one stops the run before any work."""
    out = config.tune.model_dump()
    if not config.tune.enabled:
        return out
    if not get_format(config.data.format).gives_trials:
        raise ConfigError("[tune] needs single trials to set validation trials aside",
                          field="tune.enabled", found=f"format {config.data.format!r} "
                          "(trial-averaged rates only)", expected="false for this format")
    if config.targets.validation_fraction <= 0:
        raise ConfigError("[tune] needs validation trials to choose on",
                          field="targets.validation_fraction",
                          found=config.targets.validation_fraction,
                          expected="> 0 (e.g. 0.2)",
                          hint="Set [targets] validation_fraction = 0.2, or [tune] "
                               "enabled = false")
    out["grid"] = tune_candidates(config)
    for key, values in out["grid"].items():
        for value in values:
            with_settings(config, {key: value})
    return out


def auxiliary_section(config: RunConfig, network_tau_s: float) -> dict[str, Any]:
    """``[auxiliary]`` with ``tau_s`` taken from ``[network]`` (the paper low-pass filters
    the auxiliary targets with the network's synaptic time constant, METHOD.md §4: targets
    filtered otherwise ask the network for a smoothness its synapses do not have)."""
    aux = config.auxiliary.model_dump()
    if aux["tau_s"] is None:
        aux["tau_s"] = network_tau_s
    elif aux["tau_s"] != network_tau_s:
        where = ("[network] tau_s" if config.network.tau_s is not None
                 else f"[network] tau_s of the {config.network.preset!r} preset")
        raise ConfigError(
            "auxiliary.tau_s differs from network.tau_s", field="auxiliary.tau_s",
            found=f"auxiliary.tau_s = {aux['tau_s']!r}, {where} = {network_tau_s!r}",
            expected="the same value: the auxiliary targets are filtered with the "
                     "network's synaptic time constant",
            hint="Remove auxiliary.tau_s (it follows network.tau_s) and set network.tau_s")
    return aux


def _check_fit(settings: dict[str, Any]) -> None:
    """The network and training settings as RLSFit checks them (together: e.g.
    ``update_every >= dt``), so that a bad combination stops the run before any work."""
    try:
        RLSFit(**settings)._check()
    except ConfigError as exc:
        section = "network" if exc.field in NetworkSection.model_fields else "training"
        raise ConfigError(str(exc.args[0]).split(".", 1)[0],
                          field=f"{section}.{exc.field}", found=exc.found,
                          expected=exc.expected, hint=exc.hint or "Fix the key in the "
                          "config file; every key and its default is listed in "
                          "pipelines/README.md") from None


def _fit_sections(config: RunConfig) -> dict[str, dict[str, Any]]:
    """``[network]`` and ``[training]`` with the preset's values written out."""
    settings = config.fit_settings()
    _check_fit(settings)
    if settings.get("rate_gate") is None:
        settings["rate_gate"] = False
    network = {"preset": config.network.preset}
    network.update({k: settings[k] for k in NetworkSection.model_fields if k != "preset"})
    training = {k: settings[k] for k in TrainingSection.model_fields if k in settings}
    training["checkpoint_every"] = config.training.checkpoint_every
    return {"network": network, "training": training}


def to_toml(resolved: dict[str, Any]) -> str:
    """TOML text of a resolved config (TOML has no None: such keys are left out)."""
    import tomli_w

    return tomli_w.dumps(_toml_safe(resolved))


def _toml_safe(value):
    if isinstance(value, dict):
        return {k: _toml_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_toml_safe(v) for v in value]
    return value
