"""Analysis of assembled sweeps: steady state, flow curves, Herschel-Bulkley, distributions, transients, plots.

Functions take the per-protocol Datasets of an assembled sweep (``tree["imposed_rate"].to_dataset()``,
``tree["imposed_stress"].to_dataset()``) and keep every sweep dimension they do not reduce.
"""

from .distributions import cumulative_gap, gap_distribution, threshold_distribution
from .flow_curve import (
    MODEL_VALIDITY_RATE,
    HerschelBulkleyFit,
    at_shear_modulus,
    fit_herschel_bulkley,
    flow_curve,
    herschel_bulkley,
)
from .plots import (
    plot_creep,
    plot_cumulative_gap,
    plot_distributions,
    plot_flow_curve,
    plot_stress_strain,
    write_figures,
)
from .steady_state import steady_strain_rate, steady_stress, steady_window
from .transients import creep_minimum, stress_overshoot, stuck_statistics

__all__ = [
    "MODEL_VALIDITY_RATE",
    "HerschelBulkleyFit",
    "at_shear_modulus",
    "creep_minimum",
    "cumulative_gap",
    "fit_herschel_bulkley",
    "flow_curve",
    "gap_distribution",
    "herschel_bulkley",
    "plot_creep",
    "plot_cumulative_gap",
    "plot_distributions",
    "plot_flow_curve",
    "plot_stress_strain",
    "steady_strain_rate",
    "steady_stress",
    "steady_window",
    "stress_overshoot",
    "stuck_statistics",
    "threshold_distribution",
    "write_figures",
]
