"""Shared by tests in several folders (tests/ is on sys.path through its conftest.py)."""
from __future__ import annotations

import numpy as np
import xarray as xr

DT = 1e-3  # the authors' own step (RK4 at 0.1 tau): keeps these tests fast


def sine_targets(n, n_cond=1, seed=0, duration=1.0):
    """Figure 1 targets: A sin(2 pi (t - T0) / T1), A ~ U[0.5, 1.5], T0 ~ U[0, 1] s,
    T1 ~ U[0.3, 1] s, one per neuron and condition."""
    rng = np.random.default_rng(seed)
    t = np.arange(0, duration + 1e-9, 0.001)
    amp = rng.uniform(0.5, 1.5, (n_cond, n, 1))
    t0 = rng.uniform(0, 1, (n_cond, n, 1))
    t1 = rng.uniform(0.3, 1.0, (n_cond, n, 1))
    values = amp * np.sin(2 * np.pi * (t - t0) / t1)
    return xr.DataArray(values, dims=("condition", "neuron", "time"),
                        coords={"condition": [f"c{k}" for k in range(n_cond)],
                                "neuron": [str(i) for i in range(n)], "time": t},
                        attrs={"kind": "drive"})
