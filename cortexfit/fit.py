"""The RLS trainer: targets -> a fitted spiking network (Kim & Chow 2018).

``RLSFit`` is shaped like a scikit-learn estimator: settings in the constructor, the work
in :meth:`RLSFit.fit`, learned results as attributes ending in ``_`` (``network_``,
``history_``, ``stimuli_``, ...).

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

**Units**: rates in Hz are converted to the model's spikes per time unit in exactly one
place, :func:`to_model_rate` (theta: Hz x 10 ms).

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

import dataclasses
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import xarray as xr

from .atomic import atomic_path
from .exceptions import ConfigError, CortexfitError, TargetError, TrainingDiverged
from .metrics import pearson_kernel
from .network import Network, ei_network, excitatory_from_cell_types, gaussian_network
from .neurons.base import FICurve, get_model
from .protocol import TrialProtocol
from .rls import P_LAYOUT, RLSState
from .simulate import DEFAULT_DT, SimState, Simulator, initial_state
from .units import InputScale

__all__ = ["RLSFit", "to_model_rate"]

_FORMAT_VERSION = 2
"""Version of the file :meth:`RLSFit.save` writes. 2: also the network's settings
(``info``), its parameter record as given (None when the model's defaults), the network given
to the constructor, array-valued settings, the targets' cell types, the final simulation
state and the learning curve's attributes."""
_READABLE_VERSIONS = (1, 2)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _to_json(value: Any) -> str:
    return json.dumps(value, default=_json_default)


def _network_arrays(net: Network, prefix: str) -> dict[str, Any]:
    """A network as plain NPZ entries (``prefix`` "" gives version 1's key names)."""
    params = net.model_params
    if params is not None and not dataclasses.is_dataclass(params):
        raise ConfigError("the neuron model's parameters cannot be saved", field="model_params",
                          found=type(params).__name__, expected="a dataclass parameter record")
    return {
        f"{prefix}neuron_model": net.neuron_model.name,
        f"{prefix}model_params": _to_json(None if params is None else
                                          {f.name: getattr(params, f.name)
                                           for f in dataclasses.fields(params)}),
        f"{prefix}tau_s": net.tau_s,
        f"{prefix}excitatory": net.excitatory if net.excitatory is not None
        else np.zeros(0, bool),
        f"{prefix}static_indptr": net.static.indptr, f"{prefix}static_indices": net.static.indices,
        f"{prefix}static_data": net.static.data,
        f"{prefix}plastic_indptr": net.plastic.indptr,
        f"{prefix}plastic_indices": net.plastic.indices,
        f"{prefix}plastic_data": net.plastic.data, f"{prefix}plastic_sign": net.plastic_sign,
        f"{prefix}network_info": _to_json(net.info),
    }


def _csr_from(data: Any, prefix: str, n: int) -> sp.csr_array:
    return sp.csr_array((data[f"{prefix}_data"], data[f"{prefix}_indices"],
                         data[f"{prefix}_indptr"]), shape=(n, n))


def _network_from(data: Any, prefix: str, n: int, version: int) -> Network:
    model = get_model(str(data[f"{prefix}neuron_model"]))
    params_json = json.loads(str(data[f"{prefix}model_params"]))
    # version 1 saved the parameter record in use (the defaults when none was given)
    params = None if params_json is None or (version == 1 and not params_json) else \
        type(model.params)(**{k: tuple(v) if isinstance(v, list) else v
                              for k, v in params_json.items()})
    exc = data[f"{prefix}excitatory"]
    info = json.loads(str(data[f"{prefix}network_info"])) if version >= 2 else {}
    return Network(neuron_model=model, static=_csr_from(data, f"{prefix}static", n),
                   plastic=_csr_from(data, f"{prefix}plastic", n),
                   plastic_sign=data[f"{prefix}plastic_sign"],
                   tau_s=float(data[f"{prefix}tau_s"]),
                   excitatory=exc if exc.size else None, model_params=params, info=info)


@dataclass(frozen=True)
class _TrainingSignal:
    """Each neuron's RLS error and regressor gain from its drive u (rls.py): ``u - f`` and 1
    in the drive form; ``phi(u + I) - f`` and ``phi'(u + I)`` in the rate form, with the
    neuron model's own smoothed f-I curve (:class:`~cortexfit.neurons.base.FICurve`), gain 0
    (no update) while ``u + I`` is at or below the gate."""

    fi: FICurve | None
    bias: np.ndarray
    gate: np.ndarray

    @classmethod
    def make(cls, net: Network, rate_form: bool, smoothing: float, rate_gate: float | None,
             bias: np.ndarray) -> "_TrainingSignal":
        n = net.n_neurons
        if not rate_form:
            return cls(None, bias, np.full(n, -np.inf))
        fi = net.neuron_model.fi_curve(net.params, n, smoothing=smoothing)
        gate = np.full(n, -np.inf) if rate_gate is None else \
            fi.threshold + rate_gate * net.neuron_model.input_scale(net.params, n)
        return cls(fi, np.asarray(bias, dtype=np.float64), gate)

    def __call__(self, u: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.fi is None:
            return u - target, np.ones_like(u)
        total = u.astype(np.float64) + self.bias
        err = self.fi.phi(total) - target
        gain = self.fi.dphi(total)
        gain[(total <= self.gate) | (gain < 1e-20)] = 0.0  # gated, or nothing to learn
        return err, gain


def to_model_rate(rate_hz: np.ndarray, time_unit: float) -> np.ndarray:
    """Hz -> spikes per model time unit (theta: per 10 ms). The one conversion point."""
    return np.asarray(rate_hz, dtype=np.float64) * time_unit


@dataclass
class _Targets:
    form: str
    conditions: list[str]
    neuron_ids: list[str]
    roles: list[str]
    recorded_unit: list[str]
    cell_type: list[str] | None
    time: np.ndarray  # (n_time,) s, the targets' own grid
    values: np.ndarray  # (condition, neuron, n_time) in model units


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
    sigma, zero_row_sum : Gaussian networks (Figure 5: sigma = 1).
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
    compensate_filter: bool = False
    dt: float = DEFAULT_DT
    max_rate: float = 500.0
    checkpoint: str | None = None
    checkpoint_every: int = 5
    progress: bool = True
    seed: int = 0
    network: Network | None = field(default=None, repr=False)
    """A network to train instead of building one from the settings (its size must match)."""

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

        Measured (tests/test_fit.py, 80 synthetic units, aux_ratio 2): trial-averaged model
        rates correlate with the targets at 0.83 (median 0.89); the same with aux_ratio 0:
        0.26. Under Dale's law (``dale=True, J=1, g=4``) the same reached 0.71-0.76.
        """
        settings = dict(dale=False, p=0.3, sigma=1.0, tau_s=0.05, lam=1.0, update_every=0.002,
                        loops=30, fi_smoothing=0.03, rate_gate=None)
        settings.update(overrides)
        return cls(**settings)

    # ------------------------------------------------------------------ settings
    def settings(self) -> dict[str, Any]:
        """The settings as plain data (what a run saves)."""
        out = {k: v for k, v in asdict(self).items() if k != "network"}
        return out

    def _check(self) -> None:
        positive = ("tau_s", "lam", "update_every", "dt", "max_rate")
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be positive", field=name, found=value,
                                  expected="a number > 0")
        for name in ("stim_duration", "pre_duration", "stim_amplitude"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be >= 0", field=name, found=value,
                                  expected="a number >= 0")
        if not (isinstance(self.loops, (int, np.integer)) and self.loops >= 1):
            raise ConfigError("loops must be a positive integer", field="loops",
                              found=self.loops, expected=">= 1")
        if self.form not in ("auto", "rate", "drive"):
            raise ConfigError("unknown training form", field="form", found=self.form,
                              expected="'auto', 'rate' or 'drive'")
        if self.update_every < self.dt:
            raise ConfigError("update_every is shorter than dt", field="update_every",
                              found=self.update_every, expected=f">= dt ({self.dt})")
        get_model(self.neuron_model)

    # ------------------------------------------------------------------ targets
    def _read_targets(self, targets: Any, time_unit: float) -> _Targets:
        if isinstance(targets, xr.Dataset):
            if "target_rate" in targets:
                arr = targets["target_rate"].transpose("condition", "neuron", "time")
                ids = [str(v) for v in targets["neuron"].values]
                roles = [str(v) for v in targets["role"].values]
                recorded = [str(v) for v in targets["recorded_unit"].values]
            elif "rate" in targets:
                arr = targets["rate"].transpose("condition", "unit", "time")
                ids = [str(v) for v in targets["unit"].values]
                roles, recorded = ["recorded"] * len(ids), list(ids)
            else:
                raise TargetError("the targets have no rate variable", field="targets",
                                  found=list(targets.data_vars),
                                  expected="'target_rate' (add_auxiliary) or 'rate' (make_targets)")
            form = "rate"
            values = to_model_rate(arr.values, time_unit)
            cell_type = None
            if "cell_type" in targets.coords and "unit" in targets["cell_type"].dims:
                types = dict(zip([str(u) for u in targets["unit"].values],
                                 [str(t) for t in targets["cell_type"].values]))
                cell_type = [types.get(u, "") for u in recorded]
        elif isinstance(targets, xr.DataArray):
            if targets.attrs.get("kind") != "drive":
                raise TargetError("a DataArray of targets must be drives", field="attrs['kind']",
                                  found=targets.attrs.get("kind"), expected="'drive'")
            arr = targets.transpose("condition", "neuron", "time")
            ids = [str(v) for v in arr["neuron"].values]
            roles, recorded, cell_type = ["target"] * len(ids), [""] * len(ids), None
            form, values = "drive", np.asarray(arr.values, dtype=np.float64)
        else:
            raise TargetError("targets of an unknown type", field="targets",
                              found=type(targets).__name__,
                              expected="an xarray Dataset of rates or a DataArray of drives")
        if self.form != "auto" and self.form != form:
            raise ConfigError("the training form does not match the targets", field="form",
                              found=self.form, expected=form)
        if not np.all(np.isfinite(values)):
            raise TargetError("targets contain NaN or infinite values", field="targets",
                              found=int(np.sum(~np.isfinite(values))), expected="finite values")
        time = np.asarray(arr["time"].values, dtype=np.float64)
        if time.size < 2:
            raise TargetError("targets need at least two time points", field="time",
                              found=time.size, expected=">= 2")
        return _Targets(form=form, conditions=[str(c) for c in arr["condition"].values],
                        neuron_ids=ids, roles=roles, recorded_unit=recorded, cell_type=cell_type,
                        time=time, values=values)

    # ------------------------------------------------------------------ network
    def _build_network(self, tg: _Targets) -> Network:
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

    def _build_theta_units(self, tg: _Targets) -> Network:
        n = len(tg.neuron_ids)
        rng = np.random.default_rng([self.seed, 1])
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
                              k_plastic=self.k_plastic, excitatory=exc,
                              neuron_model=self.neuron_model, seed=rng)
        return gaussian_network(n, p=p, sigma=self.sigma, zero_row_sum=self.zero_row_sum,
                                tau_s=self.tau_s, neuron_model=self.neuron_model, seed=rng)

    # ------------------------------------------------------------------ fit
    def fit(self, targets: Any, *, resume: bool = True) -> "RLSFit":
        """Train on ``targets``; returns self with ``network_``, ``history_`` and friends."""
        self._check()
        model = get_model(self.neuron_model if self.network is None else
                          self.network.neuron_model)
        tg = self._read_targets(targets, model.time_unit)
        net = self._build_network(tg)
        n = net.n_neurons
        n_cond = len(tg.conditions)
        rng = np.random.default_rng([self.seed, 2])
        scale = InputScale.of(net.neuron_model, net.params, n) if self.network is None else \
            None  # a network given as it is: its settings are in the model's units
        stimuli = rng.uniform(-self.stim_amplitude, self.stim_amplitude, size=(n_cond, n))
        protocol = TrialProtocol.for_targets(
            tg.time, dt=self.dt, update_every=self.update_every, pre_duration=self.pre_duration,
            stim_duration=self.stim_duration,
            stimuli=stimuli if scale is None else scale.amplitude(stimuli),
            bias=self.bias if scale is None else scale.level(self.bias),
            conditions=tg.conditions)
        self.stimuli_ = protocol.stimuli
        update_times = protocol.update_times
        n_updates, steps_per_update = protocol.n_updates, protocol.steps_per_update
        target_at = np.stack([
            np.stack([np.interp(update_times, tg.time, tg.values[c, i]) for i in range(n)])
            for c in range(n_cond)]).astype(np.float32)  # (condition, neuron, update)

        compare = target_at.copy()  # what the learning curve compares with
        if self.compensate_filter and tg.form == "rate":
            slope = np.gradient(target_at, update_times, axis=-1)
            target_at = np.maximum(target_at + net.tau_s * slope, 0.0).astype(np.float32)
        lam = self.lam if scale is None else scale.rls_lambda(self.lam, tg.form == "rate")
        rls = RLSState(net.plastic.indptr, lam)  # one pass over P per update (rls.py)
        frozen = np.zeros(net.plastic.nnz, dtype=bool)
        weights0 = net.weights()
        state = initial_state(net, [self.seed, 3])
        history: dict[str, list[float]] = {k: [] for k in
                                           ("pearson", "weight_change", "rate", "frozen")}
        start_loop = 0
        ckpt = Path(self.checkpoint) if self.checkpoint else None
        fingerprint = self._fingerprint(tg)
        if ckpt is not None and resume and ckpt.exists():
            start_loop, state, history = self._load_checkpoint(ckpt, fingerprint, net,
                                                              rls.packed, frozen)

        self.network_ = net
        self.targets_ = tg
        self.update_times_ = update_times
        self.protocol_ = protocol
        sim = protocol.simulator(net, state=state)
        neurons = np.arange(n, dtype=np.int64)
        bias_arr = sim.bias.astype(np.float32)
        rate_form = tg.form == "rate"
        signal = _TrainingSignal.make(net, rate_form, self.fi_smoothing, self.rate_gate,
                                      bias_arr)
        unit = net.neuron_model.time_unit
        norm0 = float(sp.linalg.norm(weights0)) if weights0.nnz else 0.0

        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.loops, initial=start_loop, desc="RLS training", unit="loop")
        try:
            for loop in range(start_loop, self.loops):
                readout = np.zeros((n_cond, n, n_updates), dtype=np.float32)
                spikes = 0
                for c in range(n_cond):
                    protocol.lead_in(sim, c, free_run=self.pre_duration)
                    for k in range(n_updates):
                        spike_steps, _ = sim.advance(steps_per_update)
                        spikes += spike_steps.size
                        readout[c, :, k] = sim.r / unit if rate_form else sim.u
                        err, gain = signal(sim.u, target_at[c, :, k])
                        rls.update(neurons, net.plastic.indices, net.plastic.data,
                                   net.plastic_sign, frozen, sim.r, sim.u, err, gain)
                        net.set_plastic_weights(net.plastic.data)
                    self._check_divergence(sim, net, loop, tg.conditions[c])
                rate = spikes / (n * n_cond * n_updates * steps_per_update * self.dt)
                if rate > self.max_rate:
                    raise TrainingDiverged(
                        "training produced runaway rates", field=f"loop {loop}",
                        found=f"mean rate {rate:.0f} Hz", expected=f"<= max_rate ({self.max_rate} Hz)",
                        hint="Increase lam (stronger regularisation), lengthen update_every, or "
                        "lower J / stim_amplitude; the last checkpoint is kept",
                    )
                history["pearson"].append(float(np.mean(pearson_kernel(
                    readout, compare / unit if rate_form else compare))))
                change = float(sp.linalg.norm(net.weights() - weights0))
                history["weight_change"].append(change / norm0 if norm0 > 0 else change)
                history["rate"].append(float(rate))
                history["frozen"].append(float(frozen.mean()) if frozen.size else 0.0)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(r=f"{history['pearson'][-1]:.3f}", rate=f"{rate:.1f}Hz")
                # P is brought up to date at the end of every loop (one extra pass per ~1000
                # updates), so the weights do not depend on whether or how often a
                # checkpoint is written
                rls.flush()
                if ckpt is not None and ((loop + 1) % self.checkpoint_every == 0
                                         or loop + 1 == self.loops):
                    self._save_checkpoint(ckpt, fingerprint, loop + 1, sim.state(), net,
                                          rls.packed, frozen, history)
        finally:
            if bar is not None:
                bar.close()
        self.frozen_ = frozen
        self.final_state_ = sim.state()
        self.initial_weights_ = weights0
        self.history_ = xr.Dataset(
            {
                "pearson": ("loop", history["pearson"],
                            {"long_name": "mean Pearson r with the targets during training "
                             "(single trial; drive, or filtered spike trains for rates)"}),
                "weight_change": ("loop", history["weight_change"],
                                  {"long_name": "||W - W0|| / ||W0||" if norm0 > 0
                                   else "||W - W0|| (W0 = 0)"}),
                "rate": ("loop", history["rate"], {"long_name": "mean rate", "units": "Hz"}),
                "frozen": ("loop", history["frozen"],
                           {"long_name": "fraction of frozen (Dale) synapses"}),
            },
            coords={"loop": np.arange(1, len(history["pearson"]) + 1)},
            attrs={"form": tg.form, "settings": json.dumps(self.settings(), default=str)},
        )
        return self

    # ------------------------------------------------------------------ test runs
    def run_trial(self, condition: int | str, *, seed: int, pre_duration: float = 0.0,
                  precision: str = "float32") -> xr.Dataset:
        """One test trial of the fitted network from fresh random initial conditions
        (theta: θ0 uniform, r = u = 0): optional free run, the condition's stimulus, then the
        training window. Returns the drive ``u`` and filtered trains ``r`` (Hz) of every neuron
        at the update times, and the spikes, as a Dataset over (time, neuron)."""
        tg, net, protocol = self.targets_, self.network_, self.protocol_
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
             "r": (("time", "neuron"), rec_r / unit, {"units": "Hz"}),
             "spike_time": ("spike", protocol.window_start + (spike_steps + 1) * self.dt,
                            {"units": "s"}),
             "spike_neuron": ("spike", spike_neurons)},
            coords={"time": ("time", self.update_times_, {"units": "s"}),
                    "neuron": ("neuron", tg.neuron_ids)},
            attrs={"condition": tg.conditions[c], "seed": seed},
        )

    def target_at_updates(self) -> np.ndarray:
        """The targets at the update times, (condition, neuron, time): drives, or Hz."""
        tg = self.targets_
        values = np.stack([np.stack([np.interp(self.update_times_, tg.time, tg.values[c, i])
                                     for i in range(tg.values.shape[1])])
                           for c in range(tg.values.shape[0])])
        if tg.form == "rate":
            values = values / self.network_.neuron_model.time_unit
        return values

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted model to one NPZ file, readable with numpy alone
        (``np.load(path, allow_pickle=False)``: sparse weights as CSR arrays, labels as
        strings, settings, parameter records and attributes as JSON strings).

        Everything :meth:`load` needs to give back an estimator that runs, scores and
        diagnoses exactly as this one (format version 2): the settings (array-valued ones,
        such as a per-neuron ``bias``, as arrays of their own), the trained network (neuron
        model, its parameter record, ``tau_s``, the E/I split, static and plastic weights
        and signs, and ``info``, the settings it was built with, which the spectrum's
        theoretical radius reads), the network given to the constructor if any, the frozen
        synapses, the initial weights, the targets (with their cell types), the stimuli,
        the update grid, the final simulation state and the learning curve with its
        attributes.
        """
        if not hasattr(self, "network_"):
            raise ConfigError("nothing to save: the model is not fitted", field="network_",
                              found="no fitted network", expected="call fit() first")
        net, tg = self.network_, self.targets_
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        settings, setting_arrays = {}, {}
        for name, value in self.settings().items():
            if isinstance(value, np.ndarray):
                settings[name] = None
                setting_arrays[f"setting_{name}"] = value
            else:
                settings[name] = value
        state = self.final_state_
        history_attrs = {"attrs": dict(self.history_.attrs),
                         "vars": {k: dict(v.attrs) for k, v in self.history_.data_vars.items()},
                         "coords": {k: dict(v.attrs) for k, v in self.history_.coords.items()}}
        arrays = {
            "format_version": _FORMAT_VERSION,
            "settings": _to_json(settings),
            **setting_arrays,
            **_network_arrays(net, ""),
            "frozen": self.frozen_,
            "initial_weights_indptr": self.initial_weights_.indptr,
            "initial_weights_indices": self.initial_weights_.indices,
            "initial_weights_data": self.initial_weights_.data,
            "form": tg.form, "conditions": np.array(tg.conditions, dtype=str),
            "neuron_ids": np.array(tg.neuron_ids, dtype=str),
            "roles": np.array(tg.roles, dtype=str),
            "recorded_unit": np.array(tg.recorded_unit, dtype=str),
            "has_cell_type": tg.cell_type is not None,
            "cell_type": np.array(tg.cell_type if tg.cell_type is not None else [], dtype=str),
            "target_time": tg.time, "target_values": tg.values,
            "stimuli": self.stimuli_, "update_times": self.update_times_,
            "final_state_neuron": state.neuron, "final_state_r": state.r,
            "final_state_u": state.u, "final_state_noise": state.noise,
            "final_state_step": np.int64(state.step),
            "has_given_network": self.network is not None,
            **(_network_arrays(self.network, "given_") if self.network is not None else {}),
            "attrs_history": _to_json(history_attrs),
            **{f"history_{name}": self.history_[name].values for name in self.history_.data_vars},
        }
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "RLSFit":
        """Read a model written by :meth:`save`.

        Version 2 files (this version) restore every fitted attribute, the settings and
        the network's own settings (``network_.info``), so diagnostics on the reloaded
        model equal those on the original. Version 1 files (before the network's settings,
        the model's parameter record as given, the targets' cell types, the final state
        and the learning curve's attributes were saved) load with what they hold:
        ``network_.info`` is empty (the spectrum then estimates its theoretical radius
        from the initial weights) and ``final_state_`` is absent."""
        path = Path(path)
        try:
            data = np.load(path, allow_pickle=False)
            version = int(data["format_version"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CortexfitError("not a saved cortexfit model", file=path, field="format_version",
                                 found=str(exc)[:200], expected="an NPZ written by RLSFit.save") \
                from None
        if version not in _READABLE_VERSIONS:
            raise ConfigError(
                f"unsupported model file version {version}", file=path, field="format_version",
                found=version, expected=" or ".join(str(v) for v in _READABLE_VERSIONS),
                hint="The file was written by another cortexfit version; load it with that "
                "version, or fit the model again")
        try:
            return cls._from_npz(data, version)
        except KeyError as exc:
            raise CortexfitError("the model file is incomplete", file=path,
                                 field=str(exc.args[0]) if exc.args else "?",
                                 found="missing", expected=f"a complete version {version} "
                                 "file written by RLSFit.save") from None

    @classmethod
    def _from_npz(cls, data: Any, version: int) -> "RLSFit":
        settings = json.loads(str(data["settings"]))
        for key in data.files:
            if key.startswith("setting_"):
                settings[key[len("setting_"):]] = data[key]
        est = cls(**{k: v for k, v in settings.items() if k in cls.__dataclass_fields__
                     and k != "network"})
        n = data["neuron_ids"].size
        est.network_ = _network_from(data, "", n, version)
        if version >= 2 and bool(data["has_given_network"]):
            est.network = _network_from(data, "given_", n, version)
        est.frozen_ = data["frozen"]
        est.initial_weights_ = _csr_from(data, "initial_weights", n)
        cell_type = None
        if version >= 2 and bool(data["has_cell_type"]):
            cell_type = [str(c) for c in data["cell_type"]]
        est.targets_ = _Targets(
            form=str(data["form"]), conditions=[str(c) for c in data["conditions"]],
            neuron_ids=[str(c) for c in data["neuron_ids"]], roles=[str(c) for c in data["roles"]],
            recorded_unit=[str(c) for c in data["recorded_unit"]], cell_type=cell_type,
            time=data["target_time"], values=data["target_values"])
        est.stimuli_ = data["stimuli"]
        est.update_times_ = data["update_times"]
        given = est.network is not None
        scale = None if given else InputScale.of(est.network_.neuron_model, est.network_.params, n)
        est.protocol_ = TrialProtocol(
            dt=float(est.dt), pre_duration=float(est.pre_duration),
            stim_duration=float(est.stim_duration), update_every=float(est.update_every),
            update_times=est.update_times_, stimuli=est.stimuli_,
            bias=est.bias if scale is None else scale.level(est.bias),
            conditions=tuple(est.targets_.conditions))
        if version >= 2:
            est.final_state_ = SimState(
                neuron=data["final_state_neuron"], r=data["final_state_r"],
                u=data["final_state_u"], noise=data["final_state_noise"],
                step=int(data["final_state_step"]))
        names = [k[len("history_"):] for k in data.files if k.startswith("history_")]
        attrs = (json.loads(str(data["attrs_history"])) if version >= 2
                 else {"attrs": {}, "vars": {}, "coords": {}})
        n_loops = data["history_pearson"].size
        est.history_ = xr.Dataset(
            {name: ("loop", data[f"history_{name}"], attrs["vars"].get(name, {}))
             for name in names},
            coords={"loop": ("loop", np.arange(1, n_loops + 1),
                             attrs["coords"].get("loop", {}))},
            attrs=attrs["attrs"])
        return est

    # ------------------------------------------------------------------ helpers
    def _check_divergence(self, sim: Simulator, net: Network, loop: int, condition: str) -> None:
        bad = sim.check_finite()
        bad_w = ~np.isfinite(net.plastic.data)
        if bad.size or bad_w.any():
            rows = np.unique(np.searchsorted(net.plastic.indptr, np.flatnonzero(bad_w),
                                             side="right") - 1)
            who = np.union1d(bad, rows)
            raise TrainingDiverged(
                "training diverged: NaN or infinite drive or weights",
                field=f"loop {loop}, condition {condition}",
                found=f"{who.size} neurons (first: {who[:8].tolist()})",
                expected="finite values",
                hint="Increase lam, lengthen update_every or lower dt; the last checkpoint is kept",
            )

    def _fingerprint(self, tg: _Targets) -> str:
        settings = {k: v for k, v in self.settings().items()
                    if k not in ("loops", "checkpoint", "checkpoint_every", "progress")}
        settings["p_layout"] = P_LAYOUT  # a checkpoint's P is only read back in its layout
        digest = np.round(tg.values, 6).tobytes()
        import hashlib

        return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()
                              + digest).hexdigest()[:16]

    def _save_checkpoint(self, path: Path, fingerprint: str, loops_done: int, state: SimState,
                         net: Network, packed: np.ndarray, frozen: np.ndarray,
                         history: dict[str, list[float]]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, fingerprint=fingerprint, loops_done=loops_done,
                     plastic=net.plastic.data, frozen=frozen, packed=packed,
                     neuron=state.neuron, r=state.r, u=state.u, noise=state.noise,
                     step=state.step, **{f"history_{k}": np.asarray(v)
                                         for k, v in history.items()})

    def _load_checkpoint(self, path: Path, fingerprint: str, net: Network, packed: np.ndarray,
                         frozen: np.ndarray):
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
        history = {k: list(data[f"history_{k}"]) for k in ("pearson", "weight_change", "rate",
                                                           "frozen")}
        return int(data["loops_done"]), state, history

