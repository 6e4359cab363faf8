"""Neuron models: each one module (or package) building a :class:`~.base.NeuronModel`, and
one registry line here."""
from __future__ import annotations

from . import izhikevich, lif, theta
from .base import FICurve, NeuronModel, get_model, model_names, register

__all__ = ["NeuronModel", "FICurve", "get_model", "model_names", "register"]

register(theta.MODEL)
register(lif.MODEL)
register(izhikevich.MODEL)
