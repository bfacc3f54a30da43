"""Which redistribution is fastest for a given lattice and number of plastic sites.

1. Kernels alone: the two eager paths of the time loop on the same random plastic increments,
   inside compiled loops (no Python call per step): the sparse path adds the kernel of each
   plastic site; the FFT path fills the dense increment field and applies one real FFT pair.
   Prints both costs and the measured crossover next to the engine's rule ``fft_crossover(L)``.
2. Whole runs: steps per second of ``simulate`` continuing from a flowing state with each of
   ``redistribution="deferred"``, ``"sparse"`` and ``"fft"`` (the deferred path's cost depends on
   the dynamics: how many sites it must keep exact), next to the rule ``deferral_limit(L)``.

Run: ``python benchmarks/crossover.py`` (``--runs``: part 2 only).
"""

import argparse
import time

import numpy as np
from epmsweep.engine import (
    ImposedRate,
    InitialState,
    ModelParameters,
    deferral_limit,
    fft_crossover,
    real_space_propagator,
    simulate,
)
from epmsweep.engine.redistribution import fft_workspace, redistribute_fft, redistribute_sparse, tiled_kernel
from epmsweep.engine.simulate import redistribution_limits
from epmsweep.engine.stepping import DEFER_MIN
from numba import njit


@njit
def sparse_steps(reps, s, plist, dbuf, k, g_ext, L):
    for _ in range(reps):
        redistribute_sparse(s, plist, dbuf, k, g_ext, L)


@njit
def fft_steps(reps, s, plist, dbuf, k, g_hat, d2, spectrum, ds, axes):
    dense = d2.ravel()
    for _ in range(reps):
        dense[:] = 0.0
        for m in range(k):
            dense[plist[m]] = dbuf[m]
        redistribute_fft(s, d2, g_hat, spectrum, ds, axes)


def per_step(fn, reps, *args) -> float:
    """Best of 5 timings of ``reps`` compiled steps, per step (s)."""
    fn(1, *args)  # compile / warm
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        fn(reps, *args)
        best = min(best, time.perf_counter() - t0)
    return best / reps


def kernels() -> None:
    rng = np.random.default_rng(0)
    print(f"{'L':>5} {'k':>5} {'sparse us':>10} {'fft us':>10}")
    for L in (16, 32, 64, 128):
        n = L * L
        g = real_space_propagator(L)
        g_ext, g_hat, d2 = tiled_kernel(g), np.fft.rfft2(g), np.zeros((L, L))
        crossover = None
        for k in (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256):
            plist = rng.choice(n, k, replace=False).astype(np.int64)
            dbuf = rng.normal(size=k) * 1e-3
            reps = max(20, 20_000_000 // (n * max(k, 8)))
            ts = per_step(sparse_steps, reps, np.zeros(n), plist, dbuf, k, g_ext, L)
            tf = per_step(fft_steps, reps, np.zeros(n), plist, dbuf, k, g_hat, d2, *fft_workspace(L))
            print(f"{L:>5} {k:>5} {ts * 1e6:>10.2f} {tf * 1e6:>10.2f}")
            if crossover is None and tf < ts:
                crossover = k
        print(f"L = {L}: measured crossover {crossover}, engine rule fft_crossover(L) = {fft_crossover(L)}")


MODES = ("deferred", "sparse", "fft")


def runs() -> None:
    print(f"{'L':>5} {'gdot':>7} {'plastic':>8}" + "".join(f" {m + ' steps/s':>17}" for m in MODES) + "  fastest  auto")
    for L in (16, 32, 64, 128):
        params = ModelParameters(L=L)
        for shear_rate in (1e-4, 3e-4, 1e-3, 3e-3):
            start = InitialState.rejuvenated(L, seed=0)
            ds = simulate(params, start, ImposedRate(shear_rate, strain_end=0.4, snapshot_strains=(0.4,)), seed=0)
            state = InitialState(ds.threshold.values[-1], ds.local_stress.values[-1], start.shear_modulus)
            n_steps = {16: 100_000, 32: 50_000, 64: 10_000, 128: 2_000}[L]
            proto = ImposedRate(shear_rate, t_end=n_steps * params.dt, n_records=10)
            rates = {}
            for _ in range(2):  # interleaved, best of each
                for mode in MODES:
                    t0 = time.perf_counter()
                    out = simulate(params, state, proto, seed=1, redistribution=mode)
                    rates[mode] = max(rates.get(mode, 0.0), n_steps / (time.perf_counter() - t0))
            plastic = float(out.plastic_fraction.mean()) * L * L
            fastest = max(rates, key=rates.get)
            fft_min, defer_max, _ = redistribution_limits(L, "auto")
            auto = "fft" if plastic >= fft_min else "deferred" if DEFER_MIN <= plastic < defer_max else "sparse"
            print(f"{L:>5} {shear_rate:>7g} {plastic:>8.1f}" + "".join(f" {rates[m]:>17,.0f}" for m in MODES)
                  + f"  {fastest:>7}  {auto}")  # fmt: skip
        print(f"L = {L}: engine rules deferral_limit(L) = {deferral_limit(L)}, fft_crossover(L) = {fft_crossover(L)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", action="store_true", help="only the whole-run comparison")
    if not parser.parse_args().runs:
        kernels()
    runs()


if __name__ == "__main__":
    main()
