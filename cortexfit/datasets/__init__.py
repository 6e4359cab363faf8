"""Dataset loaders: the embedded synthetic recording and the shared real recordings."""
from .paths import ENV_VAR, shared_data_dir
from .shared import SHARED_DATASETS, dataset_dir, load_alm_psth, load_pmd_reach
from .synthetic import (
    RECOMMENDED_TARGETS_KWARGS,
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
]
