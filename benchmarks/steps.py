"""Microseconds per time step of ``simulate`` in steady flow at R = mu gdot (mu = 1), for comparing
engine versions side by side.

A rejuvenated lattice is sheared at the rate to strain 1 and saved (``--state``, made once, then
read by every version), and the same run continues from it: best of 3 runs, CPU time of the
thread, after a warm-up; the final stress is printed so that versions can be checked to agree.
Uses only the public engine API, so the same script runs against an older checkout's
environment (``/path/to/old/.venv/bin/python benchmarks/steps.py``). With ``--pair`` it also
prints the bare compiled FFT pair (``crossover.pair_floor``).
Run: ``python benchmarks/steps.py --sizes 32 128 256 [--rate 1e-3] [--pair]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from epmsweep.engine import ImposedRate, InitialState, ModelParameters, simulate

RUN_TIME = {32: 2000.0, 64: 1000.0, 128: 600.0, 256: 100.0, 512: 20.0}
"""Time units timed at each L (a second or so of compute)."""


def flowing_state(L: int, rate: float, folder: Path) -> InitialState:
    """The maps of a rejuvenated lattice sheared at ``rate`` to strain 1, saved in ``folder``."""
    path = folder / f"flowing_L{L}_R{rate:g}.npz"
    if not path.exists():
        state = InitialState.rejuvenated(L, seed=0, shear_modulus=1.0)
        ds = simulate(ModelParameters(L=L), state, ImposedRate(rate, strain_end=1.0, snapshot_strains=(1.0,)), seed=1)
        np.savez(path, threshold=ds.threshold.values[-1], stress=ds.local_stress.values[-1])
    maps = np.load(path)
    return InitialState(maps["threshold"], maps["stress"], 1.0, name="flowing")


def us_per_step(L: int, rate: float, folder: Path) -> tuple[float, float]:
    """Best of 3 timings of the continued run, in us per step, and its final stress."""
    params, state = ModelParameters(L=L), flowing_state(L, rate, folder)
    protocol = ImposedRate(rate, t_end=RUN_TIME[L], n_records=10)
    best, stress = np.inf, np.nan
    for _ in range(3):
        start = time.thread_time()
        ds = simulate(params, state, protocol, seed=5)
        best = min(best, time.thread_time() - start)
        stress = float(ds.stress[-1])
    return 1e6 * best / (RUN_TIME[L] / params.dt), stress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 128, 256])
    parser.add_argument("--rate", type=float, default=1e-3)
    parser.add_argument("--state", type=Path, default=Path("results/benchmark_states"))
    parser.add_argument("--pair", action="store_true", help="also time the bare compiled FFT pair")
    args = parser.parse_args()
    args.state.mkdir(parents=True, exist_ok=True)
    simulate(ModelParameters(L=8), InitialState.rejuvenated(8, seed=0), ImposedRate(1e-2, strain_end=0.01), seed=0)
    for L in args.sizes:
        us, stress = us_per_step(L, args.rate, args.state)
        line = f"L = {L:4d}, R = {args.rate:g}: {us:9.3f} us per step, final stress {stress!r}"
        if args.pair:
            from crossover import pair_floor

            line += f", FFT pair {1e6 * pair_floor(L):.1f} us"
        print(line, flush=True)


if __name__ == "__main__":
    main()
