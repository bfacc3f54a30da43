"""Steady state: the late window of a time series, averaged over it and over replicas."""

from __future__ import annotations

import numpy as np
import xarray as xr
from epmsweep.engine.units import RATE, STRESS

REPLICA_DIM = "seed"
RECORD_DIMS = ("strain", "time")
SNAPSHOT_DIMS = ("snapshot_strain", "snapshot_time")


def record_dim(ds: xr.Dataset | xr.DataArray) -> str:
    """The dimension of the time series: ``strain`` (imposed rate) or ``time`` (imposed stress, or
    an imposed-rate run whose length was given in time)."""
    try:
        return next(d for d in RECORD_DIMS if d in ds.dims)
    except StopIteration:
        raise ValueError(f"no record dimension {RECORD_DIMS} among the dims {tuple(ds.dims)}") from None


def snapshot_dim(ds: xr.Dataset | xr.DataArray) -> str | None:
    """The dimension of the snapshots (``snapshot_strain`` or ``snapshot_time``), None without any."""
    return next((d for d in SNAPSHOT_DIMS if d in ds.dims and ds.sizes[d]), None)


def is_imposed_rate(ds: xr.Dataset) -> bool:
    """True for imposed-rate data: an assembled group, a single run or a particle run."""
    return ds.attrs.get("protocol") == "imposed_rate" or "shear_rate" in ds.coords


def completed(ds: xr.Dataset) -> xr.DataArray:
    """The runs present in ``ds`` (assembled files mark missing or failed runs in ``completed``)."""
    if "completed" in ds:
        return ds["completed"].astype(bool)
    dims = [d for d in ds.dims if d not in (*RECORD_DIMS, *SNAPSHOT_DIMS, "y", "x")]
    coords = {d: ds[d] for d in dims if d in ds.coords}
    return xr.DataArray(np.ones([ds.sizes[d] for d in dims], bool), dims=dims, coords=coords)


def steady_window(ds: xr.Dataset, start_fraction: float = 0.5) -> xr.DataArray:
    """Boolean mask on ``record``: the late part of each run taken as steady.

    Rule: under imposed rate, strain >= ``start_fraction`` x final strain (the paper's runs reach
    steady flow after a few units of mu gdot t; run to >= 8 and keep the late half); under creep,
    time >= ``start_fraction`` x final time (linear in time, so log-spaced records are weighted by
    the time they cover through the strain difference, see ``steady_strain_rate``).
    """
    if not 0 <= start_fraction < 1:
        raise ValueError(f"start_fraction must be in [0, 1), got {start_fraction}")
    clock = ds["strain"] if is_imposed_rate(ds) else ds["time"]
    return clock >= start_fraction * clock.max(record_dim(ds))


def replica_mean(per_run: xr.DataArray, name: str) -> xr.Dataset:
    """Mean over replicas with its standard error (ddof = 1) and the number of replicas used."""
    n = per_run.notnull().sum(REPLICA_DIM)
    mean = per_run.mean(REPLICA_DIM)
    sem = per_run.std(REPLICA_DIM, ddof=1) / np.sqrt(n.where(n > 0))
    return xr.Dataset({name: mean, f"{name}_err": sem, f"{name}_n": n})


def steady_stress(ds: xr.Dataset, start_fraction: float = 0.5) -> xr.Dataset:
    """Steady external stress of imposed-rate runs: window mean per run, then mean +- sem over seeds.

    Also returns ``stress_drift``: mean of the last quarter minus mean of the third quarter of the
    window (seed-averaged), to check that the window is steady.
    """
    rd = record_dim(ds)
    window = steady_window(ds, start_fraction)
    per_run = ds["stress"].where(window).mean(rd)
    out = replica_mean(per_run, "stress")
    strain = ds["strain"]
    cut = start_fraction + (1 - start_fraction) / 2
    late = ds["stress"].where(strain >= cut * strain.max(rd)).mean(rd)
    early = ds["stress"].where(window & (strain < cut * strain.max(rd))).mean(rd)
    out["stress_drift"] = (late - early).mean(REPLICA_DIM).assign_attrs(units=STRESS, long_name="stress drift")
    out["stress"].attrs = {"units": STRESS, "long_name": "steady stress"}
    out["stress_err"].attrs = {"units": STRESS, "long_name": "steady stress error"}
    return out


def steady_strain_rate(ds: xr.Dataset, start_fraction: float = 0.5) -> xr.Dataset:
    """Steady strain rate of creep runs: strain gained over the window / its duration, per run.

    Stuck runs have rate 0 (they are in an absorbing state); they are excluded from the mean
    (which is the flowing branch of the flow curve) and counted in ``stuck_fraction``.
    """
    rd = record_dim(ds)
    window = steady_window(ds, start_fraction)
    strain, time = ds["strain"].where(window), ds["time"].where(window)
    per_run = (strain.max(rd) - strain.min(rd)) / (time.max(rd) - time.min(rd))
    present = completed(ds)
    stuck = ds["stuck"].astype(bool) & present
    out = replica_mean(per_run.where(present & ~stuck), "strain_rate")
    out["stuck_fraction"] = (stuck.sum(REPLICA_DIM) / present.sum(REPLICA_DIM)).assign_attrs(
        units="1", long_name="stuck fraction"
    )
    out["strain_rate"].attrs = {"units": RATE, "long_name": "steady strain rate"}
    out["strain_rate_err"].attrs = {"units": RATE, "long_name": "steady strain rate error"}
    return out
