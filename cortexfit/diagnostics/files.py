"""All diagnostics of a run in one NetCDF file: one group per diagnostic.

``save_diagnostics(path, lesion=ds1, shuffle=ds2, ...)`` writes each Dataset to its own
group (``/lesion``, ``/shuffle``, ...) and lists the groups in the root attribute
``groups``; without cortexfit, ``xarray.open_dataset(path, group="lesion",
engine="h5netcdf")`` (or ``xarray.open_datatree(path)``) reads them back.
"""
from __future__ import annotations

import os
from pathlib import Path

import xarray as xr

from ..atomic import atomic_path
from ..exceptions import ConfigError, FileFormatError

__all__ = ["save_diagnostics", "load_diagnostics"]


def save_diagnostics(path: str | os.PathLike, **datasets: xr.Dataset) -> Path:
    """Write every given Dataset into its own group of one NetCDF file (replacing the file)."""
    path = Path(path)
    if not datasets:
        raise ConfigError("nothing to save", field="datasets", found="no Dataset",
                          expected="name=Dataset pairs, e.g. lesion=...")
    for name, ds in datasets.items():
        if not isinstance(ds, xr.Dataset):
            raise ConfigError("not an xarray Dataset", field=name, found=type(ds).__name__,
                              expected="xarray.Dataset")
    with atomic_path(path) as tmp:
        xr.Dataset(attrs={"groups": ",".join(datasets), "written_by": "cortexfit"}).to_netcdf(
            tmp, engine="h5netcdf", mode="w")
        for name, ds in datasets.items():
            ds.to_netcdf(tmp, group=name, mode="a", engine="h5netcdf")
    return path


def load_diagnostics(path: str | os.PathLike) -> dict[str, xr.Dataset]:
    """Read a file written by :func:`save_diagnostics` into ``{name: Dataset}`` (loaded)."""
    path = Path(path)
    try:
        with xr.open_dataset(path, engine="h5netcdf") as root:
            names = [n for n in str(root.attrs["groups"]).split(",") if n]
    except (OSError, ValueError, KeyError) as exc:
        raise FileFormatError("not a cortexfit diagnostics file", file=path, field="groups",
                              found=str(exc)[:200], expected="a file from save_diagnostics") \
            from None
    out = {}
    for name in names:
        with xr.open_dataset(path, group=name, engine="h5netcdf") as ds:
            out[name] = ds.load()
    return out
