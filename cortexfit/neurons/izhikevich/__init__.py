"""The Izhikevich (2003) neuron model: the cell (:mod:`.cell`: parameters, state, ``step``)
and its f-I curve, measured by simulation and tabulated (:mod:`.fi_table`)."""
from __future__ import annotations

from ..base import NeuronModel
from .cell import CELL_TYPES, TIME_UNIT, V_PEAK, IzhikevichParams, init_state, step
from .fi_table import izhikevich_rate, izhikevich_rate_derivative, izhikevich_threshold

__all__ = ["MODEL", "CELL_TYPES", "V_PEAK", "IzhikevichParams", "init_state", "step", "rate",
           "rate_derivative", "threshold"]

rate = izhikevich_rate
rate_derivative = izhikevich_rate_derivative
threshold = izhikevich_threshold

MODEL = NeuronModel(
    name="izhikevich",
    time_unit=TIME_UNIT,
    n_state=2,
    params=IzhikevichParams(),
    init_state=init_state,
    step=step,
    rate=izhikevich_rate,
    rate_derivative=izhikevich_rate_derivative,
    threshold=izhikevich_threshold,
    description="Izhikevich (2003) neurons: RS, IB, CH, FS, LTS or an equal mix",
)
