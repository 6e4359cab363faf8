"""What a run records about itself: package versions, platform, time."""
from __future__ import annotations

import datetime as _dt
import platform
from importlib import metadata

_PACKAGES = (
    "cortexfit", "numpy", "scipy", "numba", "neo", "elephant", "quantities", "xarray",
    "pynwb", "hdmf", "h5py", "h5netcdf", "nixio", "matplotlib", "jinja2",
)


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages a run depends on."""
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def run_stamp() -> dict[str, str]:
    """When and where a run happened."""
    return {
        "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }
