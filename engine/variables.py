"""The output vocabulary: every variable a run, an assembled sweep or an analysis writes, declared once.

Each ``Variable`` carries its name, dimensions, units (``engine.units``, parseable by pint), a
``long_name`` short enough for xarray's automatic plot labels (``long_name [units]``) and a
dtype. The engine, the assembly, the particle side and the analysis take names, units and dims
from here instead of spelling them.

Time series and snapshots are indexed by their protocol's clock: the placeholders ``RECORD`` and
``SNAPSHOT`` in the declarations stand for the protocol's ``record_dim`` (``strain`` under
imposed rate, ``time`` under imposed stress, ``avalanche`` under quasistatic shear) and
``snapshot_dim`` (``snapshot_strain``, ``snapshot_time``), see ``Variable.on``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .units import DIMENSIONLESS, RATE, STRESS, TIME

RECORD, SNAPSHOT = "record", "snapshot"
LATTICE = ("y", "x")


@dataclass(frozen=True)
class Variable:
    """One declared output variable.

    Parameters
    ----------
    name : str
        Variable name in every output.
    dims : tuple of str
        Dimensions; ``RECORD`` / ``SNAPSHOT`` are replaced by the protocol's clock dims.
    units : str or None
        Units string (``engine.units``); None for labels (strings).
    long_name : str
        Short description, used by xarray for axis labels.
    dtype : str
        NumPy dtype name; ``"bool"`` is stored as int8 with the attribute ``dtype: bool``, which
        xarray decodes back to booleans.
    """

    name: str
    dims: tuple[str, ...]
    units: str | None
    long_name: str
    dtype: str = "float64"

    @property
    def attrs(self) -> dict[str, str]:
        """CF attributes: ``units`` (when it has units) and ``long_name``."""
        units = {} if self.units is None else {"units": self.units}
        return {**units, "long_name": self.long_name}

    def on(self, record_dim: str, snapshot_dim: str) -> tuple[str, ...]:
        """The dims with the clock placeholders replaced."""
        return tuple({RECORD: record_dim, SNAPSHOT: snapshot_dim}.get(d, d) for d in self.dims)

    def fill_value(self):
        """What stands for a missing run: NaN for floats, False for flags, -1 for integers, "" for labels."""
        kind = np.dtype(self.dtype).kind
        return {"f": np.nan, "b": False, "i": -1, "u": 0}.get(kind, "")


def _declare(*variables: Variable) -> dict[str, Variable]:
    return {v.name: v for v in variables}


VARIABLES = _declare(
    # clocks: index coordinates of the time series and snapshots
    Variable("strain", (RECORD,), DIMENSIONLESS, "shear strain"),
    Variable("time", (RECORD,), TIME, "time"),
    Variable("snapshot_strain", (SNAPSHOT,), DIMENSIONLESS, "strain of the snapshot"),
    Variable("snapshot_time", (SNAPSHOT,), TIME, "time of the snapshot"),
    Variable("avalanche", (RECORD,), DIMENSIONLESS, "avalanche", "int64"),
    Variable("y", ("y",), DIMENSIONLESS, "lattice row", "int64"),
    Variable("x", ("x",), DIMENSIONLESS, "lattice column", "int64"),
    # time series
    Variable("stress", (RECORD,), STRESS, "stress"),
    Variable("strain_rate", (RECORD,), RATE, "strain rate"),
    Variable("plastic_strain", (RECORD,), DIMENSIONLESS, "mean plastic strain"),
    Variable("plastic_fraction", (RECORD,), DIMENSIONLESS, "plastic fraction"),
    # avalanche records (quasistatic shear): strain and stress at the trigger, then at the end
    Variable("stress_before", (RECORD,), STRESS, "stress before the avalanche"),
    Variable("stress_after", (RECORD,), STRESS, "stress after the avalanche"),
    Variable("stress_drop", (RECORD,), STRESS, "stress drop"),
    Variable("avalanche_size", (RECORD,), DIMENSIONLESS, "avalanche size"),
    Variable("activations", (RECORD,), DIMENSIONLESS, "activations", "int64"),
    Variable("avalanche_duration", (RECORD,), TIME, "avalanche duration"),
    # fields of the snapshots
    Variable("local_stress", (SNAPSHOT, *LATTICE), STRESS, "local stress"),
    Variable("threshold", (SNAPSHOT, *LATTICE), STRESS, "local threshold"),
    Variable("plastic", (SNAPSHOT, *LATTICE), DIMENSIONLESS, "plastic site", "bool"),
    # run scalars
    Variable("peak_stress", (), STRESS, "peak stress"),
    Variable("strain_at_peak", (), DIMENSIONLESS, "strain at the peak"),
    Variable("stuck", (), DIMENSIONLESS, "stuck (absorbing state)", "bool"),
    Variable("arrest_time", (), TIME, "arrest time"),
    Variable("n_avalanches", (), DIMENSIONLESS, "number of avalanches", "int64"),
    # sweep coordinates
    Variable("shear_rate", ("shear_rate",), RATE, "shear rate"),
    Variable("stress_imposed", ("stress_imposed",), STRESS, "imposed stress"),
    Variable("seed", ("seed",), DIMENSIONLESS, "replica", "int64"),
    Variable("initial_state", ("initial_state",), None, "initial state", "str"),
    Variable("shear_modulus", ("initial_state",), STRESS, "shear modulus"),
    Variable("completed", (), DIMENSIONLESS, "run completed", "bool"),
    # distributions of the snapshot fields (analysis.distributions): bins on threshold or gap
    Variable("gap", ("gap",), STRESS, "local gap"),
    Variable("density", (), f"1 / ({STRESS})", "probability density"),
)

PARAMETER_UNITS = {
    "L": DIMENSIONLESS,
    "tau": TIME,
    "tau_pl": TIME,
    "tau_res": TIME,
    "dt": TIME,
    "thresholds_shape": DIMENSIONLESS,
    "thresholds_scale": STRESS,
    "thresholds_shift": STRESS,
}
"""Units of the model parameters that can be sweep axes (dotted names with ``_`` for ``.``)."""


def coordinate_variable(name: str) -> Variable:
    """The declaration of a sweep coordinate: a declared variable, or a model-parameter axis
    (``tau_res``, ``thresholds_shift``, ...)."""
    if name in VARIABLES:
        return VARIABLES[name]
    return Variable(name, (name,), PARAMETER_UNITS.get(name, DIMENSIONLESS), name.replace("_", " "))


def variable(name: str) -> Variable:
    """The declaration of ``name``; KeyError names the vocabulary if it is not declared."""
    try:
        return VARIABLES[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a declared output variable; declared: {sorted(VARIABLES)}") from None


def entry(name: str, values, protocol) -> tuple[tuple[str, ...], np.ndarray, dict[str, str]]:
    """``(dims, values, attrs)`` of variable ``name`` for a Dataset of a run under ``protocol`` (any
    object with ``record_dim`` and ``snapshot_dim``), values cast to the declared dtype."""
    var = variable(name)
    return var.on(protocol.record_dim, protocol.snapshot_dim), np.asarray(values, dtype=var.dtype), var.attrs


def attrs(name: str, **extra: str) -> dict[str, str]:
    """The CF attributes of a declared variable, with ``extra`` entries (e.g. another long_name)."""
    return {**variable(name).attrs, **extra}
