"""Flow curves from both protocols on one labeled dataset, and the Herschel-Bulkley fit."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from epmsweep.engine.units import RATE, STRESS, TIME
from scipy.optimize import OptimizeWarning, curve_fit

from .steady_state import DRIFT_TOLERANCE, steady_strain_rate, steady_stress

MODEL_VALIDITY_RATE = 0.02
"""gdot_X: above it the mesoscale model no longer describes the particle system (paper)."""

HB_PARAMETERS = ("sigma_y", "a", "n")
HB_UNITS = {"sigma_y": STRESS, "a": None, "n": "1"}
"""Units of the parameters. A has none that a units library could parse: it is a stress times a
time to the power n, the fitted exponent (said in its ``comment`` attribute)."""
A_UNITS_COMMENT = f"units: {STRESS} * {TIME}^n, with n the fitted exponent"
HB_LONG_NAMES = {"sigma_y": "dynamic yield stress", "a": "Herschel-Bulkley prefactor", "n": "Herschel-Bulkley exponent"}


def flow_curve(
    imposed_rate: xr.Dataset | None = None,
    imposed_stress: xr.Dataset | None = None,
    start_fraction: float = 0.5,
    keep_unsteady: bool = False,
    tolerance: float = DRIFT_TOLERANCE,
) -> xr.Dataset:
    """Steady (shear_rate, stress) points of both protocols along one ``point`` dimension.

    Imposed-rate runs give the steady stress (mean +- sem over seeds) at each imposed rate; creep
    runs give the steady strain rate of their flowing replicas at each imposed stress, never
    mixed with the stuck ones (``stuck_fraction``, ``n_stuck``). Points whose window drifts
    (``steady_state.check_drift``) and creep points where every replica is stuck are excluded by
    default: their ``shear_rate`` and ``stress`` are NaN, ``steady`` / ``all_stuck`` say why, and
    the attributes ``excluded_unsteady``, ``excluded_stuck`` count them.

    Parameters
    ----------
    imposed_rate : xarray.Dataset, optional
        Imposed-rate group (``stress`` [STRESS] on (..., shear_rate, seed, strain)).
    imposed_stress : xarray.Dataset, optional
        Creep group (``strain``, ``time`` [TIME], ``stuck``, ``arrest_time`` on (..., stress_imposed,
        seed, time)).
    start_fraction : float
        Start of the steady window, as a fraction of each run's length.
    keep_unsteady : bool
        Keep the values of drifting points (still flagged ``steady = False``); stuck points have no
        flowing rate and stay NaN.
    tolerance : float
        Drift allowed, in standard errors.

    Returns
    -------
    xarray.Dataset
        ``shear_rate``, ``shear_rate_err`` [RATE], ``stress``, ``stress_err`` [STRESS],
        ``stuck_fraction`` [1], ``n_stuck``, ``n_replicas``, ``steady`` and ``all_stuck`` (bool) on
        (..., point), with coordinates ``protocol`` (point) and ``point_value`` (the imposed rate
        or stress of the point); other sweep dimensions (initial_state, model axes) are kept.
    """

    def points(values: dict[str, xr.DataArray], protocol: str, dim: str, imposed: xr.DataArray) -> xr.Dataset:
        ds = xr.Dataset({k: v.rename({dim: "point"}).drop_vars("point") for k, v in values.items()})
        return ds.assign_coords(
            protocol=("point", [protocol] * ds.sizes["point"]), point_value=("point", np.asarray(imposed.values, float))
        )

    parts = []
    if imposed_rate is not None:
        st = steady_stress(imposed_rate, start_fraction, tolerance)
        zero = xr.zeros_like(st["stress"])
        parts.append(points({
            "shear_rate": zero + imposed_rate["shear_rate"], "shear_rate_err": zero, "stress": st["stress"],
            "stress_err": st["stress_err"], "stuck_fraction": zero, "n_stuck": zero.astype(int),
            "n_replicas": st["stress_n"], "steady": st["steady"], "all_stuck": zero.astype(bool),
        }, "imposed_rate", "shear_rate", imposed_rate["shear_rate"]))  # fmt: skip
    if imposed_stress is not None:
        sr = steady_strain_rate(imposed_stress, start_fraction, tolerance)
        zero = xr.zeros_like(sr["strain_rate"])
        replicas = sr["n_flowing"] + sr["n_stuck"]
        parts.append(points({
            "shear_rate": sr["strain_rate"], "shear_rate_err": sr["strain_rate_err"],
            "stress": (zero + imposed_stress["stress_imposed"]).where(sr["n_flowing"] > 0), "stress_err": zero,
            "stuck_fraction": sr["stuck_fraction"], "n_stuck": sr["n_stuck"], "n_replicas": replicas,
            "steady": sr["steady"], "all_stuck": (sr["n_flowing"] == 0) & (replicas > 0),
        }, "imposed_stress", "stress_imposed", imposed_stress["stress_imposed"]))  # fmt: skip
    if not parts:
        raise ValueError("give at least one of imposed_rate and imposed_stress")
    out = xr.concat(parts, dim="point", coords="minimal", compat="override") if len(parts) > 1 else parts[0]
    out["steady"] = out["steady"].astype(bool)
    out["all_stuck"] = out["all_stuck"].astype(bool)
    unsteady = ~out["steady"] & ~out["all_stuck"] & (out["n_replicas"] > 0)
    if not keep_unsteady:
        for name in ("shear_rate", "shear_rate_err", "stress", "stress_err"):
            out[name] = out[name].where(~unsteady)
    out["shear_rate"].attrs = {"units": RATE, "long_name": "steady shear rate"}
    out["shear_rate_err"].attrs = {"units": RATE, "long_name": "steady shear rate error"}
    out["stress"].attrs = {"units": STRESS, "long_name": "steady stress"}
    out["stress_err"].attrs = {"units": STRESS, "long_name": "steady stress error"}
    out["stuck_fraction"].attrs = {"units": "1", "long_name": "stuck fraction"}
    out["steady"].attrs = {"long_name": "steady window (drift within its error)", "tolerance": tolerance}
    out["all_stuck"].attrs = {"long_name": "every replica stuck (no flowing rate)"}
    out.attrs = {
        "excluded_unsteady": int(unsteady.sum()) if not keep_unsteady else 0,
        "unsteady_points": int(unsteady.sum()),
        "excluded_stuck": int(out["all_stuck"].sum()),
        "exclusion": (
            "points whose steady window drifts by more than its error (steady = False) are "
            + ("kept, flagged" if keep_unsteady else "set to NaN")
            + "; creep points with every replica stuck have no flowing rate (all_stuck = True, NaN)"
        ),
        "start_fraction": start_fraction,
    }
    return out


def at_shear_modulus(flow: xr.Dataset, shear_modulus: float, reference_modulus: float) -> xr.Dataset:
    """The flow curve ``flow``, measured with modulus ``reference_modulus``, as it is for ``shear_modulus``.

    Under imposed rate the stresses depend on mu * gdot only, and under imposed stress the strain
    rate scales as 1 / mu: a steady point (gdot, Sigma) at modulus mu_ref is the point
    (gdot * mu_ref / mu, Sigma) at modulus mu. Rates and their errors are rescaled; stresses kept.

    Parameters
    ----------
    flow : xarray.Dataset
        A ``flow_curve`` result (``shear_rate``, ``shear_rate_err`` [RATE] on (..., point)).
    shear_modulus, reference_modulus : float
        Target and measured moduli [STRESS], > 0.

    Returns
    -------
    xarray.Dataset
        ``flow`` with rescaled ``shear_rate`` and ``shear_rate_err`` (attribute ``shear_modulus``).
    """
    if not (shear_modulus > 0 and reference_modulus > 0):
        raise ValueError(f"moduli must be > 0, got {shear_modulus} and {reference_modulus}")
    factor = reference_modulus / shear_modulus
    out = flow.assign(shear_rate=flow["shear_rate"] * factor, shear_rate_err=flow["shear_rate_err"] * factor)
    out["shear_rate"].attrs = {**flow["shear_rate"].attrs, "shear_modulus": shear_modulus}
    out["shear_rate_err"].attrs = dict(flow["shear_rate_err"].attrs)
    return out


def herschel_bulkley(rate, sigma_y, a, n):
    """Sigma = Sigma_Y + A gdot^n (NumPy arrays or DataArrays, broadcast).

    Parameters
    ----------
    rate : array-like
        Shear rate [RATE], >= 0.
    sigma_y, a, n : float or array-like
        Yield stress [STRESS], prefactor and exponent (e.g. the variables of a
        ``fit_herschel_bulkley`` result).

    Returns
    -------
    Stress [STRESS], of the broadcast shape.
    """
    return sigma_y + a * rate**n


def herschel_bulkley_curve(fit: xr.Dataset, rate) -> xr.DataArray:
    """The fitted law of every curve of ``fit`` at the rates ``rate`` (dim ``shear_rate``).

    Parameters
    ----------
    fit : xarray.Dataset
        A ``fit_herschel_bulkley`` result.
    rate : array-like
        Shear rates [RATE].

    Returns
    -------
    xarray.DataArray
        Stress [STRESS] on (..., shear_rate).
    """
    g = xr.DataArray(np.asarray(rate, float), dims="shear_rate", coords={"shear_rate": np.asarray(rate, float)})
    out = herschel_bulkley(g, fit["sigma_y"], fit["a"], fit["n"])
    return out.rename("stress").assign_attrs(units=STRESS, long_name="Herschel-Bulkley stress")


def _fit_one(x, y, sx, sy, steady, min_rate, max_rate, min_points):
    """Weighted HB fit of one curve: params, errors, covariance, chi2, points used, rate range, reason."""
    nan3 = np.full(3, np.nan)
    use = np.isfinite(x) & np.isfinite(y) & (x > min_rate) & (x <= max_rate) & steady.astype(bool)
    x, y = x[use], y[use]
    sx, sy = np.nan_to_num(sx[use]), np.nan_to_num(sy[use])
    lo, hi = (float(x.min()), float(x.max())) if x.size else (np.nan, np.nan)

    def failed(reason):
        return nan3, nan3, np.full((3, 3), np.nan), np.nan, x.size, lo, hi, reason

    if x.size < min_points:
        return failed(f"{x.size} usable points with {min_rate:g} < rate <= {max_rate:g}, need >= {min_points}")
    p0 = (max(0.0, float(y.min()) - 0.05), 1.0, 0.7)
    bounds = ([-np.inf, 0.0, 0.05], [np.inf, np.inf, 3.0])
    weighted = bool(np.any(sy > 0) or np.any(sx > 0))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            params, cov = curve_fit(herschel_bulkley, x, y, p0=p0, bounds=bounds, maxfev=20000)
            s_eff = None
            if weighted:
                for _ in range(2):
                    slope = params[1] * params[2] * np.power(x, params[2] - 1)
                    s_eff = np.sqrt(sy**2 + (slope * sx) ** 2)
                    s_eff = np.where(s_eff > 0, s_eff, np.median(s_eff[s_eff > 0]))
                    params, cov = curve_fit(
                        herschel_bulkley, x, y, p0=params, sigma=s_eff, absolute_sigma=True, bounds=bounds,
                        maxfev=20000,
                    )
    except (RuntimeError, ValueError) as exc:
        return failed(f"fit did not converge: {exc}")
    chi2 = float(np.sum(((y - herschel_bulkley(x, *params)) / s_eff) ** 2) / max(1, x.size - 3)) if weighted else np.nan
    return params, np.sqrt(np.diag(cov)), cov, chi2, x.size, lo, hi, ""


def fit_herschel_bulkley(
    flow: xr.Dataset,
    max_rate: float = MODEL_VALIDITY_RATE,
    min_rate: float = 0.0,
    include_unsteady: bool = False,
    min_points: int = 4,
) -> xr.Dataset:
    """Weighted least-squares Herschel-Bulkley fit, one per flow curve, keeping every other dimension.

    Each combination of the dimensions of ``flow`` other than ``point`` (initial_state, model
    axes, ...) is one curve. Points with ``min_rate < shear_rate <= max_rate`` (the validity limit
    of the model by default), finite values and ``steady`` (unless ``include_unsteady``) are used.
    Errors on the stress (imposed-rate points) and on the rate (creep points) are combined by the
    effective-variance method, s_eff^2 = stress_err^2 + (dSigma/dgdot x rate_err)^2, iterated
    twice, with absolute sigma. Without any error estimate (single replicas) the fit is unweighted
    and the covariance is scaled by the scatter. A curve that cannot be fitted gets NaN and a
    ``reason``.

    Parameters
    ----------
    flow : xarray.Dataset
        A ``flow_curve`` result: ``shear_rate``, ``shear_rate_err`` [RATE], ``stress``,
        ``stress_err`` [STRESS] on (..., point); ``steady`` (bool) optional.
    max_rate, min_rate : float
        Fit window in shear rate [RATE].
    include_unsteady : bool
        Also use points flagged ``steady = False`` (when ``flow_curve(keep_unsteady=True)`` kept them).
    min_points : int
        Fewest points for a fit (>= 4: three parameters and one degree of freedom).

    Returns
    -------
    xarray.Dataset
        On the dims of ``flow`` without ``point``: ``sigma_y`` [STRESS], ``a``, ``n`` [1] and their
        1-sigma errors ``sigma_y_err``, ``a_err``, ``n_err``; ``covariance`` on (parameter,
        parameter_2); ``chi2_reduced``; ``n_points`` (points used); ``fit_min_rate``,
        ``fit_max_rate`` [RATE] (range of the rates used); ``reason`` (str, "" when fitted).
        Attributes: the fit window ``max_rate``, ``min_rate`` and the ``method``.
    """
    steady = flow["steady"] if ("steady" in flow and not include_unsteady) else xr.ones_like(flow["stress"], bool)
    results = xr.apply_ufunc(
        _fit_one, flow["shear_rate"], flow["stress"], flow["shear_rate_err"], flow["stress_err"], steady,
        kwargs={"min_rate": min_rate, "max_rate": max_rate, "min_points": min_points},
        input_core_dims=[["point"]] * 5,
        output_core_dims=[["parameter"], ["parameter"], ["parameter", "parameter_2"], [], [], [], [], []],
        vectorize=True, output_dtypes=[float, float, float, float, int, float, float, object],
    )  # fmt: skip
    params, errors, cov, chi2, used, lo, hi, reason = results
    out = xr.Dataset()
    for i, name in enumerate(HB_PARAMETERS):
        units = {"units": HB_UNITS[name]} if HB_UNITS[name] else {"comment": A_UNITS_COMMENT}
        out[name] = params.isel(parameter=i, drop=True).assign_attrs(**units, long_name=HB_LONG_NAMES[name])
        out[f"{name}_err"] = errors.isel(parameter=i, drop=True).assign_attrs(
            **units, long_name=f"{HB_LONG_NAMES[name]} error"
        )
    out["covariance"] = cov.assign_coords(parameter=list(HB_PARAMETERS), parameter_2=list(HB_PARAMETERS)).assign_attrs(
        long_name="covariance of (sigma_y, a, n)"
    )
    out["chi2_reduced"] = chi2.assign_attrs(units="1", long_name="reduced chi-square")
    out["n_points"] = used.assign_attrs(units="1", long_name="points used")
    out["fit_min_rate"] = lo.assign_attrs(units=RATE, long_name="lowest rate used")
    out["fit_max_rate"] = hi.assign_attrs(units=RATE, long_name="highest rate used")
    out["reason"] = reason.astype(str).assign_attrs(long_name="why the curve was not fitted")
    out.attrs = {
        "max_rate": max_rate, "min_rate": min_rate, "include_unsteady": int(include_unsteady),
        "method": "scipy curve_fit, effective variance from stress_err and shear_rate_err, absolute sigma",
    }  # fmt: skip
    return out

