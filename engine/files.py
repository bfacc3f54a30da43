"""netCDF files of states: written atomically, read with errors that name the file."""

from __future__ import annotations

import os
from pathlib import Path

import xarray as xr

from .errors import ParameterError


def save_dataset(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` as netCDF4 under a temporary name, then rename: a file that exists is complete."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4")
    os.replace(tmp, path)
    return path


def load_dataset(path: str | os.PathLike, what: str) -> xr.Dataset:
    """Read a whole netCDF file into memory; ParameterError names the file if it is missing or unreadable.

    ``what`` says what the file should be (e.g. "initial-state file"), for the message.
    """
    path = Path(path)
    if not path.is_file():
        raise ParameterError(str(path), f"{what} does not exist")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            return ds.load()
    except Exception as exc:  # the netCDF library raises several types for corrupt files
        raise ParameterError(str(path), f"not a readable netCDF file ({exc})") from None
