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

    The slope is the least-squares fit of sigma_xy against gamma over the elastic branch
    (``elastic_slope``). Strains stay <= 4e-4 by default, below the first plastic event of most
    glasses of 10^3 - 10^4 particles.

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
    return elastic_slope(step * np.arange(stresses.size), stresses), stresses


def elastic_slope(strains: np.ndarray, stresses: np.ndarray) -> float:
    """Least-squares slope of ``stresses`` against ``strains`` (shape (n,), n >= 2) over the elastic
    branch: the longest run of points between stress drops (plastic events), the first such run
    when several are as long. A drop at the first step (the minimised glass relaxing further once
    sheared) therefore leaves out the starting point instead of the whole curve."""
    cuts = [0, *(np.flatnonzero(np.diff(stresses) <= 0) + 1).tolist(), stresses.size]
    start, stop = max(zip(cuts[:-1], cuts[1:], strict=True), key=lambda run: run[1] - run[0])
    if stop - start < 2:  # no two consecutive points rise: the slope of the first pair
        start, stop = 0, 2
    return float(np.polyfit(strains[start:stop], stresses[start:stop], 1)[0])
