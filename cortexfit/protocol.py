"""The trial protocol: one value that says how a trial of a fitted network runs.

A trial (METHOD.md §3.3) is an optional free run, the condition's stimulus (a per-neuron
amplitude held for ``stim_duration``), then the **window**: the targets' time span, cut into
``n_updates`` intervals of ``update_every`` seconds (a whole number of simulator steps), at
whose ends training makes an RLS step and scoring samples the network. The window starts,
on the targets' clock, at ``window_start = update_times[0] - update_every``.

Training (:mod:`cortexfit.fit`), test trials (``RLSFit.run_trial``, :mod:`cortexfit.evaluate`)
and every diagnostic that replays a trial (:mod:`cortexfit.diagnostics`) read these numbers
from one :class:`TrialProtocol`, so a change to the protocol is made here once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .exceptions import ConfigError, TargetError
from .simulate import Noise, SimState, Simulator
from .units import steps

__all__ = ["TrialProtocol"]


@dataclass(frozen=True)
class TrialProtocol:
    """How every trial of one fitted network runs (see the module docstring). Inputs
    (``stimuli``, ``bias``) are in the network's model units."""

    dt: float
    pre_duration: float
    """Free run before the stimulus in training (test trials choose their own)."""
    stim_duration: float
    update_every: float
    update_times: np.ndarray
    """End of every update interval of the window, s on the targets' clock."""
    stimuli: np.ndarray
    """(condition, neuron): each condition's stimulus amplitude."""
    bias: Any
    """Constant input: a number or one per neuron."""
    conditions: tuple[str, ...]
    noise: float = 0.0
    """White-noise strength into every neuron (model units per sqrt(model time unit),
    :class:`~cortexfit.simulate.Noise`), in training and in every trial; 0: none."""

    @classmethod
    def for_targets(cls, time: np.ndarray, *, dt: float, update_every: float,
                    pre_duration: float, stim_duration: float, stimuli: np.ndarray,
                    bias: Any, conditions: Any, noise: float = 0.0) -> "TrialProtocol":
        """The protocol of targets sampled at ``time`` (s): as many whole update intervals
        as fit in ``time[-1] - time[0]``, the first one starting at ``time[0]``."""
        window = float(time[-1] - time[0])
        per_update = steps(update_every, dt)
        n_updates = int(window // (per_update * dt))
        if n_updates < 2:
            raise TargetError("the targets are too short for the update interval",
                              field="time", found=f"{window:g} s",
                              expected=f">= 2 x update_every ({update_every} s)")
        update_times = time[0] + np.arange(1, n_updates + 1) * per_update * dt
        return cls(dt=float(dt), pre_duration=float(pre_duration),
                   stim_duration=float(stim_duration), update_every=float(update_every),
                   update_times=update_times, stimuli=np.asarray(stimuli), bias=bias,
                   conditions=tuple(str(c) for c in conditions), noise=float(noise))

    # ------------------------------------------------------------------ step counts
    @property
    def steps_per_update(self) -> int:
        return steps(self.update_every, self.dt)

    @property
    def n_updates(self) -> int:
        return int(self.update_times.size)

    @property
    def window_steps(self) -> int:
        return self.n_updates * self.steps_per_update

    @property
    def stim_steps(self) -> int:
        return steps(self.stim_duration, self.dt)

    @property
    def window_start(self) -> float:
        """Start of the window on the targets' clock (s)."""
        return float(self.update_times[0] - self.update_every)

    def window_times(self, every: int) -> np.ndarray:
        """Times (s, targets' clock) of a sample taken every ``every`` steps of the window."""
        return self.window_start + np.arange(1, self.window_steps // every + 1) * every * self.dt

    # ------------------------------------------------------------------ running
    def condition_index(self, condition: Any) -> int:
        """A condition label or index -> its index."""
        if isinstance(condition, (int, np.integer)) and not isinstance(condition, bool):
            if not 0 <= condition < len(self.conditions):
                raise ConfigError("condition index out of range", field="condition",
                                  found=int(condition),
                                  expected=f"0..{len(self.conditions) - 1}")
            return int(condition)
        if str(condition) not in self.conditions:
            raise ConfigError("unknown condition", field="condition", found=condition,
                              expected=list(self.conditions))
        return self.conditions.index(str(condition))

    def simulator(self, network: Any, *, seed: int = 0, state: SimState | None = None,
                  precision: str = "float32") -> Simulator:
        """A simulator of ``network`` with this protocol's time step, bias and noise (fresh
        noise drawn from ``seed``)."""
        noise = Noise(sigma=self.noise) if self.noise > 0 else None
        return Simulator(network, dt=self.dt, bias=self.bias, seed=seed, state=state,
                         precision=precision, noise=noise)

    def lead_in(self, sim: Simulator, condition: int, *, free_run: float = 0.0) -> None:
        """Free run for ``free_run`` s, then the condition's stimulus: ``sim`` is left at
        the start of the window."""
        n_free = steps(free_run, self.dt) if free_run > 0 else 0
        if n_free:
            sim.advance(n_free)
        if self.stim_steps:
            sim.advance(self.stim_steps, stimulus=self.stimuli[condition].astype(sim.real))
