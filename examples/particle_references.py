"""Particle reference curves for ``calibrate_particles.yaml``: flow curve, stress-strain, creep at small N.

Prepares ``--glasses`` E1-like inherent structures (instantaneous quench of the liquid at T = 1) of
the 2D binary Lennard-Jones glass with LAMMPS, measures their quasistatic shear modulus, and shears
each with the paper's particle protocols (pairwise dissipation zeta = 1; feedback B = 1):

* imposed rate ``RATES`` to strain ``STRAIN_END`` (the flow curve: steady stress, late half);
* imposed stress ``CREEP_STRESS`` for ``CREEP_T_END`` (the creep curve, left out of the fit).

The curves are averaged over the glasses; their errors are the standard error over glasses
(ddof = 1) combined in quadrature with ``ERROR_FLOOR`` (a single glass has no spread at the
elastic start, where every glass gives the same stress, and the objective divides by the error).
They are written in the project's vocabulary (``calibrate.reference.reference_dataset``) to
``examples/data/particles/`` together with ``glasses.nc``, the per-glass figures. The runs are
tasks on a local Dask cluster; every run is stored under ``--work`` and reused by a rerun.

Run (26 min on two cores shared with other jobs, load 5-9; the shipped files were made with the defaults):

    .venv/bin/python examples/particle_references.py --work results/particle_references
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import xarray as xr
from epmsweep.analysis import steady_stress
from epmsweep.calibrate.reference import OBSERVABLES, reference_dataset
from epmsweep.engine import ImposedRate, ImposedStress
from epmsweep.engine.files import save_dataset
from epmsweep.engine.variables import attrs
from epmsweep.micro import Configuration, QuenchProtocol, prepare_glass, shear
from epmsweep.micro.modulus import shear_modulus
from epmsweep.sweep import open_client

QUENCH = QuenchProtocol(T_melt=1.0, t_melt=50.0)  # E1-like: minimised straight from the liquid
RATES = (2e-3, 5e-3, 1e-2, 2e-2)
FIT_RATE = 1e-2  # the stress-strain curve used in the fit
STRAIN_END = 1.0
N_RECORDS = 50
CREEP_STRESS = 0.7
CREEP_T_END = 100.0
ERROR_FLOOR = 0.01  # stress units for stress, and strain units for strain
DATA = Path(__file__).parent / "data" / "particles"


def run_all(client, n: int, glasses: int, work: Path) -> tuple[dict, dict, list[float]]:
    """Glasses, moduli and particle runs (stored under ``work``): ({(rate, g): ds}, {g: ds}, [mu])."""
    paths = [work / f"glass_{g}.nc" for g in range(glasses)]
    missing = {g: client.submit(prepare_glass, n, QUENCH, seed=100 + g, pure=False)
               for g, path in enumerate(paths) if not path.is_file()}  # fmt: skip
    for g, future in missing.items():
        future.result().save(paths[g])
    configs = [Configuration.load(path) for path in paths]
    moduli = [m for m, _ in client.gather([client.submit(shear_modulus, c, pure=False) for c in configs])]
    jobs = {}
    for g, config in enumerate(configs):
        for rate in RATES:
            jobs[f"rate_{rate:g}_{g}"] = (config, ImposedRate(rate, strain_end=STRAIN_END, n_records=N_RECORDS), g)
        jobs[f"creep_{g}"] = (config, ImposedStress(CREEP_STRESS, t_end=CREEP_T_END, n_records=N_RECORDS), g)
    todo = {k: v for k, v in jobs.items() if not (work / f"{k}.nc").is_file()}
    futures = {k: client.submit(shear, c, p, seed=g, pure=False) for k, (c, p, g) in todo.items()}
    for k, fut in futures.items():
        save_dataset(fut.result(), work / f"{k}.nc")
        print(f"  {k} done", flush=True)
    rate_runs = {(r, g): xr.load_dataset(work / f"rate_{r:g}_{g}.nc") for r in RATES for g in range(glasses)}
    creep_runs = {g: xr.load_dataset(work / f"creep_{g}.nc") for g in range(glasses)}
    return rate_runs, creep_runs, moduli


def over_glasses(values: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over ``glass`` and its standard error, with ``ERROR_FLOOR`` added in quadrature."""
    n = values.sizes["glass"]
    sem = values.std("glass", ddof=1) / np.sqrt(n)
    return values.mean("glass").values, np.sqrt(sem.values**2 + ERROR_FLOOR**2)


def write_references(rate_runs: dict, creep_runs: dict, moduli: list[float], n: int) -> None:
    glasses = len(creep_runs)
    common = {"source": f"2D binary Lennard-Jones glass, N = {n}, {glasses} E1-like glasses "
                        "(instantaneous quench from T = 1), pairwise dissipation zeta = 1, feedback B = 1",
              "error": f"standard error over glasses (ddof = 1), {ERROR_FLOOR} added in quadrature"}  # fmt: skip
    DATA.mkdir(parents=True, exist_ok=True)
    steady = xr.DataArray(
        [[float(steady_stress(rate_runs[r, g].expand_dims(("shear_rate", "seed")))["stress"].squeeze())
          for g in range(glasses)] for r in RATES],
        dims=("shear_rate", "glass"), coords={"shear_rate": list(RATES)},
    )  # fmt: skip
    y, err = over_glasses(steady)
    reference_dataset(OBSERVABLES["flow_curve"], RATES, y, err, **common).to_netcdf(DATA / "flow_curve.nc")
    loading = xr.concat([rate_runs[FIT_RATE, g]["stress"] for g in range(glasses)], "glass")
    y, err = over_glasses(loading)
    reference_dataset(OBSERVABLES["stress_strain"], loading.strain.values, y, err, shear_rate=FIT_RATE,
                      **common).to_netcdf(DATA / "stress_strain.nc")  # fmt: skip
    creep = xr.concat([creep_runs[g]["strain"] for g in range(glasses)], "glass").isel(time=slice(1, None))
    y, err = over_glasses(creep)
    reference_dataset(OBSERVABLES["creep"], creep.time.values, y, err, stress=CREEP_STRESS,
                      **common).to_netcdf(DATA / "creep.nc")  # fmt: skip
    per_glass = xr.Dataset(
        {"shear_modulus": ("glass", np.array(moduli), attrs("shear_modulus")),
         "steady_stress": steady.assign_attrs(attrs("stress", long_name="steady stress"))},
        coords={"glass": np.arange(glasses)}, attrs=common,
    )  # fmt: skip
    per_glass.to_netcdf(DATA / "glasses.nc")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1024, help="particles per glass")
    parser.add_argument("--glasses", type=int, default=4, help="independent glasses (>= 2: the errors)")
    parser.add_argument("--workers", type=int, default=None, help="Dask workers (default: one per core)")
    parser.add_argument("--work", default="results/particle_references", help="folder of the particle runs")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open_client(n_workers=args.workers) as client:
        rate_runs, creep_runs, moduli = run_all(client, args.n, args.glasses, work)
    write_references(rate_runs, creep_runs, moduli, args.n)
    print(f"moduli {np.round(moduli, 2).tolist()}; references in {DATA} ({time.monotonic() - start:.0f} s)")


if __name__ == "__main__":
    main()
