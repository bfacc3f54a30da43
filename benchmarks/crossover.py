"""Where one FFT pair becomes cheaper than adding one real-space kernel per plastic site.

Times the two redistribution paths of the engine's time loop on the same random plastic
increments, inside compiled loops (no Python call per step): the sparse path adds the kernel of
each plastic site; the FFT path fills the dense increment field and applies one real FFT pair.
Prints, for several lattice sizes and numbers of plastic sites, both costs and the measured
crossover next to the engine's rule ``fft_crossover(L)``. Run: ``python benchmarks/crossover.py``.
"""

import time

import numpy as np
from epmsweep.engine import fft_crossover, real_space_propagator
from epmsweep.engine.redistribution import fft_workspace, redistribute_fft, redistribute_sparse
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


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"{'L':>5} {'k':>5} {'sparse us':>10} {'fft us':>10}")
    for L in (16, 32, 64, 128):
        n = L * L
        g = real_space_propagator(L)
        g_ext, g_hat, d2 = np.tile(g, (2, 2)).ravel(), np.fft.rfft2(g), np.zeros((L, L))
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


if __name__ == "__main__":
    main()
