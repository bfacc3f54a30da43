"""What a calibration leaves: the history as a Dataset, the best parameters with uncertainties, figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import xarray as xr
from epmsweep.engine.units import STRESS
from epmsweep.engine.variables import PARAMETER_UNITS
from optuna.trial import TrialState

from .spec import CalibrationSpec

UNCERTAINTY_METHOD = (
    "spread of the elite: standard deviation (ddof = 1) of each parameter over the `population` evaluated "
    "candidates of lowest objective (the width of the region the optimiser found good, not a confidence interval)"
)


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
    err = elite_spread(value, objective, spec.optimizer.population)
    ds["best_err"] = ("parameter", err, {"long_name": "one-sigma uncertainty", "method": UNCERTAINTY_METHOD})
    return ds


def elite_spread(value: np.ndarray, objective: np.ndarray, size: int) -> np.ndarray:
    """Standard deviation (ddof = 1) of each parameter over the ``size`` candidates of lowest
    objective; NaN with fewer than two finished candidates.

    ``value``: (candidate, parameter); ``objective``: (candidate,), NaN for failed candidates."""
    ok = np.flatnonzero(np.isfinite(objective))
    elite = ok[np.argsort(objective[ok])[: max(2, size)]]
    if elite.size < 2:
        return np.full(value.shape[1], np.nan)
    return value[elite].std(axis=0, ddof=1)


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
