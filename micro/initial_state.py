"""From a particle configuration to the lattice engine's initial state (threshold map, stress map, mu)."""

from __future__ import annotations

import math
import os

from distributed import Client
from epmsweep.engine import InitialState, ParameterError

from .configuration import Configuration
from .frozen_matrix import FrozenMatrixProbe
from .model import GlassModel
from .modulus import shear_modulus
from .stress_map import default_grid, stress_map
from .threshold_map import lattice_thresholds, threshold_map


def measure_initial_state(
    config: Configuration,
    L: int | None = None,
    *,
    probe: FrozenMatrixProbe | None = None,
    model: GlassModel | None = None,
    client: Client | None = None,
    out: str | os.PathLike | None = None,
    name: str = "measured",
) -> InitialState:
    """Measure an initial state of an inherent structure: stress map, frozen-matrix thresholds, modulus.

    The thresholds are probed as a sweep on ``client`` (default: an embedded LocalCluster; ``out``
    keeps the per-probe files for resuming). The state's provenance (saved as netCDF attributes by
    ``InitialState.save``) records the preparation of ``config`` (``prep_*``: energy per particle,
    quench protocol, seed, model), the grid, the probe and how mu was measured.
    """
    model, probe = model or GlassModel(), probe or FrozenMatrixProbe()
    L = L or default_grid(math.sqrt(config.area))
    stress, global_stress = stress_map(config, L, model)
    mu, _ = shear_modulus(config, model=model)
    if not mu > 0:
        raise ParameterError("shear_modulus", f"measured {mu:g} <= 0: the configuration is not a stable solid")
    thresholds, threshold_attrs = lattice_thresholds(
        threshold_map(config, L, probe, model, client=client, out=out, name=f"{name}_thresholds")
    )
    provenance = {
        "source": "particles",
        **{f"prep_{k}": v for k, v in config.attrs.items()},
        "grid_cells": L,
        "cell_size": math.sqrt(config.area) / L,
        "particles": config.n,
        "global_stress": global_stress,
        "shear_modulus_method": "quasistatic steps of 1e-4 from the inherent structure, least-squares slope",
        **threshold_attrs,
        "thresholds_method": "frozen matrix",
    }
    return InitialState(thresholds, stress, mu, name, provenance)
