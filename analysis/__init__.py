"""Analysis of assembled sweeps: steady state, flow curves, Herschel-Bulkley, distributions, transients,
quasistatic avalanches, plots.

Functions take the per-protocol Datasets of an assembled sweep (``tree["imposed_rate"].to_dataset()``,
``tree["imposed_stress"].to_dataset()``, ``tree["quasistatic"].to_dataset()``) and keep every sweep
dimension they do not reduce.
"""

from .avalanches import (
    avalanche_distribution,
    fit_avalanches,
    fitted_density,
    quasistatic_flow_stress,
    quasistatic_overshoot,
    quasistatic_stress_strain,
    steady_events,
)
from .distributions import cumulative_gap, gap_distribution, threshold_distribution
from .flow_curve import (
    MODEL_VALIDITY_RATE,
    at_shear_modulus,
    fit_herschel_bulkley,
    flow_curve,
    herschel_bulkley,
    herschel_bulkley_curve,
)
from .steady_state import DRIFT_TOLERANCE, check_drift, steady_strain_rate, steady_stress, steady_window
from .transients import creep_minimum, stress_overshoot, stuck_statistics

PLOTS = (
    "plot_avalanche_distribution",
    "plot_creep",
    "plot_cumulative_gap",
    "plot_distributions",
    "plot_flow_curve",
    "plot_quasistatic_flow_stress",
    "plot_quasistatic_stress_strain",
    "plot_stress_strain",
    "save_figure",
    "write_figures",
)
"""The plotting functions (``analysis.plots``): imported on first use, so that analysis without
figures (the assembly's summary, a calibration's objective) does not load matplotlib."""


def __getattr__(name: str):
    if name in PLOTS:
        from . import plots

        return getattr(plots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *PLOTS})


__all__ = [
    "MODEL_VALIDITY_RATE",
    "DRIFT_TOLERANCE",
    "at_shear_modulus",
    "avalanche_distribution",
    "check_drift",
    "creep_minimum",
    "cumulative_gap",
    "fit_avalanches",
    "fit_herschel_bulkley",
    "fitted_density",
    "flow_curve",
    "gap_distribution",
    "herschel_bulkley",
    "herschel_bulkley_curve",
    "quasistatic_flow_stress",
    "quasistatic_overshoot",
    "quasistatic_stress_strain",
    "steady_strain_rate",
    "steady_events",
    "steady_stress",
    "steady_window",
    "stress_overshoot",
    "stuck_statistics",
    "threshold_distribution",
    *PLOTS,
]
