"""One serial LAMMPS instance holding a configuration of the glass model: the commands every task shares."""

from __future__ import annotations

import numpy as np

from .configuration import Configuration
from .lammps_library import open_lammps
from .model import Dissipation, GlassModel

STRESS_XY = 3  # column of the xy component in compute stress/atom (xx, yy, zz, xy, xz, yz)
MINIMIZE_FTOL = 1e-10
"""Force-norm tolerance of every minimisation (LJ force units); the energy criterion is off (0) so
that the stopping rule does not depend on the energy of atoms that cannot move."""


class Simulation:
    """A LAMMPS instance with ``config`` loaded; use as a context manager (closed on exit).

    Parameters
    ----------
    model : GlassModel
        Interactions and time step.
    config : Configuration
        Particles and box; the box is triclinic (a tilt may be applied later).
    dissipation : Dissipation, optional
        Pairwise dissipation is part of the pair style; the per-particle one is a fix added by the
        shear protocols.
    seed : int
        Seed of the LAMMPS random generators that need one (none draws numbers at temperature 0).
    """

    def __init__(self, model: GlassModel, config: Configuration, dissipation: Dissipation | None = None, seed: int = 1):
        self.model, self.n = model, config.n
        self.lmp = open_lammps()
        lx, ly, xy = config.box
        self.commands(
            "units lj",
            "dimension 2",
            "boundary p p p",
            "atom_style atomic",
            "atom_modify map array sort 0 0.0",
            f"region box prism 0 {lx!r} 0 {ly!r} -0.5 0.5 {xy!r} 0 0 units box",
            "create_box 2 box",
            "mass * 1.0",
        )
        x = np.zeros((config.n, 3))
        x[:, :2] = config.wrapped()
        ids = list(range(1, config.n + 1))
        created = self.lmp.create_atoms(config.n, ids, config.types.tolist(), x.ravel().tolist())
        if created != config.n:
            raise RuntimeError(f"LAMMPS created {created} of {config.n} atoms")
        self.commands(
            *model.pair_commands(dissipation, seed),
            "neighbor 0.3 bin",
            "neigh_modify every 1 delay 0 check yes",
            f"timestep {model.dt!r}",
            "fix twod all enforce2d",
            "compute virial all pressure NULL virial",
            "compute satom all stress/atom NULL",
            "compute satom_xy all reduce sum c_satom[4]",
            # thermo referencing the computes makes LAMMPS tally the virials they need at each run's end
            "thermo_style custom step pe c_virial[4] c_satom_xy",
            "thermo 0",
            "thermo_modify norm no",
            "min_style cg",
        )

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.lmp is not None:
            self.lmp.close()
            self.lmp = None

    def commands(self, *cmds: str) -> None:
        self.lmp.commands_list(list(cmds))

    def _by_id(self, values) -> np.ndarray:
        """Per-atom ``values`` (LAMMPS order) reordered by atom id."""
        ids = self.lmp.numpy.extract_atom("id")[: self.n]
        values = np.array(values[: self.n])
        out = np.empty_like(values)
        out[ids - 1] = values
        return out

    def box(self) -> tuple[float, float, float]:
        lo, hi, xy, _, _, _, _ = self.lmp.extract_box()
        return (hi[0] - lo[0], hi[1] - lo[1], xy)

    def configuration(self, attrs: dict | None = None) -> Configuration:
        """The current particles and box (positions shifted so that the box's lower corner is 0)."""
        lo, *_ = self.lmp.extract_box()
        pos = self._by_id(self.lmp.numpy.extract_atom("x"))[:, :2] - np.array(lo[:2])
        types = self._by_id(self.lmp.numpy.extract_atom("type"))
        return Configuration(pos, types, self.box(), dict(attrs or {}))

    def potential_energy(self) -> float:
        """Total potential energy (LJ energy units), evaluated now."""
        self.lmp.command("run 0")
        return float(self.lmp.get_thermo("pe"))

    def stress_xy(self) -> float:
        """Global shear stress sigma_xy = -P_xy from the virial (athermal states), evaluated now."""
        self.lmp.command("run 0")
        return -float(self.lmp.numpy.extract_compute("virial", 0, 1)[3])

    def atom_stress_xy(self) -> np.ndarray:
        """(N,) per-atom shear stress times area, by atom id, evaluated now.

        ``compute stress/atom`` (xy column) has the sign of the stress (-P): its sum over all atoms
        divided by the box area is ``stress_xy()`` (2D: area, whatever the box's z length).
        """
        self.lmp.command("run 0")
        return self._by_id(self.lmp.numpy.extract_compute("satom", 1, 2)[:, STRESS_XY])

    def minimize(self, ftol: float = MINIMIZE_FTOL) -> None:
        self.lmp.command(f"minimize 0.0 {ftol!r} 100000 1000000")
