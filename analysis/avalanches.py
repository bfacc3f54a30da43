"""Quasistatic runs: steady flow stress, overshoot, the sawtooth stress-strain curve, avalanche statistics.

A quasistatic group holds one record per avalanche (dimension ``avalanche``): the strain at its
trigger, the stress just before it (``stress_before``) and after it (``stress_after``), its size
(plastic strain summed over the sites, times N), its number of ``activations`` and its
``avalanche_duration``. Between two avalanches the lattice is loaded elastically, so Sigma rises
linearly from ``stress_after`` of one avalanche to ``stress_before`` of the next: every strain
average here is an exact integral of that sawtooth. Runs of different lengths are padded with NaN
(float series) and -1 (``activations``); padded records and runs that are not ``completed`` are
never counted. The steady window of a run is strain >= ``start_fraction`` x the strain of its last
avalanche, as under imposed rate (``steady_state.steady_window``).

Avalanche distributions are fitted with the ``powerlaw`` package (Clauset, Shalizi & Newman, SIAM
Rev. 51, 661 (2009): maximum-likelihood fits above a lower bound x_min chosen by the
Kolmogorov-Smirnov distance; Alstott, Bullmore & Plenz, PLoS ONE 9, e85777 (2014)), as a power law
with an exponential cutoff, p(x) ~ x^-tau exp(-x / x_c) for x >= x_min.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from epmsweep.engine.units import STRESS
from epmsweep.engine.variables import variable as declared

from .distributions import _histogram
from .steady_state import AVALANCHE_DIM, DRIFT_TOLERANCE, REPLICA_DIM, _add_drift, completed, replica_mean
from .transients import _at, _reason

AVALANCHE_VARIABLES = ("avalanche_size", "avalanche_duration", "activations")
"""The avalanche observables ``fit_avalanches`` and ``avalanche_distribution`` accept."""
DISCRETE = ("activations",)
EDGE = "strain_edge"


def _shear_modulus(ds: xr.Dataset) -> xr.DataArray:
    """mu [STRESS] of the runs: the ``shear_modulus`` coordinate of an assembled group, else the
    attribute of a single run, else NaN (then the elastic loading before the first avalanche is unknown)."""
    if "shear_modulus" in ds.variables:
        return ds["shear_modulus"].astype(float)
    return xr.DataArray(float(ds.attrs.get("shear_modulus", np.nan)))


def _sawtooth_integral(strain, before, after, mu, at):
    """Integral of Sigma d(strain) from the first avalanche's strain to each strain of ``at``, for one run.

    Sigma rises with slope mu from the start of the run to the first trigger, and linearly from
    ``after[k]`` to ``before[k + 1]`` between triggers; NaN records (padding) are skipped. NaN
    beyond the last avalanche and below zero strain.
    """
    ok = np.isfinite(strain)
    s, b, a = strain[ok], before[ok], after[ok]
    at = np.asarray(at, float)
    if s.size == 0:
        return np.full(at.shape, np.nan)
    width = np.diff(s)
    slope = np.zeros(s.size)
    slope[:-1] = (b[1:] - a[:-1]) / width
    cum = np.r_[0.0, np.cumsum(a[:-1] * width + 0.5 * slope[:-1] * width**2)]
    k = np.searchsorted(s, at, side="right") - 1
    kk = np.clip(k, 0, None)
    d = at - s[kk]
    loaded = cum[kk] + a[kk] * d + 0.5 * slope[kk] * d**2
    lead = s[0] - at
    elastic = -(b[0] * lead - 0.5 * mu * lead**2)
    return np.where((at >= 0) & (at <= s[-1]), np.where(k >= 0, loaded, elastic), np.nan)


def _integral(ds: xr.Dataset, at: xr.DataArray, dim: str) -> xr.DataArray:
    """``_sawtooth_integral`` of every run at the strains ``at`` (core dim ``dim``); lazily, a block
    of runs at a time, on a group opened with dask chunks."""
    return xr.apply_ufunc(
        _sawtooth_integral, ds["strain"], ds["stress_before"], ds["stress_after"], _shear_modulus(ds), at,
        input_core_dims=[[AVALANCHE_DIM]] * 3 + [[], [dim]], output_core_dims=[[dim]], vectorize=True,
        dask="parallelized", output_dtypes=[float], dask_gufunc_kwargs={"allow_rechunk": True},
    )  # fmt: skip


def _check(ds: xr.Dataset, names: tuple[str, ...]) -> None:
    missing = [n for n in (AVALANCHE_DIM, *names) if n not in ds.variables and n not in ds.dims]
    if missing:
        raise ValueError(f"not a quasistatic group: missing {missing} (has dims {tuple(ds.dims)})")


def _check_fraction(start_fraction: float) -> None:
    if not 0 <= start_fraction < 1:
        raise ValueError(f"start_fraction must be in [0, 1), got {start_fraction}")


def _window_means(ds: xr.Dataset, start_fraction: float) -> xr.Dataset:
    """Per run: strain-weighted mean stress over the steady window and over its two halves."""
    _check_fraction(start_fraction)
    end = ds["strain"].max(AVALANCHE_DIM)
    cut = start_fraction + (1 - start_fraction) / 2
    fractions = xr.DataArray([start_fraction, cut, 1.0], dims=EDGE)
    at = fractions * end
    f = _integral(ds, at, EDGE).where(completed(ds))
    span = at.diff(EDGE)
    means = f.diff(EDGE) / span
    whole = (f.isel({EDGE: 2}) - f.isel({EDGE: 0})) / (at.isel({EDGE: 2}) - at.isel({EDGE: 0}))
    return xr.Dataset({"whole": whole, "early": means.isel({EDGE: 0}, drop=True),
                       "late": means.isel({EDGE: 1}, drop=True)}).drop_vars(EDGE, errors="ignore")  # fmt: skip


def quasistatic_flow_stress(
    ds: xr.Dataset, start_fraction: float = 0.5, tolerance: float = DRIFT_TOLERANCE
) -> xr.Dataset:
    """Steady quasistatic stress: strain-weighted mean of Sigma over the steady window, then over seeds.

    Per run the mean is the exact integral of the sawtooth Sigma(strain) over the window divided
    by its strain span; the window is checked for drift like the imposed-rate steady stress
    (``steady_state.check_drift``: its second half minus its first half).

    Parameters
    ----------
    ds : xarray.Dataset
        Quasistatic group: ``strain`` [1], ``stress_before``, ``stress_after`` [STRESS] on
        (..., seed, avalanche); ``completed`` (bool, optional).
    start_fraction : float
        The window is strain >= start_fraction x the strain of the run's last avalanche, in [0, 1).
    tolerance : float
        Drift allowed, in standard errors.

    Returns
    -------
    xarray.Dataset
        On the sweep dims without ``seed`` and ``avalanche``: ``flow_stress``, ``flow_stress_err``
        [STRESS], ``flow_stress_n`` (replicas used), ``flow_stress_drift``,
        ``flow_stress_drift_err`` [STRESS] and ``steady`` (bool).
    """
    _check(ds, ("strain", "stress_before", "stress_after"))
    w = _window_means(ds, start_fraction)
    out = replica_mean(w["whole"], "flow_stress")
    _add_drift(out, "flow_stress", STRESS, w["early"], w["late"], tolerance)
    out["flow_stress"].attrs = {"units": STRESS, "long_name": "quasistatic flow stress"}
    out["flow_stress_err"].attrs = {"units": STRESS, "long_name": "quasistatic flow stress error"}
    out["flow_stress_n"].attrs = {"units": "1", "long_name": "replicas"}
    out.attrs["start_fraction"] = start_fraction
    return out


def quasistatic_overshoot(ds: xr.Dataset, start_fraction: float = 0.5) -> xr.Dataset:
    """Stress overshoot of each run (peak of ``stress_before`` minus its steady flow stress), over seeds.

    Unlike ``transients.stress_overshoot``, whose replicas share a strain clock, the avalanches of
    different replicas happen at different strains, so the peak is taken per run and then
    averaged. A peak at the run's last avalanche is no overshoot (the stress still rises): that
    run is left out. A single run's peak also holds its steady fluctuations, so a state without
    a transient peak still has a small positive overshoot: compare states at the same L and window
    (annealed states overshoot more than rejuvenated ones).

    Parameters
    ----------
    ds : xarray.Dataset
        Quasistatic group: ``strain`` [1], ``stress_before``, ``stress_after`` [STRESS] on
        (..., initial_state, seed, avalanche); ``completed`` (bool, optional).
    start_fraction : float
        Start of the steady window (``quasistatic_flow_stress``).

    Returns
    -------
    xarray.Dataset
        On the sweep dims without ``seed`` and ``avalanche``: ``peak_stress``, ``flow_stress``,
        ``overshoot`` [STRESS] and ``strain_at_peak`` [1], each with ``_err`` (standard error over
        the replicas used), ``overshoot_n`` (replicas with an interior peak) and ``reason`` (str,
        "" where at least one replica has one).
    """
    _check(ds, ("strain", "stress_before", "stress_after"))
    present = completed(ds)
    before = ds["stress_before"].where(present)
    i_peak = before.fillna(-np.inf).argmax(AVALANCHE_DIM)
    last = ds["strain"].notnull().sum(AVALANCHE_DIM) - 1
    interior = present & before.notnull().any(AVALANCHE_DIM) & (i_peak < last)
    peak = _at(before, AVALANCHE_DIM, i_peak).where(interior)
    flow = _window_means(ds, start_fraction)["whole"].where(interior)
    out = xr.Dataset()
    per_run = {
        "peak_stress": (peak, STRESS, "peak stress"),
        "flow_stress": (flow, STRESS, "quasistatic flow stress"),
        "overshoot": (peak - flow, STRESS, "stress overshoot"),
        "strain_at_peak": (_at(ds["strain"], AVALANCHE_DIM, i_peak).where(interior), "1", "strain at the peak"),
    }
    for name, (values, units, long_name) in per_run.items():
        m = replica_mean(values, "v")
        out[name] = m["v"].assign_attrs(units=units, long_name=long_name)
        out[f"{name}_err"] = m["v_err"].assign_attrs(units=units, long_name=f"{long_name} error")
    out["overshoot_n"] = interior.sum(REPLICA_DIM).assign_attrs(units="1", long_name="replicas with a peak")
    out["reason"] = _reason(
        no_run=present.sum(REPLICA_DIM) == 0, peak_at_the_last_avalanche_in_every_replica=out["overshoot_n"] == 0
    ).assign_attrs(long_name="why there is no overshoot")
    return out


def quasistatic_stress_strain(ds: xr.Dataset, bins: np.ndarray | int = 60) -> xr.Dataset:
    """The sawtooth stress-strain curve averaged over strain bins, then mean +- error over seeds.

    Per run the value of a bin is the exact mean of Sigma over it (elastic rises between the
    avalanches, drops at their strains); bins reaching beyond the run's last avalanche are NaN
    for that run (as are those before its first avalanche when mu is unknown).

    Parameters
    ----------
    ds : xarray.Dataset
        Quasistatic group: ``strain`` [1], ``stress_before``, ``stress_after`` [STRESS] on
        (..., seed, avalanche); ``completed`` (optional); mu from a ``shear_modulus`` coordinate
        or attribute [STRESS].
    bins : int or array-like
        Number of equal strain bins from 0 to the largest strain reached, or the bin edges [1].

    Returns
    -------
    xarray.Dataset
        On (..., strain) (bin centres; coordinate ``strain_edges``): ``stress``, ``stress_err``
        [STRESS] and ``stress_n`` (replicas covering the bin).
    """
    _check(ds, ("strain", "stress_before", "stress_after"))
    if np.ndim(bins) == 0:
        edges = np.linspace(0.0, float(ds["strain"].max()), int(bins) + 1)
    else:
        edges = np.asarray(bins, float)
    if edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"bins must be >= 1 or increasing edges, got {bins!r}")
    f = _integral(ds, xr.DataArray(edges, dims=EDGE), EDGE).where(completed(ds))
    centres = 0.5 * (edges[1:] + edges[:-1])
    per_run = (f.diff(EDGE) / np.diff(edges)).rename({EDGE: "strain"})
    per_run = per_run.assign_coords(strain=("strain", centres, {"units": "1", "long_name": "strain"}))
    out = replica_mean(per_run, "stress")
    out["stress"].attrs = {"units": STRESS, "long_name": "stress (strain-bin mean)"}
    out["stress_err"].attrs = {"units": STRESS, "long_name": "stress error"}
    out["stress_n"].attrs = {"units": "1", "long_name": "replicas"}
    return out.assign_coords(strain_edges=(EDGE, edges))


def steady_events(ds: xr.Dataset, variable: str, start_fraction: float = 0.5) -> xr.DataArray:
    """``variable`` of the avalanches in each completed run's steady window, NaN elsewhere.

    Padding (NaN, or -1 for ``activations``), avalanches before the window, runs that are not
    ``completed`` and values <= 0 are NaN.

    Parameters
    ----------
    ds : xarray.Dataset
        Quasistatic group with ``strain`` and ``variable`` on (..., seed, avalanche).
    variable : str
        One of ``AVALANCHE_VARIABLES``.
    start_fraction : float
        The window is strain >= start_fraction x the strain of the run's last avalanche.

    Returns
    -------
    xarray.DataArray
        float64 on the dims of ``ds[variable]``.
    """
    if variable not in AVALANCHE_VARIABLES:
        raise ValueError(f"variable must be one of {AVALANCHE_VARIABLES}, got {variable!r}")
    _check_fraction(start_fraction)
    _check(ds, ("strain", variable))
    values = ds[variable].astype(float)
    window = ds["strain"] >= start_fraction * ds["strain"].max(AVALANCHE_DIM)
    return values.where(window & completed(ds) & (values > 0)).assign_attrs(ds[variable].attrs)


def _fit(data: np.ndarray, discrete: bool, xmin: float) -> tuple[float, float]:
    """(tau, x_c) of the truncated power law fitted by ``powerlaw`` above ``xmin``."""
    import powerlaw  # imports matplotlib.pyplot (~0.8 s): only where a fit is made

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tpl = powerlaw.Fit(data, xmin=xmin, discrete=discrete, verbose=0).truncated_power_law
        return float(tpl.alpha), 1.0 / float(tpl.Lambda)


def _select_xmin(data: np.ndarray, discrete: bool, n_xmin: int) -> float:
    """x_min with the smallest Kolmogorov-Smirnov distance of the power law fitted above it
    (``powerlaw``'s rule), among ``n_xmin`` candidates log-spaced between the 1st and the 75th
    percentiles of ``data`` (``powerlaw`` scans every distinct value, which costs O(n^2))."""
    import powerlaw

    lo, hi = np.percentile(data, [1, 75])
    candidates = np.unique(np.round(np.geomspace(lo, hi, n_xmin))) if discrete else np.geomspace(lo, hi, n_xmin)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        distance = [powerlaw.Fit(data, xmin=c, discrete=discrete, verbose=0).power_law.D for c in candidates]
    return float(candidates[int(np.nanargmin(distance))])


def fit_avalanches(
    ds: xr.Dataset,
    variable: str = "avalanche_size",
    start_fraction: float = 0.5,
    xmin: float | None = None,
    n_bootstrap: int = 20,
    n_xmin: int = 24,
    min_events: int = 200,
    bootstrap_seed: int = 0,
) -> xr.Dataset:
    """Power law with an exponential cutoff fitted to the steady avalanches, errors by bootstrap over seeds.

    What is fitted: p(x) = x^-tau exp(-x / x_c) / Z for x >= x_min (``powerlaw``'s
    ``truncated_power_law``, maximum likelihood, normalised over [x_min, inf); ``activations`` as
    a discrete variable), to the avalanches of every seed pooled, per combination of the other
    sweep dims. x_min is chosen once on the pooled avalanches (``xmin`` None: the smallest
    Kolmogorov-Smirnov distance of a pure power law above it, Clauset-Shalizi-Newman, over
    ``n_xmin`` log-spaced candidates) and held for the bootstrap: each of ``n_bootstrap`` draws
    resamples the seeds with replacement, pools their avalanches and refits; the errors are the
    standard deviations of the draws (NaN with a single seed), i.e. the replica-to-replica error
    at that x_min.

    Parameters
    ----------
    ds : xarray.Dataset
        Quasistatic group: ``strain`` and ``variable`` on (..., seed, avalanche); ``completed``.
    variable : str
        ``avalanche_size`` [1], ``avalanche_duration`` [TIME] or ``activations`` [1].
    start_fraction : float
        Steady avalanches only: strain >= start_fraction x the strain of the run's last avalanche.
    xmin : float, optional
        Lower bound of the fit, in the units of ``variable``; chosen from the data by default.
    n_bootstrap : int
        Bootstrap draws over the seeds (0: no error).
    n_xmin : int
        Candidates of the x_min selection.
    min_events : int
        Fewer steady avalanches above x_min than this: no fit (NaN).
    bootstrap_seed : int
        Seed of the generator that draws the bootstrap samples.

    Returns
    -------
    xarray.Dataset
        On the sweep dims without ``seed`` and ``avalanche``: ``exponent`` (tau) and
        ``exponent_err`` [1], ``cutoff`` (x_c) and ``cutoff_err``, ``xmin`` (units of
        ``variable``), ``n_events`` (avalanches at or above x_min), ``n_steady`` (all steady
        avalanches), ``n_replicas``.
    """
    events = steady_events(ds, variable, start_fraction)
    if n_bootstrap < 0 or n_xmin < 2 or min_events < 1:
        raise ValueError(f"need n_bootstrap >= 0, n_xmin >= 2, min_events >= 1; got {n_bootstrap}, {n_xmin}, "
                         f"{min_events}")  # fmt: skip
    discrete = variable in DISCRETE
    group_dims = [d for d in events.dims if d not in (REPLICA_DIM, AVALANCHE_DIM)]
    shape = tuple(events.sizes[d] for d in group_dims)
    stacked = events.transpose(*group_dims, REPLICA_DIM, AVALANCHE_DIM).values
    stacked = stacked.reshape(-1, events.sizes[REPLICA_DIM], events.sizes[AVALANCHE_DIM])
    rng = np.random.default_rng(bootstrap_seed)
    names = ("exponent", "exponent_err", "cutoff", "cutoff_err", "xmin", "n_events", "n_steady", "n_replicas")
    rows = []
    for group in stacked:
        per_seed = [v[np.isfinite(v)] for v in group]
        per_seed = [v for v in per_seed if v.size]
        pooled = np.concatenate(per_seed) if per_seed else np.empty(0)
        row = dict.fromkeys(names, np.nan) | {"n_steady": pooled.size, "n_replicas": len(per_seed), "n_events": 0}
        if pooled.size >= min_events:
            x0 = float(xmin) if xmin is not None else _select_xmin(pooled, discrete, n_xmin)
            row["xmin"], row["n_events"] = x0, int(np.sum(pooled >= x0))
        if row["n_events"] >= min_events:
            row["exponent"], row["cutoff"] = _fit(pooled, discrete, row["xmin"])
            if len(per_seed) > 1 and n_bootstrap > 1:
                draws = [_fit(np.concatenate([per_seed[i] for i in rng.integers(0, len(per_seed), len(per_seed))]),
                              discrete, row["xmin"]) for _ in range(n_bootstrap)]  # fmt: skip
                row["exponent_err"], row["cutoff_err"] = np.std(draws, axis=0, ddof=1)
        rows.append(row)
    units = declared(variable).units or "1"
    meta = {
        "exponent": ("1", "avalanche exponent tau"), "exponent_err": ("1", "avalanche exponent error"),
        "cutoff": (units, "cutoff x_c"), "cutoff_err": (units, "cutoff error"), "xmin": (units, "lower bound x_min"),
        "n_events": ("1", "avalanches fitted"), "n_steady": ("1", "steady avalanches"),
        "n_replicas": ("1", "replicas"),
    }  # fmt: skip
    coords = {d: events[d] for d in group_dims if d in events.coords}
    out = xr.Dataset(
        {n: xr.DataArray(np.reshape([r[n] for r in rows], shape), dims=group_dims, coords=coords,
                         attrs={"units": meta[n][0], "long_name": meta[n][1]}) for n in names}
    )  # fmt: skip
    for n in ("n_events", "n_steady", "n_replicas"):
        out[n] = out[n].astype(int)
    out.attrs = {
        "variable": variable,
        "model": "p(x) = x^-tau exp(-x / x_c) / Z for x >= x_min (powerlaw truncated_power_law, maximum likelihood)",
        "errors": f"standard deviation of {n_bootstrap} bootstrap draws over the seeds at fixed x_min",
        "start_fraction": start_fraction,
        "discrete": int(discrete),
    }
    return out


def avalanche_distribution(
    ds: xr.Dataset, variable: str = "avalanche_size", start_fraction: float = 0.5, bins: np.ndarray | int = 30
) -> xr.Dataset:
    """Log-binned probability density of an avalanche observable over the steady avalanches (seeds pooled).

    Parameters
    ----------
    ds : xarray.Dataset
        Quasistatic group: ``strain`` and ``variable`` on (..., seed, avalanche); ``completed``.
    variable : str
        ``avalanche_size`` [1], ``avalanche_duration`` [TIME] or ``activations`` [1].
    start_fraction : float
        Steady window (``steady_events``).
    bins : int or array-like
        Number of log-spaced bins over every steady value (shared by all combinations), or edges.

    Returns
    -------
    xarray.Dataset
        On (..., variable) (geometric bin centres; coordinate ``<variable>_edges``): ``density``
        [1 / units] integrating to 1, ``count`` (avalanches per bin); ``mean`` and ``samples``
        (avalanches) on the sweep dims without ``seed``.
    """
    events = steady_events(ds, variable, start_fraction)
    if np.ndim(bins) == 0:
        lo, hi = float(events.min()), float(events.max())
        if not np.isfinite(lo):
            raise ValueError(f"no steady {variable} values to bin (start_fraction = {start_fraction})")
        edges = np.geomspace(lo, hi * (1 + 1e-9), int(bins) + 1)
    else:
        edges = np.asarray(bins, float)
    out = _histogram(events.rename(variable), edges, variable, (REPLICA_DIM, AVALANCHE_DIM))
    out = out.assign_coords({variable: (variable, np.sqrt(edges[1:] * edges[:-1]), out[variable].attrs)})
    width = xr.DataArray(np.diff(edges), dims=variable)
    out["count"] = (out["density"] * width * out["samples"]).round().fillna(0).astype(int).assign_attrs(
        units="1", long_name="avalanches per bin"
    )
    return out


def fitted_density(fit: xr.Dataset, x: np.ndarray) -> np.ndarray:
    """The fitted law of one ``fit_avalanches`` combination as a density of all the steady avalanches.

    ``powerlaw``'s normalised truncated power law above x_min, times the share of the steady
    avalanches at or above x_min (``n_events / n_steady``), so that it lies on the density of
    ``avalanche_distribution``; NaN below x_min or without a fit.

    Parameters
    ----------
    fit : xarray.Dataset
        One combination of a ``fit_avalanches`` result (scalar ``exponent``, ``cutoff``, ``xmin``).
    x : array-like
        Values of the variable, in its units.

    Returns
    -------
    numpy.ndarray
        Density [1 / units of the variable], shape of ``x``.
    """
    import powerlaw

    x = np.asarray(x, float)
    tau, cutoff, xmin = float(fit["exponent"]), float(fit["cutoff"]), float(fit["xmin"])
    if not np.all(np.isfinite([tau, cutoff, xmin])):
        return np.full(x.shape, np.nan)
    law = powerlaw.Truncated_Power_Law(xmin=xmin, parameters=[tau, 1.0 / cutoff],
                                       discrete=bool(fit.attrs.get("discrete", 0)), verbose=0)  # fmt: skip
    share = float(fit["n_events"]) / float(fit["n_steady"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.where(x >= xmin, share * law.pdf(np.maximum(x, xmin)), np.nan)
