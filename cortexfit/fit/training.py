"""The RLS training loop (METHOD.md §3.3): per loop and condition, the protocol's free run and
stimulus, then an RLS step for every neuron every ``update_every`` seconds of the window.
Works on local state only and returns a :class:`~.fitted.FittedNetwork` at the end, so an
interrupted or diverged fit leaves nothing that looks fitted."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np
import scipy.sparse as sp
import xarray as xr
from tqdm.auto import tqdm

from .. import seeds
from ..exceptions import TrainingDiverged
from ..metrics import pearson_kernel
from ..network import Network
from ..neurons.base import FICurve
from ..neurons.noisy import noisy_fi_curve, table_point
from ..protocol import TrialProtocol
from ..rls import RLSState
from ..simulate import DEFAULT_DT, Simulator, initial_state
from ..units import to_hz
from .checkpoint import HISTORY_KEYS, fingerprint, load_checkpoint, save_checkpoint
from .fitted import FittedNetwork
from .inputs import TrainingTargets

__all__ = ["train", "TrainingSignal"]


@dataclass(frozen=True)
class TrainingSignal:
    """Each neuron's RLS error and regressor gain from its drive u (rls.py): ``u - f`` and 1
    in the drive form; ``phi(u + I) - f`` and ``phi'(u + I)`` in the rate form, with the
    neuron model's own smoothed f-I curve (:class:`~cortexfit.neurons.base.FICurve`), gain 0
    (no update) while ``u + I`` is at or below the gate."""

    fi: FICurve | None
    bias: np.ndarray
    gate: np.ndarray
    kernel: Any = None
    """The compiled signal of the model (:func:`_make_kernel`), if it has ``phi_point``."""
    params: np.ndarray | None = None

    @classmethod
    def make(cls, net: Network, rate_form: bool, smoothing: float, rate_gate: float | None,
             bias: np.ndarray, noise: float = 0.0,
             dt: float = DEFAULT_DT) -> "TrainingSignal":
        n = net.n_neurons
        if not rate_form:
            return cls(None, bias, np.full(n, -np.inf))
        if noise > 0:  # the curve under that noise, for the simulation's time step dt (s)
            fi = noisy_fi_curve(net.neuron_model, net.params, n, noise, dt=dt)
            gate = np.full(n, -np.inf) if rate_gate is None else \
                fi.threshold + rate_gate * net.neuron_model.input_scale(net.params, n)
            return cls(fi, np.asarray(bias, dtype=np.float64), gate, _table_signal,
                       np.zeros((1, n)))
        fi = net.neuron_model.fi_curve(net.params, n, smoothing=smoothing)
        gate = np.full(n, -np.inf) if rate_gate is None else \
            fi.threshold + rate_gate * net.neuron_model.input_scale(net.params, n)
        model = net.neuron_model
        kernel = None if model.phi_point is None else _kernel_for(model.phi_point)
        return cls(fi, np.asarray(bias, dtype=np.float64), gate, kernel,
                   np.ascontiguousarray(model.param_array(n, net.params), dtype=np.float64))

    def __call__(self, u: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.fi is None:
            return u - target, np.ones_like(u)
        if self.kernel is _table_signal:
            err, gain = np.empty(u.shape[0]), np.empty(u.shape[0])
            fi = self.fi
            _table_signal(u, self.bias, target, fi.x0, fi.step, fi.rates, fi.slopes,
                          fi.rows, fi.above, self.gate, err, gain)
            return err, gain
        if self.kernel is not None:
            err, gain = np.empty(u.shape[0]), np.empty(u.shape[0])
            self.kernel(u, self.bias, target, self.fi.threshold, self.fi.width, self.gate,
                        self.params, err, gain)
            return err, gain
        total = u.astype(np.float64) + self.bias
        err = self.fi.phi(total) - target
        gain = self.fi.dphi(total)
        gain[(total <= self.gate) | (gain < 1e-20)] = 0.0  # gated, or nothing to learn
        return err, gain


@numba.njit(cache=True)
def _table_signal(u, bias, target, x0, step, rates, slopes, rows, above, gate, err, gain):
    """The rate-form signal with a tabulated (noisy) f-I curve: neuron i reads row
    ``rows[i]`` of the table (:class:`~cortexfit.neurons.noisy.NoisyFICurve`)."""
    for i in range(u.shape[0]):
        x = np.float64(u[i]) + bias[i]
        row = rows[i]
        rate, g = table_point(x, x0, step, rates[row], slopes[row], above)
        err[i] = rate - target[i]
        gain[i] = 0.0 if (x <= gate[i] or g < 1e-20) else g


_KERNELS: dict[Any, Any] = {}


def _kernel_for(phi_point: Any) -> Any:
    kernel = _KERNELS.get(phi_point)
    if kernel is None:
        kernel = _KERNELS[phi_point] = _make_kernel(phi_point)
    return kernel


def _make_kernel(phi_point: Any) -> Any:
    """The rate-form signal of one model in a compiled loop: the same arithmetic as
    :class:`FICurve` (softplus of width c above the threshold, the model's sharp curve there,
    its slope times the softplus' slope) and the same gate (``tests/contract/test_neuron_models.py``
    checks them equal)."""

    @numba.njit  # not cached: it inlines phi_point from the model's module
    def signal(u, bias, target, theta, width, gate, params, err, gain):
        for i in range(u.shape[0]):
            x = np.float64(u[i]) + bias[i]
            c = width[i]
            if c > 0.0:
                z = (x - theta[i]) / c
                shifted = theta[i] + c * (max(z, 0.0) + np.log1p(np.exp(-abs(z))))
                slope = 0.5 * (1.0 + np.tanh(0.5 * z))
            else:
                shifted, slope = x, 1.0
            rate, derivative = phi_point(shifted, params, i)
            err[i] = rate - target[i]
            g = derivative * slope
            gain[i] = 0.0 if (x <= gate[i] or g < 1e-20) else g

    return signal


def train(cfg: Any, net: Network, tg: TrainingTargets, protocol: TrialProtocol,
          lam: float | np.ndarray, *, resume: bool) -> FittedNetwork:
    """Train ``net`` (modified in place) on ``tg`` with the settings of ``cfg`` (an
    :class:`~cortexfit.fit.RLSFit`); returns the fit."""
    n, n_cond = net.n_neurons, len(tg.conditions)
    rate_form = tg.form == "rate"
    update_times, n_updates = protocol.update_times, protocol.n_updates
    target_at = tg.at(update_times).astype(np.float32)  # (condition, neuron, update)
    compare = target_at.copy()  # what the learning curve compares with
    if cfg.compensate_filter and rate_form:
        slope = np.gradient(target_at, update_times, axis=-1)
        target_at = np.maximum(target_at + net.tau_s * slope, 0.0).astype(np.float32)
    rls = RLSState(net.plastic.indptr, lam)  # one pass over P per update (rls.py)
    frozen = np.zeros(net.plastic.nnz, dtype=bool)
    weights0 = net.weights()
    state = initial_state(net, seeds.rng(cfg.seed, "initial_state"))
    history: dict[str, list[float]] = {k: [] for k in HISTORY_KEYS}
    start_loop = 0
    ckpt = Path(cfg.checkpoint) if cfg.checkpoint else None
    print_ = fingerprint(cfg.settings(), tg.values)
    best: dict[str, Any] = {}  # the best loop by validation score (cfg.validator)
    if ckpt is not None and resume and ckpt.exists():
        start_loop, state, history, best = load_checkpoint(ckpt, print_, net, rls.packed,
                                                          frozen)

    sim = protocol.simulator(net, state=state)
    signal = TrainingSignal.make(net, rate_form, cfg.fi_smoothing, cfg.rate_gate,
                                 sim.bias.astype(np.float32), protocol.noise,
                                 dt=protocol.dt)
    unit = net.neuron_model.time_unit
    norm0 = float(sp.linalg.norm(weights0)) if weights0.nnz else 0.0
    neurons = np.arange(n, dtype=np.int64)
    bar = tqdm(total=cfg.loops, initial=start_loop, desc="RLS training", unit="loop",
               disable=not cfg.progress)
    with bar:
        for loop in range(start_loop, cfg.loops):
            readout = np.zeros((n_cond, n, n_updates), dtype=np.float32)
            spikes = 0
            for c in range(n_cond):
                protocol.lead_in(sim, c, free_run=protocol.pre_duration)
                for k in range(n_updates):
                    spike_steps, _ = sim.advance(protocol.steps_per_update)
                    spikes += spike_steps.size
                    readout[c, :, k] = to_hz(sim.r, unit) if rate_form else sim.u
                    err, gain = signal(sim.u, target_at[c, :, k])
                    rls.update(neurons, net.plastic.indices, net.plastic.data,
                               net.plastic_sign, frozen, sim.r, sim.u, err, gain)
                    net.set_plastic_weights(net.plastic.data)
                _check_divergence(sim, net, loop, tg.conditions[c])
            rate = spikes / (n * n_cond * protocol.window_steps * protocol.dt)
            if rate > cfg.max_rate:
                raise TrainingDiverged(
                    "training produced runaway rates", field=f"loop {loop}",
                    found=f"mean rate {rate:.0f} Hz", expected=f"<= max_rate ({cfg.max_rate} Hz)",
                    hint="Increase lam (stronger regularisation), lengthen update_every, or "
                    "lower J / stim_amplitude; the last checkpoint is kept",
                )
            history["pearson"].append(float(np.mean(pearson_kernel(
                readout, to_hz(compare, unit) if rate_form else compare))))
            change = float(sp.linalg.norm(net.weights() - weights0))
            history["weight_change"].append(change / norm0 if norm0 > 0 else change)
            history["rate"].append(float(rate))
            history["frozen"].append(float(frozen.mean()) if frozen.size else 0.0)
            bar.update(1)
            bar.set_postfix(r=f"{history['pearson'][-1]:.3f}", rate=f"{rate:.1f}Hz")
            # P is brought up to date at the end of every loop (one extra pass per ~1000
            # updates), so the weights do not depend on whether or how often a checkpoint
            # is written
            rls.flush()
            history["validation"].append(_validate(cfg, loop, net, tg, protocol, frozen,
                                                   weights0, sim, history, best))
            if np.isfinite(history["validation"][-1]):
                bar.set_postfix(r=f"{history['pearson'][-1]:.3f}", rate=f"{rate:.1f}Hz",
                                val=f"{history['validation'][-1]:.3f}")
            if ckpt is not None and ((loop + 1) % cfg.checkpoint_every == 0
                                     or loop + 1 == cfg.loops):
                save_checkpoint(ckpt, print_, loop + 1, sim.state(), net, rls.packed, frozen,
                                history, best)
    if best and int(best["loop"]) != cfg.loops:  # go back to the best loop's weights
        net.set_plastic_weights(np.asarray(best["weights"], dtype=net.plastic.data.dtype))
        frozen[:] = best["frozen"]
    hist = _history(history, tg.form, norm0, cfg.settings())
    if best:
        hist.attrs["best_loop"] = int(best["loop"])
        hist.attrs["best_validation"] = float(best["score"])
    return FittedNetwork(network=net, targets=tg, protocol=protocol, frozen=frozen,
                         initial_weights=weights0, final_state=sim.state(),
                         history=hist, settings=cfg.settings(), given_network=cfg.network)


def _validate(cfg: Any, loop: int, net: Network, tg: TrainingTargets,
              protocol: TrialProtocol, frozen: np.ndarray, weights0: Any, sim: Simulator,
              history: dict[str, list[float]], best: dict[str, Any]) -> float:
    """The validation score of the network after ``loop`` (NaN when not scored this loop):
    ``cfg.validator(fitted)`` on a snapshot every ``validate_every`` loops and after the
    last; the best loop's weights are kept in ``best``."""
    every = cfg.validate_every
    if cfg.validator is None or not ((loop + 1) % every == 0 or loop + 1 == cfg.loops):
        return float("nan")
    snapshot = FittedNetwork(network=net.copy(), targets=tg, protocol=protocol,
                             frozen=frozen.copy(), initial_weights=weights0,
                             final_state=sim.state(), history=xr.Dataset(),
                             settings=cfg.settings(), given_network=cfg.network)
    score = float(cfg.validator(snapshot))
    if np.isfinite(score) and (not best or score > float(best["score"])):
        best.update(loop=loop + 1, score=score, weights=net.plastic.data.copy(),
                    frozen=frozen.copy())
    return score


def _history(history: dict[str, list[float]], form: str, norm0: float,
             settings: dict[str, Any]) -> xr.Dataset:
    return xr.Dataset(
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
            "validation": ("loop", _padded(history["validation"], len(history["pearson"])),
                           {"long_name": "validation score (RLSFit.validator; NaN: not "
                            "scored that loop)"}),
        },
        coords={"loop": np.arange(1, len(history["pearson"]) + 1)},
        attrs={"form": form, "settings": json.dumps(settings, default=str)},
    )


def _padded(values: list[float], n: int) -> list[float]:
    """A history of a resumed fit made before validation existed: NaN in front."""
    return [float("nan")] * (n - len(values)) + [float(v) for v in values]


def _check_divergence(sim: Simulator, net: Network, loop: int, condition: str) -> None:
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
