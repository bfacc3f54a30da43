"""Engine speed: time steps per second against a plain NumPy implementation of the same rules.

For each lattice size and drive the state is first brought into flow by the engine; then the
engine and the NumPy baseline (``numpy.fft`` per step, defined below) continue from the same
maps, side by side in this process (best of 3 interleaved timings each). Also times the cold
Numba compile (also with LLVM optimisation off, for scale) and the cached start in fresh
subprocesses. Run: ``python benchmarks/engine.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from epmsweep.engine import ImposedRate, ImposedStress, InitialState, ModelParameters, real_space_propagator, simulate

REPEATS = 3


def numpy_steps(params: ModelParameters, state: InitialState, shear_rate: float | None, stress: float | None,
                n_steps: int, rng: np.random.Generator) -> float:
    """The model's rules in plain NumPy, one FFT pair per step; returns the final external stress."""
    L, dt, mu = params.L, params.dt, state.shear_modulus
    g_hat = np.fft.rfft2(real_space_propagator(L))
    sigma = state.stress.copy()
    if stress is not None:
        sigma += stress - sigma.mean()
    thr = state.threshold.copy()
    n = np.zeros((L, L), bool)
    p_pl, p_res = params.switching_probabilities()
    dist = params.thresholds
    for _ in range(n_steps):
        d = np.where(n, sigma, 0.0) * (dt / params.tau)
        sigma += np.fft.irfft2(np.fft.rfft2(d) * g_hat, s=(L, L))
        if shear_rate is not None:
            sigma += mu * shear_rate * dt - d.mean()
        u = rng.random((L, L))
        activate = ~n & (sigma > thr) & (u < p_pl)
        relax = n & (u < p_res)
        thr[relax] = dist.sample(rng, int(relax.sum()))
        n = (n | activate) & ~relax
    return float(sigma.mean())


def flowing_state(params, shear_rate, stress, seed=0) -> InitialState:
    """A state in flow: maps at the end of an engine run past the transient."""
    start = InitialState.rejuvenated(params.L, seed=seed)
    if stress is None:
        proto = ImposedRate(shear_rate, strain_end=0.4, n_records=4, snapshot_strains=(0.4,))
    else:
        proto = ImposedStress(stress, t_end=50.0, n_records=4, snapshot_times=(50.0,))
    ds = simulate(params, start, proto, seed=seed)
    return InitialState(ds.threshold.values[-1], ds.local_stress.values[-1], start.shear_modulus)


def engine_rate(params, state, shear_rate, stress, n_steps) -> tuple[float, float]:
    t_end = n_steps * params.dt
    proto = ImposedRate(shear_rate, t_end=t_end, n_records=10) if stress is None else ImposedStress(
        stress, t_end=t_end, n_records=10)
    t0 = time.perf_counter()
    ds = simulate(params, state, proto, seed=1)
    elapsed = time.perf_counter() - t0
    if "stuck" in ds and bool(ds.stuck):
        raise RuntimeError("benchmark state got stuck")
    return n_steps / elapsed, float(ds.plastic_fraction.mean())


PREPARE = (  # the libraries' own start-up: imports, Numba's first-use initialisation, xarray's first Dataset
    "import time; t0 = time.perf_counter();"
    "import numpy as np, xarray as xr, numba; from epmsweep.engine import *;"
    "numba.njit(lambda: 0)(); xr.Dataset({'a': ('x', np.zeros(1))});"
    "t1 = time.perf_counter();"
)
FIRST_RUN = (
    "simulate(ModelParameters(L=8), InitialState.rejuvenated(8, seed=0), ImposedRate(1e-2, strain_end=0.1), seed=0);"
    "print(t1 - t0, time.perf_counter() - t1)"
)


def compile_times() -> tuple[float, float, float, float]:
    """Library start-up, then the engine's first run with an empty and with a filled Numba cache
    (fresh processes, a private cache directory), and with an empty cache and LLVM's optimisation
    off (``NUMBA_OPT=0``: what Numba's own typing and lowering take, for scale)."""

    def first_run(cache: str, **env: str) -> list[float]:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, **env}
        return list(map(float, subprocess.check_output([sys.executable, "-c", PREPARE + FIRST_RUN], env=env).split()))

    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as unoptimised:
        start, cold = first_run(cache)
        warm = first_run(cache)[1]
        floor = first_run(unoptimised, NUMBA_OPT="0", PYTHONWARNINGS="ignore")[1]  # (some code is then uncachable)
    return start, cold, warm, floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (noisier figures)")
    args = parser.parse_args()
    scale = 0.2 if args.quick else 1.0
    start, cold, warm, floor = compile_times()
    print(f"first run: cold compile {cold:.2f} s (target < 2; {floor:.2f} s with LLVM optimisation off), "
          f"cached start {warm:.2f} s (target < 0.3), after the libraries' own start-up of {start:.2f} s")
    cases = [(None, 1e-4), (None, 1e-3), (None, 1e-2), (0.6, None)]
    print(f"{'L':>4} {'drive':>16} {'plastic':>8} {'engine steps/s':>15} {'numpy steps/s':>14} {'ratio':>7}")
    for L in (32, 128):
        params = ModelParameters(L=L)
        for stress, shear_rate in cases:
            state = flowing_state(params, shear_rate, stress)
            n_eng = int(scale * (400_000 if L == 32 else 40_000))
            n_np = int(scale * (4_000 if L == 32 else 1_000))
            eng = ref = 0.0
            for _ in range(REPEATS):  # interleaved, best of each: the machine's noise only slows things down
                rate, frac = engine_rate(params, state, shear_rate, stress, n_eng)
                eng = max(eng, rate)
                t0 = time.perf_counter()
                numpy_steps(params, state, shear_rate, stress, n_np, np.random.default_rng(1))
                ref = max(ref, n_np / (time.perf_counter() - t0))
            drive = f"gdot={shear_rate:g}" if stress is None else f"Sigma0={stress:g}"
            print(f"{L:>4} {drive:>16} {frac:>8.3f} {eng:>15,.0f} {ref:>14,.0f} {eng / ref:>6.1f}x")


if __name__ == "__main__":
    main()
