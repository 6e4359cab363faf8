"""Training a spiking network on targets with RLS (Kim & Chow 2018).

* :class:`RLSFit` (:mod:`.estimator`): the settings and :meth:`RLSFit.fit`;
* :class:`FittedNetwork` (:mod:`.fitted`): the frozen result, which runs test trials and
  which evaluation and diagnostics take (:func:`as_fitted` accepts either);
* :mod:`.training` the loop, :mod:`.checkpoint` its checkpoints, :mod:`.persistence` the
  NPZ file, :mod:`.inputs` the targets as training reads them.
"""
from __future__ import annotations

from ..units import to_model_rate
from .estimator import RLSFit
from .fitted import FittedNetwork, as_fitted
from .inputs import TrainingTargets
from .persistence import load_fitted, save_fitted

__all__ = ["RLSFit", "FittedNetwork", "TrainingTargets", "as_fitted", "load_fitted",
           "save_fitted", "to_model_rate"]
