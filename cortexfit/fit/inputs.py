"""What training reads from the targets: :class:`TrainingTargets`, in the model's units."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from ..exceptions import ConfigError, TargetError
from ..units import to_model_rate

__all__ = ["TrainingTargets", "read_targets"]


@dataclass(frozen=True)
class TrainingTargets:
    """The targets one network is trained on: rates (spikes per model time unit) or drives
    (model input units), per condition and neuron, on the targets' own time grid."""

    form: str
    conditions: list[str]
    neuron_ids: list[str]
    roles: list[str]
    recorded_unit: list[str]
    cell_type: list[str] | None
    time: np.ndarray  # (n_time,) s, the targets' own grid
    values: np.ndarray  # (condition, neuron, n_time) in model units

    def at(self, times: np.ndarray) -> np.ndarray:
        """The values interpolated at ``times``: (condition, neuron, time), model units."""
        return np.stack([np.stack([np.interp(times, self.time, self.values[c, i])
                                   for i in range(self.values.shape[1])])
                         for c in range(self.values.shape[0])])


def read_targets(targets: Any, form: str, time_unit: float) -> TrainingTargets:
    """A targets Dataset (rates, Hz) or a drive DataArray -> :class:`TrainingTargets`.
    ``form``: the estimator's ("auto" accepts either)."""
    if isinstance(targets, xr.Dataset):
        if "target_rate" in targets:
            arr = targets["target_rate"].transpose("condition", "neuron", "time")
            ids = [str(v) for v in targets["neuron"].values]
            roles = [str(v) for v in targets["role"].values]
            recorded = [str(v) for v in targets["recorded_unit"].values]
        elif "rate" in targets:
            arr = targets["rate"].transpose("condition", "unit", "time")
            ids = [str(v) for v in targets["unit"].values]
            roles, recorded = ["recorded"] * len(ids), list(ids)
        else:
            raise TargetError("the targets have no rate variable", field="targets",
                              found=list(targets.data_vars),
                              expected="'target_rate' (add_auxiliary) or 'rate' (make_targets)")
        found = "rate"
        values = to_model_rate(arr.values, time_unit)
        cell_type = None
        if "cell_type" in targets.coords and "unit" in targets["cell_type"].dims:
            types = dict(zip([str(u) for u in targets["unit"].values],
                             [str(t) for t in targets["cell_type"].values]))
            cell_type = [types.get(u, "") for u in recorded]
    elif isinstance(targets, xr.DataArray):
        if targets.attrs.get("kind") != "drive":
            raise TargetError("a DataArray of targets must be drives", field="attrs['kind']",
                              found=targets.attrs.get("kind"), expected="'drive'")
        arr = targets.transpose("condition", "neuron", "time")
        ids = [str(v) for v in arr["neuron"].values]
        roles, recorded, cell_type = ["target"] * len(ids), [""] * len(ids), None
        found, values = "drive", np.asarray(arr.values, dtype=np.float64)
    else:
        raise TargetError("targets of an unknown type", field="targets",
                          found=type(targets).__name__,
                          expected="an xarray Dataset of rates or a DataArray of drives")
    if form != "auto" and form != found:
        raise ConfigError("the training form does not match the targets", field="form",
                          found=form, expected=found)
    if not np.all(np.isfinite(values)):
        raise TargetError("targets contain NaN or infinite values", field="targets",
                          found=int(np.sum(~np.isfinite(values))), expected="finite values")
    time = np.asarray(arr["time"].values, dtype=np.float64)
    if time.size < 2:
        raise TargetError("targets need at least two time points", field="time",
                          found=time.size, expected=">= 2")
    return TrainingTargets(form=found, conditions=[str(c) for c in arr["condition"].values],
                           neuron_ids=ids, roles=roles, recorded_unit=recorded,
                           cell_type=cell_type, time=time, values=values)
