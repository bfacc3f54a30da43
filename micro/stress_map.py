"""Coarse-grained stress maps: per-atom stresses binned on an L x L grid of the (possibly sheared) box."""

from __future__ import annotations

import math

import numpy as np
from epmsweep.engine import ParameterError

from .configuration import Configuration
from .model import GlassModel
from .simulation import Simulation

PAPER_CELL = 316.174 / 32
"""Coarse-graining length of the paper (sigma_LS): a 316.174 box cut into 32 x 32 cells."""


def default_grid(box_side: float, cell: float = PAPER_CELL) -> int:
    """Number of cells per side whose size is closest to ``cell`` (at least 2: the lattice needs L >= 2)."""
    return max(2, round(box_side / cell))


def cell_indices(fractional: np.ndarray, L: int) -> tuple[np.ndarray, np.ndarray]:
    """(iy, ix) of the cell of each particle; ``fractional`` is (N, 2) box fractions in [0, 1).

    Cells are the L x L equal parallelograms of the box (squares for an unsheared square box).
    """
    idx = np.minimum((fractional * L).astype(np.int64), L - 1)
    return idx[:, 1], idx[:, 0]


def coarse_grain(fractional: np.ndarray, atom_stress: np.ndarray, area: float, L: int) -> np.ndarray:
    """(L, L) map: sum of the per-atom stress x area in each cell divided by the cell area.

    Parameters
    ----------
    fractional : (N, 2) float
        Positions in box fractions (x, y) in [0, 1).
    atom_stress : (N,) float
        Per-atom shear stress times area (LAMMPS ``compute stress/atom``, xy column: its sum over
        all atoms divided by the box area is the global sigma_xy = -P_xy; in 2D the area, not a
        volume with the box's z length, is the normalisation).
    area : float
        Box area (sigma_LS^2).
    L : int
        Cells per side.

    Returns
    -------
    (L, L) float64, axis 0 is y: local stresses whose mean is the global stress (to round-off).
    """
    if isinstance(L, bool) or not isinstance(L, (int, np.integer)) or L < 1:
        raise ParameterError("L", f"must be an integer >= 1, got {L!r}")
    iy, ix = cell_indices(fractional, L)
    sums = np.zeros(L * L)
    np.add.at(sums, iy * L + ix, atom_stress)
    return (sums / (area / L**2)).reshape(L, L)


def stress_map(
    config: Configuration, L: int | None = None, model: GlassModel | None = None
) -> tuple[np.ndarray, float]:
    """(L, L) coarse-grained shear stress of an athermal configuration, and its global stress.

    ``L`` defaults to ``default_grid(box side)`` (cells of about the paper's 9.88 sigma_LS).

    Returns
    -------
    (map, global_stress) : ((L, L) float64, float)
    """
    L = L or default_grid(math.sqrt(config.area))
    with Simulation(model or GlassModel(), config) as sim:
        atom = sim.atom_stress_xy()
        total = sim.stress_xy()
    return coarse_grain(config.fractional(), atom, config.area, L), total
