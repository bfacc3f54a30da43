"""What a calibration leaves: the history as a Dataset, the best parameters with uncertainties, figures."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import xarray as xr
from epmsweep.engine.units import STRESS
from epmsweep.engine.variables import PARAMETER_UNITS
from optuna.trial import TrialState

from .spec import CalibrationSpec, Parameter

UNCERTAINTY_METHOD = (
    "curvature: quadratic fit of the objective over the best evaluated candidates (in the sampler's "
    "coordinates, log10 for log-scale parameters), one sigma = where the objective rises by 1 "
    "(a chi-square with unit weights)"
)

MIN_FIT_FACTOR = 2  # the quadratic is fitted to this many times as many candidates as it has coefficients


def parameter_units(name: str) -> str:
    """Units of a fitted parameter (``engine.variables.PARAMETER_UNITS``; state fields are stresses)."""
    if name.startswith("initial_states."):
        return STRESS
    return PARAMETER_UNITS.get(name.replace(".", "_"), "1")


@dataclass
class Calibration:
    """The outcome of a calibration.

    ``history``: Dataset on (candidate, parameter) and (candidate, observable), see ``history``;
    ``best`` / ``best_err``: {parameter: value} of the best candidate and its one-sigma uncertainty
    (``UNCERTAINTY_METHOD``; NaN where the objective is not locally convex); ``path``: the history
    file; ``figures``: the figure files written.
    """

    spec: CalibrationSpec
    history: xr.Dataset
    best: dict[str, float]
    best_err: dict[str, float]
    path: Path
    figures: list[Path]

    @property
    def best_objective(self) -> float:
        return float(self.history.attrs["best_objective"])


def history(spec: CalibrationSpec, study: optuna.Study) -> xr.Dataset:
    """The study as a Dataset, one entry per evaluated candidate (trial number).

    Returns
    -------
    xarray.Dataset
        ``value`` (candidate, parameter) in the parameter's units (``units`` coordinate),
        ``objective`` (candidate; NaN if it failed), ``term`` (candidate, observable: unweighted
        chi-square of each reference), ``weight`` (observable), ``runs_computed`` (candidate: runs
        computed for it; 0 when all were stored), and ``best`` / ``best_err`` (parameter).
    """
    trials = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    names = [p.name for p in spec.parameters]
    refs = [c.name for c in spec.references]
    value = np.array([[t.params.get(n, np.nan) for n in names] for t in trials]).reshape(len(trials), len(names))
    objective = np.array([t.value if t.state == TrialState.COMPLETE else np.nan for t in trials])
    terms = [t.user_attrs.get("terms", {}) for t in trials]
    ds = xr.Dataset(
        {
            "value": (("candidate", "parameter"), value, {"long_name": "parameter value"}),
            "objective": ("candidate", objective, {"units": "1", "long_name": "weighted chi-square"}),
            "term": (("candidate", "observable"), np.array([[t.get(r, np.nan) for r in refs] for t in terms]),
                     {"units": "1", "long_name": "chi-square of the reference"}),  # fmt: skip
            "weight": ("observable", [c.weight for c in spec.references], {"units": "1", "long_name": "weight"}),
            "runs_computed": ("candidate", [int(t.user_attrs.get("runs_computed", 0)) for t in trials],
                              {"units": "1", "long_name": "runs computed"}),  # fmt: skip
        },
        coords={
            "candidate": ("candidate", [t.number for t in trials], {"long_name": "evaluation"}),
            "parameter": ("parameter", names),
            "units": ("parameter", [parameter_units(n) for n in names]),
            "observable": ("observable", refs),
        },
        attrs={"name": spec.name, "sampler": spec.optimizer.sampler, "optimizer_seed": spec.optimizer.seed,
               "calibration": spec.text},  # fmt: skip
    )
    best = int(np.nanargmin(objective)) if np.isfinite(objective).any() else None
    if best is None:
        ds.attrs.update(best_candidate=-1, best_objective=np.nan)
        ds["best"] = ("parameter", np.full(len(names), np.nan))
        ds["best_err"] = ("parameter", np.full(len(names), np.nan))
        return ds
    ds.attrs.update(best_candidate=int(ds.candidate[best]), best_objective=float(objective[best]))
    ds["best"] = ("parameter", value[best], {"long_name": "best parameter value"})
    err = curvature_errors(spec.parameters, value, objective, best)
    ds["best_err"] = ("parameter", err, {"long_name": "one-sigma uncertainty", "method": UNCERTAINTY_METHOD})
    return ds


def _unit(p: Parameter, x: np.ndarray) -> np.ndarray:
    """Parameter values mapped to [0, 1] over the bounds (log10 where ``log``)."""
    if p.log:
        return (np.log10(x) - math.log10(p.low)) / (math.log10(p.high) - math.log10(p.low))
    return (x - p.low) / (p.high - p.low)


def curvature_errors(parameters: tuple[Parameter, ...], value: np.ndarray, objective: np.ndarray, best: int):
    """One-sigma uncertainties from the curvature of the objective around the best candidate.

    A quadratic ``c + g.u + u.H.u / 2`` in the unit coordinates ``u`` of the parameters (log10 for
    log-scale ones) is fitted by least squares to the ``MIN_FIT_FACTOR`` x (number of
    coefficients) candidates of lowest objective; the covariance is ``2 H^-1`` (the objective rises
    by 1 at one sigma), mapped back to parameter units at the best value. NaN for every parameter
    when there are too few candidates or ``H`` is not positive definite.
    """
    n = len(parameters)
    nan = np.full(n, np.nan)
    ok = np.flatnonzero(np.isfinite(objective))
    n_coef = (n + 1) * (n + 2) // 2
    if ok.size < MIN_FIT_FACTOR * n_coef:
        return nan
    pick = ok[np.argsort(objective[ok])[: MIN_FIT_FACTOR * n_coef]]
    u = np.column_stack([_unit(p, value[pick, i]) for i, p in enumerate(parameters)])
    u0 = np.array([_unit(p, value[best, i]) for i, p in enumerate(parameters)])
    d = u - u0
    pairs = [(i, j) for i in range(n) for j in range(i, n)]
    design = np.column_stack([np.ones(len(pick)), d, *[d[:, i] * d[:, j] for i, j in pairs]])
    coef, *_ = np.linalg.lstsq(design, objective[pick], rcond=None)
    hess = np.zeros((n, n))
    for (i, j), c in zip(pairs, coef[1 + n :], strict=True):
        hess[i, j] = hess[j, i] = 2 * c if i == j else c
    if not np.all(np.linalg.eigvalsh(hess) > 0):
        return nan
    sigma_u = np.sqrt(np.diag(2 * np.linalg.inv(hess)))
    out = []
    for i, p in enumerate(parameters):
        if p.log:
            out.append(value[best, i] * math.log(10) * sigma_u[i] * (math.log10(p.high) - math.log10(p.low)))
        else:
            out.append(sigma_u[i] * (p.high - p.low))
    return np.array(out)


def write_outcome(spec: CalibrationSpec, hist: xr.Dataset, out: Path, *, figures: bool, candidate_path: Callable):
    """Write the history to ``<out>/<name>.nc`` and the figures; return the ``Calibration``."""
    path = out / f"{spec.name}.nc"
    tmp = path.with_name(f".{path.name}.tmp")
    hist.to_netcdf(tmp, engine="netcdf4")
    tmp.replace(path)
    written = []
    if figures and hist.attrs["best_candidate"] >= 0:
        from .figures import write_calibration_figures

        best_file = candidate_path(hist.attrs["best_candidate"])
        written = write_calibration_figures(spec, hist, best_file, out / f"{spec.name}_figures")
    best = dict(zip(hist.parameter.values.tolist(), hist["best"].values.tolist(), strict=True))
    best_err = dict(zip(hist.parameter.values.tolist(), hist["best_err"].values.tolist(), strict=True))
    return Calibration(spec, hist, best, best_err, path, written)
