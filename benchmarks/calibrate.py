"""Calibration figures: evaluations and wall time to recover hidden parameters, CMA-ES against a grid
and a random search of the same parameters, side by side in one run on the 2-worker local cluster.

Reference curves are made by the engine at hidden parameters (tau_res = 2.6, Weibull scale 0.60,
tau_pl = 1; L = 16, 8 replicas, other seeds than the calibration's): a flow curve at three rates, the
loading curve at the fastest (0.3) and a creep curve at Sigma = 0.8. Each study starts from the
paper's values (tau_res = 2, scale = 0.57) and fits tau_res in [1, 5] and the scale in [0.45, 0.75]
with 4 replicas per candidate. A study reaches the tolerance (tau_res within 0.3, scale within 0.015)
at the first evaluation after which its best candidate so far (lowest objective) lies within it.
CMA-ES has 120 evaluations (the start, then generations of 10: a population above the default
4 + 3 ln 2 = 6 of two parameters, for an objective that common random numbers make deterministic
but rugged along its valley); its median and worst over seeds are reported (a seed that never
reaches the tolerance counts as infinitely many). The grid's best is known only once it is
complete, so a grid's cost is its size: grids of N x N points are run at increasing N (default 9,
13, 17, 21, 25, 33: each has a point within the tolerance of the truth) until one's best lies
within the tolerance; the grid cost is the size of that grid, or more than the largest size if
none does (a lower bound). Target: CMA-ES >= 5x fewer evaluations than the grid.
Order: CMA-ES, the grids, then the random search (as many evaluations as CMA-ES), each summary
printed as soon as its rows are in.

Run: ``python benchmarks/calibrate.py [--quick] [--grid-points 9,13,17,21,25,33]`` (quick: one
seed per sampler, else three).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from epmsweep.calibrate import calibrate, parse_calibration, reference_from_groups
from epmsweep.sweep import open_client, run_sweep

HIDDEN = {"tau_res": 2.6, "thresholds.scale": 0.60}
START = {"tau_res": 2.0, "thresholds.scale": 0.57}
TOLERANCE = {"tau_res": 0.3, "thresholds.scale": 0.015}
RATES, CREEP_STRESS, CREEP_TIMES = [0.03, 0.1, 0.3], 0.8, [20.0, 40.0, 60.0, 80.0, 100.0]
EVALUATIONS, CMAES_POPULATION = 120, 10  # the budget of CMA-ES and of the random search
LOADING_RATE, LOADING_STRAINS = 0.3, [0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0]
RUNS = {"imposed_rate": {"strain_end": 1.0, "n_records": 20}, "imposed_stress": {"t_end": 100.0, "n_records": 20}}
STATES = {"rejuvenated": {"kind": "rejuvenated", "shear_modulus": 15.0}}


def model(values: dict) -> dict:
    return {"L": 16, "tau_pl": 1.0, "tau_res": values["tau_res"], "thresholds": {"shape": 1.5,
            "scale": values["thresholds.scale"]}}  # fmt: skip


def references(folder: Path, client) -> dict:
    sweep = {"name": "truth", "seed": 99, "replicas": 8, "model": model(HIDDEN), "initial_states": STATES,
             "imposed_rate": {"shear_rate": RATES, **RUNS["imposed_rate"]},
             "imposed_stress": {"stress": [CREEP_STRESS], **RUNS["imposed_stress"]}}  # fmt: skip
    tree = run_sweep(sweep, out=folder / "truth", client=client, progress=False)
    groups = {name: tree[name].to_dataset() for name in tree.children}
    reference_from_groups(groups, "flow_curve", RATES, "rejuvenated").to_netcdf(folder / "flow.nc")
    reference_from_groups(groups, "creep", CREEP_TIMES, "rejuvenated", CREEP_STRESS).to_netcdf(folder / "creep.nc")
    loading = reference_from_groups(groups, "stress_strain", LOADING_STRAINS, "rejuvenated", LOADING_RATE)
    loading.to_netcdf(folder / "loading.nc")
    return {"flow": {"observable": "flow_curve", "path": str(folder / "flow.nc")},
            "loading": {"observable": "stress_strain", "path": str(folder / "loading.nc"), "shear_rate": LOADING_RATE},
            "creep": {"observable": "creep", "path": str(folder / "creep.nc"), "stress": CREEP_STRESS}}  # fmt: skip


def study(name: str, refs: dict, **optimizer) -> dict:
    return {"name": name, "seed": 2021, "replicas": 4, "model": model(START), "initial_states": STATES, **RUNS,
            "parameters": {"tau_res": {"bounds": [1.0, 5.0]}, "thresholds.scale": {"bounds": [0.45, 0.75]}},
            "references": refs, "optimizer": optimizer}  # fmt: skip


def evaluations_to_tolerance(hist) -> int | None:
    """1-based evaluation after which the best candidate so far stays within the tolerance; None if never."""
    objective = np.where(np.isfinite(hist["objective"].values), hist["objective"].values, np.inf)
    best = np.minimum.accumulate(objective)
    index = [int(np.flatnonzero(objective == b)[0]) for b in best]
    within = [all(abs(float(hist["value"][i].sel(parameter=p)) - v) <= TOLERANCE[p] for p, v in HIDDEN.items())
              for i in index]  # fmt: skip
    misses = [k for k, ok in enumerate(within) if not ok]
    first = misses[-1] + 1 if misses else 0
    return first + 1 if first < len(within) else None


def run_study(name: str, refs: dict, folder: Path, client, **optimizer) -> tuple[int, int | None]:
    """Run one study, print its row; returns (evaluations, evaluations to the tolerance or None)."""
    t0 = time.perf_counter()
    result = calibrate(parse_calibration(study(name, refs, **optimizer)), out=folder / "out", client=client,
                       progress=False, figures=False)  # fmt: skip
    wall = time.perf_counter() - t0
    size, reach = result.history.sizes["candidate"], evaluations_to_tolerance(result.history)
    if optimizer["sampler"] == "grid":  # its best is known once it is complete
        reach = size if reach is not None else None
    print(f"{name:>10}: {size:3d} evaluations in {wall:6.1f} s, to tolerance: {reach}, "
          f"best {', '.join(f'{k} = {v:.3f}' for k, v in result.best.items())}", flush=True)  # fmt: skip
    return size, reach


def grid_cost(refs: dict, folder: Path, client, points: list[int]) -> tuple[int, bool]:
    """Run grids of increasing N until one's best lies within the tolerance; (its size, True), or
    (the largest size, False) if none does."""
    for n in points:
        size, reach = run_study(f"grid_{n}", refs, folder, client, sampler="grid", grid_points=n, evaluations=n * n)
        if reach is not None:
            return size, True
    return size, False


def _count(evaluations: float) -> str:
    return f"{evaluations:.0f} evaluations" if np.isfinite(evaluations) else "never"


def summary(kind: str, reached: list[int | None], grid: tuple[int, bool]) -> None:
    """Print how many seeds reached the tolerance, the median and worst over seeds (a seed that never
    did counts as infinitely many evaluations), and their ratios against the grid."""
    counts = np.array([np.inf if r is None else r for r in reached], float)
    median, worst = float(np.median(counts)), float(counts.max())
    size, measured = grid
    more = "" if measured else "more than "  # no grid's best within the tolerance: a lower bound
    ratios = ", ".join(f"{name} {more}{size / v:.1f}x fewer" for name, v in (("median", median), ("worst", worst))
                       if np.isfinite(v))  # fmt: skip
    versus = f"the grid after {size}" if measured else f"no grid up to {size} points did"
    print(f"{kind}: reached the tolerance in {np.isfinite(counts).sum()} of {counts.size} seeds, median "
          f"{_count(median)}, worst {_count(worst)}; {versus}{' -> ' + ratios if ratios else ''} "
          "(target >= 5x for CMA-ES)", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed per sampler")
    parser.add_argument(
        "--grid-points", default="9,13,17,21,25,33", help="grid sizes N per parameter, in order (default: these)"
    )
    args = parser.parse_args()
    seeds = [3] if args.quick else [3, 4, 5]
    points = [int(n) for n in args.grid_points.split(",")]
    with tempfile.TemporaryDirectory() as tmp, open_client(n_workers=2) as client:
        folder = Path(tmp)
        refs = references(folder, client)
        cmaes = [run_study(f"cmaes_{s}", refs, folder, client, sampler="cmaes", evaluations=EVALUATIONS,
                           population=CMAES_POPULATION, seed=s)
                 for s in seeds]  # fmt: skip
        grid = grid_cost(refs, folder, client, points)
        summary("cmaes", [r for _, r in cmaes], grid)
        random = [run_study(f"random_{s}", refs, folder, client, sampler="random", evaluations=EVALUATIONS, seed=s)
                  for s in seeds]  # fmt: skip
        summary("random", [r for _, r in random], grid)


if __name__ == "__main__":
    main()
