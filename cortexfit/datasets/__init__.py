"""Dataset loaders: the embedded synthetic recording, the development set of generated
recordings and the shared real recordings.

Each is also a data format of a run (``[data] format``): one registration line each below
adds it to the table of :mod:`cortexfit.io.formats`, after the file formats ``nwb`` and
``neo`` that :mod:`cortexfit.io` registers itself.
"""
from ..io.formats import register_format
from .devset import (
    DEV_RECORDINGS,
    DEVSET_FORMAT,
    DevRecording,
    dev_targets_kwargs,
    dev_truth,
    make_dev_recording,
    write_dev_nwb,
)
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
    "ALM_PSTH_FORMAT",
    "DEVSET_FORMAT",
    "DEV_RECORDINGS",
    "ENV_VAR",
    "PMD_FORMAT",
    "RECOMMENDED_TARGETS_KWARGS",
    "SHARED_DATASETS",
    "SYNTHETIC_FORMAT",
    "SYNTHETIC_TARGETS",
    "DevRecording",
    "SyntheticRecording",
    "dataset_dir",
    "dev_targets_kwargs",
    "dev_truth",
    "load_alm_psth",
    "load_pmd_reach",
    "make_dev_recording",
    "make_synthetic_recording",
    "recommended_targets_kwargs",
    "shared_data_dir",
    "write_dev_nwb",
    "write_synthetic_nwb",
]

register_format(SYNTHETIC_FORMAT)
register_format(DEVSET_FORMAT)
register_format(PMD_FORMAT)
register_format(ALM_PSTH_FORMAT)
