"""The discrepancy between a candidate's runs and the reference curves.

For reference curve ``o`` with points ``(x_i, y_i, e_i)`` and the candidate's replica mean ``m_i``
and its standard error ``s_i`` at the same ``x_i`` (replicas of the candidate, ddof = 1)::

    chi2_o = sum_i (m_i - y_i)^2 / (e_i^2 + s_i^2)        objective = sum_o w_o chi2_o

so a point counts by how many combined standard errors the model misses it, and the objective is
a chi-square when the weights are 1 (``Δobjective = 1`` is one sigma for one parameter). The model
side of each observable is: ``flow_curve``, the steady stress per rate (``analysis.steady_stress``,
late half of each run); ``stress_strain``, the stress at the reference strains (linear
interpolation of each replica's record); ``creep``, the strain at the reference times;
``threshold_distribution`` / ``gap_distribution``, the density of the snapshots pooled over
replicas and snapshots (``analysis.distributions``) on bins centred on the reference's x (edges
midway between neighbours, the outer ones mirrored about the outer centres), its error from the
replicas' histograms (standard error of their mean, ddof = 1). Every
candidate runs with the same replica seeds (the run seeds depend on the base seed and the run's
coordinates only, ``sweep.plan``): common random numbers, so that two candidates differ by their
parameters and not by the noise of different seeds. A candidate without a value at some point
(a failed run) has no objective (NaN).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr
from epmsweep.analysis import gap_distribution, steady_stress, threshold_distribution
from epmsweep.analysis.steady_state import REPLICA_DIM, replica_mean

from .reference import OBSERVABLES, Curve, reference_dataset

HISTOGRAMS = {"threshold": threshold_distribution, "gap": gap_distribution}


def bin_edges(centres) -> np.ndarray:
    """Edges (n + 1,) of the bins of the centres (n,), n >= 2, increasing: midway between neighbours,
    the outer ones mirrored about the outer centres."""
    c = np.asarray(centres, float)
    inner = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[2 * c[0] - inner[0]], inner, [2 * c[-1] - inner[-1]]])


def _density(run: xr.Dataset, curve: Curve) -> xr.Dataset:
    """``mean``: the density of the snapshots pooled over replicas on the bins of ``curve.x``;
    ``err``: the standard error of the replicas' densities; NaN where a replica has none (a failed run)."""
    histogram, edges = HISTOGRAMS[curve.observable.x], bin_edges(curve.x)
    pooled = histogram(run, edges)["density"]
    per_replica = histogram(run.rename({REPLICA_DIM: "replica"}), edges)["density"]
    stats = replica_mean(per_replica.rename(replica=REPLICA_DIM), "density")
    complete = stats["density_n"] == run.sizes[REPLICA_DIM]
    out = xr.Dataset({"mean": pooled.where(complete), "err": stats["density_err"].fillna(0.0)})
    return out.assign_coords({curve.observable.x: curve.x})


def model_curve(groups: Mapping[str, xr.Dataset], curve: Curve) -> xr.Dataset:
    """The candidate's ``mean`` and ``err`` (replica standard error) at the reference points.

    Parameters
    ----------
    groups : mapping of str to xarray.Dataset
        The per-protocol groups of the candidate's assembled sweep (``imposed_rate``, ``imposed_stress``).
    curve : Curve
        The reference; its ``x`` are the points.

    Returns
    -------
    xarray.Dataset
        ``mean`` and ``err`` on ``curve.observable.x``, in the units of the reference's y.
    """
    obs = curve.observable
    ds = groups[obs.protocol].sel(initial_state=curve.initial_state)
    x = xr.DataArray(curve.x, dims=obs.x)
    if obs.at is None:
        steady = steady_stress(ds).sel({obs.x: x})
        return xr.Dataset({"mean": steady["stress"], "err": steady["stress_err"].fillna(0.0)})
    primary = {"shear_rate": "shear_rate", "stress": "stress_imposed"}[obs.at]
    run = ds.sel({primary: curve.at})
    if obs.distribution:
        return _density(run, curve)
    stats = replica_mean(run[obs.y].interp({obs.x: x}), "mean")
    return xr.Dataset({"mean": stats["mean"], "err": stats["mean_err"].fillna(0.0)})


def reference_from_groups(
    groups: Mapping[str, xr.Dataset], observable: str, x, initial_state: str, at: float | None = None
) -> xr.Dataset:
    """A reference curve made from an assembled sweep (the engine at known parameters, an earlier
    calibration): the replica mean and standard error at the points ``x`` (shape (n_points,)), as
    ``reference.reference_dataset`` writes it. ``at``: the rate or imposed stress of a transient."""
    obs = OBSERVABLES[observable]
    x = np.asarray(x, float)
    probe = Curve(observable, obs, initial_state, at, 1.0, x, np.zeros_like(x), np.ones_like(x))
    m = model_curve(groups, probe)
    return reference_dataset(obs, x, m["mean"].values, m["err"].values, initial_state=initial_state)


def chi_square(curve: Curve, model: xr.Dataset) -> float:
    """``sum_i (m_i - y_i)^2 / (e_i^2 + s_i^2)`` over the points of ``curve``; NaN if a model value is missing."""
    mean, err = np.asarray(model["mean"], float), np.asarray(model["err"], float)
    return float(np.sum((mean - curve.y) ** 2 / (curve.err**2 + err**2)))


def objective_terms(groups: Mapping[str, xr.Dataset], curves: tuple[Curve, ...]) -> dict[str, float]:
    """``chi2_o`` of every reference curve (by name), unweighted."""
    return {c.name: chi_square(c, model_curve(groups, c)) for c in curves}


def weighted_objective(terms: Mapping[str, float], curves: tuple[Curve, ...]) -> float:
    """``sum_o w_o chi2_o``; NaN if any term is NaN."""
    return float(sum(c.weight * terms[c.name] for c in curves))
