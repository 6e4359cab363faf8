"""Loaders for the shared real recordings (kept outside the repository, never copied in).

The recordings live in the shared data folder: the ``data_dir`` argument, else the
``CORTEXFIT_SHARED_DATA`` environment variable, else ``../shared/data`` (see
:func:`~cortexfit.datasets.paths.shared_data_dir`). ``data_dir`` may also be the dataset's
own folder (e.g. ``.../alm_kim2023_psth``). :data:`SHARED_DATASETS` describes every
dataset: what it is, its files, licence and the papers to cite.

* :func:`load_alm_psth`: trial-averaged rates of 1824 mouse ALM pyramidal neurons, lick
  left vs lick right (Kim et al. 2023; recordings from Finkelstein et al. 2021) as a
  targets Dataset (:func:`~cortexfit.targets.targets_from_rates`).
* :func:`load_pmd_reach`: single-trial spike trains of 61 simultaneously recorded macaque
  premotor units during delayed reaching (Yu et al. 2009, shipped with DataHigh) as a
  :class:`neo.Block` in cortexfit's trial convention.
* The ALM NWB sessions (Economo et al. 2018) are read with
  :func:`cortexfit.io.nwb.read_nwb`.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..exceptions import ConfigError, DataError, FileFormatError
from ..io.convention import Trial, make_block
from ..io.formats import DataFormat
from ..targets import targets_from_rates
from .paths import shared_data_dir

__all__ = ["SHARED_DATASETS", "load_alm_psth", "load_pmd_reach", "dataset_dir",
           "ALM_PSTH_FORMAT", "PMD_FORMAT"]


SHARED_DATASETS: dict[str, dict[str, Any]] = {
    "alm_economo2018_nwb": {
        "folder": "alm_economo2018_nwb",
        "files": ["sub-anm369963_ses-20170228.nwb", "sub-anm372793_ses-20170508.nwb"],
        "description": (
            "Mouse anterior lateral motor cortex (ALM), delayed-response licking task: two "
            "sessions with one sorted, opto-tagged pyramidal-tract unit each (178 and 340 "
            "trials), lick left / right, outcomes, pole and go-cue times."
        ),
        "format": "NWB 2.0.2 (HDF5)",
        "license": "CC-BY-4.0",
        "citation": [
            "Economo MN, Svoboda K (2022) Mouse anterior lateral motor cortex (ALM) in delay "
            "response task [Data set]. DANDI archive, DANDI:000006. "
            "https://dandiarchive.org/dandiset/000006",
            "Economo MN, Viswanathan S, Tasic B, et al. (2018) Distinct descending motor "
            "cortex pathways and their roles in movement. Nature 563:79-84. "
            "doi:10.1038/s41586-018-0642-9",
        ],
        "loader": "cortexfit.io.nwb.read_nwb",
    },
    "alm_kim2023_psth": {
        "folder": "alm_kim2023_psth",
        "files": ["movingrate_Pyr1Hz_lickleft.jld", "movingrate_Pyr1Hz_lickright.jld"],
        "description": (
            "Trial-averaged rates of 1824 mouse ALM pyramidal neurons (mean rate > 1 Hz in "
            "both conditions) on correct (hit) trials without distractors, instructed lick "
            "left vs lick right, over the 2 s delay before the go cue, 20 ms bins smoothed "
            "by a +-7-bin moving average upstream. Rate targets only: no spikes, no trials."
        ),
        "format": "JLD (HDF5 with a 512-byte user block); dataset 'Pyr' (101 x 1824)",
        "license": (
            "MIT (the TutorialCNS2025 repository that distributes the files, "
            "LICENSE.TutorialCNS2025.txt); the upstream data licence is not stated"
        ),
        "citation": [
            "Kim CM, Finkelstein A, Chow CC, Svoboda K, Darshan R (2023) Distributing "
            "task-related neural activity across a cortical network through "
            "task-independent connections. Nat Commun 14:2851",
            "Finkelstein A, Fontolan L, Economo MN, Li N, Romani S, Svoboda K (2021) "
            "Attractor dynamics gate cortical information flow during decision-making. "
            "Nat Neurosci 24:843-850. doi:10.1038/s41593-021-00840-6",
        ],
        "source_code": "https://github.com/chrismkkim/TutorialCNS2025",
        "loader": "cortexfit.datasets.load_alm_psth",
    },
    "pmd_yu2009": {
        "folder": "pmd_yu2009",
        "files": ["ex2_rawspiketrains.mat", "ex1_spikecounts.mat", "ex3_psths.mat"],
        "description": (
            "Macaque premotor cortex (PMd), delayed center-out reaching: 61 simultaneously "
            "recorded units, single-trial binary spike trains at 1 ms. ex2: 112 trials, "
            "2 reach conditions x 56, 1018-1526 ms from before target onset to movement "
            "onset; ex1: 210 trials, 7 conditions x 30, a 400 ms window of the delay "
            "period; ex3: trial-averaged PSTHs of the two ex2 conditions."
        ),
        "format": "MATLAB v5 .mat; struct array D, D(i).data = (61, T) uint8 at 1 ms",
        "license": "GPL-2 / GPL-3 (distributed inside the DataHigh toolbox)",
        "citation": [
            "Yu BM, Cunningham JP, Santhanam G, Ryu SI, Shenoy KV, Sahani M (2009) "
            "Gaussian-process factor analysis for low-dimensional single-trial analysis of "
            "neural population activity. J Neurophysiol 102:614-635. "
            "doi:10.1152/jn.90941.2008",
            "Cowley BR, Kaufman MT, Butler ZS, Churchland MM, Ryu SI, Shenoy KV, Yu BM "
            "(2013) DataHigh: graphical user interface for visualizing and interacting with "
            "high-dimensional neural activity. J Neural Eng 10:066012. "
            "doi:10.1088/1741-2560/10/6/066012",
        ],
        "loader": "cortexfit.datasets.load_pmd_reach",
    },
}
"""What each shared dataset is: folder, files, description, format, licence, citations."""


def _citation(name: str) -> str:
    return " | ".join(SHARED_DATASETS[name]["citation"])


def dataset_dir(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """The folder of the shared dataset ``name`` (a key of :data:`SHARED_DATASETS`).

    ``data_dir`` is the shared data folder (default: ``CORTEXFIT_SHARED_DATA`` or
    ``../shared/data``) or the dataset's own folder. Raises :class:`DataError` naming the
    path when the folder does not exist.
    """
    if name not in SHARED_DATASETS:
        raise ConfigError("unknown shared dataset", field="name", found=name,
                          expected=sorted(SHARED_DATASETS))
    root = shared_data_dir(data_dir)
    info = SHARED_DATASETS[name]
    sub = root / info["folder"]
    if sub.is_dir():
        return sub
    if root.name == info["folder"] or (root / info["files"][0]).is_file():
        return root
    raise DataError(
        f"the {name} dataset folder was not found", file=str(sub), field="data_dir",
        found=f"no {info['folder']}/ in {root}",
        expected=f"a folder {info['folder']}/ holding {', '.join(info['files'])}",
        hint="Pass the shared data folder (or the dataset folder) as data_dir, or set "
        "CORTEXFIT_SHARED_DATA",
    )


def _require_file(path: Path, dataset: str) -> None:
    if not path.is_file():
        raise DataError(
            f"a file of the {dataset} dataset is missing", file=str(path), field=path.name,
            found="no such file" if not path.exists() else "not a regular file",
            expected=f"{path.name} as distributed (see SHARED_DATASETS[{dataset!r}])",
        )


# ---------------------------------------------------------------------------------------
# ALM PSTHs (Kim et al. 2023)

_ALM_FILES = {"lick_left": "movingrate_Pyr1Hz_lickleft.jld",
              "lick_right": "movingrate_Pyr1Hz_lickright.jld"}
_ALM_N_TIME = 101
_ALM_BIN = 0.02  # s
_ALM_START = -2.0  # s before the go cue
_ALM_HALF_WINDOW = 7  # bins each side of the upstream moving average
#: SD of the upstream smoothing (a 15-bin = 0.30 s boxcar: half-width 0.15 s, SD = 0.15/sqrt 3)
_ALM_KERNEL_SD = (2 * _ALM_HALF_WINDOW + 1) * _ALM_BIN / np.sqrt(12.0)
_ALM_LAST_BIN = ("repair", "drop", "keep")


def _read_alm_file(path: Path) -> np.ndarray:
    import h5py

    _require_file(path, "alm_kim2023_psth")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise FileFormatError(
            "the file cannot be opened as HDF5 (JLD)", file=str(path), field="file",
            found=f"{type(exc).__name__}: {exc}", expected="a JLD/HDF5 file",
        ) from None
    with f:
        if "Pyr" not in f:
            raise DataError(
                "the file has no 'Pyr' dataset", file=str(path), field="Pyr",
                found=sorted(f.keys()), expected="a dataset 'Pyr' (time x neuron rates)",
            )
        try:
            arr = np.asarray(f["Pyr"][()], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DataError(
                "the 'Pyr' dataset is not numeric", file=str(path), field="Pyr",
                found=str(exc), expected="float rates in spikes/s",
            ) from None
    if arr.ndim != 2 or arr.shape[0] != _ALM_N_TIME or arr.shape[1] < 1:
        raise DataError(
            "the 'Pyr' dataset has the wrong shape", file=str(path), field="Pyr",
            found=f"shape {arr.shape}",
            expected=f"({_ALM_N_TIME}, n_neurons): {_ALM_N_TIME} time bins of 20 ms x neurons",
        )
    if not np.all(np.isfinite(arr)):
        raise DataError(
            "the rates contain NaN or infinite values", file=str(path), field="Pyr",
            found=f"{int(np.sum(~np.isfinite(arr)))} non-finite values",
            expected="finite rates in spikes/s",
        )
    if np.any(arr < 0):
        raise DataError(
            "the rates are negative", file=str(path), field="Pyr",
            found=f"minimum {arr.min():g}", expected="rates >= 0 spikes/s",
        )
    return arr


def load_alm_psth(
    data_dir: str | os.PathLike | None = None,
    *,
    last_bin: str = "repair",
) -> xr.Dataset:
    """Trial-averaged rates of 1824 ALM pyramidal neurons, lick left vs lick right.

    Reads ``alm_kim2023_psth/movingrate_Pyr1Hz_lick{left,right}.jld`` (``h5py``:
    ``f["Pyr"][()]`` is ``(101 time, 1824 neuron)`` in spikes/s; column *j* is the same
    neuron in both files) and returns a targets Dataset
    (:func:`~cortexfit.targets.targets_from_rates`, no single trials):
    ``rate(condition, unit, time)`` with conditions ``"lick_left"``, ``"lick_right"``,
    units ``"pyr0000"`` ... ``"pyr1823"`` (file column order), ``cell_type = "pyramidal"``,
    ``time`` in seconds relative to the go cue (``align_event = "go_cue"``).

    What the files hold (read from the upstream code, ``genRates``/``spk2rate``/
    ``funMovAvg`` in the Kim et al. Julia sources, and checked on the data): spikes of
    correct (hit) trials without distractors, aligned to the go cue, counted in 20 ms bins;
    point *j* (0-based) is the bin ``[-2.0 + 0.02 j, -2.0 + 0.02 (j + 1))`` s, so its
    **centre is -1.99 + 0.02 j** (upstream labels the points -2.0:0.02:0, their left edges).
    Only spikes before the go cue were counted, so the 101st bin ``[0, 0.02)`` is always
    empty. Each neuron's binned rate was then smoothed by a moving average over +-7 bins
    (15 bins = 0.30 s, truncated at the edges), which spread that empty bin into the last 8
    points (their values are 1/15 ... 1/8 too low; the population mean drops by 7 % at
    -0.15 s). Upstream analyses use the first 100 points. ``last_bin`` chooses:

    * ``"repair"`` (default): 100 points, centres -1.99 ... -0.01 s; the 7 points whose
      window included the empty bin are rescaled by ``n / (n - 1)`` (``n`` their window
      length), which gives exactly the +-7-bin moving average of the 100 real bins
      (truncated at the edges). Points 0-92 equal the file's values.
    * ``"drop"``: 100 points as stored (what the upstream network was trained on).
    * ``"keep"``: all 101 points as stored, the last centred at +0.01 s.

    ``attrs``: ``source`` (the folder), ``align_event``, ``bin_size`` (0.02),
    ``kernel = "rectangular"`` and ``kernel_width`` = its standard deviation
    ``0.30 / sqrt(12) = 0.0866`` s (the convention of ``make_targets``; the half-width is
    0.15 s), plus ``smoothing``, ``last_bin``, ``time_convention``, ``trials``,
    ``neuron_selection``, ``dataset``, ``files``, ``citation`` and ``license``.

    Raises :class:`DataError` (naming the file and field) when the folder or a file is
    missing, the ``Pyr`` dataset is absent, has the wrong shape or differs between files,
    or holds NaN/negative values; :class:`FileFormatError` when a file is not HDF5;
    :class:`ConfigError` for an unknown ``last_bin``.
    """
    if last_bin not in _ALM_LAST_BIN:
        raise ConfigError("unknown last_bin option", field="last_bin", found=last_bin,
                          expected=list(_ALM_LAST_BIN))
    folder = dataset_dir("alm_kim2023_psth", data_dir)
    arrays = {cond: _read_alm_file(folder / name) for cond, name in _ALM_FILES.items()}
    shapes = {cond: a.shape for cond, a in arrays.items()}
    if len(set(shapes.values())) != 1:
        raise DataError(
            "the lick-left and lick-right files hold different numbers of neurons",
            file=str(folder), field="Pyr",
            found={_ALM_FILES[c]: s for c, s in shapes.items()},
            expected="the same (101, n_neurons) shape in both files (same neurons, same order)",
        )
    rates = np.stack([arrays[c].T for c in _ALM_FILES])  # (condition, unit, time)
    n_units = rates.shape[1]
    n_time = _ALM_N_TIME if last_bin == "keep" else _ALM_N_TIME - 1
    if last_bin == "repair":
        rates = rates[:, :, :n_time].copy()
        w = _ALM_HALF_WINDOW
        for j in range(_ALM_N_TIME - 1 - w, n_time):  # windows that reached the empty bin
            n = min(j + w, _ALM_N_TIME - 1) - max(j - w, 0) + 1
            rates[:, :, j] *= n / (n - 1)
    else:
        rates = rates[:, :, :n_time]
    time = np.round(_ALM_START + _ALM_BIN * (np.arange(n_time) + 0.5), 10)
    width = max(4, len(str(n_units - 1)))
    ds = targets_from_rates(
        rates,
        time,
        unit_ids=[f"pyr{i:0{width}d}" for i in range(n_units)],
        conditions=list(_ALM_FILES),
        align_event="go_cue",
        bin_size=_ALM_BIN,
        kernel="rectangular",
        kernel_width=float(_ALM_KERNEL_SD),
        source=str(folder),
        unit_coords={"cell_type": ["pyramidal"] * n_units},
    )
    ds.attrs.update(
        dataset="alm_kim2023_psth",
        files=json.dumps(list(_ALM_FILES.values())),
        smoothing=(
            "upstream moving average over +-7 bins of 20 ms (15 bins = 0.30 s, truncated at "
            "the edges), i.e. a rectangular kernel of half-width 0.15 s, SD 0.0866 s"
        ),
        last_bin=last_bin,
        time_convention=(
            "bin centres: point j covers [-2.0 + 0.02 j, -2.0 + 0.02 (j + 1)) s from the go "
            "cue; upstream labels are the left edges (-2.0:0.02:0)"
        ),
        trials="correct (hit) trials without distractors, instructed lick left / right",
        neuron_selection="pyramidal neurons with mean rate > 1 Hz in both conditions",
        citation=_citation("alm_kim2023_psth"),
        license=SHARED_DATASETS["alm_kim2023_psth"]["license"],
    )
    return ds


# ---------------------------------------------------------------------------------------
# PMd reaching (Yu et al. 2009, DataHigh)

_PMD_VARIANTS = {
    "ex2": "ex2_rawspiketrains.mat",
    "ex1": "ex1_spikecounts.mat",
}
_PMD_BIN = 0.001  # s


def _pmd_field(trial: Any, name: str, index: int, path: Path) -> Any:
    if not hasattr(trial, name):
        fields = getattr(trial, "_fieldnames", None)
        raise DataError(
            f"a trial has no '{name}' field", file=str(path), field=f"D[{index}].{name}",
            found=f"fields {fields}" if fields is not None else type(trial).__name__,
            expected="a struct with fields 'data' and 'condition'",
        )
    return getattr(trial, name)


def load_pmd_reach(data_dir: str | os.PathLike | None = None, *, variant: str = "ex2"):
    """Single-trial spike trains of 61 macaque premotor units during delayed reaching.

    Reads ``pmd_yu2009/ex2_rawspiketrains.mat`` (``variant="ex2"``, default) or
    ``ex1_spikecounts.mat`` (``variant="ex1"``) with
    ``scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)["D"]``: one element
    per trial, ``D[i].data`` a ``(61, T)`` 0/1 array at 1 ms, ``D[i].condition`` the
    condition label.

    * ``"ex2"``: 112 trials, ``"reach1"`` and ``"reach2"`` (56 each), T = 1018-1526 ms,
      each trial from before target onset to movement onset (trials differ in length).
    * ``"ex1"``: 210 trials, ``"reach1"`` ... ``"reach7"`` (30 each), a 400 ms window of
      the delay period.

    Returns a :class:`neo.Block` (built by :func:`~cortexfit.io.convention.make_block`)
    with one Segment per trial on **its own clock**: ``t_start = 0``,
    ``t_stop = T * 1 ms``. A 1 in bin *k* becomes a spike at the **bin centre**
    ``k * 1 ms + 0.5 ms`` (the exact time within the bin is unknown; counts above 1, if
    any, give that many spikes at the centre). Events: ``"trial_start"`` (0 s) and, for
    ex2, ``"movement_onset"`` (``T`` ms, the trial end). Trial annotations ``condition``
    and ``trial_id`` (the index in ``D``, 0-based). Units ``"pmd00"`` ... ``"pmd60"`` (row
    order), annotated ``location = "PMd"``. Block annotations: ``source`` (the .mat),
    ``dataset``, ``variant``, ``bin_size``, ``spike_time_convention``, ``citation``,
    ``license``.

    Yu et al. (2009) describe the 61 units as recorded with a 96-electrode array in
    macaque premotor and motor cortex; the DataHigh examples label them PMd.

    Raises :class:`DataError` (naming the file and field) for a missing folder or file, a
    missing ``D`` or trial field, trials with different numbers of units, or data that is
    not a 2-D array of non-negative integers; :class:`FileFormatError` when the file is not
    a readable .mat; :class:`ConfigError` for an unknown ``variant``.
    """
    import scipy.io

    if variant not in _PMD_VARIANTS:
        raise ConfigError("unknown PMd variant", field="variant", found=variant,
                          expected=sorted(_PMD_VARIANTS))
    folder = dataset_dir("pmd_yu2009", data_dir)
    path = folder / _PMD_VARIANTS[variant]
    _require_file(path, "pmd_yu2009")
    try:
        mat = scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except Exception as exc:  # scipy raises ValueError, TypeError, MatReadError, OSError...
        raise FileFormatError(
            "the file cannot be read as a MATLAB .mat file", file=str(path), field="file",
            found=f"{type(exc).__name__}: {exc}", expected="a MATLAB v5 .mat file",
        ) from None
    if "D" not in mat:
        raise DataError(
            "the file has no 'D' variable", file=str(path), field="D",
            found=sorted(k for k in mat if not k.startswith("__")),
            expected="a struct array D with one element per trial",
        )
    D = np.atleast_1d(mat["D"])

    n_units: int | None = None
    trials: list[Trial] = []
    for i, trial in enumerate(D):
        data = _pmd_field(trial, "data", i, path)
        cond = _pmd_field(trial, "condition", i, path)
        data = np.asarray(data)
        if data.ndim != 2 or data.shape[1] < 1 or not (
            np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.bool_)
            or (np.issubdtype(data.dtype, np.floating) and np.all(data == np.round(data)))
        ):
            raise DataError(
                "trial data is not a 2-D array of spike counts", file=str(path),
                field=f"D[{i}].data", found=f"{data.dtype} array of shape {data.shape}",
                expected="(n_units, T) 0/1 spike indicators at 1 ms",
            )
        if n_units is None:
            n_units = data.shape[0]
        elif data.shape[0] != n_units:
            raise DataError(
                "trials have different numbers of units", file=str(path),
                field=f"D[{i}].data", found=f"{data.shape[0]} rows",
                expected=f"{n_units} rows (as in D[0].data)",
            )
        if data.size and data.min() < 0:
            raise DataError(
                "trial data has negative spike counts", file=str(path),
                field=f"D[{i}].data", found=f"minimum {data.min()}",
                expected="0/1 spike indicators",
            )
        rows, cols = np.nonzero(data)  # row-major: sorted by unit, then by time
        times = (cols + 0.5) * _PMD_BIN
        counts = data[rows, cols]
        if counts.size and counts.max() > 1:
            reps = counts.astype(np.int64)
            rows, times = np.repeat(rows, reps), np.repeat(times, reps)
        bounds = np.searchsorted(rows, np.arange(n_units + 1))
        t_stop = data.shape[1] * _PMD_BIN
        events = {"trial_start": 0.0}
        if variant == "ex2":
            events["movement_onset"] = t_stop
        trials.append(Trial(
            t_start=0.0,
            t_stop=t_stop,
            spikes=[times[bounds[u] : bounds[u + 1]] for u in range(n_units)],
            annotations={"trial_id": i, "condition": str(cond)},
            events=events,
        ))
    if n_units is None:
        raise DataError("the file holds no trials", file=str(path), field="D",
                        found="0 elements", expected="one element per trial")
    return make_block(
        trials,
        [f"pmd{u:0{max(2, len(str(n_units - 1)))}d}" for u in range(n_units)],
        unit_annotations=[{"location": "PMd"} for _ in range(n_units)],
        source=str(path),
        block_annotations={
            "dataset": "pmd_yu2009",
            "variant": variant,
            "bin_size": _PMD_BIN,
            "spike_time_convention": (
                "1 ms bins on each trial's own clock (0 = first bin); a spike in bin k is "
                "placed at its centre, k * 1 ms + 0.5 ms"
            ),
            "citation": _citation("pmd_yu2009"),
            "license": SHARED_DATASETS["pmd_yu2009"]["license"],
        },
        name=f"pmd_yu2009_{variant}",
    )


# ---------------------------------------------------------------------------------------
# The shared datasets as data formats of a run (``[data] format``; registered in
# cortexfit/datasets/__init__.py). ``[data] path`` is optional: the shared data folder or
# the dataset's own folder (default: the shared data folder).

def _dataset_files(name: str, path: Path | None) -> list[Path]:
    """Every file of the dataset's folder (what a load may read)."""
    folder = dataset_dir(name, path)
    return sorted(p for p in folder.iterdir() if p.is_file())


def _read_pmd(path: Path | None, data: Mapping[str, Any]):
    return load_pmd_reach(path, variant=data["variant"])


def _read_alm(path: Path | None, data: Mapping[str, Any]) -> xr.Dataset:
    return load_alm_psth(path)


PMD_FORMAT = DataFormat(
    name="pmd_yu2009",
    description="the shared PMd reach recording (Yu et al. 2009)",
    read_block=_read_pmd,
    ignores=("event_times", "allow_pickle"),
    defaults={"align": "trial_start", "window": [0.0, 1.0], "condition": "condition",
              "variant": "ex2"},
    files=partial(_dataset_files, "pmd_yu2009"),
    dataset="pmd_yu2009",
)

ALM_PSTH_FORMAT = DataFormat(
    name="alm_kim2023_psth",
    description="the shared ALM trial-averaged rates (Kim et al. 2023): targets only",
    read_targets=_read_alm,
    ignores=("event_times", "variant", "condition", "where", "align", "window",
             "allow_pickle"),
    files=partial(_dataset_files, "alm_kim2023_psth"),
    dataset="alm_kim2023_psth",
)
