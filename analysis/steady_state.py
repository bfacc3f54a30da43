"""Steady state: the late window of a time series, averaged over it and over replicas."""

from __future__ import annotations

import numpy as np
import xarray as xr

REPLICA_DIM = "seed"


def steady_window(ds: xr.Dataset, start_fraction: float = 0.5) -> xr.DataArray:
    """Boolean mask on ``record``: the late part of each run taken as steady.

    Rule: under imposed rate, strain >= ``start_fraction`` x final strain (the paper's runs reach
    steady flow after a few units of mu gdot t; run to >= 8 and keep the late half); under creep,
    time >= ``start_fraction`` x final time (linear in time, so log-spaced records are weighted by
    the time they cover through the strain difference, see ``steady_strain_rate``).
    """
    if not 0 <= start_fraction < 1:
        raise ValueError(f"start_fraction must be in [0, 1), got {start_fraction}")
    clock = ds["strain"] if "shear_rate" in ds.dims else ds["time"]
    return clock >= start_fraction * clock.max("record")


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
    window = steady_window(ds, start_fraction)
    per_run = ds["stress"].where(window).mean("record")
    out = replica_mean(per_run, "stress")
    strain = ds["strain"]
    cut = start_fraction + (1 - start_fraction) / 2
    late = ds["stress"].where(strain >= cut * strain.max("record")).mean("record")
    early = ds["stress"].where(window & (strain < cut * strain.max("record"))).mean("record")
    out["stress_drift"] = (late - early).mean(REPLICA_DIM)
    out["stress"].attrs = {"units": ds["stress"].attrs.get("units", ""), "long_name": "steady external stress"}
    return out


def steady_strain_rate(ds: xr.Dataset, start_fraction: float = 0.5) -> xr.Dataset:
    """Steady strain rate of creep runs: strain gained over the window / its duration, per run.

    Stuck runs have rate 0 (they are in an absorbing state); they are excluded from the mean
    (which is the flowing branch of the flow curve) and counted in ``stuck_fraction``.
    """
    window = steady_window(ds, start_fraction)
    strain, time = ds["strain"].where(window), ds["time"].where(window)
    per_run = (strain.max("record") - strain.min("record")) / (time.max("record") - time.min("record"))
    flowing = ds["stuck"] == 0
    out = replica_mean(per_run.where(flowing), "strain_rate")
    out["stuck_fraction"] = (ds["stuck"] == 1).sum(REPLICA_DIM) / ds["stuck"].notnull().sum(REPLICA_DIM)
    out["strain_rate"].attrs = {"units": "1/time", "long_name": "steady strain rate"}
    return out
