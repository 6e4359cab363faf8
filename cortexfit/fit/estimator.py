"""The RLS trainer: targets -> a fitted spiking network (Kim & Chow 2018).

``RLSFit`` is shaped like a scikit-learn estimator: settings in the constructor, the work
in :meth:`RLSFit.fit`, the result a frozen :class:`~.fitted.FittedNetwork` in ``fitted_``,
assigned once training has ended (``network_``, ``history_``, ``stimuli_``, ... read it).
The training loop is :mod:`.training`, checkpoints :mod:`.checkpoint`, the NPZ file
:mod:`.persistence`, the trial protocol :class:`cortexfit.protocol.TrialProtocol`.

Protocol (METHOD.md §3.3), per training loop and condition, conditions alternating:

1. free dynamics for ``pre_duration`` (the state carries over from the previous condition:
   the state at stimulus onset differs from loop to loop, which makes the fit robust);
2. the condition's stimulus, a per-neuron amplitude ~ U[-a, a], for ``stim_duration``;
3. the training window (the targets' length): every ``update_every`` seconds, one RLS step
   for every neuron toward its target at that time.

Targets
-------
* an ``xarray.Dataset`` from :func:`cortexfit.targets.make_targets` (``rate``) or
  :func:`cortexfit.auxiliary.add_auxiliary` (``target_rate``, with recorded and auxiliary
  neurons): **rate form**, targets in Hz;
* an ``xarray.DataArray`` of synaptic drives ``(condition, neuron, time)`` with
  ``attrs["kind"] = "drive"``: **drive form**, in the model's input units.

**Units** (:mod:`cortexfit.units`): rates in Hz become the model's spikes per time unit
(theta: Hz x 10 ms); bias, stimulus amplitude, J / sigma and lambda are in the theta
neuron's units and carried to the network's model by its own f-I curve.

Decisions where the paper is silent (METHOD.md):
* Dale's law: the update of a synapse that would flip sign is dropped and the synapse frozen;
  frozen synapses keep their weight in the drive and leave the regression.
* Rate form: error ``phi(u + I) - f`` with the neuron model's own smoothed f-I curve
  (:meth:`~cortexfit.neurons.base.NeuronModel.fi_curve`; the theta neuron's is the paper's
  phi2 with c = 0.1), regressor ``phi'(u + I) r``, updates only while ``u + I`` is above the
  model's threshold (``rate_gate`` input scales above it; the paper: 0).
* Training loops start from the state the previous loop ended in (as the authors' code);
  each loop's free-run length is fixed, so runs are reproducible and resumable.
* The learning curve's correlation compares, at every update time, the drive (drive form) or
  the filtered spike train (rate form, Hz) with the target: Pearson over the window per
  neuron and condition, averaged.
"""
from __future__ import annotations

import copy
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import xarray as xr

from .. import seeds
from ..exceptions import ConfigError
from ..network import Network, ei_network, excitatory_from_cell_types, gaussian_network
from ..neurons.base import get_model
from ..params import AnyOf, Constraint, Interval, Options, validate
from ..protocol import TrialProtocol
from ..simulate import DEFAULT_DT
from ..units import InputScale
from .fitted import FittedNetwork
from .inputs import TrainingTargets, read_targets
from .persistence import load_fitted, save_fitted
from .training import train

__all__ = ["RLSFit", "PARAMETER_CONSTRAINTS", "RECORDINGS_NOISE"]

RECORDINGS_NOISE = 0.2
"""The recordings preset's background noise (theta units): chosen over 0.1-0.5 on the
development recordings and PMd (pipelines/README.md, "Fit quality")."""


_POSITIVE = dict(lo=0, hi=None, closed="neither")
_NONNEGATIVE = dict(lo=0, hi=None, closed="left")
_FLAG = Options(True, False)

PARAMETER_CONSTRAINTS: dict[str, Constraint] = {
    "form": Options("auto", "rate", "drive"),
    "dale": _FLAG,
    "frac_exc": Interval(0, 1, "neither", meaning="0 or 1 leave no E or no I neurons"),
    "p": Interval(0, 1, "right", none_ok=True, meaning="None: the paper's for the network"),
    "J": Interval(**_NONNEGATIVE),
    "g": Interval(**_NONNEGATIVE),
    "sigma": Interval(**_NONNEGATIVE),
    "zero_row_sum": _FLAG,
    "k_plastic": AnyOf(Options("all"), Interval(1, None, integer=True)),
    "tau_s": Interval(**_POSITIVE, meaning="seconds"),
    "lam": Interval(**_POSITIVE),
    "update_every": Interval(**_POSITIVE, meaning="seconds"),
    "stim_duration": Interval(**_NONNEGATIVE, meaning="seconds"),
    "stim_amplitude": Interval(**_NONNEGATIVE),
    "pre_duration": Interval(**_NONNEGATIVE, meaning="seconds"),
    "loops": Interval(1, None, integer=True),
    "fi_smoothing": Interval(**_NONNEGATIVE, meaning="input scales; 0: the sharp curve"),
    "rate_gate": Interval(None, None, none_ok=True,
                          meaning="input scales above threshold; None: no gate"),
    "noise": Interval(**_NONNEGATIVE, meaning="white-noise strength, the model's input units "
                      "per sqrt(its time unit) (theta: theta units); 0: none"),
    "compensate_filter": _FLAG,
    "dt": Interval(**_POSITIVE, meaning="seconds"),
    "max_rate": Interval(**_POSITIVE, meaning="Hz"),
    "checkpoint_every": Interval(1, None, integer=True, meaning="loops"),
    "validate_every": Interval(1, None, integer=True, meaning="loops"),
    "progress": _FLAG,
    "seed": Interval(0, None, integer=True),
}
"""The declared constraint of every setting (``bias``: a number or one per neuron, checked
by the simulator; ``neuron_model``: the registry); the run config's bounds are built from
these (:func:`cortexfit.params.pydantic_bounds`)."""


@dataclass
class RLSFit:
    """Train a recurrent spiking network on targets with RLS (see the module docstring).

    Settings (defaults follow the paper where it gives a value; "ours" where it does not):

    form : "auto" | "rate" | "drive"
        Rate training for rate targets (Dataset), drive training for drive targets.
    neuron_model : the registered model name ("theta", "lif", "izhikevich").
    dale : E/I network under Dale's law (Figure 4) if True, else the Gaussian network of
        Figures 1-3 and 5 (``sigma``, ``zero_row_sum``).
    frac_exc, J, g : E fraction and strengths J/sqrt(Np), -gJ/sqrt(Np) (Figure 4: 0.8, 6, 5).
    p : connection probability; None takes the paper's: 0.1 for E/I networks (Figure 4),
        0.3 for Gaussian ones (Figures 1-3, 5).
    sigma, zero_row_sum : Gaussian networks (Figure 5: sigma = 1). ``zero_row_sum`` with
        ``dale``: each neuron's I inputs are scaled to cancel its E inputs exactly.
    k_plastic : "all" (every initial synapse plastic, the paper) or K per neuron.
    tau_s : synaptic time constant, s (Figure 5: 50 ms).
    lam : RLS regulariser lambda, P(0) = I / lambda (Figures 1, 3: 1).
    update_every : RLS update interval, s (Figures 1-3: 2 ms).
    stim_duration, stim_amplitude : stimulus length (s) and amplitude a, U[-a, a] (paper: 50-100
        ms, a = 1).
    pre_duration : free dynamics before each stimulus, s (ours: 0.5; the authors' code 1 s).
    loops : training loops over all conditions (paper: 30).
    bias : constant external input to every neuron (model units; the paper: 0).
    fi_smoothing : width of the smooth f-I curve used by rate training, in the neuron model's
        input scales (theta: c = 0.1 of the paper; see :mod:`cortexfit.neurons.base`).
    rate_gate : rate training updates neuron i only while ``u_i + I_i`` exceeds the model's
        threshold by more than ``rate_gate`` input scales (the paper: 0, "suprathreshold");
        None trains always.
    noise : white noise into every neuron, in training and in every trial (the model's input
        units per sqrt(model time unit): theta per sqrt(tau), LIF mV sqrt(ms), Izhikevich
        sqrt(ms); :class:`cortexfit.simulate.Noise`); with noise, rate training uses the
        neuron's f-I curve under that noise (:mod:`cortexfit.neurons.noisy`: theta, LIF and
        Izhikevich) instead of the softplus-smoothed one, so the curve and the spiking
        neuron agree at low rates. 0: none (the paper).
    compensate_filter : rate form only. The filtered spike train r (the paper's readout) is
        the rate passed through an exponential filter, so it lags the rate by ~tau_s (a 46
        degree phase lag for a 300 ms sine at tau_s = 50 ms). With True, RLS aims the rate
        phi(u + I) at ``f + tau_s df/dt`` (clipped at 0) so that r itself follows f. Off by
        default (the paper); use it when r is the readout, not when model rates are made from
        spikes with a symmetric kernel (as :mod:`cortexfit.evaluate` does).
    dt : simulation step, s.
    max_rate : a loop whose mean rate exceeds this (Hz) has diverged.
    checkpoint, checkpoint_every : NPZ path and interval (loops) for checkpoints; an existing
        checkpoint of the same settings is resumed by :meth:`fit`.
    progress : show a progress bar.
    seed : everything random (network, stimuli, initial state).
    """

    form: str = "auto"
    neuron_model: str = "theta"
    dale: bool = True
    frac_exc: float = 0.8
    p: float | None = None
    J: float = 6.0
    g: float = 5.0
    sigma: float = 1.0
    zero_row_sum: bool = False
    k_plastic: int | str = "all"
    tau_s: float = 0.05
    lam: float = 1.0
    update_every: float = 0.002
    stim_duration: float = 0.05
    stim_amplitude: float = 1.0
    pre_duration: float = 0.5
    loops: int = 30
    bias: float = 0.0
    fi_smoothing: float = 0.1
    rate_gate: float | None = 0.0
    noise: float = 0.0
    compensate_filter: bool = False
    dt: float = DEFAULT_DT
    max_rate: float = 500.0
    checkpoint: str | None = None
    checkpoint_every: int = 5
    progress: bool = True
    seed: int = 0
    validate_every: int = 5
    network: Network | None = field(default=None, repr=False)
    """A network to train instead of building one from the settings (its size must match)."""
    validator: Callable[[FittedNetwork], float] | None = field(default=None, repr=False)
    """Scores the network every ``validate_every`` loops and after the last (higher is
    better, e.g. the fit to validation trials: :func:`cortexfit.evaluate.validation_score`);
    the fit keeps the weights of the best loop (``history_.attrs["best_loop"]``). None:
    the last loop's weights."""

    # ------------------------------------------------------------------ presets
    @classmethod
    def for_recordings(cls, **overrides: Any) -> "RLSFit":
        """Settings for fitting trial-averaged rates of recorded neurons (with auxiliary
        neurons), measured to fit better than the paper's defaults on the embedded synthetic
        recording: the Gaussian network of the paper's Figure 5 (p = 0.3, sigma = 1,
        tau_s = 50 ms), updates every 2 ms for 30 loops, and two changes to rate training:
        no suprathreshold gate (a silent neuron could otherwise never learn to fire) and a
        sharper f-I curve (c = 0.03: with c = 0.1 the curve predicts ~8 Hz at zero input,
        where a theta neuron is silent, and the fitted rates came out ~30 % low).

        Background noise into every neuron (``noise = 0.2``, theta; rate training then uses
        the noisy f-I curve of :mod:`cortexfit.neurons.noisy`): without it every unit below
        ~4 Hz had a silent model neuron and model rates ran ~40 % low on recordings of low
        rates (pipelines/README.md, "Fit quality").

        Measured (tests/unit/test_fit.py, 80 synthetic units, aux_ratio 2): trial-averaged model
        rates correlate with the targets at 0.83 (median 0.89); the same with aux_ratio 0:
        0.26. Under Dale's law (``dale=True, J=1, g=4``) the same reached 0.71-0.76.
        """
        settings = dict(dale=False, p=0.3, sigma=1.0, tau_s=0.05, lam=1.0, update_every=0.002,
                        loops=30, fi_smoothing=0.03, rate_gate=None)
        # background noise for theta only: the level is in theta units and was chosen on
        # theta fits (LIF and Izhikevich take noise when it is given explicitly)
        model = overrides.get("neuron_model", cls.neuron_model)
        settings["noise"] = RECORDINGS_NOISE if get_model(model).name == "theta" else 0.0
        settings.update(overrides)
        return cls(**settings)

    # ------------------------------------------------------------------ settings
    def settings(self) -> dict[str, Any]:
        """The settings as plain data (what a run saves)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("network", "validator")}
        return out

    def _check(self) -> None:
        """Every setting against :data:`PARAMETER_CONSTRAINTS`, then what depends on two
        settings or on the registry."""
        validate(PARAMETER_CONSTRAINTS, self.settings(), where="RLSFit")
        if self.update_every < self.dt:
            raise ConfigError("update_every is shorter than dt", field="update_every",
                              found=self.update_every, expected=f">= dt ({self.dt})")
        get_model(self.neuron_model)

    # ------------------------------------------------------------------ network
    def _build_network(self, tg: TrainingTargets) -> Network:
        """The network to train: the one given, or one built from the settings, whose
        strengths are in the theta neuron's units and carried to the model's
        (:class:`~cortexfit.units.InputScale`)."""
        net = self._build_theta_units(tg)
        if self.network is not None:
            return net
        scale = InputScale.of(net.neuron_model, net.params, net.n_neurons)
        if not scale.identity:
            rows = scale.weight_rows()
            for csr in (net.static, net.plastic):
                csr.data = (csr.data * np.repeat(rows, np.diff(csr.indptr))).astype(
                    csr.data.dtype)
            net.info["weights_scaled_by"] = "input scale x TAU / time unit (cortexfit.units)"
        return net

    def _build_theta_units(self, tg: TrainingTargets) -> Network:
        n = len(tg.neuron_ids)
        rng = seeds.rng(self.seed, "network")
        if self.network is not None:
            if self.network.n_neurons != n:
                raise ConfigError("the given network does not match the targets",
                                  field="network", found=f"{self.network.n_neurons} neurons",
                                  expected=f"{n} (one per target)")
            return self.network.copy()
        p = self.p if self.p is not None else (0.1 if self.dale else 0.3)
        if self.dale:
            exc = rng.random(n) < self.frac_exc
            if tg.cell_type is not None:
                known = np.array([r == "recorded" and bool(c) for r, c in zip(tg.roles, tg.cell_type)])
                if known.any():
                    exc[known] = excitatory_from_cell_types(
                        [c for c, k in zip(tg.cell_type, known) if k], default=True)
            return ei_network(n, p=p, J=self.J, g=self.g, tau_s=self.tau_s,
                              k_plastic=self.k_plastic, zero_row_sum=self.zero_row_sum,
                              excitatory=exc,
                              neuron_model=self.neuron_model, seed=rng)
        return gaussian_network(n, p=p, sigma=self.sigma, zero_row_sum=self.zero_row_sum,
                                tau_s=self.tau_s, neuron_model=self.neuron_model, seed=rng)

    # ------------------------------------------------------------------ fit
    def fit(self, targets: Any, *, resume: bool = True) -> "RLSFit":
        """Train on ``targets``; returns self with the fit in ``fitted_`` (and ``network_``,
        ``history_`` and friends reading it)."""
        self._check()
        model = get_model(self.neuron_model if self.network is None else
                          self.network.neuron_model)
        tg = read_targets(targets, self.form, model.time_unit)
        net = self._build_network(tg)
        n = net.n_neurons
        rng = seeds.rng(self.seed, "stimuli")
        scale = InputScale.of(net.neuron_model, net.params, n) if self.network is None else \
            None  # a network given as it is: its settings are in the model's units
        stimuli = rng.uniform(-self.stim_amplitude, self.stim_amplitude,
                              size=(len(tg.conditions), n))
        protocol = TrialProtocol.for_targets(
            tg.time, dt=self.dt, update_every=self.update_every, pre_duration=self.pre_duration,
            stim_duration=self.stim_duration,
            stimuli=stimuli if scale is None else scale.amplitude(stimuli),
            bias=self.bias if scale is None else scale.level(self.bias),
            conditions=tg.conditions, noise=self.noise)
        lam = self.lam if scale is None else scale.rls_lambda(self.lam, tg.form == "rate")
        self.fitted_ = train(self, net, tg, protocol, lam, resume=resume)
        return self

    # ------------------------------------------------------------------ the fit
    def _fitted(self) -> FittedNetwork:
        try:
            return self.__dict__["fitted_"]
        except KeyError:
            raise AttributeError("not fitted: call fit() first") from None

    network_ = property(lambda self: self._fitted().network, doc="The trained network.")
    targets_ = property(lambda self: self._fitted().targets, doc="The targets, model units.")
    protocol_ = property(lambda self: self._fitted().protocol, doc="The trial protocol.")
    stimuli_ = property(lambda self: self._fitted().protocol.stimuli,
                        doc="(condition, neuron) stimulus amplitudes, model units.")
    update_times_ = property(lambda self: self._fitted().protocol.update_times,
                             doc="The update grid, s on the targets' clock.")
    frozen_ = property(lambda self: self._fitted().frozen, doc="Frozen (Dale) synapses.")
    initial_weights_ = property(lambda self: self._fitted().initial_weights,
                                doc="W before training.")
    final_state_ = property(lambda self: self._fitted().final_state,
                            doc="The simulation state training ended in.")
    history_ = property(lambda self: self._fitted().history, doc="The learning curve.")

    def with_network(self, network: Network) -> "RLSFit":
        """A copy of this fitted estimator whose fit has another network (same targets,
        protocol, stimuli): how diagnostics lesion, shuffle or reset it."""
        other = copy.copy(self)
        other.fitted_ = self._fitted().with_network(network)
        return other

    def run_trial(self, condition: int | str, *, seed: int, pre_duration: float = 0.0,
                  precision: str = "float32") -> xr.Dataset:
        """One test trial (:meth:`FittedNetwork.run_trial`)."""
        return self._fitted().run_trial(condition, seed=seed, pre_duration=pre_duration,
                                        precision=precision)

    def target_at_updates(self) -> np.ndarray:
        """The targets at the update times, (condition, neuron, time): drives, or Hz."""
        return self._fitted().target_at_updates()

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted model to one NPZ file, readable with numpy alone
        (:func:`~.persistence.save_fitted`)."""
        if "fitted_" not in self.__dict__:
            raise ConfigError("nothing to save: the model is not fitted", field="network_",
                              found="no fitted network", expected="call fit() first")
        return save_fitted(self.fitted_, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "RLSFit":
        """Read a model written by :meth:`save` (:func:`~.persistence.load_fitted`): an
        estimator with the saved settings and the fit."""
        fitted = load_fitted(path)
        est = cls(**{k: v for k, v in fitted.settings.items()
                     if k in cls.__dataclass_fields__ and k != "network"})
        est.network = fitted.given_network
        est.fitted_ = fitted
        return est
