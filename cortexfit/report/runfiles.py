"""A run folder's files, read back for the report: :class:`RunFiles` (read by
:func:`_read_run`, which checks that the folder holds :data:`REQUIRED_FILES`) and the
state of its diagnostics (:func:`diagnostics_state`)."""
from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from ..diagnostics import load_diagnostics
from ..exceptions import DataError
from ..targets import crop_to_score_window, score_window
from .html import slug

__all__ = ["REQUIRED_FILES", "RunFiles", "diagnostics_state"]

REQUIRED_FILES = ("config.toml", "versions.json", "recording.nc", "targets.nc", "history.nc",
                  "scores.nc")
_NC = {"engine": "h5netcdf"}


def _open(path: Path) -> xr.Dataset:
    with xr.open_dataset(path, **_NC) as ds:
        return ds.load()


# ---------------------------------------------------------------------- the run folder
@dataclass
class RunFiles:
    """A run folder's files, read: what every part of the report draws from."""

    run_dir: Path
    config: dict
    versions: dict
    stages: dict | None  # stages.json's records; None without stages.json
    recording: xr.Dataset
    targets: xr.Dataset
    history: xr.Dataset
    scores: xr.Dataset
    diagnostics: dict[str, xr.Dataset] | None
    diagnostics_state: str  # "done", "disabled" or "unfinished"
    tune: xr.Dataset | None = None  # tune.nc: the settings search, when [tune] ran

    @property
    def name(self) -> str:
        return str(self.config.get("run", {}).get("name", self.run_dir.name))

    @property
    def dataset(self) -> dict:
        return json.loads(self.recording.attrs.get("dataset", "{}") or "{}")

    @property
    def scored_targets(self) -> xr.Dataset:
        """The targets on their scoring window (the bins every score and the model's
        ``model_rate`` in ``scores.nc`` use; the whole axis for targets without one)."""
        return crop_to_score_window(self.targets)

    @property
    def score_window(self) -> tuple[float, float]:
        """The scored window (s): ``score_start`` / ``score_stop`` of the targets."""
        return score_window(self.targets)

    @property
    def conditions(self) -> list[str]:
        return [str(c) for c in self.targets["condition"].values]

    @property
    def n_units(self) -> int:
        return int(self.targets.sizes["unit"])

    @property
    def has_heldout(self) -> bool:
        return "pearson_heldout" in self.scores

    @property
    def rates_only(self) -> bool:
        return bool(int(self.recording.attrs.get("rates_only", 0)))

    @property
    def fit_settings(self) -> dict:
        return {**self.config.get("network", {}), **self.config.get("training", {})}

    @property
    def align_event(self) -> str:
        return str(self.targets.attrs.get("align_event", "the event"))

    @property
    def ei_types(self) -> dict | None:
        """The fitted network's E/I split from ``model.npz`` (None for a network without E/I
        identity, e.g. the Gaussian one, or without the file): ``excitatory`` per neuron,
        ``neuron_ids``, ``roles``, ``recorded_unit`` and ``cell_type`` (the recording's cell
        type of each recorded neuron, "" when unknown; None when the recording has none)."""
        path = self.run_dir / "model.npz"
        if not path.is_file():
            return None
        import numpy as np

        with np.load(path, allow_pickle=False) as data:
            exc = data["excitatory"] if "excitatory" in data.files else np.zeros(0, bool)
            if exc.size == 0:
                return None
            cell = ([str(c) for c in data["cell_type"]]
                    if "has_cell_type" in data.files and bool(data["has_cell_type"]) else None)
            return {"excitatory": exc.astype(bool),
                    "neuron_ids": [str(x) for x in data["neuron_ids"]],
                    "roles": [str(x) for x in data["roles"]],
                    "recorded_unit": [str(x) for x in data["recorded_unit"]],
                    "cell_type": cell}

    def filename(self, name: str, ext: str) -> str:
        """A download's file name: the run's name and what it holds."""
        return f"{slug(self.name)}-{name}.{ext}"


def diagnostics_state(run_dir: Path, config: dict, stages: dict | None) -> str:
    """``"disabled"`` when ``[diagnostics] enabled = false``; ``"unfinished"`` when they are
    enabled but ``diagnostics.nc`` is missing or ``stages.json`` (when there is one) has no
    finished diagnostics record (an interrupted stage); else ``"done"``."""
    if not config.get("diagnostics", {}).get("enabled", True):
        return "disabled"
    if not (Path(run_dir) / "diagnostics.nc").is_file():
        return "unfinished"
    if stages is not None and "finished" not in stages.get("diagnostics", {}):
        return "unfinished"
    return "done"


def _read_run(run_dir: Path) -> RunFiles:
    missing = [name for name in REQUIRED_FILES if not (run_dir / name).is_file()]
    if missing:
        raise DataError("the folder is not a complete cortexfit run", file=run_dir,
                        field="files", found=f"missing {', '.join(missing)}",
                        expected=", ".join(REQUIRED_FILES),
                        hint="Run `cortexfit run CONFIG.toml --out RUN_DIR` first (it skips "
                             "the stages that are already done)")
    config = tomllib.loads((run_dir / "config.toml").read_text(encoding="utf-8"))
    stages_path = run_dir / "stages.json"
    stages = (json.loads(stages_path.read_text(encoding="utf-8")).get("stages", {})
              if stages_path.is_file() else None)
    state = diagnostics_state(run_dir, config, stages)
    diag = None
    if state == "done":
        diag = load_diagnostics(run_dir / "diagnostics.nc")
    return RunFiles(
        run_dir=run_dir, config=config,
        versions=json.loads((run_dir / "versions.json").read_text(encoding="utf-8")),
        stages=stages, recording=_open(run_dir / "recording.nc"),
        targets=_open(run_dir / "targets.nc"), history=_open(run_dir / "history.nc"),
        scores=_open(run_dir / "scores.nc"), diagnostics=diag, diagnostics_state=state,
        tune=_open(run_dir / "tune.nc") if (run_dir / "tune.nc").is_file() else None)
