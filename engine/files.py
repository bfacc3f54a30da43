"""netCDF files of states: written atomically, read with errors that name the file."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import netCDF4
import xarray as xr

from .errors import InputChangedError, ParameterError

OPEN_TIMEOUT = 60.0
"""Seconds ``probe_netcdf`` gives a child process to open and read a file."""

_PROBE = """
import sys, netCDF4
def walk(group):
    for name in group.ncattrs():
        group.getncattr(name)
    for var in group.variables.values():
        for name in var.ncattrs():
            var.getncattr(name)
        var.set_auto_maskandscale(False)
        if var.size <= int(sys.argv[2]):
            var[...]
    for child in group.groups.values():
        walk(child)
with netCDF4.Dataset(sys.argv[1]) as nc:
    walk(nc)
"""


def file_digest(data: bytes) -> str:
    """SHA-256 of a file's content: what run keys record of initial-state files, and the run store's
    index of its run files."""
    return hashlib.sha256(data).hexdigest()


def save_dataset(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` as netCDF4 under a temporary name, then rename: a file that exists is complete."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4")
    os.replace(tmp, path)
    return path


def probe_netcdf(path: str | os.PathLike, what: str, timeout: float = OPEN_TIMEOUT, max_read: int = 2**26) -> None:
    """Open ``path`` in a child process and read its attributes and its variables of up to
    ``max_read`` elements; ParameterError if that fails or does not end within ``timeout`` seconds.

    Some damaged HDF5 files make the library spin forever inside the open, deaf to signals: the
    child is killed instead of this process hanging. ``what`` names the file's role in messages.
    """
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, str(path), str(max_read)], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        reason = f"{what}: reading it did not end within {timeout:g} s (a damaged file)"
        raise ParameterError(str(path), reason) from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise ParameterError(str(path), f"{what} is not a readable netCDF file ({last})")


def load_dataset(path: str | os.PathLike, what: str, digest: str | None = None) -> xr.Dataset:
    """Read a whole netCDF file into memory, undecoded (no CF times); ParameterError names the file if
    it is missing or unreadable, InputChangedError if ``digest`` is given and the content's
    ``file_digest`` differs. The digest and the data come from the same bytes.

    ``what`` says what the file should be (e.g. "initial-state file"), for the message.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise ParameterError(str(path), f"{what} does not exist") from None
    except OSError as exc:
        raise ParameterError(str(path), f"{what} cannot be read ({exc})") from None
    if digest is not None and file_digest(data) != digest:
        raise InputChangedError(
            f"{path}: the {what} changed after the sweep was planned (SHA-256 {digest[:12]}..., now "
            f"{file_digest(data)[:12]}...): run the sweep again to plan it with the new content"
        )
    try:
        nc = netCDF4.Dataset(path.name, memory=data)
        store = xr.backends.NetCDF4DataStore(nc)
        with xr.open_dataset(store, decode_times=False, decode_timedelta=False) as ds:
            return ds.load()
    except Exception as exc:  # the netCDF library raises several types for corrupt files
        raise ParameterError(str(path), f"not a readable netCDF file ({exc})") from None
