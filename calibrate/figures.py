"""Figures of a calibration: reference vs best fit per observable, objective vs evaluations, parameter traces.

Written as PNG (300 dpi) and PDF with ``analysis.save_figure``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from epmsweep.analysis import save_figure
from epmsweep.engine.variables import variable
from matplotlib.figure import Figure

from .objective import model_curve
from .spec import CalibrationSpec
from .study import candidate_groups


def _label(name: str) -> str:
    v = variable(name)
    return f"{v.long_name} [{v.units}]"


def plot_fit(spec: CalibrationSpec, groups: dict[str, xr.Dataset], best: dict[str, float]) -> Figure:
    """One panel per reference: its points with error bars, the best candidate's replica mean +- error."""
    n = len(spec.references)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), squeeze=False, layout="constrained")
    for ax, curve in zip(axes[0], spec.references, strict=True):
        model = model_curve(groups, curve)
        ax.errorbar(curve.x, curve.y, curve.err, fmt="o", ms=4, color="k", label="reference")
        mean, err = model["mean"].values, model["err"].values
        ax.plot(curve.x, mean, "-", color="C0", label="best fit")
        ax.fill_between(curve.x, mean - err, mean + err, color="C0", alpha=0.3, lw=0)
        if curve.observable.x == "shear_rate":
            ax.set_xscale("log")
        at = "" if curve.at is None else f" at {curve.observable.at} = {curve.at:g}"
        ax.set_title(f"{curve.name} ({curve.observable.name}{at})", fontsize=9)
        ax.set_xlabel(_label(curve.observable.x))
        ax.set_ylabel(_label(curve.observable.y))
        ax.legend(fontsize=8)
    fig.suptitle(", ".join(f"{k} = {v:.4g}" for k, v in best.items()), fontsize=9)
    return fig


def plot_objective(hist: xr.Dataset) -> Figure:
    """Objective of every evaluation and the best so far, log scale."""
    fig, ax = plt.subplots(figsize=(5, 3.4), layout="constrained")
    objective = hist["objective"].values
    ax.plot(np.arange(objective.size), objective, "o", ms=3, color="C0", label="candidate")
    best = np.fmin.accumulate(np.where(np.isfinite(objective), objective, np.inf))
    ax.step(np.arange(objective.size), np.where(np.isfinite(best), best, np.nan), where="post", color="k",
            label="best so far")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("evaluation")
    ax.set_ylabel("objective (weighted chi-square)")
    ax.legend(fontsize=8)
    return fig


def plot_traces(hist: xr.Dataset) -> Figure:
    """Every parameter against the evaluation number, the best value as a line."""
    names = hist.parameter.values.tolist()
    fig, axes = plt.subplots(len(names), 1, figsize=(5, 1.9 * len(names) + 0.6), squeeze=False, sharex=True,
                             layout="constrained")  # fmt: skip
    for ax, name, units in zip(axes[:, 0], names, hist.units.values.tolist(), strict=True):
        ax.plot(np.arange(hist.sizes["candidate"]), hist["value"].sel(parameter=name), "o", ms=3)
        ax.axhline(float(hist["best"].sel(parameter=name)), color="k", lw=1)
        ax.set_ylabel(f"{name}\n[{units}]", fontsize=8)
    axes[-1, 0].set_xlabel("evaluation")
    return fig


def write_calibration_figures(spec: CalibrationSpec, hist: xr.Dataset, best_file: Path, folder: Path) -> list[Path]:
    """Write ``fit``, ``objective`` and ``traces`` (PNG and PDF) to ``folder``; returns the files."""
    folder.mkdir(parents=True, exist_ok=True)
    best = dict(zip(hist.parameter.values.tolist(), hist["best"].values.tolist(), strict=True))
    figures = {
        "fit": plot_fit(spec, candidate_groups(best_file), best),
        "objective": plot_objective(hist),
        "traces": plot_traces(hist),
    }
    written = []
    for name, fig in figures.items():
        written += save_figure(fig, folder / name)
        plt.close(fig)
    return written
