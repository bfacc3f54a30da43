"""Transients: stress overshoot of imposed-rate runs, creep curves, fluidisation and arrest."""

from __future__ import annotations

import numpy as np
import xarray as xr
from epmsweep.engine.units import RATE, STRESS, TIME

from .steady_state import (
    REPLICA_DIM,
    arrest_times,
    completed,
    record_dim,
    replica_mean,
    steady_strain_rate,
    steady_stress,
)


def _at(da: xr.DataArray, dim: str, index: xr.DataArray) -> xr.DataArray:
    """``da`` at ``index`` along ``dim``, without the selected coordinate."""
    return da.isel({dim: index}).drop_vars(dim)


def _reason(**conditions: xr.DataArray) -> xr.DataArray:
    """One string per point: the first condition (in order) that holds, "" where none does."""
    reason = None
    for text, cond in reversed(list(conditions.items())):
        reason = xr.where(cond, text.replace("_", " "), "" if reason is None else reason)
    return reason.astype(str)


def stress_overshoot(ds: xr.Dataset, start_fraction: float = 0.5) -> xr.Dataset:
    """Peak of the replica-averaged stress-strain curve, its strain, and the overshoot above steady.

    The replica average removes most of the lattice noise of single runs; the overshoot is
    peak - steady stress (``steady_stress`` window rule). A peak at the first or the last record is
    no overshoot (the curve still rises, or never rose): NaN, with ``reason``.

    Parameters
    ----------
    ds : xarray.Dataset
        Imposed-rate group: ``stress`` [STRESS] on (..., shear_rate, seed, strain).
    start_fraction : float
        Start of the steady window (fraction of the final strain).

    Returns
    -------
    xarray.Dataset
        On the sweep dims without ``seed``, ``strain``: ``peak_stress``, ``steady_stress``,
        ``overshoot`` [STRESS], ``strain_at_peak`` [1], ``reason`` (str, "" for an interior peak).
    """
    rd = record_dim(ds)
    present = completed(ds)
    curve = ds["stress"].where(present).mean(REPLICA_DIM)
    strain = (ds["strain"] + xr.zeros_like(ds["stress"])).mean(REPLICA_DIM)
    i_peak = curve.fillna(-np.inf).argmax(rd)
    no_data = curve.isnull().all(rd)
    edge = (i_peak == 0) | (i_peak == ds.sizes[rd] - 1)
    interior = ~no_data & ~edge
    peak = _at(curve, rd, i_peak).where(interior)
    steady = steady_stress(ds, start_fraction)["stress"]
    return xr.Dataset(
        {
            "peak_stress": peak.assign_attrs(units=STRESS, long_name="peak stress"),
            "strain_at_peak": _at(strain, rd, i_peak).where(interior).assign_attrs(units="1",
                                                                                   long_name="strain at the peak"),
            "steady_stress": steady,
            "overshoot": (peak - steady).assign_attrs(units=STRESS, long_name="stress overshoot"),
            "reason": _reason(no_run=no_data, maximum_at_the_first_or_last_record=edge).assign_attrs(
                long_name="why there is no overshoot"
            ),
        }
    )


def creep_minimum(ds: xr.Dataset, start_fraction: float = 0.5, fluid_fraction: float = 0.5) -> xr.Dataset:
    """Minimum of each flowing creep run's strain rate gdot(t), its depth, and fluidisation, over replicas.

    Per flowing replica (stuck runs never fluidise and are left out): the minimum of gdot(t) over
    the records with t > 0 and gdot > 0; it counts only if it is interior (not the first or the
    last such record): a rate that only decays or only grows has no minimum. Its depth is the
    replica's steady rate / minimum rate; its fluidisation time the first time after the minimum
    at which gdot reaches ``fluid_fraction`` x its steady rate. Each is then averaged over the
    replicas that have it, with the standard error and the count.

    Parameters
    ----------
    ds : xarray.Dataset
        Creep group: ``strain_rate`` [RATE], ``strain`` on (..., stress_imposed, seed, time),
        ``stuck`` (bool) on (..., seed).
    start_fraction : float
        Start of the steady window (fraction of the final time).
    fluid_fraction : float
        Fraction of the steady rate that marks fluidisation.

    Returns
    -------
    xarray.Dataset
        On the sweep dims without ``seed`` and ``time``: ``minimum_rate``, ``minimum_rate_err``
        [RATE], ``minimum_time``, ``minimum_time_err`` [TIME], ``depth``, ``depth_err`` [1],
        ``fluidisation_time``, ``fluidisation_time_err`` [TIME], ``n_minimum`` (replicas with an
        interior minimum), ``n_flowing``, ``n_stuck``, ``steady_rate`` [RATE] (flowing replicas) and
        ``reason`` (str, "" where at least one replica has a minimum).
    """
    rd = record_dim(ds)
    present = completed(ds)
    stuck = ds["stuck"].astype(bool) & present
    flowing = present & ~stuck
    time = ds["time"] + xr.zeros_like(ds["strain_rate"])
    positive = ds["strain_rate"].where((ds["strain_rate"] > 0) & (time > 0) & flowing)
    i_min = positive.fillna(np.inf).argmin(rd)
    position = xr.DataArray(np.arange(ds.sizes[rd]), dims=rd)
    valid = positive.notnull()
    first_valid = valid.argmax(rd)
    last_valid = ds.sizes[rd] - 1 - valid.isel({rd: slice(None, None, -1)}).argmax(rd)
    interior = valid.any(rd) & (i_min > first_valid) & (i_min < last_valid)
    min_rate = _at(positive, rd, i_min).where(interior)
    min_time = _at(time, rd, i_min).where(interior)
    sr = steady_strain_rate(ds, start_fraction)
    window = ds["time"] >= start_fraction * ds["time"].max(rd)
    strain, t = ds["strain"].where(window), time.where(window)
    run_steady = ((strain.max(rd) - strain.min(rd)) / (t.max(rd) - t.min(rd))).where(flowing)
    after = (position > i_min) & (ds["strain_rate"] >= fluid_fraction * run_steady)
    fluid = _at(time, rd, after.argmax(rd)).where(after.any(rd) & interior)
    m = {
        "minimum_rate": (replica_mean(min_rate, "v"), RATE, "minimum strain rate"),
        "minimum_time": (replica_mean(min_time, "v"), TIME, "time of the minimum"),
        "depth": (replica_mean(run_steady / min_rate, "v"), "1", "steady / minimum strain rate"),
        "fluidisation_time": (replica_mean(fluid, "v"), TIME, "fluidisation time"),
    }
    out = xr.Dataset()
    for name, (mean, units, long_name) in m.items():
        out[name] = mean["v"].assign_attrs(units=units, long_name=long_name)
        out[f"{name}_err"] = mean["v_err"].assign_attrs(units=units, long_name=f"{long_name} error")
    out["n_minimum"] = interior.sum(REPLICA_DIM).assign_attrs(units="1", long_name="replicas with a minimum")
    out["n_flowing"] = sr["n_flowing"]
    out["n_stuck"] = sr["n_stuck"]
    out["steady_rate"] = sr["strain_rate"]
    out["reason"] = _reason(
        every_replica_stuck=sr["n_flowing"] == 0, no_interior_minimum_in_any_flowing_replica=out["n_minimum"] == 0
    ).assign_attrs(long_name="why there is no minimum")
    return out


def stuck_statistics(ds: xr.Dataset) -> xr.Dataset:
    """How many replicas reached an absorbing state, and when, beside those that flow.

    Parameters
    ----------
    ds : xarray.Dataset
        Creep group: ``stuck`` (bool) on (..., stress_imposed, seed); ``arrest_time`` [TIME] and
        ``completed`` (bool) used when present.

    Returns
    -------
    xarray.Dataset
        Without ``seed``: ``stuck_fraction`` [1], ``n_stuck``, ``n_flowing``, ``replicas``,
        ``mean_arrest_time``, ``arrest_time_err`` [TIME] (over the stuck replicas).
    """
    present = completed(ds)
    stuck = ds["stuck"].astype(bool) & present
    n = present.sum(REPLICA_DIM)
    arrest = replica_mean(arrest_times(ds).where(stuck), "t")
    return xr.Dataset(
        {
            "stuck_fraction": (stuck.sum(REPLICA_DIM) / n).assign_attrs(units="1", long_name="stuck fraction"),
            "n_stuck": stuck.sum(REPLICA_DIM).assign_attrs(units="1", long_name="stuck replicas"),
            "n_flowing": (present & ~stuck).sum(REPLICA_DIM).assign_attrs(units="1", long_name="flowing replicas"),
            "mean_arrest_time": arrest["t"].assign_attrs(units=TIME, long_name="mean arrest time"),
            "arrest_time_err": arrest["t_err"].assign_attrs(units=TIME, long_name="arrest time error"),
            "replicas": n.assign_attrs(units="1", long_name="replicas"),
        }
    )
