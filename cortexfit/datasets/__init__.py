"""Dataset loaders: the embedded synthetic recording and the shared real recordings.

Each is also a data format of a run (``[data] format``): one registration line each below
adds it to the table of :mod:`cortexfit.io.formats`, after the file formats ``nwb`` and
``neo`` that :mod:`cortexfit.io` registers itself.
"""
from ..io.formats import register_format
from .paths import ENV_VAR, shared_data_dir
from .shared import (
    ALM_PSTH_FORMAT,
    PMD_FORMAT,
    SHARED_DATASETS,
    dataset_dir,
    load_alm_psth,
    load_pmd_reach,
)
from .synthetic import (
    RECOMMENDED_TARGETS_KWARGS,
    SYNTHETIC_FORMAT,
    SYNTHETIC_TARGETS,
    SyntheticRecording,
    make_synthetic_recording,
    recommended_targets_kwargs,
    write_synthetic_nwb,
)

__all__ = [
    "ENV_VAR",
    "shared_data_dir",
    "SHARED_DATASETS",
    "dataset_dir",
    "load_alm_psth",
    "load_pmd_reach",
    "RECOMMENDED_TARGETS_KWARGS",
    "SYNTHETIC_TARGETS",
    "SyntheticRecording",
    "make_synthetic_recording",
    "recommended_targets_kwargs",
    "write_synthetic_nwb",
    "ALM_PSTH_FORMAT",
    "PMD_FORMAT",
    "SYNTHETIC_FORMAT",
]

register_format(SYNTHETIC_FORMAT)
register_format(PMD_FORMAT)
register_format(ALM_PSTH_FORMAT)
