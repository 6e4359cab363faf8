"""cortexfit: fit recurrent spiking-network models to recorded cortical spike data."""
from .exceptions import (
    ConfigError,
    CortexfitError,
    CortexfitWarning,
    DataError,
    FileFormatError,
    TargetError,
    TrainingDiverged,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "ConfigError",
    "CortexfitError",
    "CortexfitWarning",
    "DataError",
    "FileFormatError",
    "TargetError",
    "TrainingDiverged",
    "__version__",
]
