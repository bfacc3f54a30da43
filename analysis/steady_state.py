"""Steady state: the late window of a time series, averaged over it and over replicas."""

from __future__ import annotations

import numpy as np
import xarray as xr
from epmsweep.engine.units import RATE, STRESS, TIME

REPLICA_DIM = "seed"
RECORD_DIMS = ("strain", "time")
AVALANCHE_DIM = "avalanche"
"""Record dimension of quasistatic runs: one record per avalanche, the strain a series on it."""
SNAPSHOT_DIMS = ("snapshot_strain", "snapshot_time")


def record_dim(ds: xr.Dataset | xr.DataArray) -> str:
    """The dimension of the time series: ``strain`` (imposed rate) or ``time`` (imposed stress, or
    an imposed-rate run whose length was given in time).

    Parameters
    ----------
    ds : xarray.Dataset or xarray.DataArray
        A group, a run, or one of their variables.

    Returns
    -------
    str
        ``"strain"`` or ``"time"``; ValueError if neither is a dimension.
    """
    try:
        return next(d for d in RECORD_DIMS if d in ds.dims)
    except StopIteration:
        raise ValueError(f"no record dimension {RECORD_DIMS} among the dims {tuple(ds.dims)}") from None


def snapshot_dim(ds: xr.Dataset | xr.DataArray) -> str | None:
    """The dimension of the snapshots (``snapshot_strain`` or ``snapshot_time``), None without any.

    Parameters
    ----------
    ds : xarray.Dataset or xarray.DataArray

    Returns
    -------
    str or None
    """
    return next((d for d in SNAPSHOT_DIMS if d in ds.dims and ds.sizes[d]), None)


def is_imposed_rate(ds: xr.Dataset) -> bool:
    """True for imposed-rate data: an assembled group, a single run or a particle run.

    Parameters
    ----------
    ds : xarray.Dataset
        Read: the ``protocol`` attribute, else the presence of a ``shear_rate`` coordinate.

    Returns
    -------
    bool
    """
    return ds.attrs.get("protocol") == "imposed_rate" or "shear_rate" in ds.coords


def completed(ds: xr.Dataset) -> xr.DataArray:
    """The runs present in ``ds`` (assembled files mark missing or failed runs in ``completed``).

    Parameters
    ----------
    ds : xarray.Dataset
        A group; ``completed`` (bool, on the sweep dims and ``seed``) is used when present.

    Returns
    -------
    xarray.DataArray
        Bool on the sweep dims and ``seed`` (all True without ``completed``).
    """
    if "completed" in ds:
        return ds["completed"].astype(bool)
    dims = [d for d in ds.dims if d not in (*RECORD_DIMS, AVALANCHE_DIM, *SNAPSHOT_DIMS, "y", "x")]
    coords = {d: ds[d] for d in dims if d in ds.coords}
    return xr.DataArray(np.ones([ds.sizes[d] for d in dims], bool), dims=dims, coords=coords)


def steady_window(ds: xr.Dataset, start_fraction: float = 0.5) -> xr.DataArray:
    """Boolean mask on ``record``: the late part of each run taken as steady.

    Rule: under imposed rate, strain >= ``start_fraction`` x final strain (the paper's runs reach
    steady flow after a few units of mu gdot t; run to >= 8 and keep the late half); under creep,
    time >= ``start_fraction`` x final time (linear in time, so log-spaced records are weighted by
    the time they cover through the strain difference, see ``steady_strain_rate``).

    Parameters
    ----------
    ds : xarray.Dataset
        A group or run with ``strain`` [1] (imposed rate) or ``time`` [TIME] (creep) on the record dim.
    start_fraction : float
        In [0, 1).

    Returns
    -------
    xarray.DataArray
        Bool on the dims of the clock (record dim, and the run dims where the clock depends on them).
    """
    if not 0 <= start_fraction < 1:
        raise ValueError(f"start_fraction must be in [0, 1), got {start_fraction}")
    clock = ds["strain"] if is_imposed_rate(ds) else ds["time"]
    return clock >= start_fraction * clock.max(record_dim(ds))


DRIFT_TOLERANCE = 2.0
"""A window is steady when its drift is within this many standard errors of zero (``check_drift``)."""


def replica_mean(per_run: xr.DataArray, name: str) -> xr.Dataset:
    """Mean over replicas with its standard error (ddof = 1) and the number of replicas used.

    Parameters
    ----------
    per_run : xarray.DataArray
        One value per run, with dimension ``seed``; NaN for runs to leave out.
    name : str
        Name of the mean; the error and the count are ``{name}_err`` and ``{name}_n``.

    Returns
    -------
    xarray.Dataset
        ``{name}``, ``{name}_err`` (NaN with fewer than 2 values), ``{name}_n``, without ``seed``.
    """
    n = per_run.notnull().sum(REPLICA_DIM)
    mean = per_run.mean(REPLICA_DIM)
    sem = per_run.std(REPLICA_DIM, ddof=1) / np.sqrt(n.where(n > 0))
    return xr.Dataset({name: mean, f"{name}_err": sem, f"{name}_n": n})


def check_drift(
    early: xr.DataArray, late: xr.DataArray, value: xr.DataArray, tolerance: float = DRIFT_TOLERANCE,
    relative_floor: float = 0.01,
) -> xr.Dataset:
    """The one steadiness rule of both protocols: drift of the late window against its error.

    The steady window of each run is cut in two halves; the drift is the replica mean of
    (second half - first half) and its error the standard error of that mean over replicas. The
    window is steady when ``|drift| <= tolerance x error``, or when ``|drift| <= relative_floor x
    |value|`` (so that noiseless data, and a single replica, whose error is unknown, are judged
    by a relative change of 1 % by default).

    Parameters
    ----------
    early, late : xarray.DataArray
        Per-run value over the first and the second half of the window (dim ``seed``); NaN for
        runs to leave out (stuck or missing).
    value : xarray.DataArray
        The steady value the drift is compared with (replica mean, without ``seed``).
    tolerance : float
        Number of standard errors allowed.
    relative_floor : float
        Relative drift always accepted.

    Returns
    -------
    xarray.Dataset
        ``drift``, ``drift_err`` and ``steady`` (bool; False where there is no value).
    """
    d = replica_mean(late - early, "drift")
    error_ok = np.abs(d["drift"]) <= tolerance * d["drift_err"].fillna(0.0)
    floor_ok = np.abs(d["drift"]) <= relative_floor * np.abs(value)
    steady = (error_ok | floor_ok) & value.notnull() & d["drift"].notnull()
    return xr.Dataset({"drift": d["drift"], "drift_err": d["drift_err"], "steady": steady})


def _halves(ds: xr.Dataset, start_fraction: float) -> tuple[xr.DataArray, xr.DataArray]:
    """Masks of the first and the second half of the steady window (in the protocol's clock)."""
    rd = record_dim(ds)
    clock = ds["strain"] if is_imposed_rate(ds) else ds["time"]
    end = clock.max(rd)
    cut = (start_fraction + (1 - start_fraction) / 2) * end
    window = steady_window(ds, start_fraction)
    return window & (clock < cut), window & (clock >= cut)


def _add_drift(out: xr.Dataset, name: str, units: str, early, late, tolerance: float) -> None:
    """Put ``check_drift`` of ``out[name]`` into ``out``: ``<name>_drift``, ``<name>_drift_err``, ``steady``."""
    drift = check_drift(early, late, out[name], tolerance)
    label = name.replace("_", " ")
    out[f"{name}_drift"] = drift["drift"].assign_attrs(units=units, long_name=f"{label} drift over the window")
    out[f"{name}_drift_err"] = drift["drift_err"].assign_attrs(units=units, long_name=f"{label} drift error")
    out["steady"] = drift["steady"].assign_attrs(long_name="steady (drift within its error)", tolerance=tolerance)


def steady_stress(ds: xr.Dataset, start_fraction: float = 0.5, tolerance: float = DRIFT_TOLERANCE) -> xr.Dataset:
    """Steady external stress of imposed-rate runs: window mean per run, then mean +- sem over seeds.

    Parameters
    ----------
    ds : xarray.Dataset
        Imposed-rate group: ``stress`` [STRESS] on (..., seed, strain) with the ``strain`` clock;
        ``completed`` (bool, optional) marks present runs.
    start_fraction : float
        The window is strain >= start_fraction x final strain (``steady_window``).
    tolerance : float
        Drift allowed, in standard errors (``check_drift``).

    Returns
    -------
    xarray.Dataset
        On the sweep dims without ``seed`` and ``strain``: ``stress``, ``stress_err`` [STRESS],
        ``stress_n`` (replicas used), ``stress_drift``, ``stress_drift_err`` [STRESS] (second
        half of the window minus first half, replica mean and its error) and ``steady`` (bool).
    """
    rd = record_dim(ds)
    present = completed(ds)
    window = steady_window(ds, start_fraction)
    per_run = ds["stress"].where(window).mean(rd).where(present)
    out = replica_mean(per_run, "stress")
    first, second = _halves(ds, start_fraction)
    early = ds["stress"].where(first).mean(rd).where(present)
    late = ds["stress"].where(second).mean(rd).where(present)
    _add_drift(out, "stress", STRESS, early, late, tolerance)
    out["stress"].attrs = {"units": STRESS, "long_name": "steady stress"}
    out["stress_err"].attrs = {"units": STRESS, "long_name": "steady stress error"}
    out["stress_n"].attrs = {"units": "1", "long_name": "replicas"}
    return out


def _rate_over(ds: xr.Dataset, mask: xr.DataArray) -> xr.DataArray:
    """Strain gained over the records in ``mask`` divided by the time they span, per run."""
    rd = record_dim(ds)
    strain, time = ds["strain"].where(mask), ds["time"].where(mask)
    return (strain.max(rd) - strain.min(rd)) / (time.max(rd) - time.min(rd))


def arrest_times(ds: xr.Dataset) -> xr.DataArray:
    """``arrest_time`` of the runs [TIME]; NaN where the data carry none (e.g. particle runs, which
    flag ``stuck`` from their late rate only)."""
    if "arrest_time" in ds:
        return ds["arrest_time"]
    return xr.full_like(ds["stuck"], np.nan, dtype=float).assign_attrs(units=TIME, long_name="arrest time")


def steady_strain_rate(ds: xr.Dataset, start_fraction: float = 0.5, tolerance: float = DRIFT_TOLERANCE) -> xr.Dataset:
    """Steady strain rate of creep runs, of the flowing replicas only, with the stuck ones beside it.

    Per run the rate is the strain gained over the window divided by its duration. Stuck runs
    (absorbing state, rate 0) never enter the mean: it is the flowing replicas' late rate, the
    flowing branch of the flow curve; the stuck ones are counted (``n_stuck``, ``stuck_fraction``)
    and their arrest times averaged separately. The window is checked for drift as under imposed
    rate (``check_drift``: rate over the second half minus the first half, flowing replicas).

    Parameters
    ----------
    ds : xarray.Dataset
        Creep group: ``strain`` [1] and ``time`` [TIME] on (..., seed, time), ``stuck`` (bool) and
        ``arrest_time`` [TIME] on (..., seed); ``completed`` (bool, optional).
    start_fraction : float
        The window is time >= start_fraction x final time (``steady_window``).
    tolerance : float
        Drift allowed, in standard errors.

    Returns
    -------
    xarray.Dataset
        On the sweep dims without ``seed`` and ``time``: ``strain_rate``, ``strain_rate_err``
        [RATE] and ``strain_rate_n`` (flowing replicas), ``n_flowing``, ``n_stuck``,
        ``stuck_fraction`` [1], ``arrest_time``, ``arrest_time_err`` [TIME] (stuck replicas),
        ``strain_rate_drift``, ``strain_rate_drift_err`` [RATE] and ``steady`` (bool; False where
        no replica flows).
    """
    window = steady_window(ds, start_fraction)
    present = completed(ds)
    stuck = ds["stuck"].astype(bool) & present
    flowing = present & ~stuck
    out = replica_mean(_rate_over(ds, window).where(flowing), "strain_rate")
    out["n_flowing"] = flowing.sum(REPLICA_DIM).assign_attrs(units="1", long_name="flowing replicas")
    out["n_stuck"] = stuck.sum(REPLICA_DIM).assign_attrs(units="1", long_name="stuck replicas")
    out["stuck_fraction"] = (stuck.sum(REPLICA_DIM) / present.sum(REPLICA_DIM)).assign_attrs(
        units="1", long_name="stuck fraction"
    )
    arrest = replica_mean(arrest_times(ds).where(stuck), "arrest_time")
    out["arrest_time"] = arrest["arrest_time"].assign_attrs(units=TIME, long_name="mean arrest time (stuck replicas)")
    out["arrest_time_err"] = arrest["arrest_time_err"].assign_attrs(units=TIME, long_name="arrest time error")
    first, second = _halves(ds, start_fraction)
    early, late = _rate_over(ds, first).where(flowing), _rate_over(ds, second).where(flowing)
    _add_drift(out, "strain_rate", RATE, early, late, tolerance)
    out["strain_rate"].attrs = {"units": RATE, "long_name": "steady strain rate (flowing replicas)"}
    out["strain_rate_err"].attrs = {"units": RATE, "long_name": "steady strain rate error"}
    out["strain_rate_n"].attrs = {"units": "1", "long_name": "flowing replicas used"}
    return out
