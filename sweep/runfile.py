"""Files of finished runs: the runs of one task in one netCDF4 file, as contiguous ragged arrays.

A file holds n runs (dimension ``run``) with the same variables on the same dims (``signature``).
``run_key`` (run) names them, ``run_attributes`` (run) holds each run's attributes as JSON, and
``size_of_<d>`` (run) the size of each dim ``d`` of the runs in each run; the global attribute
``result_format`` is theirs (the engine's output format, the same for all). A variable on no dim is
stored on ``run``; a variable on dims D is flattened (C order) run by run and the runs concatenated
along ``samples_<D>`` (one sample dimension per distinct D), its dims named by its ``run_dims``
attribute. The file's netCDF variables are those of one run plus a few, whatever the number of
runs: writing and reading cost per variable, not per run, which is what makes many short runs
cheap to store. The global attribute ``store_format`` is ``FORMAT``; a file without it (one run a
file, as written before) is not read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import NamedTuple

import netCDF4
import numpy as np
import xarray as xr
from epmsweep.engine import RunRecord
from xarray.backends.netCDF4_ import NETCDF4_PYTHON_LOCK as NETCDF_LOCK

# The HDF5 library is not thread-safe. xarray serialises its own netCDF4 calls with this lock; the
# direct calls here hold it too, so that a file xarray closes in another thread (a DataTree
# collected by the garbage collector in Dask's event-loop thread, say) never runs alongside them.

FORMAT = 2
Variables = dict[str, tuple[tuple[str, ...], dict, np.ndarray]]
"""A run's variables: name -> (dims, attributes, values)."""


class StoredRun(NamedTuple):
    """A run as read back from its file: its variables, and its attributes as JSON (``attrs``)."""

    variables: Variables
    attributes: str

    @property
    def attrs(self) -> dict:
        return json.loads(self.attributes)


def netcdf_values(values: np.ndarray, attrs: dict) -> tuple[np.ndarray, dict]:
    """Values and attributes as netCDF stores them: booleans as int8 with ``dtype: bool``, which
    xarray decodes back to booleans."""
    if values.dtype == bool:
        return values.astype(np.int8), {**attrs, "dtype": "bool"}
    return values, attrs


Result = RunRecord | xr.Dataset
"""A finished run as the engine gives it (``simulate_record``) or as a Dataset (other computes)."""


def as_record(result: Result) -> RunRecord:
    return result if isinstance(result, RunRecord) else RunRecord.from_dataset(result)


def signature(run: RunRecord) -> tuple:
    """The result format, variables and their dims of a run: runs of one file have the same."""
    return run.attrs.get("result_format"), *((name, entry[0]) for name, entry in run.variables.items())


def by_signature(runs: Mapping[str, Result]) -> list[dict[str, RunRecord]]:
    """``runs`` (key -> result) split into the groups that can share a file, in order of first run."""
    groups: dict[tuple, dict[str, RunRecord]] = {}
    for key, result in runs.items():
        run = as_record(result)
        groups.setdefault(signature(run), {})[key] = run
    return list(groups.values())


def _plain(value):
    """An attribute value as JSON can hold it (numpy scalars and arrays as numbers and lists)."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def _sample_dim(dims: tuple[str, ...]) -> str:
    return "samples_" + "_".join(dims)


def write(path, runs: Mapping[str, RunRecord]) -> None:
    """Write ``runs`` (key -> RunRecord, all of one ``signature``) to the netCDF4 file ``path``."""
    records = list(runs.values())
    first = records[0].variables
    dims = list(dict.fromkeys(d for var_dims, _, _ in first.values() for d in var_dims))
    run_sizes = [r.sizes for r in records]
    sizes = {d: np.array([s[d] for s in run_sizes], dtype=np.int64) for d in dims}
    variables = [r.variables for r in records]
    with NETCDF_LOCK, netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.setncatts({"store_format": FORMAT, "result_format": records[0].attrs.get("result_format", -1)})
        nc.createDimension("run", len(records))
        nc.createVariable("run_key", str, ("run",))[:] = np.array(list(runs), dtype=object)
        attributes = np.array([json.dumps(r.attrs, default=_plain) for r in records], dtype=object)
        nc.createVariable("run_attributes", str, ("run",))[:] = attributes
        for d, n in sizes.items():
            nc.createVariable(f"size_of_{d}", np.int64, ("run",))[:] = n
        for var_dims in dict.fromkeys(var_dims for var_dims, _, _ in first.values() if var_dims):
            nc.createDimension(_sample_dim(var_dims), int(np.prod([sizes[d] for d in var_dims], axis=0).sum()))
        for name, (var_dims, _, var_attrs) in first.items():
            if var_dims:
                values = np.concatenate([v[name][1].ravel() for v in variables])
            else:
                values = np.array([v[name][1] for v in variables])
            values, attrs = netcdf_values(values, var_attrs)
            out = nc.createVariable(name, values.dtype, (_sample_dim(var_dims) if var_dims else "run",))
            out.setncatts({**attrs, "run_dims": " ".join(var_dims)})
            out[:] = values


def read(data: bytes, name: str) -> tuple[dict[str, StoredRun], int] | None:
    """The runs (key -> StoredRun, in file order) of the bytes of a file ``write`` wrote and the
    runs' result format, or None if they are not such a file (another format, a foreign file). In
    a process with other threads the caller holds ``NETCDF_LOCK``."""
    try:
        nc = netCDF4.Dataset(name, memory=data)
    except (OSError, RuntimeError):
        return None
    with nc:
        try:
            if int(nc.getncattr("store_format")) != FORMAT:
                return None
            result_format = int(nc.getncattr("result_format"))
            nc.set_auto_mask(False)
            values = {n: v[...] for n, v in nc.variables.items()}
            attrs = {n: {k: v.getncattr(k) for k in v.ncattrs()} for n, v in nc.variables.items()}
        except (AttributeError, ValueError, KeyError):
            return None
    try:
        keys, run_attrs = list(values.pop("run_key")), values.pop("run_attributes")
        sizes = {n.removeprefix("size_of_"): values.pop(n) for n in list(values) if n.startswith("size_of_")}
        runs: dict[str, StoredRun] = {k: StoredRun({}, a) for k, a in zip(keys, run_attrs, strict=True)}
        uniform = {d: bool(np.all(n == n[0])) for d, n in sizes.items()}  # every run of one size on d
        offsets: dict[tuple[str, ...], np.ndarray] = {}
        for vname, flat in values.items():
            var_attrs = attrs[vname]
            dims = tuple(var_attrs.pop("run_dims").split())
            if not dims:
                pieces = flat
            elif all(uniform[d] for d in dims):  # runs of one shape (the usual case): rows of the values
                pieces = list(flat.reshape(len(keys), *(int(sizes[d][0]) for d in dims)))
            else:
                if dims not in offsets:
                    counts = [math.prod(int(sizes[d][i]) for d in dims) for i in range(len(keys))]
                    offsets[dims] = np.cumsum(counts)
                pieces = np.split(flat, offsets[dims][:-1])
                pieces = [p.reshape([int(sizes[d][i]) for d in dims]) for i, p in enumerate(pieces)]
            for run, value in zip(runs.values(), pieces, strict=True):
                run.variables[vname] = (dims, var_attrs, value)
    except (KeyError, ValueError, IndexError):
        return None
    return runs, result_format

