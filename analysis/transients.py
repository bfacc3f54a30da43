"""Transients: stress overshoot of imposed-rate runs, creep curves and arrest."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .steady_state import REPLICA_DIM, steady_strain_rate, steady_stress


def stress_overshoot(ds: xr.Dataset, start_fraction: float = 0.5) -> xr.Dataset:
    """Peak of the replica-averaged stress-strain curve, its strain, and the overshoot above steady.

    The replica average removes most of the lattice noise of single runs; the overshoot is
    peak - steady stress (``steady_stress`` window rule), per shear rate and initial state.
    """
    curve = ds["stress"].mean(REPLICA_DIM)
    strain = ds["strain"].mean(REPLICA_DIM)
    i_peak = curve.fillna(-np.inf).argmax("record")
    peak = curve.isel(record=i_peak)
    steady = steady_stress(ds, start_fraction)["stress"]
    return xr.Dataset(
        {
            "peak_stress": peak.assign_attrs(units="LJ stress", long_name="peak of the mean stress-strain curve"),
            "strain_at_peak": strain.isel(record=i_peak).assign_attrs(units="1", long_name="strain at the peak"),
            "steady_stress": steady,
            "overshoot": (peak - steady).assign_attrs(units="LJ stress", long_name="peak minus steady stress"),
        }
    ).drop_vars("record", errors="ignore")


def creep_minimum(ds: xr.Dataset) -> xr.Dataset:
    """Time and depth of the minimum of the replica-averaged creep curve gdot(t), and fluidisation.

    The fluidisation time is the first time after the minimum at which the mean strain rate
    reaches half of its steady value; NaN when the curve never does (stuck, or not yet fluid).
    """
    rate = ds["strain_rate"].mean(REPLICA_DIM)
    time = ds["time"].mean(REPLICA_DIM)
    positive = rate.where(rate > 0)
    i_min = positive.fillna(np.inf).argmin("record")
    steady = steady_strain_rate(ds)["strain_rate"]
    after = (rate.record >= i_min) & (rate >= 0.5 * steady)
    first = after.argmax("record")
    fluid_time = time.isel(record=first).where(after.any("record"))
    return xr.Dataset(
        {
            "minimum_rate": positive.isel(record=i_min).assign_attrs(units="1/time", long_name="minimum strain rate"),
            "minimum_time": time.isel(record=i_min).assign_attrs(units="time", long_name="time of the minimum"),
            "steady_rate": steady,
            "depth": (steady / positive.isel(record=i_min)).assign_attrs(
                units="1", long_name="steady rate / minimum rate"
            ),
            "fluidisation_time": fluid_time.assign_attrs(units="time", long_name="first time at half the steady rate"),
        }
    ).drop_vars("record", errors="ignore")


def stuck_statistics(ds: xr.Dataset) -> xr.Dataset:
    """Fraction of replicas that reached an absorbing state, and their mean arrest time."""
    stuck = ds["stuck"]
    n = stuck.notnull().sum(REPLICA_DIM)
    return xr.Dataset(
        {
            "stuck_fraction": ((stuck == 1).sum(REPLICA_DIM) / n).assign_attrs(units="1"),
            "mean_arrest_time": ds["arrest_time"].mean(REPLICA_DIM).assign_attrs(units="time"),
            "replicas": n,
        }
    )
