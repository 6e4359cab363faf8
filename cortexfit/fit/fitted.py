"""The result of training: :class:`FittedNetwork`, a frozen value that runs test trials and
that evaluation, diagnostics and persistence take."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import xarray as xr

from ..exceptions import ConfigError
from ..network import Network
from ..protocol import TrialProtocol
from ..simulate import SimState
from ..units import to_hz
from .inputs import TrainingTargets

__all__ = ["FittedNetwork", "as_fitted"]


@dataclass(frozen=True)
class FittedNetwork:
    """A trained network and everything needed to run, score, save and take it apart."""

    network: Network
    targets: TrainingTargets
    protocol: TrialProtocol
    frozen: np.ndarray
    """Per plastic synapse: frozen by the Dale guard."""
    initial_weights: sp.csr_array
    final_state: SimState | None
    """The simulation state training ended in (None for version 1 files)."""
    history: xr.Dataset
    """The learning curve, over ``loop``."""
    settings: dict[str, Any]
    """The estimator's settings (plain data) it was trained with."""
    given_network: Network | None = None
    """The network handed to the estimator, if one was."""

    def with_network(self, network: Network) -> "FittedNetwork":
        """The same fit with another network (a lesioned or shuffled copy, an untrained
        one): same targets, protocol and stimuli."""
        return dataclasses.replace(self, network=network)

    def run_trial(self, condition: int | str, *, seed: int, pre_duration: float = 0.0,
                  precision: str = "float32") -> xr.Dataset:
        """One test trial from fresh random initial conditions (theta: θ0 uniform, r = u = 0):
        optional free run, the condition's stimulus, then the training window. Returns the
        drive ``u`` and filtered trains ``r`` (Hz) of every neuron at the update times, and
        the spikes, as a Dataset over (time, neuron)."""
        tg, net, protocol = self.targets, self.network, self.protocol
        c = protocol.condition_index(condition)
        sim = protocol.simulator(net, seed=seed, precision=precision)
        protocol.lead_in(sim, c, free_run=pre_duration)
        steps, n_updates = protocol.steps_per_update, protocol.n_updates
        rec_idx = np.arange(net.n_neurons)
        rec_u = np.zeros((n_updates, net.n_neurons), dtype=sim.real)
        rec_r = np.zeros_like(rec_u)
        spike_steps, spike_neurons = sim.advance(n_updates * steps, rec_every=steps,
                                                 rec_idx=rec_idx, rec_u=rec_u, rec_r=rec_r)
        unit = net.neuron_model.time_unit
        return xr.Dataset(
            {"u": (("time", "neuron"), rec_u, {"long_name": "synaptic drive"}),
             "r": (("time", "neuron"), to_hz(rec_r, unit), {"units": "Hz"}),
             "spike_time": ("spike", protocol.window_start + (spike_steps + 1) * protocol.dt,
                            {"units": "s"}),
             "spike_neuron": ("spike", spike_neurons)},
            coords={"time": ("time", protocol.update_times, {"units": "s"}),
                    "neuron": ("neuron", tg.neuron_ids)},
            attrs={"condition": tg.conditions[c], "seed": seed},
        )

    def target_at_updates(self) -> np.ndarray:
        """The targets at the update times, (condition, neuron, time): drives, or Hz."""
        values = self.targets.at(self.protocol.update_times)
        if self.targets.form == "rate":
            values = to_hz(values, self.network.neuron_model.time_unit)
        return values


def as_fitted(obj: Any) -> FittedNetwork:
    """A :class:`FittedNetwork` from itself or from a fitted estimator (``fitted_``); a
    :class:`ConfigError` otherwise."""
    if isinstance(obj, FittedNetwork):
        return obj
    fitted = getattr(obj, "fitted_", None)
    if isinstance(fitted, FittedNetwork):
        return fitted
    if hasattr(obj, "fit"):
        raise ConfigError("the model is not fitted", field="fitted", found="no fitted network",
                          expected="call fit() first")
    raise ConfigError("expected a fitted model", field="fitted", found=type(obj).__name__,
                      expected="a fitted RLSFit or a FittedNetwork")
