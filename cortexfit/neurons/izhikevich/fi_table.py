"""The Izhikevich f-I curves: measured once by simulation, tabulated and cached.

The Izhikevich model has no closed-form f-I curve, so for each cell type the steady-state
firing rate under a constant input is measured by simulation with the model's own ``step``
(the simulator's kernel without the network): one run of uncoupled neurons, one per input on
the grid
:data:`GRID` (-5 to 40 in steps of 0.025), ``dt = 0.1 ms`` (the simulator's default) in
float32, starting from the resting state at zero input. The first :data:`TRANSIENT` seconds
are discarded (spike-frequency adaptation settles) and the rate is measured over the next
:data:`WINDOW` seconds from the inter-spike intervals, cut at the same phase of the firing
pattern at both ends (see :func:`steady_rate`), so that bursting cells are measured over
whole burst cycles. One cell type takes well under a second to measure.

The table is kept in memory (one per cell type per process) and on disk as a small ``.npz``
in the user cache folder: ``$CORTEXFIT_CACHE`` if set, else ``$XDG_CACHE_HOME/cortexfit``,
else ``~/.cache/cortexfit``. The file name carries a hash of everything the table depends
on (the measurement settings, the cell type, the source of :mod:`.izhikevich` with its
``step`` and (a, b, c, d)), so a change to any of them measures a new table. Files are
written atomically (temporary file + ``os.replace``); an unwritable folder or an unreadable
file just means that the table is measured again and kept in memory.

Interpolation is linear (``np.interp``). Below the grid the rate is 0 (inputs < -5 are far
below every cell type's rheobase, 0.7-3.9). **Above the grid** (x > 40) the curve is
extrapolated linearly with the slope of its last unit of input, and the derivative is that
slope: large inputs do occur transiently during training, and an error there would stop a
fit for no good reason. The extrapolation is close but not exact: measured against
simulation it is within 1.5 % up to x = 50 and within 5 % up to x = 80 (FS, IB, CH and
LTS bend down slowly, so far above the grid their rates are overestimated).

The rate is valid for the simulator's default time step (0.1 ms): the Izhikevich neuron is
integrated with forward Euler, whose rates depend slightly on ``dt``.

**Mixed networks** (``IzhikevichParams(cell_types="mix")`` or a tuple of types): each
neuron has its own cell type, ``types()[i % len(types())]`` for neuron ``i``. Pass the
parameter record instead of a type name and give inputs with neurons on the last axis;
the string ``"mix"`` alone is refused because it does not say which neuron is which.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import os
from pathlib import Path

import numba
import numpy as np

from ...atomic import atomic_path
from ...exceptions import ConfigError
from . import cell
from .cell import CELL_TYPES, IzhikevichParams

__all__ = [
    "izhikevich_rate",
    "izhikevich_rate_derivative",
    "izhikevich_threshold",
    "fi_table",
    "measure_fi_curve",
    "steady_rate",
    "cache_dir",
    "clear_memory_cache",
]

log = logging.getLogger(__name__)

TABLE_VERSION = 1
"""Bump when the measurement or the estimator changes (old cache files are then ignored)."""

GRID = (-5.0, 40.0, 0.025)
"""Input grid of the table: (first, last, step), model input units."""

DT = 1e-4
"""Time step of the measuring run (s): the simulator's default."""

TRANSIENT = 0.5
"""Seconds discarded at the start of the measuring run."""

WINDOW = 2.0
"""Seconds over which the steady-state rate is measured."""

SLOPE_SPAN = 1.0
"""Input span at the top of the grid whose mean slope extrapolates the curve above it."""


# --------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------


def steady_rate(spike_times: np.ndarray, t_start: float, t_stop: float, dt: float = DT) -> float:
    """Steady-state rate (Hz) of one spike train on ``[t_start, t_stop]``.

    With at least three spikes, the rate is (spikes) / (time) between two spikes at the same
    phase of the firing pattern: the first and the last spike that follow a "long" interval
    (within 1 % + 2 dt of the longest). A tonic spiker's intervals are all long, so this is
    ``(n - 1) / (t_last - t_first)``; a periodic burster is cut at burst onsets, so whole
    cycles are counted. Fewer spikes: the count divided by the window.
    """
    s = np.asarray(spike_times, dtype=float)
    s = s[(s >= t_start) & (s <= t_stop)]
    if s.size < 3:
        return s.size / (t_stop - t_start)
    isi = np.diff(s)
    long = np.flatnonzero(isi >= 0.99 * isi.max() - 2.0 * dt)
    first, last = long[0] + 1, long[-1] + 1  # spikes that end a long interval
    if last - first >= 1:
        return (last - first) / (s[last] - s[first])
    return (s.size - 1) / (s[-1] - s[0])


def _grid() -> np.ndarray:
    first, last, step = GRID
    return np.round(first + step * np.arange(int(round((last - first) / step)) + 1), 10)


def _rest_state(cell_type: str) -> tuple[float, float]:
    """The stable fixed point (v, w) at zero input: ``0.04 v² + (5 - b) v + 140 = 0``."""
    a, b, c, d = CELL_TYPES[cell_type]
    disc = (5.0 - b) ** 2 - 4.0 * 0.04 * 140.0
    v = (-(5.0 - b) - np.sqrt(disc)) / (2.0 * 0.04)
    return float(v), float(b * v)


@numba.njit  # no on-disk cache: it inlines cell.step from another file (see simulate.py)
def _uncoupled(state, params, x, n_steps, dt_model, capacity):
    """Step uncoupled neurons under constant inputs ``x``; the step index of each spike,
    per neuron (``capacity`` at most; -1 pads), and the spike count."""
    n = x.shape[0]
    steps = np.full((n, capacity), -1, dtype=np.int64)
    counts = np.zeros(n, dtype=np.int64)
    for k in range(n_steps):
        for i in range(n):
            if cell.step(state, params, i, x[i], dt_model):
                if counts[i] < capacity:
                    steps[i, counts[i]] = k
                counts[i] += 1
    return steps, counts


def measure_fi_curve(cell_type: str, x: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Simulate uncoupled neurons of one cell type, one per input of ``x`` (default: the grid),
    from the resting state, and return ``(x, rate in Hz)`` (no cache). Float32 with
    ``dt`` = :data:`DT`, exactly as the simulator runs them."""
    cell_type = _check_type(cell_type)
    x = _grid() if x is None else np.atleast_1d(np.asarray(x, dtype=float))
    n = x.size
    params = IzhikevichParams(cell_types=cell_type).as_array(n).astype(np.float32)
    v0, w0 = _rest_state(cell_type)
    state = np.array([np.full(n, v0), np.full(n, w0)], dtype=np.float32)
    n_steps = int(round((TRANSIENT + WINDOW) / DT))
    capacity = n_steps // 2 + 1  # a spike every other step at most (5 kHz at 0.1 ms)
    steps, counts = _uncoupled(state, params, x.astype(np.float32), n_steps,
                               np.float32(DT / cell.TIME_UNIT), capacity)
    if np.any(counts > capacity):
        raise ConfigError("an Izhikevich input drives the neuron faster than measurable",
                          field="x", found=float(x[np.argmax(counts)]),
                          expected=f"at most {capacity} spikes in {TRANSIENT + WINDOW} s")
    rate = np.array([steady_rate((steps[i, :counts[i]] + 1) * DT, TRANSIENT,
                                 TRANSIENT + WINDOW, DT) for i in range(n)])
    return x, rate


# --------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """``$CORTEXFIT_CACHE``, else ``$XDG_CACHE_HOME/cortexfit``, else ``~/.cache/cortexfit``."""
    explicit = os.environ.get("CORTEXFIT_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "cortexfit"


def _key(cell_type: str) -> str:
    """Hash of everything the table depends on."""
    try:  # the step, its helpers and the cell types: any edit measures a new table
        model_source = inspect.getsource(cell)
    except (OSError, TypeError):
        model_source = ""
    settings = {
        "version": TABLE_VERSION, "cell_type": cell_type, "abcd": CELL_TYPES[cell_type],
        "v_peak": cell.V_PEAK, "grid": GRID, "dt": DT, "transient": TRANSIENT,
        "window": WINDOW, "precision": "float32", "start": "rest", "source": model_source,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _cache_file(cell_type: str) -> Path:
    return cache_dir() / f"izhikevich_fi_{cell_type}_{_key(cell_type)}.npz"


def _load(path: Path, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key:
                return None
            x, rate = np.array(data["x"], dtype=float), np.array(data["rate"], dtype=float)
    except (OSError, KeyError, ValueError, EOFError) as exc:
        if path.exists():
            log.debug("ignoring unreadable f-I cache file %s: %s", path, exc)
        return None
    grid = _grid()
    if x.shape != grid.shape or rate.shape != grid.shape or not np.allclose(x, grid) \
            or not np.all(np.isfinite(rate)) or np.any(rate < 0):
        return None
    return x, rate


def _save(path: Path, key: str, cell_type: str, x: np.ndarray, rate: np.ndarray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, x=x, rate=rate, key=np.array(key), cell_type=np.array(cell_type))
    except OSError as exc:  # read-only or missing home: keep the table in memory only
        log.debug("could not write the f-I cache file %s: %s", path, exc)


@functools.lru_cache(maxsize=None)
def fi_table(cell_type: str = "RS") -> tuple[np.ndarray, np.ndarray]:
    """``(x grid, rate in Hz)`` of one cell type: from memory, else disk, else measured.

    The arrays are read-only views shared by every caller.
    """
    cell_type = _check_type(cell_type)
    key, path = _key(cell_type), _cache_file(cell_type)
    table = _load(path, key)
    if table is None:
        x, rate = measure_fi_curve(cell_type)
        _save(path, key, cell_type, x, rate)
        table = (x, rate)
    for arr in table:
        arr.setflags(write=False)
    return table


def clear_memory_cache() -> None:
    """Forget the in-memory tables (the disk cache stays)."""
    fi_table.cache_clear()


# --------------------------------------------------------------------------------------
# Interpolation
# --------------------------------------------------------------------------------------


def _check_type(cell_type) -> str:
    if cell_type == "mix":
        raise ConfigError(
            "a mixed Izhikevich network has one cell type per neuron", field="cell_type",
            found="'mix'", expected=f"one of {list(CELL_TYPES)}",
            hint="Pass the IzhikevichParams record itself, with inputs of one value per "
                 "neuron on the last axis (neuron i has type types()[i % len(types())])")
    if not isinstance(cell_type, str) or cell_type not in CELL_TYPES:
        raise ConfigError("unknown Izhikevich cell type", field="cell_type",
                          found=repr(cell_type), expected=f"one of {list(CELL_TYPES)}")
    return cell_type


def _slope_top(x: np.ndarray, rate: np.ndarray) -> float:
    top = x >= x[-1] - SLOPE_SPAN
    return float(np.polyfit(x[top], rate[top], 1)[0])


def _rate_one(x: np.ndarray, cell_type: str) -> np.ndarray:
    grid, rate = fi_table(cell_type)
    out = np.array(np.interp(x, grid, rate, left=0.0), dtype=float)
    above = x > grid[-1]
    if np.any(above):
        out[above] = rate[-1] + _slope_top(grid, rate) * (x[above] - grid[-1])
    return out


def _derivative_one(x: np.ndarray, cell_type: str) -> np.ndarray:
    grid, rate = fi_table(cell_type)
    out = np.array(np.interp(x, grid, np.gradient(rate, grid), left=0.0), dtype=float)
    out[x > grid[-1]] = _slope_top(grid, rate)
    return out


def _per_type(func, x, cell_type) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if isinstance(cell_type, IzhikevichParams):
        types = cell_type.types()
        if len(types) == 1:
            cell_type = types[0]
        else:
            if x.ndim == 0:
                raise ConfigError("a mixed Izhikevich network needs one input per neuron",
                                  field="x", found="a scalar",
                                  expected="an array with neurons on the last axis")
            owner = np.arange(x.shape[-1]) % len(types)
            out = np.empty_like(x)
            for k, name in enumerate(types):
                out[..., owner == k] = func(x[..., owner == k], name)
            return out
    return func(x, _check_type(cell_type))


def izhikevich_rate(x, cell_type: str | IzhikevichParams = "RS") -> np.ndarray:
    """Steady-state firing rate (Hz) under constant input ``x``, from the cached table.

    ``cell_type``: "RS", "IB", "CH", "FS" or "LTS"; or an :class:`IzhikevichParams` record,
    which for several types assigns neuron ``i`` (the last axis of ``x``) the type
    ``types()[i % len(types())]``. 0 below the first firing input; linear extrapolation
    above the grid (x > 40).
    """
    return _per_type(_rate_one, x, cell_type)


def izhikevich_rate_derivative(x, cell_type: str | IzhikevichParams = "RS") -> np.ndarray:
    """d rate / d x (Hz per unit input): central finite differences of the table,
    interpolated linearly; the extrapolation slope above the grid. Where the curve jumps
    from 0 to a finite rate (FS, LTS, and the bursting types at rheobase) the derivative
    is a narrow peak one grid step wide."""
    return _per_type(_derivative_one, x, cell_type)


def _threshold_one(cell_type: str) -> float:
    """The largest grid input below the first one at which the cell fires."""
    grid, rate = fi_table(cell_type)
    firing = np.flatnonzero(rate > 0)
    return float(grid[max(int(firing[0]) - 1, 0)]) if firing.size else float(grid[-1])


def izhikevich_threshold(params: IzhikevichParams | None = None, n: int = 1) -> np.ndarray:
    """Per neuron, the largest input (on the table's grid) at which it is silent; neuron
    ``i`` has the type ``types()[i % len(types())]``."""
    types = (params or IzhikevichParams()).types()
    return np.array([_threshold_one(types[i % len(types)]) for i in range(n)])
