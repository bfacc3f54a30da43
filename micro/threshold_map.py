"""The threshold map as a sweep of independent frozen-matrix probes on a Dask cluster.

Each cell is one task with its own key (a hash of the configuration's content, the grid, the cell,
the probe and the model): probes are computed by ``epmsweep.sweep``'s execution loop (sliding
window over ``as_completed``, explicit keys, ``pure=False``, retries) and stored
in a ``RunStore``, so an interrupted map resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import nullcontext
from dataclasses import asdict, dataclass

import numpy as np
import xarray as xr
from distributed import Client
from epmsweep.engine import RESULT_FORMAT_VERSION, ParameterError
from epmsweep.engine.variables import attrs
from epmsweep.sweep import RunStore, open_client
from epmsweep.sweep.execute import computed_where, execute, failure_record
from epmsweep.sweep.plan import canonical_json, run_key
from epmsweep.sweep.runfile import NETCDF_LOCK

from .configuration import Configuration
from .frozen_matrix import FrozenMatrixProbe, probe_system, run_probe
from .lammps_library import open_lammps
from .model import GlassModel

PROTOCOL = "frozen_matrix"


def content_hash(config: Configuration) -> str:
    """sha256 of a configuration's positions, species and box (not of its provenance)."""
    h = hashlib.sha256()
    for a in (config.positions, config.types, np.array(config.box)):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class ProbeTask:
    """One probe: the (cut-out) system, its free particles, and where its result goes."""

    key: str
    coords: dict
    system: Configuration
    free: np.ndarray
    cell_area: float
    probe: FrozenMatrixProbe
    model: GlassModel
    protocol: str = PROTOCOL


def compute_probe(task: ProbeTask) -> tuple[str, xr.Dataset | dict]:
    """Worker side: run one probe; a cell that never yields comes back as a failure record.

    Like a lattice run, the record says where it was computed (``worker_host``, ``batch_job_id``).
    """
    try:
        r = run_probe(task.system, task.free, task.cell_area, task.probe, task.model)
    except ParameterError as err:
        return "failed", failure_record(err)
    ds = xr.Dataset(
        {
            "threshold": ((), r.threshold, attrs("threshold", comment="local stress at the first instability")),
            "initial_stress": ((), r.initial_stress, attrs("local_stress", long_name="local stress at zero strain")),
            "yield_strain": ((), r.yield_strain, {"units": "1", "long_name": "strain of the last stable step"}),
            "n_free": ((), np.int64(r.n_free), {"units": "1", "long_name": "particles in the cell"}),
            "n_frozen": ((), np.int64(r.n_frozen), {"units": "1", "long_name": "frozen particles simulated"}),
        },
        attrs={
            "result_format": RESULT_FORMAT_VERSION,
            "run_protocol": PROTOCOL,
            "run_coords": canonical_json(task.coords),
            **computed_where(),
        },
    )
    return "ok", ds


def warm_lammps() -> str:
    """Load MPICH and LAMMPS on a worker before fan-out: a worker that cannot fails here, not mid-map."""
    open_lammps().close()
    return "lammps"


def plan_probes(
    config: Configuration, L: int, probe: FrozenMatrixProbe, model: GlassModel
) -> list[ProbeTask]:
    """One task per cell, row by row (iy, then ix)."""
    base = {"configuration": content_hash(config), "L": L, "probe": asdict(probe), "model": asdict(model)}
    tasks = []
    for iy in range(L):
        for ix in range(L):
            coords = {"cell_y": iy, "cell_x": ix}
            key = run_key({**base, **coords})
            system, free = probe_system(config, (iy, ix), L, probe, model)
            tasks.append(ProbeTask(key, coords, system, free, config.area / L**2, probe, model))
    return tasks


def threshold_map(
    config: Configuration,
    L: int,
    probe: FrozenMatrixProbe | None = None,
    model: GlassModel | None = None,
    *,
    client: Client | None = None,
    out: str | os.PathLike | None = None,
    name: str = "threshold_map",
    progress: bool = False,
) -> xr.Dataset:
    """Frozen-matrix thresholds of every cell of the L x L grid, computed on a Dask cluster.

    Parameters
    ----------
    client : distributed.Client, optional
        Default: an embedded LocalCluster (``epmsweep.sweep.open_client``), closed at the end.
    out : path, optional
        Store of the probes' files, ``<out>/<name>/runs`` (resumable); default: a temporary
        folder removed at the end.

    Returns
    -------
    xarray.Dataset
        ``threshold``, ``initial_stress``, ``yield_strain``, ``n_free`` on (y, x).

    Raises
    ------
    ParameterError
        If a cell failed (e.g. did not yield by ``probe.max_strain``), naming the cells.
    """
    probe, model = probe or FrozenMatrixProbe(), model or GlassModel()
    tasks = plan_probes(config, L, probe, model)
    with tempfile.TemporaryDirectory() if out is None else nullcontext(out) as root:
        store = RunStore(root, name)
        with store.locked():
            store.create()
            store.write_plan(t.key for t in tasks)
            done = store.done_keys(t.key for t in tasks)
            todo = [t for t in tasks if t.key not in done]
            if todo:
                with nullcontext(client) if client is not None else open_client() as c:
                    execute(todo, store, c, progress=progress, compute=compute_probe, warm=warm_lammps)
            failures = store.failures()
            failed = [t.coords for t in tasks if t.key in failures]
            if failed:
                first = failures[next(t.key for t in tasks if t.key in failures)]
                raise ParameterError("threshold_map", f"{len(failed)} cells failed, e.g. {failed[0]}: {first['error']}")
            fields = {v: np.empty((L, L)) for v in ("threshold", "initial_stress", "yield_strain", "n_free")}
            with NETCDF_LOCK:
                for t in tasks:
                    variables = store.read_variables(t.key)
                    for v in fields:
                        fields[v][t.coords["cell_y"], t.coords["cell_x"]] = float(variables[v][2])
    return xr.Dataset({v: (("y", "x"), a) for v, a in fields.items()}, attrs={**probe.to_attrs(), "grid_cells": L})


def lattice_thresholds(thresholds: xr.Dataset) -> tuple[np.ndarray, dict]:
    """The measured map as lattice thresholds (>= 0), and provenance attributes saying what was changed.

    A cell whose local stress is still negative when it becomes unstable (typically at its first
    strain steps) has a negative measured threshold. The lattice model needs thresholds >= 0:
    such a cell is set to 0, so that it yields as soon as its stress turns positive. The number
    of such cells and the smallest measured value are recorded.
    """
    raw = thresholds.threshold.values
    negative = raw < 0
    attrs = {
        **thresholds.attrs,
        "thresholds_clipped_to_zero": int(negative.sum()),
        "thresholds_min_measured": float(raw.min()),
    }
    return np.where(negative, 0.0, raw), attrs

