"""Contract: the run config (cortexfit/config.py) and the library agree on every setting.

For every key of every config section the test finds the library arguments it becomes
(``BINDINGS``: a config section is bound to library callables; a key binds to a parameter
of the same name, or to the one named in ``RENAMED``) and asserts that

* the config's default (after :func:`cortexfit.config.resolve`) equals the library's
  default (its signature's default, or the :class:`RLSFit` preset's value);
* every value the config accepts at its edges (each ``Literal`` choice, each numeric bound
  that is inclusive) is accepted by the library, and every value just beyond (a choice that
  is not offered, the exclusive bound, the bound plus or minus a step) is rejected by both.
  "Rejected by the library" means :class:`ConfigError` (an argument check);
  a :class:`TargetError` (the data cannot support the value) counts as accepted.
* where the library declares its choices as a ``Literal`` annotation, the config offers
  exactly those.

The samples are derived from the pydantic fields (annotations and ``Field`` bounds), so a
new key is covered without editing this file; a key with no library counterpart must be
listed in ``NO_LIBRARY_COUNTERPART`` with the reason, and a config bound deliberately
narrower than the library's in ``CONFIG_NARROWER``.
"""
from __future__ import annotations

import dataclasses
import inspect
import typing
from functools import lru_cache

import annotated_types as at
import pytest

from cortexfit import diagnostics
from cortexfit.auxiliary import add_auxiliary
from cortexfit.config import RunConfig, parse_config, resolve
from cortexfit.datasets import make_synthetic_recording
from cortexfit.datasets.synthetic import SYNTHETIC_TARGETS
from cortexfit.evaluate import score
from cortexfit.exceptions import ConfigError, TargetError
from cortexfit.fit import RLSFit
from cortexfit.neurons.base import model_names
from cortexfit.targets import make_targets

#: Config keys that are not a library argument, and why.
NO_LIBRARY_COUNTERPART = {
    ("run", "name"): "names the run folder (reports/<name>); the library has no runs",
    ("targets", "max_units"): "the targets stage keeps a random subset of units after "
                              "make_targets (checked by the config only)",
    ("network", "preset"): "chooses which RLSFit preset (RLSFit() or "
                           "RLSFit.for_recordings()) the unset keys come from",
    ("diagnostics", "enabled"): "switch: whether the diagnostics stage runs",
    ("diagnostics", "spectrum"): "switch: whether diagnostics.spectrum runs",
    ("diagnostics", "quasistatic"): "switch: whether diagnostics.quasistatic runs",
    ("diagnostics", "perturbation"): "switch: whether diagnostics.perturbation runs",
    ("diagnostics", "lyapunov"): "switch: whether diagnostics.lyapunov runs",
    # [data] selects and reads the recording; its keys are checked by the data format's
    # reader and by make_targets against the file's contents (which trials, which event)
    **{("data", k): "which recording and trials: checked against the file by its reader "
                    "and make_targets (align, window, condition, where are data-dependent)"
       for k in ("format", "path", "event_times", "variant", "condition", "where", "align",
                 "window", "allow_pickle")},
    # [tune]: cortexfit.tune.tune's arguments; a sampled call would run a whole search on a
    # Dask cluster, so these are checked in tests/integration/test_tune.py instead
    ("tune", "enabled"): "switch: whether the tune stage searches",
    ("tune", "grid"): "names settings by section (network.tau_s); each candidate value is "
                      "validated as a config (with_settings), tested in test_tune.py",
    ("tune", "method"): "default read from tune(method=...) by _default; Literal in config",
    ("tune", "loops"): "default read from tune(loops=...) by _default; overrides "
                       "training.loops per candidate (validated as training.loops)",
    ("tune", "scheduler"): "a Dask scheduler address ('' = a local cluster; tune: None)",
    ("tune", "workers"): "tune(n_workers=...), 0 = one per core (tune: None)",
    ("report", "title"): "the HTML report's title (read from the run folder)",
    ("report", "example_units"): "how many units the HTML report plots (read from the run "
                                 "folder)",
}

#: Config bounds deliberately narrower than the library's (the config may refuse a value
#: the library accepts or fails on without a ConfigError, never the other way round), and
#: why. "RLSFit does not check it" marks a check that belongs next to RLSFit (fit.py).
CONFIG_NARROWER = {
    ("auxiliary", "aux_ratio"): "the config caps aux_ratio at 1000 (a guard against a typo; "
                                "the library is limited by memory only)",
    ("auxiliary", "min_neurons"): "the config caps min_neurons at 20000 (a guard against a "
                                  "typo; the library is limited by the size of the "
                                  "auxiliary targets only)",
    ("evaluate", "n_splits"): "n_splits = 0 (skip the noise ceiling) is chosen by the "
                              "evaluate stage itself for targets without single trials",
    ("training", "form"): "'drive' needs drive targets (a DataArray), which no data format "
                          "of the pipeline gives: the config offers 'auto' and 'rate' only",
    ("training", "fi_smoothing"): "the config asks for > 0: 0 is the sharp curve, whose slope "
                                  "is 0 below threshold, so a silent neuron never learns",
}

#: Config defaults deliberately different from the library's, and why (the allowed values
#: must still agree).
CONFIG_DEFAULT_DIFFERS = {
    ("targets", "validation_fraction"): "a run sets 20 % of the trials aside to choose the "
                                        "best training loop on; make_targets' default 0 "
                                        "keeps library calls' split as before",
    ("targets", "margin"): "a run trains beyond the scored window ('auto': the kernel's "
                           "reach) to score without edge bias; make_targets' default 0 "
                           "keeps library calls' time axis on the window",
    ("auxiliary", "min_neurons"): "a run fills small networks up to 300 neurons with "
                                  "auxiliary ones (few recorded units); add_auxiliary's "
                                  "default 0 keeps library calls' aux_ratio as given",
}

#: config key -> library parameter, where the names differ
RENAMED = {
    ("evaluate", "n_trials"): "n_trials",
    ("diagnostics", "lesion_fractions"): "fractions",
    ("diagnostics", "shuffle_fractions"): "fractions",
    ("diagnostics", "lyapunov_seeds"): "n_seeds",
}

#: Which library callables a config section's keys go to. ``keys`` limits a binding to
#: some keys (``None``: any key whose name is one of the callable's parameters).
BINDINGS = {
    "run": [("make_targets", None), ("add_auxiliary", None)],
    "targets": [("make_targets", None)],
    "auxiliary": [("add_auxiliary", None)],
    "network": [("RLSFit", None)],
    "training": [("RLSFit", None)],
    "evaluate": [("score", None)],
    "diagnostics": [("lesion", {"lesion_fractions", "n_repeats", "n_trials"}),
                    ("shuffle", {"shuffle_fractions", "n_repeats", "n_trials"}),
                    ("lyapunov", {"lyapunov_seeds"})],
}

#: Samples for keys whose allowed values are checked by a validator (not a Literal/bound)
EXTRA_SAMPLES = {
    ("network", "neuron_model"): [*model_names(), "no_such_model"],
    ("network", "k_plastic"): ["all", 1, 0, "some"],
}

#: config value -> library value, where the config spells it differently (TOML has no None)
TO_LIBRARY = {("training", "rate_gate"): lambda v: None if v is False else v}


# ---------------------------------------------------------------------- fixtures
@lru_cache(maxsize=None)
def _recording():
    return make_synthetic_recording(seed=0, n_units=8, n_trials_per_condition=6).block


_WINDOW = dict(align=SYNTHETIC_TARGETS["align"], window=(-0.2, 0.4),
               condition=SYNTHETIC_TARGETS["condition"])


@lru_cache(maxsize=None)
def _targets():
    return make_targets(_recording(), **_WINDOW)


@lru_cache(maxsize=None)
def _aux_targets():
    return add_auxiliary(_targets(), 1.0)


#: the quickest fit that still trains (settings of both presets are tested on it)
_TINY_FIT = dict(loops=1, pre_duration=0.1, progress=False)


@lru_cache(maxsize=None)
def _fitted():
    return RLSFit.for_recordings(**_TINY_FIT).fit(_aux_targets())


def _fit(preset: str, **kw):
    # the preset resolved for the neuron model, as the config resolves it (the recordings
    # preset's background noise is for theta only)
    model = {k: v for k, v in kw.items() if k == "neuron_model"}
    base = (RLSFit.for_recordings(**model) if preset == "recordings" else RLSFit()).settings()
    settings = {**base, **_TINY_FIT, **kw}
    for key in ("checkpoint", "network"):
        settings.pop(key, None)
    return RLSFit(**settings).fit(_aux_targets())


def _rlsfit_both_presets(**kw):
    for preset in ("recordings", "paper"):
        _fit(preset, **kw)


LIBRARY = {
    "make_targets": (make_targets, lambda **kw: make_targets(_recording(), **_WINDOW, **kw)),
    "add_auxiliary": (add_auxiliary, lambda **kw: add_auxiliary(_targets(), **kw)),
    "score": (score, lambda **kw: score(_fitted(), _aux_targets(), **kw)),
    "lesion": (diagnostics.lesion,
               lambda **kw: diagnostics.lesion(_fitted(), _aux_targets(), **kw)),
    "shuffle": (diagnostics.shuffle,
                lambda **kw: diagnostics.shuffle(_fitted(), _aux_targets(), scope="all", **kw)),
    "lyapunov": (diagnostics.lyapunov,
                 lambda **kw: diagnostics.lyapunov(_fitted(), duration=0.2, transient=0.1,
                                                   **kw)),
    "RLSFit": (RLSFit, _rlsfit_both_presets),
}


def _library_defaults(name: str, preset: str = "recordings") -> dict[str, typing.Any]:
    if name == "RLSFit":
        return (RLSFit.for_recordings() if preset == "recordings" else RLSFit()).settings()
    func = LIBRARY[name][0]
    return {p.name: p.default for p in inspect.signature(func).parameters.values()
            if p.default is not inspect.Parameter.empty}


def _library_params(name: str) -> dict[str, typing.Any]:
    """parameter -> annotation (resolved)"""
    if name == "RLSFit":
        hints = typing.get_type_hints(RLSFit)
        return {f.name: hints.get(f.name) for f in dataclasses.fields(RLSFit)}
    func = LIBRARY[name][0]
    hints = typing.get_type_hints(func)
    return {p: hints.get(p) for p in inspect.signature(func).parameters}


# ---------------------------------------------------------------------- the key map
def _sections():
    for section, field in RunConfig.model_fields.items():
        if section == "base_dir":
            continue
        yield section, field.annotation


def _keys():
    for section, model in _sections():
        for key, field in model.model_fields.items():
            yield section, key, field


def _bindings(section: str, key: str) -> list[tuple[str, str]]:
    """``(library name, parameter)`` pairs a config key is passed to."""
    param = RENAMED.get((section, key), key)
    out = []
    for name, only in BINDINGS.get(section, []):
        if only is not None and key not in only:
            continue
        if param in _library_params(name):
            out.append((name, param))
    return out


ALL_KEYS = [(s, k) for s, k, _ in _keys()]
BOUND_KEYS = [(s, k) for s, k in ALL_KEYS if (s, k) not in NO_LIBRARY_COUNTERPART]


def test_every_key_has_a_library_counterpart_or_a_reason():
    unbound = [f"{s}.{k}" for s, k in BOUND_KEYS if not _bindings(s, k)]
    assert not unbound, (f"config keys with no library argument: {unbound}; bind them "
                         "(BINDINGS / RENAMED) or list them in NO_LIBRARY_COUNTERPART")
    stale = [f"{s}.{k}" for s, k in NO_LIBRARY_COUNTERPART if (s, k) not in ALL_KEYS]
    assert not stale, f"NO_LIBRARY_COUNTERPART lists keys the config does not have: {stale}"


# ---------------------------------------------------------------------- defaults
@pytest.mark.parametrize("preset", ["recordings", "paper"])
def test_defaults_agree(preset):
    resolved = resolve(parse_config({"network": {"preset": preset}}))
    drift = []
    for section, key in BOUND_KEYS:
        if (section, key) in CONFIG_DEFAULT_DIFFERS:
            continue
        convert = TO_LIBRARY.get((section, key), lambda v: v)
        mine = convert(resolved[section][key])
        for name, param in _bindings(section, key):
            theirs = _library_defaults(name, preset).get(param, inspect.Parameter.empty)
            if theirs is inspect.Parameter.empty:
                continue  # a required argument: the config must give it (not a default)
            if isinstance(theirs, tuple):
                theirs = list(theirs)
            if mine != theirs:
                drift.append(f"{section}.{key} = {mine!r} but {name}({param}={theirs!r})")
    assert not drift, "defaults drift apart:\n" + "\n".join(drift)


# ---------------------------------------------------------------------- samples
def _flatten(annotation):
    """The members of a Union / Optional / Annotated annotation."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _flatten(typing.get_args(annotation)[0])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return [m for a in typing.get_args(annotation) for m in _flatten(a)]
    return [annotation]


def _literals(annotation) -> list:
    return [v for m in _flatten(annotation) if typing.get_origin(m) is typing.Literal
            for v in typing.get_args(m)]


def _bound_samples(metadata, is_int: bool) -> list:
    out = []
    for m in metadata:
        for attr, sign in (("ge", -1), ("gt", -1), ("le", +1), ("lt", +1)):
            bound = getattr(m, attr, None) if isinstance(
                m, (at.Ge, at.Gt, at.Le, at.Lt)) else None
            if bound is None:
                continue
            step = 1 if is_int else 1e-6 * max(1.0, abs(bound))
            value = int(bound) if is_int else float(bound)
            out += [value, value + sign * step]
    return out


def _samples(section: str, key: str, field) -> list:
    members = [m for m in _flatten(field.annotation) if m is not type(None)]
    literals = _literals(field.annotation)
    out = list(literals)
    if literals and str not in members:
        out.append("not_a_choice")
    is_int = int in members and float not in members
    out += _bound_samples(field.metadata, is_int)
    if bool in members:
        out += [True, False]
    for m in members:
        if typing.get_origin(m) is list:
            item = typing.get_args(m)[0]
            item_meta = [x for a in getattr(item, "__metadata__", ())
                         for x in getattr(a, "metadata", [a])]
            out += [[v] for v in _bound_samples(item_meta, False)]
            if any(isinstance(x, at.MinLen) and x.min_length == 1 for x in field.metadata):
                out.append([])
    out += EXTRA_SAMPLES.get((section, key), [])
    return out


def _config_accepts(section: str, key: str, value) -> bool:
    try:
        resolve(parse_config({section: {key: value}}))
    except ConfigError:
        return False
    return True


def _library_accepts(name: str, param: str, value) -> bool | str:
    """True (accepted), False (ConfigError) or the text of any other exception."""
    try:
        LIBRARY[name][1](**{param: value})
    except ConfigError:
        return False
    except TargetError:
        return True  # the argument passed its checks; the small recording could not serve it
    except Exception as exc:  # noqa: BLE001 - a crash is a disagreement to report
        return f"fails with {type(exc).__name__}: {exc}"[:200]
    return True


SAMPLED = [(s, k, f) for s, k, f in _keys() if (s, k) in BOUND_KEYS]


@pytest.mark.parametrize("section,key,field", SAMPLED,
                         ids=[f"{s}.{k}" for s, k, _ in SAMPLED])
def test_allowed_values_agree(section, key, field):
    convert = TO_LIBRARY.get((section, key), lambda v: v)
    disagree = []
    for value in _samples(section, key, field):
        mine = _config_accepts(section, key, value)
        for name, param in _bindings(section, key):
            theirs = _library_accepts(name, param, convert(value))
            if mine is theirs or (not mine and (section, key) in CONFIG_NARROWER):
                continue
            said = {True: "accepts", False: "rejects"}.get(theirs, theirs)
            disagree.append(f"{section}.{key} = {value!r}: config "
                            f"{'accepts' if mine else 'rejects'}, {name}({param}=...) {said}")
    assert not disagree, "\n".join(disagree)


@pytest.mark.parametrize("section,key,field", SAMPLED,
                         ids=[f"{s}.{k}" for s, k, _ in SAMPLED])
def test_declared_choices_agree(section, key, field):
    """Where the library annotates a parameter with a Literal, the config offers exactly it."""
    mine = set(_literals(field.annotation))
    for name, param in _bindings(section, key):
        theirs = set(_literals(_library_params(name)[param]))
        if theirs:
            assert mine == theirs, (f"{section}.{key} offers {sorted(map(str, mine))}, "
                                    f"{name}({param}) takes {sorted(map(str, theirs))}")


# ---------------------------------------------------------------------- named defects
@pytest.mark.parametrize("kernel", typing.get_args(
    RunConfig.model_fields["targets"].annotation.model_fields["kernel"].annotation))
def test_every_kernel_the_config_offers_makes_targets(kernel):
    """``[targets] kernel = "boxcar"`` (and every other choice) runs through make_targets
    with the resolved config's settings (it was accepted by the config and then refused)."""
    section = resolve(parse_config({"targets": {"kernel": kernel}}))["targets"]
    kw = {k: section[k] for k in ("bin_size", "kernel", "kernel_width", "min_rate",
                                  "heldout_fraction", "min_trials")}
    ds = make_targets(_recording(), **_WINDOW, **kw)
    assert ds.attrs["kernel"] == {"boxcar": "rectangular"}.get(kernel, kernel)
    assert float(ds["rate"].mean()) > 0


def test_auxiliary_tau_s_follows_the_network_and_may_not_differ():
    resolved = resolve(parse_config({"network": {"tau_s": 0.03}}))
    assert resolved["auxiliary"]["tau_s"] == resolved["network"]["tau_s"] == 0.03
    same = resolve(parse_config({"network": {"tau_s": 0.03}, "auxiliary": {"tau_s": 0.03}}))
    assert same["auxiliary"]["tau_s"] == 0.03
    for raw in ({"auxiliary": {"tau_s": 0.03}},
                {"network": {"tau_s": 0.05}, "auxiliary": {"tau_s": 0.03}}):
        with pytest.raises(ConfigError, match="auxiliary.tau_s") as info:
            resolve(parse_config(raw))
        assert "network" in str(info.value) and "tau_s" in str(info.value)


def test_network_and_training_settings_are_checked_together_when_resolved():
    with pytest.raises(ConfigError, match="training.update_every"):
        resolve(parse_config({"training": {"dt": 0.01}}))
