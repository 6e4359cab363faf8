"""Where the shared third-party recordings live (never inside the repository)."""
from __future__ import annotations

import os
from pathlib import Path

from ..exceptions import DataError

ENV_VAR = "CORTEXFIT_SHARED_DATA"


def shared_data_dir(path: str | os.PathLike | None = None, *, must_exist: bool = True) -> Path:
    """The folder holding the shared recordings.

    Resolution order: the ``path`` argument, the ``CORTEXFIT_SHARED_DATA`` environment
    variable, then ``../shared/data`` relative to the current directory and to the project
    checkout (so that both ``make test`` and an installed package find it).
    """
    candidates: list[Path] = []
    if path is not None:
        candidates = [Path(path)]
    elif os.environ.get(ENV_VAR):
        candidates = [Path(os.environ[ENV_VAR])]
    else:
        candidates = [
            Path.cwd() / ".." / "shared" / "data",
            Path(__file__).resolve().parents[2] / ".." / "shared" / "data",
        ]
    for cand in candidates:
        if cand.is_dir():
            return cand.resolve()
    if not must_exist:
        return candidates[0]
    raise DataError(
        "the shared data folder was not found",
        file=str(candidates[0]),
        field=ENV_VAR,
        found="no such folder" + (f" (also tried {candidates[1]})" if len(candidates) > 1 else ""),
        expected="a folder with alm_economo2018_nwb/, alm_kim2023_psth/, pmd_yu2009/",
        hint=f"Pass the path as an argument or set {ENV_VAR}",
    )
