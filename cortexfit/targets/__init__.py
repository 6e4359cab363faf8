"""Targets: a recording (neo.Block) -> trial-averaged rates as an ``xarray.Dataset``.

:func:`make_targets` makes trial targets from a Block; :func:`targets_from_rates` wraps
rates that come without trials; :func:`rates_from_spike_times` bins and smooths plain
spike times (a model's, say) exactly as ``make_targets`` does a recording's trials;
:func:`score_window` and :func:`crop_to_score_window` give the bins every score uses (the
targets' scoring window, :mod:`.schema`).

The modules, from the bottom up:

* :mod:`.checks`: argument checks (seconds, the window, its bins, numbers in a range);
* :mod:`.rates`: spike times -> binned, smoothed rates (the kernels, how they are applied);
* :mod:`.schema`: the targets Dataset (its schema: dims, variables, coords, attrs);
* :mod:`.selection`: which trials (``where``, conditions, alignment, the split);
* :mod:`.make`: :func:`make_targets`, the steps above in order.
"""
from .make import make_targets
from .rates import KERNEL_ALIASES, KERNELS, Kernel, rates_from_spike_times
from .rates import _Smoother as _Smoother  # used by tests/unit/test_evaluate.py
from .schema import crop_to_score_window, score_window, targets_from_rates

__all__ = [
    "KERNELS",
    "KERNEL_ALIASES",
    "Kernel",
    "crop_to_score_window",
    "make_targets",
    "rates_from_spike_times",
    "score_window",
    "targets_from_rates",
]
