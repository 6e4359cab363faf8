"""Saving and loading a fitted network: one NPZ file readable with numpy alone.

``np.load(path, allow_pickle=False)`` gives sparse weights as CSR arrays, labels as strings,
settings, parameter records and attributes as JSON strings (format version 2, below).
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import xarray as xr

from ..atomic import atomic_path
from ..exceptions import ConfigError, CortexfitError
from ..network import Network
from ..neurons.base import get_model
from ..protocol import TrialProtocol
from ..simulate import SimState
from ..units import InputScale
from .fitted import FittedNetwork
from .inputs import TrainingTargets

__all__ = ["save_fitted", "load_fitted", "FORMAT_VERSION"]

FORMAT_VERSION = 2
"""Version of the file :meth:`RLSFit.save` writes. 2: also the network's settings
(``info``), its parameter record as given (None when the model's defaults), the network given
to the constructor, array-valued settings, the targets' cell types, the final simulation
state and the learning curve's attributes."""
READABLE_VERSIONS = (1, 2)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _to_json(value: Any) -> str:
    return json.dumps(value, default=_json_default)


def _network_arrays(net: Network, prefix: str) -> dict[str, Any]:
    """A network as plain NPZ entries (``prefix`` "" gives version 1's key names)."""
    params = net.model_params
    if params is not None and not dataclasses.is_dataclass(params):
        raise ConfigError("the neuron model's parameters cannot be saved", field="model_params",
                          found=type(params).__name__, expected="a dataclass parameter record")
    return {
        f"{prefix}neuron_model": net.neuron_model.name,
        f"{prefix}model_params": _to_json(None if params is None else
                                          {f.name: getattr(params, f.name)
                                           for f in dataclasses.fields(params)}),
        f"{prefix}tau_s": net.tau_s,
        f"{prefix}excitatory": net.excitatory if net.excitatory is not None
        else np.zeros(0, bool),
        f"{prefix}static_indptr": net.static.indptr, f"{prefix}static_indices": net.static.indices,
        f"{prefix}static_data": net.static.data,
        f"{prefix}plastic_indptr": net.plastic.indptr,
        f"{prefix}plastic_indices": net.plastic.indices,
        f"{prefix}plastic_data": net.plastic.data, f"{prefix}plastic_sign": net.plastic_sign,
        f"{prefix}network_info": _to_json(net.info),
    }


def _csr_from(data: Any, prefix: str, n: int) -> sp.csr_array:
    return sp.csr_array((data[f"{prefix}_data"], data[f"{prefix}_indices"],
                         data[f"{prefix}_indptr"]), shape=(n, n))


def _network_from(data: Any, prefix: str, n: int, version: int) -> Network:
    model = get_model(str(data[f"{prefix}neuron_model"]))
    params_json = json.loads(str(data[f"{prefix}model_params"]))
    # version 1 saved the parameter record in use (the defaults when none was given)
    params = None if params_json is None or (version == 1 and not params_json) else \
        type(model.params)(**{k: tuple(v) if isinstance(v, list) else v
                              for k, v in params_json.items()})
    exc = data[f"{prefix}excitatory"]
    info = json.loads(str(data[f"{prefix}network_info"])) if version >= 2 else {}
    return Network(neuron_model=model, static=_csr_from(data, f"{prefix}static", n),
                   plastic=_csr_from(data, f"{prefix}plastic", n),
                   plastic_sign=data[f"{prefix}plastic_sign"],
                   tau_s=float(data[f"{prefix}tau_s"]),
                   excitatory=exc if exc.size else None, model_params=params, info=info)


def save_fitted(fitted: FittedNetwork, path: str | os.PathLike) -> Path:
    """Write ``fitted`` to one NPZ file (atomically).

    Everything :func:`load_fitted` needs to give back a fit that runs, scores and diagnoses
    exactly as this one (format version 2): the settings (array-valued ones, such as a
    per-neuron ``bias``, as arrays of their own), the trained network (neuron model, its
    parameter record, ``tau_s``, the E/I split, static and plastic weights and signs, and
    ``info``, the settings it was built with, which the spectrum's theoretical radius
    reads), the network given to the estimator if any, the frozen synapses, the initial
    weights, the targets (with their cell types), the stimuli, the update grid, the final
    simulation state and the learning curve with its attributes.
    """
    net, tg, history = fitted.network, fitted.targets, fitted.history
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    settings, setting_arrays = {}, {}
    for name, value in fitted.settings.items():
        if isinstance(value, np.ndarray):
            settings[name] = None
            setting_arrays[f"setting_{name}"] = value
        else:
            settings[name] = value
    state = fitted.final_state
    history_attrs = {"attrs": dict(history.attrs),
                     "vars": {k: dict(v.attrs) for k, v in history.data_vars.items()},
                     "coords": {k: dict(v.attrs) for k, v in history.coords.items()}}
    given = fitted.given_network
    arrays = {
        "format_version": FORMAT_VERSION,
        "settings": _to_json(settings),
        **setting_arrays,
        **_network_arrays(net, ""),
        "frozen": fitted.frozen,
        "initial_weights_indptr": fitted.initial_weights.indptr,
        "initial_weights_indices": fitted.initial_weights.indices,
        "initial_weights_data": fitted.initial_weights.data,
        "form": tg.form, "conditions": np.array(tg.conditions, dtype=str),
        "neuron_ids": np.array(tg.neuron_ids, dtype=str),
        "roles": np.array(tg.roles, dtype=str),
        "recorded_unit": np.array(tg.recorded_unit, dtype=str),
        "has_cell_type": tg.cell_type is not None,
        "cell_type": np.array(tg.cell_type if tg.cell_type is not None else [], dtype=str),
        "target_time": tg.time, "target_values": tg.values,
        "stimuli": fitted.protocol.stimuli, "update_times": fitted.protocol.update_times,
        "final_state_neuron": state.neuron, "final_state_r": state.r,
        "final_state_u": state.u, "final_state_noise": state.noise,
        "final_state_step": np.int64(state.step),
        "has_given_network": given is not None,
        **(_network_arrays(given, "given_") if given is not None else {}),
        "attrs_history": _to_json(history_attrs),
        **{f"history_{name}": history[name].values for name in history.data_vars},
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def load_fitted(path: str | os.PathLike) -> FittedNetwork:
    """Read a fit written by :func:`save_fitted`.

    Version 2 files (this version) restore everything, the network's own settings
    (``network.info``) included, so diagnostics on the reloaded fit equal those on the
    original. Version 1 files (before the network's settings, the model's parameter record
    as given, the targets' cell types, the final state and the learning curve's attributes
    were saved) load with what they hold: ``network.info`` is empty (the spectrum then
    estimates its theoretical radius from the initial weights) and ``final_state`` is
    None."""
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
        version = int(data["format_version"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CortexfitError("not a saved cortexfit model", file=path, field="format_version",
                             found=str(exc)[:200], expected="an NPZ written by RLSFit.save") \
            from None
    if version not in READABLE_VERSIONS:
        raise ConfigError(
            f"unsupported model file version {version}", file=path, field="format_version",
            found=version, expected=" or ".join(str(v) for v in READABLE_VERSIONS),
            hint="The file was written by another cortexfit version; load it with that "
            "version, or fit the model again")
    try:
        return _from_npz(data, version)
    except KeyError as exc:
        raise CortexfitError("the model file is incomplete", file=path,
                             field=str(exc.args[0]) if exc.args else "?",
                             found="missing", expected=f"a complete version {version} "
                             "file written by RLSFit.save") from None


def _from_npz(data: Any, version: int) -> FittedNetwork:
    settings = json.loads(str(data["settings"]))
    for key in data.files:
        if key.startswith("setting_"):
            settings[key[len("setting_"):]] = data[key]
    n = data["neuron_ids"].size
    network = _network_from(data, "", n, version)
    given = None
    if version >= 2 and bool(data["has_given_network"]):
        given = _network_from(data, "given_", n, version)
    cell_type = None
    if version >= 2 and bool(data["has_cell_type"]):
        cell_type = [str(c) for c in data["cell_type"]]
    targets = TrainingTargets(
        form=str(data["form"]), conditions=[str(c) for c in data["conditions"]],
        neuron_ids=[str(c) for c in data["neuron_ids"]], roles=[str(c) for c in data["roles"]],
        recorded_unit=[str(c) for c in data["recorded_unit"]], cell_type=cell_type,
        time=data["target_time"], values=data["target_values"])
    scale = None if given is not None else \
        InputScale.of(network.neuron_model, network.params, n)
    bias = settings.get("bias", 0.0)
    protocol = TrialProtocol(
        dt=float(settings["dt"]), pre_duration=float(settings["pre_duration"]),
        stim_duration=float(settings["stim_duration"]),
        update_every=float(settings["update_every"]), update_times=data["update_times"],
        stimuli=data["stimuli"], bias=bias if scale is None else scale.level(bias),
        conditions=tuple(targets.conditions), noise=float(settings.get("noise", 0.0)))
    final_state = None
    if version >= 2:
        final_state = SimState(
            neuron=data["final_state_neuron"], r=data["final_state_r"],
            u=data["final_state_u"], noise=data["final_state_noise"],
            step=int(data["final_state_step"]))
    names = [k[len("history_"):] for k in data.files if k.startswith("history_")]
    attrs = (json.loads(str(data["attrs_history"])) if version >= 2
             else {"attrs": {}, "vars": {}, "coords": {}})
    n_loops = data["history_pearson"].size
    history = xr.Dataset(
        {name: ("loop", data[f"history_{name}"], attrs["vars"].get(name, {}))
         for name in names},
        coords={"loop": ("loop", np.arange(1, n_loops + 1), attrs["coords"].get("loop", {}))},
        attrs=attrs["attrs"])
    return FittedNetwork(network=network, targets=targets, protocol=protocol,
                         frozen=data["frozen"],
                         initial_weights=_csr_from(data, "initial_weights", n),
                         final_state=final_state, history=history, settings=settings,
                         given_network=given)
