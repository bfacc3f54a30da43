"""Preparing glasses: melt, quench at a chosen protocol, minimise to the inherent structure."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import numpy as np
from epmsweep.engine import ParameterError, __version__

from .configuration import Configuration
from .model import GlassModel
from .simulation import Simulation


@dataclass(frozen=True)
class QuenchProtocol:
    """Melt at ``T_melt`` for ``t_melt``, cool linearly to ``T_final`` at ``rate``, hold for ``t_anneal``.

    Temperatures in eps_LS / k_B, times in LJ time units; Nose-Hoover thermostat with damping time
    ``t_damp``. ``rate = inf`` quenches instantaneously (minimisation straight from the liquid): the
    highest inherent-structure energy. Slower cooling and longer annealing give lower energies
    (an E1 > E2 > E3 family). The liquid of this model falls out of equilibrium near T = 0.4 on
    the time scales of a few hundred time units.
    """

    T_melt: float = 1.0
    t_melt: float = 50.0
    rate: float = math.inf
    T_final: float = 0.3
    t_anneal: float = 0.0
    t_damp: float = 0.5

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                raise ParameterError(f"protocol.{name}", f"must be a number, got {value!r}")
            strict = name in ("T_melt", "rate", "t_damp")
            if value < 0 or (strict and value == 0):
                raise ParameterError(f"protocol.{name}", f"must be {'>' if strict else '>='} 0, got {value!r}")
            if name != "rate" and not math.isfinite(value):
                raise ParameterError(f"protocol.{name}", f"must be finite, got {value!r}")
        if self.T_final > self.T_melt:
            raise ParameterError("protocol.T_final", f"must be <= T_melt = {self.T_melt}, got {self.T_final}")

    @property
    def t_quench(self) -> float:
        """Duration of the linear cooling (0 for an instantaneous quench)."""
        return 0.0 if math.isinf(self.rate) else (self.T_melt - self.T_final) / self.rate

    def to_attrs(self) -> dict:
        return {f"quench_{k}": float(v) for k, v in asdict(self).items()}


LAMMPS_MAX_SEED = 900_000_000
"""The largest seed every LAMMPS generator takes (``RanMars``, used by ``dpd/ext`` and ``langevin``,
refuses larger ones; ``RanPark``, used by ``velocity``, takes up to 2^31 - 1)."""


def lammps_seeds(seed: int | np.random.SeedSequence, n: int) -> list[int]:
    """``n`` seeds for LAMMPS commands, derived from ``seed``, in 1 .. ``LAMMPS_MAX_SEED``."""
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return [int(s % LAMMPS_MAX_SEED) + 1 for s in ss.generate_state(n, np.uint64)]


def random_configuration(n: int, seed: int | np.random.SeedSequence, model: GlassModel | None = None) -> Configuration:
    """``n`` particles on randomly chosen sites of a square grid at the model's density, species shuffled.

    No two particles are closer than the grid spacing (~1 sigma_LS): a safe start for melting.
    """
    model = model or GlassModel()
    n_large, n_small = model.counts(n)
    rng = np.random.default_rng(seed)
    side = model.box_length(n)
    per_row = math.ceil(math.sqrt(n))
    grid = np.stack(np.meshgrid(np.arange(per_row), np.arange(per_row)), -1).reshape(-1, 2)
    positions = (grid[rng.choice(len(grid), n, replace=False)] + 0.5) * (side / per_row)
    types = rng.permutation(np.repeat([1, 2], [n_large, n_small]))
    return Configuration(positions, types, (side, side, 0.0))


def _steps(model: GlassModel, duration: float) -> int:
    return int(round(duration / model.dt))


def prepare_glass(
    n: int,
    protocol: QuenchProtocol,
    seed: int,
    model: GlassModel | None = None,
) -> Configuration:
    """An inherent structure of ``n`` particles prepared by ``protocol``.

    Returns
    -------
    Configuration
        Minimised positions (cg, force-norm tolerance ``MINIMIZE_FTOL``), no velocities; ``attrs``
        holds ``energy_per_particle`` (eps_LS), the protocol, the model, the seed, the package
        version and the creation time.
    """
    model = model or GlassModel()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError("seed", f"must be an integer >= 0, got {seed!r}")
    ss = np.random.SeedSequence(int(seed))
    start = random_configuration(n, ss.spawn(1)[0], model)
    (velocity_seed,) = lammps_seeds(ss, 1)
    p = protocol
    with Simulation(model, start) as sim:
        sim.minimize()  # relax the grid start before giving velocities
        sim.commands(f"velocity all create {p.T_melt!r} {velocity_seed} dist gaussian mom yes")
        stages = [(p.T_melt, p.T_melt, p.t_melt)]
        if p.t_quench > 0:
            stages.append((p.T_melt, p.T_final, p.t_quench))
        if p.t_anneal > 0:
            stages.append((p.T_final, p.T_final, p.t_anneal))
        for t_start, t_stop, duration in stages:
            if _steps(model, duration) > 0:
                sim.commands(
                    f"fix thermostat all nvt temp {t_start!r} {t_stop!r} {p.t_damp!r}",
                    f"run {_steps(model, duration)}",
                    "unfix thermostat",
                )
        sim.commands("velocity all set 0.0 0.0 0.0")
        sim.minimize()
        energy = sim.potential_energy() / n
        attrs = {
            "kind": "inherent_structure",
            "energy_per_particle": energy,
            "seed": int(seed),
            **p.to_attrs(),
            **model.to_attrs(),
            "epmsweep_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        return sim.configuration(attrs)
