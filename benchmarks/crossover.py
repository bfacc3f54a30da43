"""Where one FFT pair becomes cheaper than adding one real-space kernel per plastic site.

Times both redistribution routines of the engine on the same random plastic increments, for
several lattice sizes and numbers of plastic sites, and prints the measured crossover next to
the engine's rule ``fft_crossover(L)``. Run: ``python benchmarks/crossover.py``.
"""

import time

import numpy as np
from epmsweep.engine import fft_crossover, real_space_propagator
from epmsweep.engine.stepping import _redistribute_fft, _redistribute_sparse


def per_call(fn, args, repeat: int) -> float:
    fn(*args)  # compile / warm
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn(*args)
    return (time.perf_counter() - t0) / repeat


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"{'L':>5} {'k':>5} {'sparse us':>10} {'fft us':>10}")
    for L in (16, 32, 64, 128):
        n = L * L
        g = real_space_propagator(L)
        g_ext, g_hat, d2 = np.tile(g, (2, 2)).ravel(), np.fft.rfft2(g), np.zeros((L, L))
        repeat = max(20, 200_000 // n)
        crossover = None
        for k in (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256):
            plist = np.sort(rng.choice(n, k, replace=False)).astype(np.int64)
            dbuf = rng.normal(size=k)
            s = np.zeros(n)
            ts = per_call(_redistribute_sparse, (s, plist, dbuf, k, g_ext, L), repeat)
            tf = per_call(_redistribute_fft, (s, plist, dbuf, k, g_hat, d2, L), repeat)
            print(f"{L:>5} {k:>5} {ts * 1e6:>10.2f} {tf * 1e6:>10.2f}")
            if crossover is None and tf < ts:
                crossover = k
        print(f"L = {L}: measured crossover {crossover}, engine rule fft_crossover(L) = {fft_crossover(L)}")


if __name__ == "__main__":
    main()
