"""Shear modulus from the small-strain slope of quasistatic (athermal) stress-strain steps."""

from __future__ import annotations

import numpy as np
from epmsweep.engine import ParameterError

from .configuration import Configuration
from .model import GlassModel
from .simulation import Simulation


def apply_strain(sim: Simulation, increment: float) -> None:
    """Shear the box by ``increment`` (gamma), mapping every particle affinely."""
    _, ly, _ = sim.box()
    sim.commands(f"change_box all xy delta {increment * ly!r} remap units box")


def shear_modulus(
    config: Configuration, step: float = 1e-4, n_steps: int = 4, model: GlassModel | None = None
) -> tuple[float, np.ndarray]:
    """mu = d sigma_xy / d gamma from quasistatic steps: affine shear by ``step``, then cg minimisation.

    The slope is the least-squares fit of sigma_xy against gamma over the elastic branch: the
    points up to the first stress drop (a plastic event), at least two. Strains stay <= 4e-4 by
    default, below the first plastic event of most glasses of 10^3 - 10^4 particles.

    Returns
    -------
    (mu, stresses) : (float, (n_steps + 1,) float64)
        Modulus and the stresses at gamma = 0, step, ..., n_steps * step (stress units).
    """
    if not (isinstance(step, (int, float)) and 0 < step < 0.01):
        raise ParameterError("step", f"must be a number in (0, 0.01), got {step!r}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ParameterError("n_steps", f"must be an integer >= 1, got {n_steps!r}")
    with Simulation(model or GlassModel(), config) as sim:
        stresses = [sim.stress_xy()]
        for _ in range(n_steps):
            apply_strain(sim, step)
            sim.minimize()
            stresses.append(sim.stress_xy())
    stresses = np.array(stresses)
    drops = np.flatnonzero(np.diff(stresses) <= 0)
    n_elastic = max(2, drops[0] + 1 if drops.size else stresses.size)
    strains = step * np.arange(stresses.size)
    slope = np.polyfit(strains[:n_elastic], stresses[:n_elastic], 1)[0]
    return float(slope), stresses
