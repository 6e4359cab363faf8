"""Argument checks shared by the evaluation: integer arguments, and the model neuron of
each recorded unit of the targets."""
from __future__ import annotations

import numbers

import numpy as np
import xarray as xr

from ..exceptions import ConfigError


def _recorded_neurons(fitted, targets: xr.Dataset) -> tuple[list[str], np.ndarray]:
    """The targets' units and the index of each one's model neuron."""
    tg = fitted.targets
    units = [str(u) for u in targets["unit"].values]
    recorded = {unit: k for k, (unit, role) in enumerate(zip(tg.recorded_unit, tg.roles))
                if role == "recorded"}
    missing = [u for u in units if u not in recorded]
    if missing:
        raise ConfigError("the model has no neuron for some recorded units", field="unit",
                          found=missing[:10], expected="units the model was trained on")
    return units, np.array([recorded[u] for u in units], dtype=np.int64)


def _check_int_arg(value, name: str, lo: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
            or int(value) < lo:
        raise ConfigError(f"{name} must be an integer >= {lo}", field=name,
                          found=repr(value)[:80], expected=f"an integer >= {lo}")
    return int(value)
