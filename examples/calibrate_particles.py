"""The paper's loop at small N: lattice parameters calibrated on particle curves, then a prediction.

1. calibrate ``calibrate_particles.yaml``: tau_res, the Weibull scale of the thresholds and tau_pl,
   fitted to the particle flow curve and the particle loading curve at gdot = 1e-2 (the shipped
   references in ``data/particles/``, made by ``particle_references.py``), CMA-ES from the paper's
   values on a local Dask cluster;
2. predict creep at Sigma = 0.7, a protocol not used in the fit, with the calibrated parameters and
   with the paper's, and compare both with the particle creep curve;
3. draw ``figures/calibrate_particles.png`` (flow curve, loading curve, creep: particles, paper's
   parameters, calibrated) and print the chi-square per point of every curve.

Run (a few minutes on two cores):

    .venv/bin/python examples/calibrate_particles.py --out results/calibrate_particles

The study, its runs and the prediction sweeps are stored under ``--out``: a rerun reuses them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import xarray as xr  # noqa: E402
from epmsweep.analysis import save_figure  # noqa: E402
from epmsweep.calibrate import OBSERVABLES, calibrate, load_curve, model_curve, objective_terms  # noqa: E402
from epmsweep.calibrate.spec import candidate_spec  # noqa: E402
from epmsweep.engine.variables import variable  # noqa: E402
from epmsweep.sweep import open_client, run_sweep  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

HERE = Path(__file__).parent
CALIBRATION = HERE / "calibrate_particles.yaml"
CREEP = HERE / "data" / "particles" / "creep.nc"
CREEP_STRESS = 0.7
STYLE = {"paper": ("tab:gray", "--", "paper's parameters"), "calibrated": ("tab:red", "-", "calibrated")}


def predictions(result, creep, client, out: Path) -> dict[str, dict[str, xr.Dataset]]:
    """The sweep groups of the paper's and the calibrated parameters, with the creep run added."""
    spec = result.spec
    start = {p.name: p.start for p in spec.parameters}
    groups = {}
    for label, values in {"paper": start, "calibrated": result.best}.items():
        sweep = candidate_spec(spec.sweep, (*spec.references, creep), values, f"{spec.name}_{label}", spec.source)
        tree = run_sweep(sweep, out=out, client=client, progress=False)
        groups[label] = {name: tree[name].to_dataset() for name in tree.children}
    return groups


def _label(name: str) -> str:
    v = variable(name)
    return f"{v.long_name} [{v.units}]"


def figure(curves, groups, out: Path) -> Path:
    fig, axes = plt.subplots(1, len(curves), figsize=(4.3 * len(curves), 3.6), layout="constrained")
    for ax, curve in zip(axes, curves, strict=True):
        ax.errorbar(curve.x, curve.y, curve.err, fmt="o", ms=3.5, color="k", label="particles (N = 1024)")
        for label, (colour, ls, text) in STYLE.items():
            m = model_curve(groups[label], curve)
            mean, err = m["mean"].values, m["err"].values
            ax.plot(curve.x, mean, ls, color=colour, label=f"lattice, {text}")
            ax.fill_between(curve.x, mean - err, mean + err, color=colour, alpha=0.25, lw=0)
        role = "predicted" if curve.name == "creep" else "fitted"
        at = "" if curve.at is None else f", {curve.observable.at} = {curve.at:g}"
        ax.set(xlabel=_label(curve.observable.x), ylabel=_label(curve.observable.y),
               title=f"{curve.observable.name.replace('_', ' ')}{at} ({role})")  # fmt: skip
        if curve.observable.x == "shear_rate":
            ax.set_xscale("log")
            ax.set_xticks(curve.x, [f"{v:g}" for v in curve.x], minor=False)
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.legend(fontsize=7)
    path = out / "calibrate_particles.png"
    save_figure(fig, path)  # PNG at 300 dpi and PDF
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=None, help="Dask workers (default: one per core)")
    parser.add_argument("--out", default="results/calibrate_particles", help="output folder")
    args = parser.parse_args()
    out = Path(args.out)
    start = time.monotonic()
    with open_client(n_workers=args.workers) as client:
        result = calibrate(CALIBRATION, out=out, client=client)
        creep = load_curve(CREEP, "creep", OBSERVABLES["creep"], "E1", CREEP_STRESS, 1.0)
        groups = predictions(result, creep, client, out)
    curves = (*result.spec.references, creep)
    path = figure(curves, groups, out)
    print(f"calibrated in {result.history.sizes['candidate']} evaluations ({time.monotonic() - start:.0f} s); "
          f"figure {path}")  # fmt: skip
    for p in result.spec.parameters:
        print(f"  {p.name}: paper {p.start:g} -> {result.best[p.name]:.3f} +- {result.best_err[p.name]:.3f}")
    print("chi-square per point:    " + "  ".join(f"{c.name:>9}" for c in curves))
    for label in STYLE:
        terms = objective_terms(groups[label], curves)
        print(f"  {label:>20}:   " + "  ".join(f"{terms[c.name] / c.x.size:9.2f}" for c in curves))
    print("first and last points:")
    for c in curves:
        models = ", ".join(f"{label} {_ends(model_curve(groups[label], c)['mean'].values)}" for label in STYLE)
        print(f"  {c.name}: {c.observable.y} at {c.observable.x} = {c.x[0]:g}, {c.x[-1]:g}: particles "
              f"{_ends(c.y)}, {models}")  # fmt: skip


def _ends(values) -> str:
    return f"{values[0]:.3f} / {values[-1]:.3f}"


if __name__ == "__main__":
    main()
