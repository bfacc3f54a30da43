"""Particle-to-lattice study at small N: two glasses, their measured initial states, lattice and particle runs.

1. prepare two inherent structures of the 2D binary Lennard-Jones glass with LAMMPS: E1-like
   (instantaneous quench of the liquid) and E3-like (cooled at 1e-2 to T = 0.4 and annealed there);
2. measure their initial states: stress map and frozen-matrix thresholds on L x L cells of about the
   paper's 9.88 sigma_LS (the probes are a Dask sweep), shear modulus from quasistatic steps;
3. run lattice sweeps from the two measured states (imposed rate and imposed stress, many replicas);
4. run the particle protocols from the same glasses (pairwise dissipation zeta = 1, feedback B = 1),
   as tasks on the same Dask cluster;
5. draw stress-strain at one rate and creep curves at one stress, particles and lattice on one
   figure, and print the numbers compared in examples/README.md.

Run (about half an hour on two cores at the default size):

    .venv/bin/python examples/particle_to_lattice.py --out results/particle_to_lattice

Every stage is stored under --out (glasses, initial states, the probe store, the lattice sweep
store, particle runs): running the command again reuses what is there.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from epmsweep.analysis import save_figure, steady_strain_rate, steady_stress, stress_overshoot  # noqa: E402
from epmsweep.engine import ImposedRate, ImposedStress, InitialState, units  # noqa: E402
from epmsweep.engine.files import save_dataset  # noqa: E402
from epmsweep.micro import Configuration, QuenchProtocol, measure_initial_state, prepare_glass, shear  # noqa: E402
from epmsweep.sweep import open_client, run_sweep  # noqa: E402

GLASSES = {
    "E1": QuenchProtocol(T_melt=1.0, t_melt=50.0, rate=math.inf),
    "E3": QuenchProtocol(T_melt=1.0, t_melt=50.0, rate=1e-2, T_final=0.4, t_anneal=1000.0),
}
RATE = 1e-2  # particle runs with pairwise dissipation cost ~7 ms per 1000 particles per time unit
STRAIN_END = 1.0
STRESS = 0.7
T_END = 100.0


def cached(path: Path, make, load):
    """``load(path)`` if the file exists, else ``make()`` saved there (atomically) first."""
    if path.is_file():
        return load(path)
    value = make()
    value.save(path)
    return value


def particle_runs(client, glasses: dict[str, Configuration], out: Path) -> dict[str, xr.Dataset]:
    """The four particle runs as tasks on the cluster (explicit keys, not merged); stored as netCDF."""
    jobs = {}
    for name, glass in glasses.items():
        jobs[f"{name}_rate"] = (glass, ImposedRate(RATE, strain_end=STRAIN_END, n_records=50))
        jobs[f"{name}_creep"] = (glass, ImposedStress(STRESS, t_end=T_END, n_records=40))
    todo = {k: v for k, v in jobs.items() if not (out / f"particles_{k}.nc").is_file()}
    futures = {k: client.submit(shear, g, p, key=f"particles-{k}-{out.name}", pure=False) for k, (g, p) in todo.items()}
    for k, fut in futures.items():
        save_dataset(fut.result(), out / f"particles_{k}.nc")
    return {k: xr.load_dataset(out / f"particles_{k}.nc") for k in jobs}


def lattice_spec(states: dict[str, Path], L: int, replicas: int) -> dict:
    return {
        "name": "particle_to_lattice",
        "seed": 2021,
        "replicas": replicas,
        "model": {"L": L},
        "initial_states": {name: {"path": str(path.resolve())} for name, path in states.items()},
        "imposed_rate": {"shear_rate": [RATE], "strain_end": STRAIN_END, "n_records": 50},
        "imposed_stress": {"stress": [STRESS], "t_end": T_END, "n_records": 40},
    }


def figure(particles, rate, creep, states, out: Path) -> Path:
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = {"E1": "tab:blue", "E3": "tab:red"}
    for name, colour in colours.items():
        lat = rate.sel(initial_state=name, shear_rate=RATE)
        a.plot(lat.strain, lat.stress.mean("seed"), color=colour, label=f"{name} lattice")
        p = particles[f"{name}_rate"]
        a.plot(p.strain, p.stress, "--", color=colour, label=f"{name} particles")
        lat = creep.sel(initial_state=name, stress_imposed=STRESS)
        flowing = ~lat.stuck.astype(bool)  # flowing replicas only: stuck ones are counted, never averaged in
        t, g = lat.time, lat.strain_rate.where(flowing).mean("seed")
        n_stuck, n = int((~flowing).sum()), lat.sizes["seed"]
        b.loglog(t[1:], g[1:], color=colour, label=f"{name} lattice, flowing replicas ({n_stuck}/{n} stuck)")
        p = particles[f"{name}_creep"]
        b.loglog(p.time[1:], np.abs(p.strain_rate[1:]), "--", color=colour, label=f"{name} particles")
    a.set(xlabel=r"strain $\gamma$", ylabel=f"stress [{units.STRESS}]", title=f"imposed rate {RATE:g} [{units.RATE}]")
    b.set(xlabel=f"time [{units.TIME}]", ylabel=f"strain rate [{units.RATE}]",
          title=f"imposed stress {STRESS:g} [{units.STRESS}]")
    for ax in (a, b):
        ax.legend(fontsize=8)
    fig.suptitle(", ".join(f"{n}: E = {s.provenance['prep_energy_per_particle']:.4f}, mu = {s.shear_modulus:.1f}"
                           for n, s in states.items()))  # fmt: skip
    fig.tight_layout()
    path = out / "particle_to_lattice.png"
    save_figure(fig, path)  # PNG at 300 dpi and PDF
    return path


def summary(particles, rate, creep, states) -> None:
    print("\nstate  E/N      mu     mean threshold  mean stress | steady stress: particles  lattice | "
          "overshoot: particles  lattice | creep rate: particles  lattice (stuck)")  # fmt: skip
    lat_over = stress_overshoot(rate)
    lat_steady = steady_stress(rate)["stress"]
    lat_creep = steady_strain_rate(creep)
    for name, s in states.items():
        p = particles[f"{name}_rate"].expand_dims(("shear_rate", "seed"))
        p_steady = float(steady_stress(p)["stress"].squeeze())
        p_over = float(stress_overshoot(p)["overshoot"].squeeze())
        c = particles[f"{name}_creep"].expand_dims(("stress_imposed", "seed"))
        p_creep = float(steady_strain_rate(c)["strain_rate"].squeeze())
        sel = {"initial_state": name}
        print(
            f"{name}   {s.provenance['prep_energy_per_particle']:.4f}  {s.shear_modulus:5.2f}  "
            f"{s.threshold.mean():.3f}           {s.stress.mean():+.3f}      | "
            f"{p_steady:.3f}                {float(lat_steady.sel(sel).squeeze()):.3f}   | "
            f"{p_over:.3f}                {float(lat_over.overshoot.sel(sel).squeeze()):.3f}   | "
            f"{p_creep:.2e} ({int(particles[f'{name}_creep'].stuck)})   "
            f"{float(lat_creep.strain_rate.sel(sel).squeeze()):.2e} "
            f"({float(lat_creep.stuck_fraction.sel(sel).squeeze()):.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096, help="particles (default 4096: 6 x 6 cells of 10.5 sigma)")
    parser.add_argument("--replicas", type=int, default=32, help="lattice replicas per point")
    parser.add_argument("--workers", type=int, default=None, help="Dask workers (default: one per core)")
    parser.add_argument("--out", default="results/particle_to_lattice", help="output folder")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open_client(n_workers=args.workers) as client:
        glasses = {
            name: cached(out / f"glass_{name}.nc", lambda p=p: prepare_glass(args.n, p, seed=1), Configuration.load)
            for name, p in GLASSES.items()
        }
        print(f"glasses prepared ({time.monotonic() - start:.0f} s)", flush=True)
        paths = {}
        for name, glass in glasses.items():
            paths[name] = out / f"state_{name}.nc"
            cached(paths[name], lambda g=glass, n=name: measure_initial_state(g, client=client, out=out, name=n),
                   InitialState.load)  # fmt: skip
        states = {name: InitialState.load(path) for name, path in paths.items()}
        print(f"initial states measured ({time.monotonic() - start:.0f} s)", flush=True)
        particles = particle_runs(client, glasses, out)
        print(f"particle runs done ({time.monotonic() - start:.0f} s)", flush=True)
        tree = run_sweep(lattice_spec(paths, states["E1"].L, args.replicas), out=out, client=client, progress=False)
    rate, creep = tree["imposed_rate"].to_dataset(), tree["imposed_stress"].to_dataset()
    path = figure(particles, rate, creep, states, out)
    print(f"lattice sweeps done ({time.monotonic() - start:.0f} s): figure {path}")
    summary(particles, rate, creep, states)
    print(f"\nwall time {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
