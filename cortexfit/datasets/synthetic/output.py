"""What the simulation gives back, assembled: the ground truth as an
:class:`xarray.Dataset` (``_truth``) and the recording as a :class:`neo.Block` in the
trial convention (``_block``)."""
from __future__ import annotations

import json

import neo
import numpy as np
import xarray as xr

from ... import __version__
from ...io.convention import Trial, make_block
from .model import (
    _RATE_FLOOR,
    _SOFTPLUS_BETA,
    CONDITION_KEY,
    FACTORS,
    GO_EVENT,
    STIMULUS_EVENT,
)


def _selectivity(rate: np.ndarray, tau: np.ndarray, delay: float) -> np.ndarray:
    m = (tau >= 0) & (tau <= delay + 0.5)
    r = rate[:, :, m]
    return (r.std(axis=0) / r.mean(axis=0)).mean(axis=1)


def _unit_ids(n_units: int) -> list[str]:
    width = max(3, len(str(n_units - 1)))
    return [f"syn{i:0{width}d}" for i in range(n_units)]


def _truth(p, tau, pop, tr, expected) -> xr.Dataset:
    conds = p["conditions"]
    units = _unit_ids(p["n_units"])
    n_trials = tr["cond_index"].size
    cell_type = np.where(pop["is_fs"], "FS", "pyramidal")
    delay_window = (tau >= 0) & (tau < p["delay"])
    pref = np.asarray(conds)[pop["rate"][:, :, delay_window].mean(axis=2).argmax(axis=0)] \
        if delay_window.any() else np.asarray([conds[0]] * len(units))
    params = {k: v for k, v in p.items() if k != "n_bins"}
    ds = xr.Dataset(
        {
            "rate": (("condition", "unit", "time"), pop["rate"],
                     {"units": "Hz", "long_name": "template rate (nominal delay, gain 1)"}),
            "expected_rate": (("condition", "unit", "time"), expected,
                              {"units": "Hz",
                               "long_name": "mean rate function of the generated trials"}),
            "latent": (("condition", "factor", "time"), pop["latent"],
                       {"long_name": "latent factors (template)"}),
            "loading": (("unit", "factor"), pop["loading"],
                        {"units": "Hz", "long_name": "loading of each factor on each unit"}),
            "offset": ("unit", pop["offset"],
                       {"units": "Hz", "long_name": "input to the softplus at rest"}),
            "baseline_rate": ("unit", pop["baseline"], {"units": "Hz"}),
            "peak_rate": ("unit", pop["rate"].max(axis=(0, 2)), {"units": "Hz"}),
            "selective": ("unit", pop["selective"],
                          {"long_name": "loads on the condition-specific factors"}),
            "selectivity": ("unit", _selectivity(pop["rate"], tau, p["delay"]),
                            {"long_name": "s.d. across conditions / mean rate, from the "
                             "stimulus to 0.5 s after the go cue (template)"}),
            "preferred_condition": ("unit", pref),
            "trial_gain": ("trial", tr["gain"]),
            "trial_delay": ("trial", tr["delay"], {"units": "s"}),
            "trial_start": ("trial", tr["start"], {"units": "s"}),
            "trial_stop": ("trial", tr["stop"], {"units": "s"}),
            STIMULUS_EVENT: ("trial", tr["start"] + p["stimulus_time"], {"units": "s"}),
            GO_EVENT: ("trial", tr["start"] + p["stimulus_time"] + tr["delay"], {"units": "s"}),
        },
        coords={
            "condition": ("condition", conds),
            "unit": ("unit", units),
            "time": ("time", tau,
                     {"units": "s", "long_name": f"time relative to {STIMULUS_EVENT}"}),
            "factor": ("factor", list(FACTORS)),
            "trial": ("trial", np.arange(n_trials)),
            "cell_type": ("unit", cell_type),
            "trial_condition": ("trial", np.asarray(conds)[tr["cond_index"]]),
            "trial_outcome": ("trial", np.where(tr["incorrect"], "incorrect", "correct")),
        },
        attrs={
            "description": "ground truth of cortexfit's synthetic recording",
            "generator": "cortexfit.datasets.synthetic.make_synthetic_recording",
            "seed": p["seed"],
            "align_event": STIMULUS_EVENT,
            "dt": p["dt"],
            "softplus_beta": _SOFTPLUS_BETA,
            "rate_floor": _RATE_FLOOR,
            "parameters": json.dumps(params),
            "cortexfit_version": __version__,
        },
    )
    return ds


def _block(p, pop, tr, spikes) -> neo.Block:
    conds = p["conditions"]
    units = _unit_ids(p["n_units"])
    trials = []
    for k in range(tr["cond_index"].size):
        stim = tr["start"][k] + p["stimulus_time"]
        trials.append(Trial(
            t_start=float(tr["start"][k]),
            t_stop=float(tr["stop"][k]),
            spikes=spikes[k],
            annotations={
                "trial_id": k,
                CONDITION_KEY: conds[tr["cond_index"][k]],
                "outcome": "incorrect" if tr["incorrect"][k] else "correct",
            },
            events={STIMULUS_EVENT: float(stim), GO_EVENT: float(stim + tr["delay"][k])},
        ))
    unit_ann = [{"cell_type": "FS" if fs else "pyramidal", "location": "synthetic cortex"}
                for fs in pop["is_fs"]]
    return make_block(
        trials, units, unit_annotations=unit_ann,
        source=f"cortexfit synthetic recording (seed={p['seed']})",
        block_annotations={
            "generator": "cortexfit.datasets.synthetic.make_synthetic_recording",
            "seed": p["seed"],
            "parameters": json.dumps({k: v for k, v in p.items() if k != "n_bins"}),
            "cortexfit_version": __version__,
        },
        name=f"synthetic_seed{p['seed']}",
    )
