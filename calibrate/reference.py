"""Reference curves: what a calibration fits, read from netCDF or CSV with their units checked.

An observable is a curve y(x) of one protocol, possibly at one value of that protocol's axis:

====================== ============== ============ ======== =====================================
observable             protocol       x            y        at
====================== ============== ============ ======== =====================================
flow_curve             imposed_rate   shear_rate   stress   (steady stress per rate)
stress_strain          imposed_rate   strain       stress   ``shear_rate``
creep                  imposed_stress time         strain   ``stress`` (imposed)
threshold_distribution imposed_rate   threshold    density  ``shear_rate`` (snapshots, steady state)
gap_distribution       imposed_rate   gap          density  ``shear_rate`` (snapshots, steady state)
====================== ============== ============ ======== =====================================

The distributions are P(sigma_th) and P(x = sigma_th - sigma) of the lattice snapshots (pooled over
replicas and snapshots, ``analysis.distributions``): ``x`` are the centres of the bins (at least 2),
``density`` [1 / stress] is normalised over those bins; choose bins where the reference has counts.

A reference file holds ``x``, ``y`` and ``y_err`` (the one-sigma error of ``y``, > 0) under the
project's variable names (``engine.variables``), each with a ``units`` attribute that pint parses
and that converts to the project's unit (values are converted). A netCDF file is a Dataset with
``x`` as its dimension, optionally with an ``initial_state`` dimension (one label is selected);
the root summary of an assembled sweep (``steady_stress``, ``steady_stress_err``) is read as a flow
curve. A CSV file has a header of ``name [units]`` columns, e.g.
``shear_rate [1 / tau_LJ],stress [epsilon_LS / sigma_LS^2],stress_err [epsilon_LS / sigma_LS^2]``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from epmsweep.engine.units import unit_registry
from epmsweep.engine.variables import attrs, variable


@dataclass(frozen=True)
class Observable:
    """A kind of reference curve: its protocol, its x and y variables, and the protocol value it is taken at."""

    name: str
    protocol: str
    x: str
    y: str
    at: str | None = None  # key of the reference entry giving the protocol value (shear_rate, stress)
    aliases: tuple[str, ...] = ()  # other names of y (the summary of an assembled sweep)
    distribution: bool = False  # a histogram of snapshot fields, x the bin centres


OBSERVABLES = {
    o.name: o
    for o in (
        Observable("flow_curve", "imposed_rate", "shear_rate", "stress", aliases=("steady_stress",)),
        Observable("stress_strain", "imposed_rate", "strain", "stress", at="shear_rate"),
        Observable("creep", "imposed_stress", "time", "strain", at="stress"),
        Observable(
            "threshold_distribution", "imposed_rate", "threshold", "density", at="shear_rate", distribution=True
        ),
        Observable("gap_distribution", "imposed_rate", "gap", "density", at="shear_rate", distribution=True),
    )
}


@dataclass(frozen=True)
class Curve:
    """One reference curve, in the project's units: ``x``, ``y``, ``err`` of shape (n_points,), x increasing."""

    name: str
    observable: Observable
    initial_state: str
    at: float | None
    weight: float
    x: np.ndarray
    y: np.ndarray
    err: np.ndarray


class ReferenceError(ValueError):
    """A reference file cannot be used; the message says why (the caller names the file and field)."""


def _factor(given: str | None, name: str) -> float:
    """Factor converting values in unit ``given`` to the project's unit of ``name``."""
    expected = variable(name).units
    if given is None:
        raise ReferenceError(f"{name} has no units (expected {expected!r})")
    ureg = unit_registry()
    try:
        return float((ureg.Quantity(1.0, "1") * ureg.parse_expression(given)).to(expected).magnitude)
    except Exception as err:  # pint raises several types (undefined unit, dimensionality, syntax)
        raise ReferenceError(f"{name} in {given!r} does not convert to {expected!r} ({err})") from None


def _netcdf(path: Path, observable: Observable, initial_state: str) -> dict[str, tuple[np.ndarray, str | None]]:
    try:
        ds = xr.open_dataset(path, engine="netcdf4")
    except Exception as err:  # the netCDF library raises several types for foreign files
        raise ReferenceError(f"not a readable netCDF file ({err})") from None
    with ds:
        y = next((n for n in (observable.y, *observable.aliases) if n in ds), None)
        missing = [n for n, v in ((observable.x, ds.coords.get(observable.x)), (observable.y, y)) if v is None]
        if missing or f"{y}_err" not in ds:
            names = [*missing, *([] if missing else [f"{y}_err"])]
            raise ReferenceError(f"no variable {names}; a {observable.name} needs {observable.x}, "
                                 f"{observable.y} and {observable.y}_err")  # fmt: skip
        ds = ds[[y, f"{y}_err"]]
        if "initial_state" in ds.dims:
            labels = [str(v) for v in ds["initial_state"].values]
            if initial_state not in labels:
                raise ReferenceError(f"no initial_state {initial_state!r}; the file has {labels}")
            ds = ds.isel(initial_state=labels.index(initial_state))
        extra = [d for d in ds.dims if d != observable.x]
        if extra:
            raise ReferenceError(f"dimensions {extra} besides {observable.x}: a reference is one curve")
        return {
            observable.x: (ds[observable.x].values, ds[observable.x].attrs.get("units")),
            observable.y: (ds[y].values, ds[y].attrs.get("units")),
            f"{observable.y}_err": (ds[f"{y}_err"].values, ds[f"{y}_err"].attrs.get("units")),
        }


def _csv(path: Path, observable: Observable) -> dict[str, tuple[np.ndarray, str | None]]:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise ReferenceError("empty CSV file")
    columns = {}
    for i, head in enumerate(rows[0]):
        name, _, units = head.strip().partition("[")
        columns[name.strip()] = (i, units.rstrip("] ").strip() or None)
    wanted = [observable.x, observable.y, f"{observable.y}_err"]
    missing = [n for n in wanted if n not in columns]
    if missing:
        raise ReferenceError(f"no column {missing}; header must name {wanted} as 'name [units]'")
    out = {}
    for name in wanted:
        i, units = columns[name]
        try:
            out[name] = (np.array([float(r[i]) for r in rows[1:] if r]), units)
        except (ValueError, IndexError):
            raise ReferenceError(f"column {name} has a value that is not a number") from None
    return out


def load_curve(
    path: str | Path, name: str, observable: Observable, initial_state: str, at: float | None, weight: float
) -> Curve:
    """The reference curve in ``path`` (netCDF ``.nc`` or ``.csv``), converted to the project's units.

    Raises ReferenceError saying what is wrong: a missing variable or unit, units that do not
    convert, non-finite values, errors that are not > 0, too few points (2 bins for a distribution)
    or repeated x.
    """
    path = Path(path)
    if not path.is_file():
        raise ReferenceError("file does not exist")
    columns = _csv(path, observable) if path.suffix.lower() == ".csv" else _netcdf(path, observable, initial_state)
    values = {}
    for vname, (data, units) in columns.items():
        data = np.asarray(data, dtype=float) * _factor(units, vname.removesuffix("_err"))
        if data.ndim != 1 or not np.all(np.isfinite(data)):
            raise ReferenceError(f"{vname} must be finite values along {observable.x}")
        values[vname] = data
    x, y, err = values[observable.x], values[observable.y], values[f"{observable.y}_err"]
    if x.size < (2 if observable.distribution else 1):
        raise ReferenceError("has no points" if x.size == 0 else "a distribution needs at least 2 bins")
    if np.any(err <= 0):
        raise ReferenceError(f"{observable.y}_err must be > 0 (the objective divides by it)")
    order = np.argsort(x)
    if np.any(np.diff(x[order]) == 0):
        raise ReferenceError(f"{observable.x} has repeated values")
    return Curve(name, observable, initial_state, at, weight, x[order], y[order], err[order])


def reference_dataset(observable: Observable, x, y, err, **attributes) -> xr.Dataset:
    """A reference curve as a Dataset in the project's vocabulary (write it with ``to_netcdf``).

    ``x``, ``y``, ``err``: arrays of shape (n_points,) in the project's units."""
    return xr.Dataset(
        {
            observable.y: ((observable.x,), np.asarray(y, float), attrs(observable.y)),
            f"{observable.y}_err": ((observable.x,), np.asarray(err, float), attrs(observable.y, long_name="error")),
        },
        coords={observable.x: ((observable.x,), np.asarray(x, float), attrs(observable.x))},
        attrs={"observable": observable.name, **attributes},
    )
