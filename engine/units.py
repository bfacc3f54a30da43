"""Lennard-Jones units of the outputs, as strings that parse with pint.

All quantities are in the reduced units of the underlying particle model: length sigma_LS,
energy epsilon_LS, mass m of a particle, time tau_LJ = sqrt(m sigma_LS^2 / epsilon_LS). In 2D a
stress is an energy per area. The ``units`` attribute of every output is one of the strings below;
``unit_registry()`` is a pint registry that parses them (and converts between them)::

    ureg = unit_registry()
    ureg.Quantity(0.5, STRESS) * ureg.Quantity(2.0, TIME)   # 1.0 epsilon_LS * tau_LJ / sigma_LS ** 2

pint rather than UDUNITS (cf_units): UDUNITS has no reduced Lennard-Jones units and cannot be
extended without editing its XML database, while pint defines them in four lines, is pure Python,
and plugs into xarray through pint-xarray (``ds.pint.quantify(unit_registry=unit_registry())``).
The dimensionless ``"1"`` is also valid UDUNITS.
"""

from __future__ import annotations

import functools

from .errors import ParameterError

STRESS = "epsilon_LS / sigma_LS^2"
TIME = "tau_LJ"
RATE = "1 / tau_LJ"
DIMENSIONLESS = "1"

DEFINITIONS = (
    "sigma_LS = [lj_length]",
    "epsilon_LS = [lj_energy] = eps_LS",
    "m_LJ = [lj_mass]",
    "tau_LJ = (m_LJ * sigma_LS ** 2 / epsilon_LS) ** 0.5",
)


@functools.cache
def unit_registry():
    """A pint UnitRegistry holding only the Lennard-Jones units (and dimensionless numbers)."""
    import pint

    registry = pint.UnitRegistry(None)
    for line in DEFINITIONS:
        registry.define(line)
    return registry


def check_units(field: str, units, expected: str) -> None:
    """ParameterError naming ``field`` unless ``units`` (an input file's attribute; None when absent,
    which is accepted) is the unit ``expected``: a time such as ``"days since 2000-01-01"`` on a
    stress, or a string pint cannot read, is refused instead of decoded."""
    if units is None:
        return
    registry = unit_registry()
    try:
        same = registry.Quantity(1.0, str(units)) == registry.Quantity(1.0, expected)
    except Exception:  # pint raises several types (and tokenizer errors) for strings it cannot read
        same = False
    if not same:
        raise ParameterError(field, f"units must be {expected!r}, got {units!r}")
