"""Flow curves from both protocols on one labeled dataset, and the Herschel-Bulkley fit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from epmsweep.engine.units import RATE, STRESS
from scipy.optimize import curve_fit

from .steady_state import steady_strain_rate, steady_stress

MODEL_VALIDITY_RATE = 0.02
"""gdot_X: above it the mesoscale model no longer describes the particle system (paper)."""


def flow_curve(
    imposed_rate: xr.Dataset | None = None,
    imposed_stress: xr.Dataset | None = None,
    start_fraction: float = 0.5,
) -> xr.Dataset:
    """Steady (shear_rate, stress) points of both protocols along one ``point`` dimension.

    Imposed-rate runs give the steady stress (mean +- sem over seeds) at each imposed rate; creep
    runs that flow give the steady strain rate at each imposed stress (stuck runs excluded; their
    share is ``stuck_fraction``). The ``protocol`` coordinate labels each point; other sweep
    dimensions (initial_state, model axes) are kept.

    Returns
    -------
    xarray.Dataset
        ``shear_rate``, ``shear_rate_err``, ``stress``, ``stress_err``, ``stuck_fraction`` on
        (..., point), with coordinate ``protocol`` (point).
    """
    def points(rate, rate_err, stress, stress_err, stuck, protocol, dim):
        def on_point(da):
            return da.rename({dim: "point"}).drop_vars("point")

        ds = xr.Dataset(
            {
                "shear_rate": on_point(rate),
                "shear_rate_err": on_point(rate_err),
                "stress": on_point(stress),
                "stress_err": on_point(stress_err),
                "stuck_fraction": on_point(stuck),
            }
        )
        return ds.assign_coords(protocol=("point", [protocol] * ds.sizes["point"]))

    parts = []
    if imposed_rate is not None:
        st = steady_stress(imposed_rate, start_fraction)
        zero = xr.zeros_like(st["stress"])
        rate = zero + imposed_rate["shear_rate"]
        parts.append(points(rate, zero, st["stress"], st["stress_err"], zero, "imposed_rate", "shear_rate"))
    if imposed_stress is not None:
        sr = steady_strain_rate(imposed_stress, start_fraction)
        zero = xr.zeros_like(sr["strain_rate"])
        stress = zero + imposed_stress["stress_imposed"]
        parts.append(
            points(sr["strain_rate"], sr["strain_rate_err"], stress, zero, sr["stuck_fraction"], "imposed_stress",
                   "stress_imposed")
        )
    if not parts:
        raise ValueError("give at least one of imposed_rate and imposed_stress")
    out = xr.concat(parts, dim="point", coords="minimal", compat="override") if len(parts) > 1 else parts[0]
    out["shear_rate"].attrs = {"units": RATE, "long_name": "steady shear rate"}
    out["stress"].attrs = {"units": STRESS, "long_name": "steady stress"}
    return out


def at_shear_modulus(flow: xr.Dataset, shear_modulus: float, reference_modulus: float) -> xr.Dataset:
    """The flow curve ``flow``, measured with modulus ``reference_modulus``, as it is for ``shear_modulus``.

    Under imposed rate the stresses depend on mu * gdot only, and under imposed stress the strain
    rate scales as 1 / mu: a steady point (gdot, Sigma) at modulus mu_ref is the point
    (gdot * mu_ref / mu, Sigma) at modulus mu. Rates and their errors are rescaled; stresses kept.
    """
    if not (shear_modulus > 0 and reference_modulus > 0):
        raise ValueError(f"moduli must be > 0, got {shear_modulus} and {reference_modulus}")
    factor = reference_modulus / shear_modulus
    out = flow.assign(shear_rate=flow["shear_rate"] * factor, shear_rate_err=flow["shear_rate_err"] * factor)
    out["shear_rate"].attrs = {**flow["shear_rate"].attrs, "shear_modulus": shear_modulus}
    return out


def herschel_bulkley(rate: np.ndarray, sigma_y: float, a: float, n: float) -> np.ndarray:
    """Sigma = Sigma_Y + A gdot^n."""
    return sigma_y + a * np.power(rate, n)


@dataclass(frozen=True)
class HerschelBulkleyFit:
    """Sigma = sigma_y + a gdot^n with 1-sigma uncertainties (from the covariance of the fit)."""

    sigma_y: float
    a: float
    n: float
    sigma_y_err: float
    a_err: float
    n_err: float
    chi2_reduced: float
    n_points: int
    max_rate: float

    def __call__(self, rate):
        return herschel_bulkley(np.asarray(rate, float), self.sigma_y, self.a, self.n)


def fit_herschel_bulkley(flow: xr.Dataset, max_rate: float = MODEL_VALIDITY_RATE) -> HerschelBulkleyFit:
    """Weighted least-squares Herschel-Bulkley fit of a one-dimensional flow curve (dim ``point``).

    Points with 0 < shear_rate <= ``max_rate`` are used. Errors on the stress (imposed-rate points)
    and on the rate (creep points) are combined by the effective-variance method:
    s_eff^2 = stress_err^2 + (dSigma/dgdot * rate_err)^2, iterated twice. Without any error
    estimate (a single replica) the fit is unweighted and uncertainties are scaled by the scatter.
    """
    if set(flow["stress"].dims) != {"point"}:
        raise ValueError(f"select one flow curve first (dims must be ('point',), got {flow['stress'].dims})")
    x, y = flow["shear_rate"].values, flow["stress"].values
    sx, sy = np.nan_to_num(flow["shear_rate_err"].values), np.nan_to_num(flow["stress_err"].values)
    use = np.isfinite(x) & np.isfinite(y) & (x > 0) & (x <= max_rate)
    x, y, sx, sy = x[use], y[use], sx[use], sy[use]
    if x.size < 4:
        raise ValueError(f"a Herschel-Bulkley fit needs >= 4 points with 0 < rate <= {max_rate}, got {x.size}")
    p0 = (max(0.0, float(y.min()) - 0.05), 1.0, 0.7)
    bounds = ([-np.inf, 0.0, 0.05], [np.inf, np.inf, 3.0])
    weighted = bool(np.any(sy > 0) or np.any(sx > 0))
    params, cov = curve_fit(herschel_bulkley, x, y, p0=p0, bounds=bounds, maxfev=20000)
    if weighted:
        for _ in range(2):
            slope = params[1] * params[2] * np.power(x, params[2] - 1)
            s_eff = np.sqrt(sy**2 + (slope * sx) ** 2)
            s_eff = np.where(s_eff > 0, s_eff, np.median(s_eff[s_eff > 0]))
            params, cov = curve_fit(
                herschel_bulkley, x, y, p0=params, sigma=s_eff, absolute_sigma=True, bounds=bounds, maxfev=20000
            )
        chi2 = float(np.sum(((y - herschel_bulkley(x, *params)) / s_eff) ** 2) / max(1, x.size - 3))
    else:
        chi2 = float("nan")
    err = np.sqrt(np.diag(cov))
    return HerschelBulkleyFit(*map(float, params), *map(float, err), chi2, int(x.size), max_rate)
