"""Assembly: stack the per-run files of a sweep into one labeled netCDF4 file (one group per protocol).

The output is written with the netCDF4 library: fields (snapshots) run by run, so that they never
sit in memory together; time series and scalars gathered first (n_runs x n_records values each)
and written once, contiguous. It goes to a temporary name renamed at the end, so a file that
exists is complete. Dimensions of a group: ``initial_state``, the protocol's axis (``shear_rate``
or ``stress_imposed``), the model-parameter axes, ``seed``, then the engine's ``record``,
``snapshot``, ``y``, ``x``. Missing or failed runs are NaN (integer variables: -1) and 0 in the
``completed`` mask, never dropped.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import netCDF4
import numpy as np
from epmsweep.engine import DEFAULT_SHEAR_MODULUS, __version__

from .plan import Plan
from .spec import PROTOCOLS, model_parameters
from .store import NETCDF_LOCK, RunStore

COORD_ATTRS = {
    "shear_rate": {"units": "1/time", "long_name": "imposed shear rate"},
    "stress_imposed": {"units": "LJ stress", "long_name": "imposed external stress (creep)"},
    "seed": {"units": "1", "long_name": "replica index (random streams derived from the base seed)"},
    "initial_state": {"long_name": "initial state label"},
    "shear_modulus": {"units": "LJ stress", "long_name": "shear modulus mu of the initial state"},
}
INT_FILL = -1
PARALLEL_READ_FROM = 1000  # runs; below, starting reader processes costs more than it saves
MAX_READERS = 8
READ_CHUNK = 32


def _engine_sizes(run) -> dict[str, int]:
    params = model_parameters(run.model, run.overrides)
    protocol = PROTOCOLS[run.protocol][0](**run.protocol_kwargs)
    _, records, snaps = protocol.schedule(params.dt)
    return {"record": records.size, "snapshot": snaps.size, "y": params.L, "x": params.L}


def _shear_modulus(state) -> float:
    return state.shear_modulus if state.shear_modulus is not None else DEFAULT_SHEAR_MODULUS


def read_run(store: RunStore, key: str) -> dict[str, tuple[tuple[str, ...], dict, np.ndarray]] | None:
    """Every variable of the verified run file of ``key`` as (dims, attrs, values), or None if the
    file is missing, corrupt or outdated (it is then removed). In a process with other threads the
    caller holds ``NETCDF_LOCK``."""
    nc = store.open_verified(key)
    if nc is None:
        return None
    with nc:
        return {
            name: (var.dimensions, {k: var.getncattr(k) for k in var.ncattrs() if k != "_FillValue"}, var[...])
            for name, var in nc.variables.items()
        }


@contextlib.contextmanager
def _reader(store: RunStore, n_runs: int) -> Iterator[Callable[[Iterable[str]], Iterable]]:
    """``map`` of ``read_run`` over keys, in order: in worker processes (one per core) for large
    sweeps, where opening and reading the files dominates; in this process for small ones."""
    read = functools.partial(read_run, store)
    workers = min(os.cpu_count() or 1, MAX_READERS)
    if n_runs < PARALLEL_READ_FROM or workers < 2:
        yield lambda keys: map(read, keys)
        return
    # spawned, not forked: the assembling process may hold threads (a Dask client, the event loop)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield lambda keys: pool.map(read, keys, chunksize=READ_CHUNK)


def _write_group(root: netCDF4.Dataset, name: str, plan: Plan, store: RunStore, read: Callable) -> int:
    """Write the group of protocol ``name`` from the runs ``read`` returns; returns the number present."""
    runs = [r for r in plan.runs if r.protocol == name]
    dims = plan.dims[name]
    coords = plan.coords[name]
    grp = root.createGroup(name)
    for dim in dims:
        grp.createDimension(dim, len(coords[dim][1]))
    for cname, (dim, values) in coords.items():
        if cname == "initial_state":
            var = grp.createVariable(cname, str, (dim,))
            for i, v in enumerate(values):
                var[i] = v
        else:
            var = grp.createVariable(cname, "f8" if isinstance(values[0], float) else "i8", (dim,))
            var[:] = np.asarray(values)
        var.setncatts(COORD_ATTRS.get(cname, {"long_name": f"model parameter {cname}"}))
    mu = grp.createVariable("shear_modulus", "f8", ("initial_state",))
    mu[:] = [_shear_modulus(s) for s in plan.spec.states]
    mu.setncatts(COORD_ATTRS["shear_modulus"])
    fixed, _ = plan.spec.protocols[name]
    grp.setncatts({"protocol": name, **{k: str(v) if isinstance(v, tuple) else v for k, v in fixed.items()}})

    # coordinates that are not dimensions (shear_modulus, zipped axes) are attached CF-style
    aux_coords = " ".join(["shear_modulus", *(c for c in coords if c not in dims)])
    shape = tuple(len(coords[d][1]) for d in dims)
    completed = np.zeros(shape, np.int8)
    stored = store.stored_keys()
    sizes = {d: 0 for d in ("record", "snapshot", "y", "x")}
    for r in runs:
        for d, n in _engine_sizes(r).items():
            sizes[d] = max(sizes[d], n)
    out_vars, buffers = {}, {}
    present = [r for r in runs if r.key in stored]
    for r, variables in zip(present, read(r.key for r in present), strict=True):
        if variables is None:
            continue
        if not out_vars:  # the first stored run is the template of the variables
            for d, n in sizes.items():
                grp.createDimension(d, n)
            for vname, (vdims, attrs, data) in variables.items():
                fill = INT_FILL if data.dtype.kind in "iu" else np.nan
                gathered = "x" not in vdims  # series and scalars: written once, contiguous
                if not gathered:  # fields: one run a chunk
                    layout = {"chunksizes": [1] * len(dims) + [sizes[d] for d in vdims]}
                else:  # (an empty variable cannot be contiguous)
                    layout = {"contiguous": all(sizes[d] for d in vdims)}
                out = grp.createVariable(vname, data.dtype, dims + vdims, fill_value=fill, **layout)
                out.setncatts({**attrs, "coordinates": aux_coords})
                out_vars[vname] = out
                if gathered:  # fields are streamed run by run
                    buffers[vname] = np.full(shape + tuple(sizes[d] for d in vdims), fill, data.dtype)
        for vname, out in out_vars.items():
            data = variables[vname][2]
            where = r.index + tuple(slice(0, n) for n in data.shape)
            if vname in buffers:
                buffers[vname][where] = data
            else:
                out[where] = data
        completed[r.index] = 1
    for vname, data in buffers.items():
        out_vars[vname][...] = data
    mask = grp.createVariable("completed", "i1", dims)
    mask[...] = completed
    mask.setncatts(
        {"units": "1", "long_name": "1 if the run is present, 0 if missing or failed", "coordinates": aux_coords}
    )
    return int(completed.sum())


def assemble_plan(plan: Plan, store: RunStore, out_path: str | os.PathLike) -> Path:
    """Write the assembled file of ``plan`` from ``store`` to ``out_path`` (atomically).

    Every run file is verified as it is read; a corrupt or outdated one is removed and counted
    as missing.
    """
    out_path = Path(out_path)
    tmp = out_path.with_name(f".{out_path.name}.tmp{os.getpid()}")
    with NETCDF_LOCK, netCDF4.Dataset(tmp, "w", format="NETCDF4") as root:
        root.setncatts(
            {
                "name": plan.spec.name,
                "epmsweep_version": __version__,
                "base_seed": plan.spec.seed,
                "spec": plan.spec.text,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "runs_planned": len(plan.runs),
                "Conventions": "CF-1.8",
            }
        )
        with _reader(store, len(plan.runs)) as read:
            completed = sum(_write_group(root, name, plan, store, read) for name in plan.dims)
        root.setncattr("runs_completed", completed)
    os.replace(tmp, out_path)
    return out_path
