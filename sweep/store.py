"""The run store: one netCDF4 file per finished run, written atomically, verified when read.

Layout under ``<out>/<sweep name>/``:

- ``runs/<key>.nc``: a finished run (written to a temporary name, then renamed: a file that
  exists is complete);
- ``failed/<key>.json``: a run that raised, with its coordinates, error and traceback;
- ``plan.json``: the planned keys and coordinates, written by the driver before any compute.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import netCDF4
import numpy as np
import xarray as xr
from epmsweep.engine import RESULT_FORMAT_VERSION
from xarray.backends.netCDF4_ import NETCDF4_PYTHON_LOCK as NETCDF_LOCK

# The HDF5 library is not thread-safe. xarray serialises its own netCDF4 calls with this lock; the
# direct calls here hold it too, so that a file xarray closes in another thread (a DataTree
# collected by the garbage collector in Dask's event-loop thread, say) never runs alongside them.


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


RUN_COMPRESSION: dict = {}
ASSEMBLY_COMPRESSION = {"zlib": True, "complevel": 1, "shuffle": True}
"""Compression of run files (none) and of the assembled variables, chosen by size against write time
in ``benchmarks/encoding.py``: zlib makes a run file 15% larger (float64 stresses barely compress,
and each compressed variable is chunked), while it makes the assembled fields 16% smaller at level
1 with shuffle (levels 4 and 9 gain under 1% more and write no faster). Run files are written once
per run on the driver's hot path; the assembled file is written once and kept."""


def netcdf_values(values: np.ndarray, attrs: dict) -> tuple[np.ndarray, dict]:
    """Values and attributes as netCDF stores them: booleans as int8 with ``dtype: bool``, which
    xarray decodes back to booleans."""
    if values.dtype == bool:
        return values.astype(np.int8), {**attrs, "dtype": "bool"}
    return values, attrs


def auxiliary_coordinates(ds: xr.Dataset, dims: tuple[str, ...]) -> str:
    """The CF ``coordinates`` attribute of a variable on ``dims``: the non-index coordinates of
    ``ds`` whose dims it has."""
    return " ".join(c for c in ds.coords if c not in ds.dims and set(ds[c].dims) <= set(dims))


def write_netcdf(ds: xr.Dataset, path: Path, compression: dict = RUN_COMPRESSION) -> None:
    """Write a Dataset of plain numeric variables with the netCDF4 library directly.

    ``Dataset.to_netcdf`` takes a cluster-wide lock through the scheduler whenever a Dask client
    is active (tens of ms per file); the driver is the only writer of its files and needs none.
    """
    with NETCDF_LOCK, netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        for dim, size in ds.sizes.items():
            nc.createDimension(dim, size)
        for name, var in ds.variables.items():
            values, attrs = netcdf_values(var.values, var.attrs)
            out = nc.createVariable(name, values.dtype, var.dims, **(compression if var.size > 1 else {}))
            aux = "" if name in ds.coords else auxiliary_coordinates(ds, var.dims)
            out.setncatts({**attrs, **({"coordinates": aux} if aux else {})})
            out[...] = values
        nc.setncatts(ds.attrs)


@dataclass(frozen=True)
class Status:
    planned: int
    done: int
    failed: int

    @property
    def pending(self) -> int:
        return self.planned - self.done - self.failed


class RunStore:
    """Per-run files of one sweep under ``<out>/<name>``."""

    def __init__(self, out: str | os.PathLike, name: str):
        self.root = Path(out) / name
        self.runs = self.root / "runs"
        self.failed = self.root / "failed"

    def create(self) -> RunStore:
        """Make the folders, and remove temporary files left by an interrupted driver.

        Only the driver of a sweep writes into its store, so at its start any temporary file is
        the remains of a write that never completed.
        """
        self.runs.mkdir(parents=True, exist_ok=True)
        self.failed.mkdir(parents=True, exist_ok=True)
        for folder in (self.root, self.runs, self.failed):
            for stale in folder.glob(".*.tmp*"):
                stale.unlink(missing_ok=True)
        return self

    def run_path(self, key: str) -> Path:
        return self.runs / f"{key}.nc"

    def write_spec(self, spec) -> None:
        """Keep the sweep file (as written, and with absolute state paths) for assembly and status."""
        atomic_write_bytes(self.root / "spec.yaml", spec.text.encode())
        atomic_write_bytes(self.root / "spec.json", json.dumps(spec.raw).encode())

    def read_spec(self):
        """The Spec stored by ``write_spec``."""
        from .spec import parse_spec

        path = self.root / "spec.json"
        if not path.is_file():
            raise FileNotFoundError(f"{self.root} holds no sweep (no spec.json)")
        spec = parse_spec(json.loads(path.read_text()), source=str(self.root / "spec.yaml"))
        return dataclasses.replace(spec, text=(self.root / "spec.yaml").read_text())

    def write_plan(self, entries: dict[str, dict]) -> None:
        """Record the planned runs ({key: coordinates}); only the driver writes it."""
        atomic_write_bytes(self.root / "plan.json", json.dumps(entries, sort_keys=True).encode())

    def read_plan(self) -> dict[str, dict]:
        path = self.root / "plan.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def write_run(self, key: str, ds: xr.Dataset) -> Path:
        """Write a finished run atomically; the file records its key and result format."""
        path = self.run_path(key)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        write_netcdf(ds.assign_attrs(run_key=key), tmp)
        os.replace(tmp, path)
        (self.failed / f"{key}.json").unlink(missing_ok=True)
        return path

    def write_failure(self, key: str, record: dict) -> None:
        atomic_write_bytes(self.failed / f"{key}.json", json.dumps({"key": key, **record}, indent=1).encode())

    def failures(self) -> dict[str, dict]:
        out = {}
        for path in self.failed.glob("*.json") if self.failed.is_dir() else ():
            try:
                out[path.stem] = json.loads(path.read_text())
            except (OSError, ValueError):
                out[path.stem] = {"key": path.stem, "error": "unreadable failure record"}
        return out

    def stored_keys(self) -> set[str]:
        """Keys with a run file (not verified); temporary files are ignored."""
        if not self.runs.is_dir():
            return set()
        return {n[:-3] for n in os.listdir(self.runs) if n.endswith(".nc") and not n.startswith(".")}

    def open_verified(self, key: str) -> netCDF4.Dataset | None:
        """The run file of ``key`` opened for reading (masking off), or None if it is missing,
        unreadable, of another run or of an older result format; such a file is removed.

        The caller holds ``NETCDF_LOCK`` while it uses the file."""
        path = self.run_path(key)
        try:
            nc = netCDF4.Dataset(path)
        except (OSError, RuntimeError):
            path.unlink(missing_ok=True)
            return None
        try:
            ok = nc.getncattr("run_key") == key and int(nc.getncattr("result_format")) == RESULT_FORMAT_VERSION
        except (AttributeError, ValueError):
            ok = False
        if not ok:
            nc.close()
            path.unlink(missing_ok=True)
            return None
        nc.set_auto_mask(False)
        return nc

    def verify(self, key: str) -> bool:
        """True if the run file opens and belongs to ``key`` in the current result format."""
        with NETCDF_LOCK:
            nc = self.open_verified(key)
            if nc is not None:
                nc.close()
        return nc is not None

    def done_keys(self, keys: Iterable[str]) -> set[str]:
        """Keys among ``keys`` whose file verifies; a corrupt or outdated file is removed."""
        stored = self.stored_keys()
        return {key for key in keys if key in stored and self.verify(key)}

    def status(self) -> Status:
        plan = self.read_plan()
        stored = self.stored_keys() & plan.keys()
        failed = (set(self.failures()) & plan.keys()) - stored
        return Status(len(plan), len(stored), len(failed))
