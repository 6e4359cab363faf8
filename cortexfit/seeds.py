"""Seeds -> random streams: the one place where every purpose's stream is derived.

A run has two seeds: ``[run] seed`` (the targets' split and unit selection, the auxiliary
targets, the fit, the diagnostics) and ``[evaluate] seed`` (the model's test trials and the
noise ceiling's splits). Every purpose that draws random numbers gets its stream from its
seed here: :func:`rng` returns the purpose's :class:`numpy.random.Generator`,
:func:`trial_seed` the integer seed of one model test trial (the simulator turns it into
the trial's initial state, ``default_rng(trial seed)``, and the seed of its noise,
``trial seed + 0x5EED``: :class:`cortexfit.simulate.Simulator`).

=========================  =====  ========================  ======================================
purpose                    ids    default_rng of            what it draws, where
=========================  =====  ========================  ======================================
``"network"``              --     ``[seed, 1]``             ``RLSFit``: E/I labels, connectivity,
                                                            initial weights (:mod:`cortexfit.fit`)
``"stimuli"``              --     ``[seed, 2]``             ``RLSFit``: each condition's stimulus
``"initial_state"``        --     ``[seed, 3]``             ``RLSFit``: the initial state of
                                                            training
``"unit_selection"``       --     ``[seed, 11]``            the run's ``[targets] max_units``
                                                            subset (:mod:`cortexfit.stages`)
``"heldout_split"``        label  ``[seed, crc32(label)]``  ``make_targets``: a condition's
                                                            held-out trials
``"ceiling_split"``        label  ``[seed, crc32(label)]``  the noise ceiling's split halves
                                                            of a condition (``evaluate``)
``"lesion_order"``         r      ``[seed, r]``             ``lesion``: repeat r's order
``"shuffle_order"``        r      ``[seed, r]``             ``shuffle``: repeat r's order
``"shuffle_permutation"``  r, f   ``[seed, r, f, 1]``       ``shuffle``: the permutation of
                                                            repeat r, fraction f
``"auxiliary"``            --     ``seed``                  ``ou_targets``, ``add_auxiliary``:
                                                            the OU paths
``"perturbation"``         --     ``seed``                  ``perturbation``: the initial
                                                            state of both runs
``"lyapunov"``             k      ``seed + k``              ``lyapunov``: replicate k's
                                                            initial state and direction
=========================  =====  ========================  ======================================

``crc32(label)`` is ``zlib.crc32(label.encode("utf-8"))``, so a condition's stream depends on
its label only, not on the other conditions. Model test trials: trial ``k`` of condition
``c`` (its index in the fit's conditions) has seed ``trial_seed(seed, c, k) = seed + 7919 c
+ k`` (:func:`cortexfit.evaluate.model_rates`, ``score``, ``example_model_spikes``, and the
lesion and shuffle scores); ``quasistatic(seed=...)`` runs one test trial with ``seed``
itself.

**Why four schemes.** The purposes derive their streams in four different ways
(``[seed, tag]`` with a small integer tag, ``seed + 7919 c + k`` for test trials, the CRC32
of a condition label, the seed as it is) for historical reasons: each was written where it
was needed. Unifying them (say, one ``SeedSequence`` keyed by the purpose's name) would
change every result (every fitted network, held-out split, score, ceiling and diagnostic),
so it waits for a release that can say so. Until then every purpose derives exactly the
stream it always has, and ``tests/unit/test_seeds.py`` pins each one to its legacy derivation.
The old schemes also overlap: for the same seed, ``"lesion_order"`` repeats 1 and 2 get
the streams of ``"network"`` and ``"stimuli"``, ``"lesion_order"`` and ``"shuffle_order"``
get the same streams, so do ``"heldout_split"`` and ``"ceiling_split"`` for the same label,
and ``"auxiliary"``, ``"perturbation"``, ``"lyapunov"`` replicate 0 and the initial state
of the test trial ``quasistatic(seed=seed)`` runs are one stream, which is also that of
repeat 0 of ``"lesion_order"`` and ``"shuffle_order"`` (numpy pads a seed's entropy with
zeros: ``default_rng([seed, 0])`` is ``default_rng(seed)``). In a run all of them but
``"ceiling_split"`` use ``[run] seed``: they draw different things from the shared streams
(a permutation of neurons, uniform numbers for E/I labels, ...), but those draws are not
independent of each other.

A new purpose: add it to ``Purpose``, ``_DERIVATIONS``, the table above and
``tests/unit/test_seeds.py``, with a tag no other purpose uses, e.g. ``[seed, 12]``.
"""
from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any, Literal, get_args

import numpy as np

__all__ = ["Purpose", "PURPOSES", "TRIAL_SEED_STRIDE", "entropy", "rng", "trial_seed"]

Purpose = Literal["network", "stimuli", "initial_state", "unit_selection", "heldout_split",
                  "ceiling_split", "lesion_order", "shuffle_order", "shuffle_permutation",
                  "auxiliary", "perturbation", "lyapunov"]
"""The purposes :func:`rng` derives a stream for (the module docstring's table)."""

TRIAL_SEED_STRIDE = 7919
"""``trial_seed(seed, c, k) = seed + TRIAL_SEED_STRIDE * c + k``: the trials of different
conditions never share a seed as long as there are fewer than 7919 trials per condition."""


def _crc32(label: str) -> int:
    return zlib.crc32(label.encode("utf-8"))


# purpose -> (the names of its ids, the entropy numpy.random.default_rng is given)
_DERIVATIONS: dict[str, tuple[tuple[str, ...], Callable[..., Any]]] = {
    "network": ((), lambda seed: [seed, 1]),
    "stimuli": ((), lambda seed: [seed, 2]),
    "initial_state": ((), lambda seed: [seed, 3]),
    "unit_selection": ((), lambda seed: [seed, 11]),
    "heldout_split": (("label",), lambda seed, label: [seed, _crc32(label)]),
    "ceiling_split": (("label",), lambda seed, label: [seed, _crc32(label)]),
    "lesion_order": (("repeat",), lambda seed, r: [seed, r]),
    "shuffle_order": (("repeat",), lambda seed, r: [seed, r]),
    "shuffle_permutation": (("repeat", "fraction"), lambda seed, r, f: [seed, r, f, 1]),
    "auxiliary": ((), lambda seed: seed),
    "perturbation": ((), lambda seed: seed),
    "lyapunov": (("replicate",), lambda seed, k: int(seed + k)),
}

PURPOSES: tuple[str, ...] = get_args(Purpose)
"""Every purpose, in the order of the module docstring's table."""


def entropy(seed: Any, purpose: Purpose, *ids: Any) -> Any:
    """What :func:`numpy.random.default_rng` is given for ``purpose`` (see the module
    docstring's table): ``[seed, tag, ...]`` or an integer. ``ids``: the purpose's ids
    (a condition label, a repeat, ...), none for most purposes."""
    try:
        names, derive = _DERIVATIONS[purpose]
    except (KeyError, TypeError):
        raise ValueError(f"unknown random-stream purpose {purpose!r}; one of "
                         f"{list(PURPOSES)}") from None
    if len(ids) != len(names):
        raise TypeError(f"purpose {purpose!r} takes {len(names)} id(s) "
                        f"{list(names)}, got {len(ids)}")
    return derive(seed, *ids)


def rng(seed: Any, purpose: Purpose, *ids: Any) -> np.random.Generator:
    """The random stream of ``purpose`` for ``seed`` (and the purpose's ``ids``):
    ``numpy.random.default_rng(entropy(seed, purpose, *ids))``, e.g.
    ``rng(seed, "network")``, ``rng(seed, "ceiling_split", "left")``,
    ``rng(seed, "shuffle_permutation", r, f)``."""
    return np.random.default_rng(entropy(seed, purpose, *ids))


def trial_seed(seed: Any, condition: Any, k: Any) -> Any:
    """The seed of model test trial ``k`` of condition index ``condition``:
    ``seed + 7919 * condition + k`` (an int for int arguments), which
    ``FittedNetwork.run_trial(condition, seed=...)`` turns into the trial's initial state
    and noise."""
    return seed + TRIAL_SEED_STRIDE * condition + k
