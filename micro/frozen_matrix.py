"""Local yield thresholds by the frozen-matrix method.

For a probed cell of the L x L grid, the particles outside the cell follow the affine shear of the
box and never relax; the particles inside relax (cg minimisation) after each quasistatic strain
step. The local stress of the cell (its particles' per-atom stresses over the cell area) rises
until the first plastic instability inside, seen as a drop: the cell's threshold sigma_th is the
local stress just before the drop, the lattice model's yield criterion sigma > sigma_th.

Speed-up: only the particles within ``margin`` of the cell matter (the frozen ones interact with
the free ones up to the largest pair cutoff, 2.5 sigma_LL = 2.94), so the probe may run on a
cut-out of the cell plus that margin, in a box padded with empty space. With a margin at least
the largest cutoff the free particles feel the same forces as in the full system, and the
threshold is the same up to round-off in the minimiser's path.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from epmsweep.engine import ParameterError

from .configuration import Configuration, cartesian
from .model import GlassModel
from .modulus import apply_strain
from .simulation import Simulation
from .stress_map import cell_indices


@dataclass(frozen=True)
class FrozenMatrixProbe:
    """How a cell is probed.

    Parameters
    ----------
    strain_step : float
        Quasistatic shear strain increment (gamma); thresholds are resolved to about
        mu_local * strain_step (~1e-3 stress units by default).
    max_strain : float
        A cell that has not yielded by this strain is an error.
    cutout : bool
        Probe on a cut-out (cell + ``margin``) instead of the full system.
    margin : float, optional
        Width of frozen particles kept around the cell in a cut-out (sigma_LS); default: the
        model's largest pair cutoff, which makes the cut-out exact.
    """

    strain_step: float = 1e-4
    max_strain: float = 0.3
    cutout: bool = True
    margin: float | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.strain_step, (int, float)) and 0 < self.strain_step < 0.1):
            raise ParameterError("probe.strain_step", f"must be a number in (0, 0.1), got {self.strain_step!r}")
        if not (isinstance(self.max_strain, (int, float)) and self.strain_step < self.max_strain <= 2):
            raise ParameterError("probe.max_strain", f"must be in (strain_step, 2], got {self.max_strain!r}")
        if self.margin is not None and not (isinstance(self.margin, (int, float)) and self.margin > 0):
            raise ParameterError("probe.margin", f"must be a number > 0, got {self.margin!r}")

    def to_attrs(self) -> dict:
        return {f"probe_{k}": (int(v) if isinstance(v, bool) else v) for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of one probe: threshold and local stress at gamma = 0 (stress units), yield strain."""

    threshold: float
    initial_stress: float
    yield_strain: float
    n_free: int
    n_frozen: int


def _cut_out(config: Configuration, cell: tuple[int, int], L: int, margin: float) -> Configuration:
    """The particles within ``margin`` of the cell (those inside first), unwrapped around it, in a
    box padded with empty space."""
    lx, ly, xy = config.box
    frac = config.fractional()
    centre = (np.array([cell[1], cell[0]]) + 0.5) / L
    d = frac - centre
    d -= np.round(d)  # nearest image of each particle relative to the cell centre
    ext = np.array([0.5 / L + margin / lx, 0.5 / L + margin / ly])
    keep = np.all(np.abs(d) <= ext, axis=1)
    iy, ix = cell_indices(frac, L)
    inside = (iy == cell[0]) & (ix == cell[1])
    order = np.concatenate([np.flatnonzero(inside), np.flatnonzero(keep & ~inside)])
    pos = cartesian(d[order], config.box)
    pad = 2 * margin + 2.0  # empty space: periodic images never come within a cutoff
    side = np.array([lx / L, ly / L]) + 2 * margin + pad + abs(xy) / L
    pos += side / 2
    return Configuration(pos, config.types[order], (side[0], side[1], 0.0))


def probe_system(
    config: Configuration, cell: tuple[int, int], L: int, probe: FrozenMatrixProbe, model: GlassModel
) -> tuple[Configuration, np.ndarray]:
    """The system a probe runs on (cut-out or full) and the indices of its free particles."""
    if not (0 <= cell[0] < L and 0 <= cell[1] < L):
        raise ParameterError("cell", f"must be (iy, ix) with 0 <= iy, ix < L = {L}, got {cell!r}")
    iy, ix = cell_indices(config.fractional(), L)
    inside = np.flatnonzero((iy == cell[0]) & (ix == cell[1]))
    if inside.size == 0:
        raise ParameterError("cell", f"{cell} holds no particle")
    if not probe.cutout:
        return config, inside
    return _cut_out(config, cell, L, probe.margin or model.max_cutoff), np.arange(inside.size)


def run_probe(
    system: Configuration, free: np.ndarray, cell_area: float, probe: FrozenMatrixProbe, model: GlassModel
) -> ProbeResult:
    """Quasistatic shear of ``system`` with only the particles ``free`` relaxing, up to their first instability."""
    with Simulation(model, system) as sim:
        sim.commands(f"group free id {' '.join(str(i + 1) for i in free)}")
        sim.commands("group frozen subtract all free", "fix frozen frozen setforce 0.0 0.0 0.0")

        def local_stress() -> float:
            return float(np.sum(sim.atom_stress_xy()[free]) / cell_area)

        previous = initial = local_stress()
        for k in range(1, math.ceil(probe.max_strain / probe.strain_step) + 1):
            apply_strain(sim, probe.strain_step)
            sim.minimize()
            current = local_stress()
            if current < previous:
                return ProbeResult(previous, initial, (k - 1) * probe.strain_step, free.size, system.n - free.size)
            previous = current
    raise ParameterError("probe.max_strain", f"the cell did not yield up to strain {probe.max_strain}")


def probe_cell(
    config: Configuration,
    cell: tuple[int, int],
    L: int,
    probe: FrozenMatrixProbe | None = None,
    model: GlassModel | None = None,
) -> ProbeResult:
    """Frozen-matrix threshold of cell ``(iy, ix)`` of the L x L grid of an athermal configuration."""
    probe, model = probe or FrozenMatrixProbe(), model or GlassModel()
    system, free = probe_system(config, cell, L, probe, model)
    return run_probe(system, free, config.area / L**2, probe, model)
