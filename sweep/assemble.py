"""Assembly: stack the stored runs of a sweep into one labeled netCDF4 file (one group per protocol).

The output is written with the netCDF4 library, compressed: fields (snapshots) run by run, time
series and scalars a block of runs at a time (``BLOCK_BYTES`` a series, one chunk of the file), so
that the assembly holds one block and one run file whatever the number of runs (a quasistatic
group, whose record dim is known only once every run is read, is gathered whole); the root's
summary is then computed from the written groups, a chunk at a time. It goes to a temporary name
renamed at the end, so a file that exists is complete. Dimensions of a group: ``initial_state``,
the protocol's axis (``shear_rate`` or ``stress_imposed``), the model-parameter axes (values
sorted), ``seed``, then the protocol's clock (``strain``, ``time`` or ``avalanche``) and, when
snapshots were taken, ``snapshot_strain`` or ``snapshot_time``, ``y``, ``x``: every one an index
coordinate. Names, units and dims come from ``engine.variables``. Missing or failed runs are NaN
(flags: False, integers: -1) and False in the ``completed`` mask, never dropped. Quasistatic runs
end with different numbers of avalanches: the group ``quasistatic`` (no axis of its own) runs
``avalanche`` over 0..n-1 of the longest run, pads the others (NaN, -1 for ``activations``; a
``comment`` attribute says so) and holds each run's ``n_avalanches``. The root holds the
steady-state ``summary`` of the groups, so that ``xr.open_dataset(path)`` shows the headline
results.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import warnings
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path

import dask
import netCDF4
import numpy as np
import xarray as xr
from epmsweep.engine import DEFAULT_SHEAR_MODULUS, ParameterError, __version__
from epmsweep.engine.files import probe_netcdf
from epmsweep.engine.variables import coordinate_variable, variable

from .plan import Plan
from .runfile import netcdf_values
from .settings import setting_seconds
from .spec import model_parameters
from .store import ASSEMBLY_COMPRESSION, NETCDF_LOCK, RunStore, writing

FIELDS = ("local_stress", "threshold", "plastic")
PROBE_ELEMENTS = 2**20  # variables up to this size are read by the probe of open_results (the series, not the fields)
OPEN_HINT = (
    "the runs are in one group per protocol: xr.open_dataset(path, group='imposed_rate'), "
    "xr.open_datatree(path) or epmsweep.sweep.open_results(path); the root holds the steady-state summary"
)


def _shear_modulus(state) -> float:
    return state.shear_modulus if state.shear_modulus is not None else DEFAULT_SHEAR_MODULUS


def _as_index(positions: np.ndarray) -> slice | np.ndarray:
    """A slice where the positions are contiguous (the usual case), else the positions."""
    if positions.size and np.array_equal(positions, np.arange(positions[0], positions[0] + positions.size)):
        return slice(int(positions[0]), int(positions[0]) + positions.size)
    return positions


class _GroupLayout:
    """The engine dims of a protocol's group: the union of every run's record and snapshot clocks
    (identical for all runs unless ``dt`` is an axis) and the largest lattice.

    A protocol without a schedule (``Quasistatic``) decides its number of records as it runs: its
    record clock is an index 0..n-1, grown (``fit``) to the longest run read; the shorter runs are
    padded (``PADDING``)."""

    def __init__(self, runs: list):
        """``runs``: one of each parameter point of the group (the others share its clocks)."""
        self.protocol = runs[0].protocol_instance()  # fixed arguments are shared by the group
        self.record_dim, self.snapshot_dim = self.protocol.record_dim, self.protocol.snapshot_dim
        self.ragged = not hasattr(self.protocol, "schedule")
        record_clocks, snapshot_clocks, sizes = [], [], []
        for r in runs:
            params = model_parameters(r.model, r.overrides)
            protocol = r.protocol_instance()
            if self.ragged:
                snapshot_clocks.append(np.asarray(protocol.snapshot_strains, dtype=float))
            else:
                schedule = protocol.schedule(params.dt)
                record_clocks.append(schedule.record_clock)
                snapshot_clocks.append(schedule.snapshot_clock)
            sizes.append(params.L)
        if self.ragged:  # the planned count (n_avalanches) until a run holds more
            self.record_clock = np.arange(getattr(self.protocol, "n_avalanches", None) or 1)
        else:
            self.record_clock = np.unique(np.concatenate(record_clocks))
        self.snapshot_clock = np.unique(np.concatenate(snapshot_clocks))
        self.L = max(sizes)
        self.names = [*self.protocol.record_coords, *self.protocol.series, *self.protocol.scalars]
        self.names += list(FIELDS) if self.snapshot_clock.size else []
        self._dims: dict[str, tuple[str, ...]] = {}  # by name: ``dims``
        self._last_position: dict[str, tuple] = {}  # by dim: the last run's clock and its place (``position``)

    @property
    def coords(self) -> dict[str, np.ndarray]:
        out = {self.record_dim: self.record_clock}
        if self.snapshot_clock.size:
            out.update({self.snapshot_dim: self.snapshot_clock, "y": np.arange(self.L), "x": np.arange(self.L)})
        return out

    def dims(self, name: str) -> tuple[str, ...]:
        if name not in self._dims:
            self._dims[name] = variable(name).on(self.record_dim, self.snapshot_dim)
        return self._dims[name]

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape of one run's values of variable ``name`` on the group's engine dims."""
        return tuple(self.coords[d].size for d in self.dims(name))

    def fit(self, variables: dict, buffers: dict[str, np.ndarray]) -> None:
        """Grow the record clock of a ragged group, and the ``buffers`` on it (padded), to hold a run."""
        n = variables[self.record_dim][2].size
        if not self.ragged or n <= self.record_clock.size:
            return
        self.record_clock = np.arange(n)
        for name, data in buffers.items():
            if self.record_dim in self.dims(name):
                grown = np.full(data.shape[:-1] + (n,), variable(name).fill_value(), data.dtype)
                grown[..., : data.shape[-1]] = data
                buffers[name] = grown

    def position(self, variables: dict) -> dict[str, slice | np.ndarray]:
        """Where a run's values go on each engine dim of the group."""
        out = {}
        for dim, clock in self.coords.items():
            values = variables[dim][2]
            if dim in ("y", "x"):
                out[dim] = slice(0, values.size)
                continue
            seen = (clock.size, values.tobytes())  # consecutive runs mostly have the same clock
            if self._last_position.get(dim, (None,))[0] != seen:
                self._last_position[dim] = seen, _as_index(np.searchsorted(clock, values))
            out[dim] = self._last_position[dim][1]
        return out


def _create(grp, name: str, dtype: str, dims: tuple, attrs: dict, **layout):
    """A variable of the assembled file in its stored form (booleans as int8, see ``netcdf_values``)."""
    stored = np.dtype("i1") if dtype == "bool" else (str if dtype == "str" else np.dtype(dtype))
    fill = {"fill_value": np.nan} if np.dtype(dtype).kind == "f" else {}
    var = grp.createVariable(name, stored, dims, **fill, **layout)
    var.setncatts({**attrs, **({"dtype": "bool"} if dtype == "bool" else {})})
    return var


def _coordinate(grp, name: str, dim: str, values) -> None:
    values = np.asarray(values)  # one dtype from all values: [1, 0.5] is float
    declared = coordinate_variable(name)
    dtype = "str" if values.dtype.kind in "US" else values.dtype.name
    var = _create(grp, name, dtype, (dim,), declared.attrs)
    if dtype == "str":
        for i, v in enumerate(values):
            var[i] = str(v)
    else:
        var[:] = values


PADDING = {
    "f": "runs have different numbers of avalanches: entries beyond a run's n_avalanches are NaN",
    "i": "runs have different numbers of avalanches: entries beyond a run's n_avalanches are -1",
}
"""The ``comment`` of a ragged group's variables on its record dim, by dtype kind."""
N_RECORDS = variable("n_avalanches")
"""Records of each run of a ragged group (-1: the run is missing)."""


BLOCK_BYTES = 2**22
"""Bytes of a series per block of runs: the runs of a time-stepped group are gathered a block at a
time (``_block_shape``) and each block written as one chunk of its series and scalars, so that the
assembly holds one block and one run file, whatever the number of runs."""


def _block_shape(shape: tuple[int, ...], run_elements: int) -> tuple[int, ...]:
    """The runs of a block, as a chunk of the run dims ``shape``: the trailing dims whole while the
    block stays within ``BLOCK_BYTES`` of float64 series of ``run_elements`` values a run, a part of
    the next dim, 1 on the dims before, so that a block's runs are consecutive in plan order."""
    room, block = max(1, BLOCK_BYTES // (8 * max(1, run_elements))), []
    for n in reversed(shape):
        take = max(1, min(n, room))
        block.append(take)
        room = room // take if take == n else 1
    return tuple(reversed(block))


def _write_group(root: netCDF4.Dataset, name: str, plan: Plan, store: RunStore) -> int:
    """Write the group of protocol ``name`` from the runs of ``store``; returns its completed runs.

    Fields are written run by run; series and scalars a block of runs at a time (``_block_shape``),
    or, in a ragged group, whose record dim is known once every run is read, all at the end."""
    dims, coords = plan.dims[name], plan.coords[name]
    layout = _GroupLayout(list(plan.protocol_runs(name, every=plan.spec.replicas)))  # one run a parameter point
    grp = root.createGroup(name)
    for dim in dims:
        grp.createDimension(dim, len(coords[dim][1]))

    def define_dims(names) -> None:
        for dim in names:
            grp.createDimension(dim, layout.coords[dim].size)
            _coordinate(grp, dim, dim, layout.coords[dim])

    # a ragged group's record dim is defined once every run is read and the longest known
    define_dims(d for d in layout.coords if not (layout.ragged and d == layout.record_dim))
    for cname, (dim, values) in coords.items():
        _coordinate(grp, cname, dim, values)
    _coordinate(grp, "shear_modulus", "initial_state", [_shear_modulus(s) for s in plan.spec.states])
    fixed, _ = plan.spec.protocols[name]
    grp.setncatts({
        "protocol": name, "record_dim": layout.record_dim, "snapshot_dim": layout.snapshot_dim,
        **{k: str(v) if isinstance(v, tuple) else v for k, v in fixed.items()},
    })  # fmt: skip

    # coordinates that are not dimensions (shear_modulus, zipped axes, the record's other clock), CF-style
    aux = ["shear_modulus", *(c for c in coords if c not in dims)]
    shape = tuple(len(coords[d][1]) for d in dims)
    gathered = [v for v in layout.names if v not in FIELDS]

    block = shape if layout.ragged else _block_shape(shape, max(math.prod(layout.shape(v)) for v in gathered))
    out_vars = {}

    def define(vname: str) -> None:
        declared, vdims = variable(vname), layout.dims(vname)
        links = aux + [c for c in layout.protocol.record_coords if c != vname and layout.record_dim in vdims]
        attrs = {**declared.attrs, "coordinates": " ".join(links)}
        if layout.ragged and layout.record_dim in vdims:
            attrs["comment"] = PADDING[np.dtype(declared.dtype).kind]
        # fields: one run a chunk; series and scalars: one block of runs a chunk
        runs = [1] * len(dims) if vname in FIELDS else None if layout.ragged else list(block)
        chunks = {"chunksizes": runs + list(layout.shape(vname))} if runs else {}
        out_vars[vname] = _create(grp, vname, declared.dtype, dims + vdims, attrs, **chunks, **ASSEMBLY_COMPRESSION)

    def new_block(origin: tuple[int, ...]) -> dict[str, np.ndarray]:
        extent = tuple(min(b, n - o) for o, b, n in zip(origin, block, shape, strict=True))
        return {v: np.full(extent + layout.shape(v), variable(v).fill_value(), variable(v).dtype) for v in gathered}

    def write_block(origin: tuple[int, ...], buffers: dict[str, np.ndarray]) -> None:
        for vname, data in buffers.items():
            where = tuple(slice(o, o + n) for o, n in zip(origin, data.shape, strict=False))
            out_vars[vname][(*where, ...)] = netcdf_values(data, {})[0]

    for vname in layout.names:
        if not (layout.ragged and layout.record_dim in layout.dims(vname)):
            define(vname)
    completed = np.zeros(shape, bool)
    counts = np.full(shape, N_RECORDS.fill_value(), N_RECORDS.dtype)
    keys = list(plan.keys(name))
    stored = store.indexed_keys(keys)
    origin, buffers = None, {}
    for key, index in zip(keys, itertools.product(*(range(n) for n in shape)), strict=True):  # plan order
        start = tuple(i - i % b for i, b in zip(index, block, strict=True))
        if start != origin:
            if origin is not None:
                write_block(origin, buffers)
            origin, buffers = start, new_block(start)
        variables = store.read_variables(key) if key in stored else None
        if variables is None:
            continue
        layout.fit(variables, buffers)
        position = layout.position(variables)
        local = tuple(i - o for i, o in zip(index, origin, strict=True))
        for vname in layout.names:
            where = tuple(position[d] for d in layout.dims(vname))
            if vname in buffers:
                buffers[vname][local + where] = variables[vname][2]
            else:
                out_vars[vname][index + where] = variables[vname][2]
        completed[index] = True
        counts[index] = variables[layout.record_dim][2].size
    if layout.ragged:
        define_dims([layout.record_dim])
        for vname in layout.names:
            if vname not in out_vars:
                define(vname)
        var = _create(grp, N_RECORDS.name, N_RECORDS.dtype, dims, {**N_RECORDS.attrs, "coordinates": " ".join(aux)})
        var[...] = counts
    if origin is not None:
        write_block(origin, buffers)
    mask = _create(grp, "completed", "bool", dims, {**variable("completed").attrs, "coordinates": " ".join(aux)})
    mask[...] = completed.astype(np.int8)
    return int(completed.sum())


def summary(groups: Mapping[str, xr.Dataset]) -> xr.Dataset:
    """The headline results of an assembled sweep, kept at its root: steady stress per shear rate,
    steady strain rate of the flowing runs and stuck fraction per imposed stress, quasistatic flow
    stress (``analysis.quasistatic_flow_stress``), with errors.

    ``groups``: the per-protocol Datasets (``imposed_rate``, ``imposed_stress``, ``quasistatic``) of the sweep."""
    from epmsweep.analysis import quasistatic_flow_stress, steady_strain_rate, steady_stress

    parts = []
    if "imposed_rate" in groups:
        st = steady_stress(groups["imposed_rate"])
        parts.append(st[["stress", "stress_err"]].rename(stress="steady_stress", stress_err="steady_stress_err"))
    if "imposed_stress" in groups:
        sr = steady_strain_rate(groups["imposed_stress"])
        names = {"strain_rate": "steady_strain_rate", "strain_rate_err": "steady_strain_rate_err"}
        parts.append(sr[[*names, "stuck_fraction"]].rename(names))
    if "quasistatic" in groups:
        qs = quasistatic_flow_stress(groups["quasistatic"])
        names = {"flow_stress": "quasistatic_flow_stress", "flow_stress_err": "quasistatic_flow_stress_err"}
        parts.append(qs[list(names)].rename(names))
    out = xr.merge(parts, compat="override", combine_attrs="drop_conflicts").drop_attrs(deep=False)
    out = out.drop_vars([c for c in out.coords if c not in out.dims and c != "shear_modulus"])
    for name in out.coords:  # the groups inherit the root's coordinates: same attributes
        out[name].attrs = coordinate_variable(name).attrs
    return out


def _write_summary(root: netCDF4.Dataset, headline: xr.Dataset) -> None:
    for dim, size in headline.sizes.items():
        root.createDimension(dim, size)
    for name, coord in headline.coords.items():
        _coordinate(root, name, coord.dims[0], coord.values)
    for name, var in headline.data_vars.items():
        out = _create(root, name, "float64", var.dims, {**var.attrs, "coordinates": "shear_modulus"})
        out[...] = var.values


@contextlib.contextmanager
def _without_chunk_cache() -> Iterator[None]:
    """The netCDF library's chunk cache off for the variables created or opened in the block (64 MiB
    each by default, 5 series a group: 320 MiB of a 10^5-run assembly): the assembly writes and
    reads whole chunks, each once. The setting is the library's, for the whole process (a file
    another thread opens meanwhile is read without a cache too): restored on exit."""
    saved = netCDF4.get_chunk_cache()
    netCDF4.set_chunk_cache(0, 0)
    try:
        yield
    finally:
        netCDF4.set_chunk_cache(*saved)


def _summary_of_file(path: Path, names) -> xr.Dataset:
    """``summary`` of the groups ``names`` of the assembled file at ``path``, read a chunk (a block of
    runs) at a time and computed in this process."""
    groups = {}
    with _without_chunk_cache(), contextlib.ExitStack() as opened:
        for name in names:
            ds = xr.open_dataset(path, group=name, engine="netcdf4", chunks={}, drop_variables=FIELDS)
            groups[name] = opened.enter_context(ds)
        with dask.config.set(scheduler="synchronous"), warnings.catch_warnings():
            # a point without completed runs has an empty mean: NaN, as numpy-backed xarray gives silently
            warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
            return summary(groups).compute()


def assemble_plan(plan: Plan, store: RunStore, out_path: str | os.PathLike, *, with_summary: bool = True) -> Path:
    """Write the assembled file of ``plan`` from ``store`` to ``out_path`` (atomically).

    Every run file is verified as it is read; a corrupt or outdated one is removed and counted
    as missing. The root holds ``summary`` of the groups, computed from the written groups, unless
    ``with_summary`` is False (the candidates of a calibration, whose objective needs the groups only).
    """
    out_path = Path(out_path)
    with writing(out_path) as tmp:
        with NETCDF_LOCK, _without_chunk_cache(), netCDF4.Dataset(tmp, "w", format="NETCDF4") as root:
            root.setncatts(
                {
                    "title": f"epmsweep sweep {plan.spec.name}",
                    "name": plan.spec.name,
                    "epmsweep_version": __version__,
                    "base_seed": plan.spec.seed,
                    "spec": plan.spec.text,
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "runs_planned": len(plan.runs),
                    "groups": " ".join(plan.dims),
                    "how_to_open": OPEN_HINT,
                    "Conventions": "CF-1.8",
                }
            )
            root.setncattr("runs_completed", sum(_write_group(root, name, plan, store) for name in plan.dims))
        if with_summary:
            headline = _summary_of_file(Path(tmp), plan.dims)  # xarray takes NETCDF_LOCK itself
            with NETCDF_LOCK, netCDF4.Dataset(tmp, "a") as root:
                _write_summary(root, headline)
    return out_path


def open_results(path: str | os.PathLike) -> xr.DataTree:
    """Open an assembled sweep file as a DataTree: the summary at the root, one group per protocol.

    Raises ParameterError naming the file if it is missing, not an assembled sweep, or damaged
    (the file is first read in a child process with a timeout, ``epmsweep.sweep.open-timeout``:
    some damaged files make the HDF5 library spin forever).
    """
    path = Path(path)
    if not path.is_file():
        raise ParameterError(str(path), "assembled sweep file does not exist")
    probe_netcdf(path, "assembled sweep file", timeout=setting_seconds("open-timeout"), max_read=PROBE_ELEMENTS)
    try:
        tree = xr.open_datatree(path, engine="netcdf4")
    except Exception as exc:  # the netCDF library raises several types for foreign files
        raise ParameterError(str(path), f"not a readable netCDF file ({exc})") from None
    if "groups" not in tree.attrs:
        tree.close()
        raise ParameterError(str(path), "not an assembled epmsweep sweep (no 'groups' attribute)")
    return tree
