"""Transients: stress overshoot of imposed-rate runs, creep curves and arrest."""

from __future__ import annotations

import numpy as np
import xarray as xr
from epmsweep.engine.units import RATE, STRESS, TIME

from .steady_state import REPLICA_DIM, completed, record_dim, steady_strain_rate, steady_stress


def _at(da: xr.DataArray, dim: str, index: xr.DataArray) -> xr.DataArray:
    """``da`` at ``index`` along ``dim``, without the selected coordinate."""
    return da.isel({dim: index}).drop_vars(dim)


def stress_overshoot(ds: xr.Dataset, start_fraction: float = 0.5) -> xr.Dataset:
    """Peak of the replica-averaged stress-strain curve, its strain, and the overshoot above steady.

    The replica average removes most of the lattice noise of single runs; the overshoot is
    peak - steady stress (``steady_stress`` window rule), per shear rate and initial state.
    """
    rd = record_dim(ds)
    curve = ds["stress"].mean(REPLICA_DIM)
    strain = (ds["strain"] + xr.zeros_like(ds["stress"])).mean(REPLICA_DIM)
    i_peak = curve.fillna(-np.inf).argmax(rd)
    peak = _at(curve, rd, i_peak)
    steady = steady_stress(ds, start_fraction)["stress"]
    return xr.Dataset(
        {
            "peak_stress": peak.assign_attrs(units=STRESS, long_name="peak stress"),
            "strain_at_peak": _at(strain, rd, i_peak).assign_attrs(units="1", long_name="strain at the peak"),
            "steady_stress": steady,
            "overshoot": (peak - steady).assign_attrs(units=STRESS, long_name="stress overshoot"),
        }
    )


def creep_minimum(ds: xr.Dataset) -> xr.Dataset:
    """Time and depth of the minimum of the replica-averaged creep curve gdot(t), and fluidisation.

    The fluidisation time is the first time after the minimum at which the mean strain rate
    reaches half of its steady value; NaN when the curve never does (stuck, or not yet fluid).
    """
    rd = record_dim(ds)
    rate = ds["strain_rate"].mean(REPLICA_DIM)
    time = ds[rd]
    positive = rate.where(rate > 0)
    i_min = positive.fillna(np.inf).argmin(rd)
    steady = steady_strain_rate(ds)["strain_rate"]
    position = xr.DataArray(np.arange(ds.sizes[rd]), dims=rd)
    after = (position >= i_min) & (rate >= 0.5 * steady)
    first = after.argmax(rd)
    fluid_time = _at(time, rd, first).where(after.any(rd))
    return xr.Dataset(
        {
            "minimum_rate": _at(positive, rd, i_min).assign_attrs(units=RATE, long_name="minimum strain rate"),
            "minimum_time": _at(time, rd, i_min).assign_attrs(units=TIME, long_name="time of the minimum"),
            "steady_rate": steady,
            "depth": (steady / _at(positive, rd, i_min)).assign_attrs(units="1", long_name="steady / minimum rate"),
            "fluidisation_time": fluid_time.assign_attrs(units=TIME, long_name="fluidisation time"),
        }
    )


def stuck_statistics(ds: xr.Dataset) -> xr.Dataset:
    """Fraction of replicas that reached an absorbing state, and their mean arrest time."""
    present = completed(ds)
    stuck = ds["stuck"].astype(bool) & present
    n = present.sum(REPLICA_DIM)
    return xr.Dataset(
        {
            "stuck_fraction": (stuck.sum(REPLICA_DIM) / n).assign_attrs(units="1", long_name="stuck fraction"),
            "mean_arrest_time": ds["arrest_time"].where(stuck).mean(REPLICA_DIM).assign_attrs(
                units=TIME, long_name="mean arrest time"
            ),
            "replicas": n.assign_attrs(units="1", long_name="replicas"),
        }
    )
