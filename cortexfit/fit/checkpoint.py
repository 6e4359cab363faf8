"""Training checkpoints: the state of a fit between loops, written atomically, read back
only by a fit of the same settings and targets (a fingerprint of both)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_path
from ..exceptions import ConfigError, CortexfitError
from ..network import Network
from ..rls import P_LAYOUT
from ..simulate import SimState

__all__ = ["fingerprint", "save_checkpoint", "load_checkpoint", "HISTORY_KEYS"]

HISTORY_KEYS = ("pearson", "weight_change", "rate", "frozen", "validation")

_NOT_FINGERPRINTED = ("loops", "checkpoint", "checkpoint_every", "progress")
# (a checkpoint also keeps the best loop's weights so far: ``best_*``, see training.py)
"""Settings a checkpoint can be resumed under a change of (more loops, another interval)."""


def fingerprint(settings: dict[str, Any], target_values: np.ndarray) -> str:
    """A hash of the settings that shape the fit and of the targets."""
    kept = {k: v for k, v in settings.items() if k not in _NOT_FINGERPRINTED}
    kept["p_layout"] = P_LAYOUT  # a checkpoint's P is only read back in its layout
    digest = np.round(target_values, 6).tobytes()
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()
                          + digest).hexdigest()[:16]


def save_checkpoint(path: Path, fingerprint: str, loops_done: int, state: SimState,
                    net: Network, packed: np.ndarray, frozen: np.ndarray,
                    history: dict[str, list[float]],
                    best: dict[str, Any] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    best = best or {}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, fingerprint=fingerprint, loops_done=loops_done,
                 plastic=net.plastic.data, frozen=frozen, packed=packed,
                 neuron=state.neuron, r=state.r, u=state.u, noise=state.noise,
                 step=state.step, **{f"history_{k}": np.asarray(v) for k, v in history.items()},
                 **{f"best_{k}": np.asarray(v) for k, v in best.items()})


def load_checkpoint(path: Path, fingerprint: str, net: Network, packed: np.ndarray,
                    frozen: np.ndarray
                    ) -> tuple[int, SimState, dict[str, list[float]], dict[str, Any]]:
    """Restore weights, P and frozen synapses in place; returns (loops done, state,
    history, the best loop so far: ``{"loop", "score", "weights", "frozen"}`` or {})."""
    try:
        data = np.load(path)
        found = str(data["fingerprint"])
    except (OSError, ValueError, KeyError) as exc:
        raise CortexfitError("the checkpoint cannot be read", file=path, field="checkpoint",
                             found=str(exc)[:200], expected="a cortexfit checkpoint (.npz)") \
            from None
    if found != fingerprint:
        raise ConfigError(
            "the checkpoint was made with other settings or targets", file=path,
            field="checkpoint", found=found, expected=fingerprint,
            hint="Use another checkpoint path, delete the old file, or pass resume=False",
        )
    net.set_plastic_weights(data["plastic"])
    frozen[:] = data["frozen"]
    packed[:] = data["packed"]
    state = SimState(neuron=data["neuron"], r=data["r"], u=data["u"], noise=data["noise"],
                     step=int(data["step"]))
    history = {k: list(data[f"history_{k}"]) if f"history_{k}" in data.files else []
               for k in HISTORY_KEYS}
    best = {k[len("best_"):]: data[k] for k in data.files if k.startswith("best_")}
    return int(data["loops_done"]), state, history, best
