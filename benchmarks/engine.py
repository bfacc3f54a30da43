"""Engine speed: time steps per second against a plain NumPy implementation of the same rules.

For each lattice size and drive the state is first brought into flow by the engine; then the
engine and the NumPy baseline (``numpy.fft`` per step, defined below) continue from the same
maps, side by side in this process (best of 3 interleaved timings each, CPU time of this thread),
next to the floor of an FFT step: a bare compiled FFT pair (``crossover.pair_floor``). Also times the cold
Numba compile (also with LLVM optimisation off, for scale) and the cached start in fresh
subprocesses; two runs in two threads of this process against one after the other; and the peak
resident memory of one run at L = 256 and 512 against the NumPy baseline, each in a fresh
subprocess. Run: ``python benchmarks/engine.py [--quick] [--table] [--setup]`` (``--table``: the
steps only; ``--setup``: only the cost of short runs with the lattice's kernel shared by the runs
against made anew for each run).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from crossover import pair_floor, sheared
from epmsweep.engine import (
    ImposedRate,
    ImposedStress,
    InitialState,
    ModelParameters,
    real_space_propagator,
    simulate,
    simulate_record,
)
from epmsweep.engine.redistribution import lattice_kernel

REPEATS = 3


def numpy_steps(
    params: ModelParameters,
    state: InitialState,
    shear_rate: float | None,
    stress: float | None,
    n_steps: int,
    rng: np.random.Generator,
) -> float:
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
    """A state in flow: maps at the end of an engine run past the transient (beyond L = 128, for
    brevity: sheared at gdot = 1e-2 to strain 0.2, then 100 time units at ``shear_rate``)."""
    state = InitialState.rejuvenated(params.L, seed=seed)
    if stress is None:
        if params.L <= 128:
            return sheared(params, state, shear_rate, 0.4, seed)
        return sheared(params, sheared(params, state, 1e-2, 0.2, seed), shear_rate, 100 * shear_rate, seed)
    ds = simulate(params, state, ImposedStress(stress, t_end=50.0, n_records=4, snapshot_times=(50.0,)), seed=seed)
    return InitialState(ds.threshold.values[-1], ds.local_stress.values[-1], state.shear_modulus)


def engine_rate(params, state, shear_rate, stress, n_steps) -> tuple[float, float]:
    t_end = n_steps * params.dt
    proto = (
        ImposedRate(shear_rate, t_end=t_end, n_records=10)
        if stress is None
        else ImposedStress(stress, t_end=t_end, n_records=10)
    )
    t0 = time.thread_time()
    ds = simulate(params, state, proto, seed=1)
    elapsed = time.thread_time() - t0
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


def threads(scale: float) -> tuple[float, float]:
    """Seconds for two runs (L = 64, gdot = 1e-3, from a flowing state) one after the other in
    one thread, and in two threads of this process (best of 3 each)."""
    params = ModelParameters(L=64)
    state = flowing_state(params, 1e-3, None)
    n_steps = int(scale * 40_000)
    proto = ImposedRate(1e-3, t_end=n_steps * params.dt, n_records=10)

    def one(seed: int) -> None:
        simulate(params, state, proto, seed=seed)

    one(0)
    serial = parallel = np.inf
    with ThreadPoolExecutor(2) as pool:
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            one(1), one(2)
            serial = min(serial, time.perf_counter() - t0)
            t0 = time.perf_counter()
            list(pool.map(one, (1, 2)))
            parallel = min(parallel, time.perf_counter() - t0)
    return serial, parallel


def peak_rss(kind: str, L: int) -> float:
    """Peak resident memory (MiB, Linux) of a fresh process that imports this script's libraries, then
    runs the engine (imposed rate 1e-3 from a rejuvenated state, 2000 steps: the low-activity
    stretches are deferred) or 200 steps of the NumPy baseline at the same drive."""
    out = subprocess.check_output([sys.executable, __file__, "--peak-rss", kind, str(L)], text=True)
    return float(out.split()[-1])


def _peak_rss_child(kind: str, L: int) -> None:
    params, state = ModelParameters(L=L), InitialState.rejuvenated(L, seed=0)
    if kind == "engine":
        ds = simulate(params, state, ImposedRate(1e-3, t_end=2000 * params.dt, n_records=10), seed=1)
        assert ds.attrs["steps_deferred"] > 0, "the run must exercise the deferred path"
    else:
        numpy_steps(params, state, 1e-3, None, 200, np.random.default_rng(1))
    with open("/proc/self/status") as f:  # VmHWM, not ru_maxrss: that one keeps the parent's peak across exec
        print(next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024)  # kB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (noisier figures)")
    parser.add_argument("--table", action="store_true", help="only the table of steps per second")
    parser.add_argument("--setup", action="store_true", help="only short runs: kernel shared against made per run")
    parser.add_argument("--peak-rss", nargs=2, metavar=("KIND", "L"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_rss:
        return _peak_rss_child(args.peak_rss[0], int(args.peak_rss[1]))
    scale = 0.2 if args.quick else 1.0
    if args.setup:
        return setup_costs(scale)
    if not args.table:
        others(scale)
    table(scale)


def others(scale: float) -> None:
    """Threads, peak memory, compile and cached start."""
    serial, parallel = threads(scale)
    print(
        f"two runs (L = 64, gdot = 1e-3): one thread {serial:.2f} s, two threads {parallel:.2f} s: "
        f"{serial / parallel:.2f}x (target >= 1.8x)"
    )
    peak_rss("engine", 32)  # fills the Numba cache: compiling would count
    for L in (256, 512):
        eng, ref = peak_rss("engine", L), peak_rss("numpy", L)
        print(
            f"peak RSS of one run at L = {L}: engine {eng:.0f} MiB, numpy {ref:.0f} MiB: {eng / ref:.2f}x "
            "(target <= 1.3x)"
        )
    start, cold, warm, floor = compile_times()
    print(
        f"first run: cold compile {cold:.2f} s (target < 2; {floor:.2f} s with LLVM optimisation off), "
        f"cached start {warm:.2f} s (target < 0.3), after the libraries' own start-up of {start:.2f} s"
    )


def setup_costs(scale: float) -> None:
    """Milliseconds per short run of ``simulate_record`` (strain 0.05 at gdot = 1e-2, 100 records:
    the runs of a calibration or a small-lattice study), the lattice's kernel shared by the runs
    (``lattice_kernel``, the engine's default) against made anew for each run (its cache cleared
    before each), alternately, best of 5 rounds."""
    n_runs = max(20, int(500 * scale))
    protocol = ImposedRate(1e-2, strain_end=0.05, n_records=100)

    def per_run(params: ModelParameters, states: list[InitialState], fresh: bool) -> float:
        t0 = time.thread_time()
        for i, state in enumerate(states):
            if fresh:
                lattice_kernel.cache_clear()
            simulate_record(params, state, protocol, seed=i)
        return 1e3 * (time.thread_time() - t0) / len(states)

    for L in (8, 16, 32):
        params = ModelParameters(L=L)
        states = [InitialState.rejuvenated(L, seed=i) for i in range(n_runs)]
        per_run(params, states, True)
        rounds = [(per_run(params, states, True), per_run(params, states, False)) for _ in range(5)]
        fresh, shared = (min(r[k] for r in rounds) for k in (0, 1))
        print(f"short runs at L = {L}: {shared:.3f} ms a run with the kernel shared, {fresh:.3f} ms with it made "
              f"per run: {fresh / shared:.2f}x")


def table(scale: float) -> None:
    """Steps per second of the engine and the NumPy baseline, and the engine's cost per step
    against the FFT-pair floor."""
    cases = [(None, 1e-4), (None, 1e-3), (None, 1e-2), (0.6, None)]
    print(f"{'L':>4} {'drive':>16} {'plastic':>8} {'engine steps/s':>15} {'numpy steps/s':>14} {'ratio':>7}"
          f" {'engine us':>10} {'pair us':>8} {'/pair':>6}")  # fmt: skip
    for L in (32, 128, 256, 512):
        params = ModelParameters(L=L)
        for stress, shear_rate in cases:
            state = flowing_state(params, shear_rate, stress)
            n_eng = int(scale * {32: 400_000, 128: 40_000, 256: 4_000, 512: 1_000}[L])
            n_np = int(scale * {32: 4_000, 128: 1_000, 256: 200, 512: 50}[L])
            eng = ref = 0.0
            pair = np.inf
            for _ in range(REPEATS):  # interleaved, best of each: the machine's noise only slows things down
                rate, frac = engine_rate(params, state, shear_rate, stress, n_eng)
                eng = max(eng, rate)
                t0 = time.thread_time()
                numpy_steps(params, state, shear_rate, stress, n_np, np.random.default_rng(1))
                ref = max(ref, n_np / (time.thread_time() - t0))
                pair = min(pair, pair_floor(L))
            drive = f"gdot={shear_rate:g}" if stress is None else f"Sigma0={stress:g}"
            print(f"{L:>4} {drive:>16} {frac:>8.3f} {eng:>15,.0f} {ref:>14,.0f} {eng / ref:>6.1f}x"
                  f" {1e6 / eng:>10.1f} {pair * 1e6:>8.1f} {1 / (eng * pair):>6.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
