"""Threshold and gap distributions: P_a(sigma_th), P(x) in steady state, C(X) of initial states."""

from __future__ import annotations

import numpy as np
import xarray as xr
from epmsweep.engine import InitialState
from epmsweep.engine.units import STRESS
from epmsweep.engine.variables import attrs, variable

from .steady_state import REPLICA_DIM, SNAPSHOT_DIMS

FIELD_DIMS = (REPLICA_DIM, *SNAPSHOT_DIMS, "y", "x")


def _histogram(values: xr.DataArray, bins: np.ndarray, name: str, pooled: tuple[str, ...] = FIELD_DIMS) -> xr.Dataset:
    """Normalised histogram over the ``pooled`` dims, keeping every other dimension; ``name`` is a
    declared variable (``engine.variables``: ``threshold``, ``gap``, ``avalanche_size``), which
    gives the units.

    The density integrates to 1 over ``bins`` (values outside the edges are not counted).
    """
    pooled = [d for d in pooled if d in values.dims]

    def hist(v):
        v = v[np.isfinite(v)]
        density, _ = np.histogram(v, bins=bins, density=True) if v.size else (np.full(bins.size - 1, np.nan), None)
        return density, v.mean() if v.size else np.nan, v.size

    stacked = values.stack(sample=pooled).transpose(..., "sample")
    density, mean, count = xr.apply_ufunc(
        hist, stacked, input_core_dims=[["sample"]], output_core_dims=[[name], [], []], vectorize=True,
        dask_gufunc_kwargs={"output_sizes": {name: bins.size - 1}},
    )  # fmt: skip
    centres = 0.5 * (bins[1:] + bins[:-1])
    units = variable(name).units
    out = xr.Dataset(
        {
            "density": density.assign_attrs(
                attrs("density", long_name=f"P({name})", units="1" if units == "1" else f"1 / ({units})")
            ),
            "mean": mean.assign_attrs(units=units, long_name=f"mean {name}"),
            "samples": count.assign_attrs(units="1", long_name="number of site values"),
        }
    )
    return out.assign_coords(
        {name: (name, centres, {"units": units, "long_name": name}), f"{name}_edges": (f"{name}_edge", bins)}
    )


def _default_bins(values: xr.DataArray, n: int = 80) -> np.ndarray:
    """n equal bins spanning every value, so that no sample falls outside the normalisation."""
    lo, hi = float(values.min()), float(values.max())
    return np.linspace(min(lo, 0.0), hi + 1e-12, n + 1)


def threshold_distribution(ds: xr.Dataset, bins: np.ndarray | None = None) -> xr.Dataset:
    """P_a(sigma_th): normalised histogram of the thresholds of all snapshots (pooled over seeds).

    Parameters
    ----------
    ds : xarray.Dataset
        Group with snapshots: ``threshold`` [STRESS] on (..., seed, snapshot_strain, y, x).
    bins : array-like, optional
        Bin edges [STRESS]; by default 80 bins spanning all values.

    Returns
    -------
    xarray.Dataset
        On the sweep dims without seed, snapshots and lattice: ``density`` [1 / STRESS] on
        (..., threshold) integrating to 1, ``mean`` [STRESS], ``samples``; coordinates
        ``threshold`` (bin centres) and ``threshold_edges``.
    """
    bins = _default_bins(ds["threshold"]) if bins is None else np.asarray(bins, float)
    return _histogram(ds["threshold"], bins, "threshold")


def gap_distribution(ds: xr.Dataset, bins: np.ndarray | None = None) -> xr.Dataset:
    """P(x): normalised histogram of the local gaps x = sigma_th - sigma of all snapshots.

    Parameters
    ----------
    ds : xarray.Dataset
        Group with snapshots: ``threshold`` and ``local_stress`` [STRESS] on
        (..., seed, snapshot_strain, y, x).
    bins : array-like, optional
        Bin edges [STRESS]; by default 80 bins spanning all values.

    Returns
    -------
    xarray.Dataset
        ``density`` [1 / STRESS] on (..., gap), ``mean`` [STRESS], ``samples``; coordinates ``gap``
        and ``gap_edges``.
    """
    gap = (ds["threshold"] - ds["local_stress"]).rename("gap")
    bins = _default_bins(gap) if bins is None else np.asarray(bins, float)
    return _histogram(gap, bins, "gap")


def cumulative_gap(state: InitialState, x: np.ndarray | None = None, stress: float = 0.0) -> xr.DataArray:
    """C(X): fraction of sites of an initial state with gap sigma_th - sigma < X.

    Parameters
    ----------
    state : InitialState
        Thresholds and stresses [STRESS] of the lattice.
    x : array-like, optional
        Gaps X [STRESS] at which to evaluate; by default 400 points over the range of the gaps.
    stress : float
        Added to every local stress first [STRESS] (e.g. the imposed stress of a creep run, to
        read off the share of sites that are unstable at once).

    Returns
    -------
    xarray.DataArray
        C(X) [1] on ``gap``.
    """
    gaps = np.sort((state.threshold - (state.stress + stress)).ravel())
    x = np.linspace(min(0.0, gaps[0]), gaps[-1], 400) if x is None else np.asarray(x, float)
    c = np.searchsorted(gaps, x, side="left") / gaps.size
    return xr.DataArray(
        c, dims="gap", coords={"gap": ("gap", x, {"units": STRESS, "long_name": "gap"})}, name="cumulative_gap",
        attrs={"units": "1", "long_name": "C(X)", "initial_state": state.name},
    )  # fmt: skip
