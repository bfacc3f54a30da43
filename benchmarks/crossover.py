"""Which redistribution is fastest for a given lattice and number of plastic sites.

1. Kernels alone: the two eager paths of the time loop on the same random plastic increments,
   inside compiled loops (no Python call per step): the sparse path adds the kernel of each
   plastic site; the FFT path fills the dense increment field and applies one real FFT pair.
   Prints both costs and the measured crossover next to the engine's rule ``fft_crossover(L)``.
2. Whole runs: microseconds per step of ``simulate`` continuing from a flowing state at drives
   R = mu gdot = 1e-4, 1e-3, 1e-2 with each of ``redistribution="deferred"``, ``"sparse"`` (both up
   to L = 128), ``"fft"`` and ``"auto"`` (the deferred path's cost depends on the dynamics: how
   many sites it must keep exact), next to a bare compiled FFT pair (the floor of a step of FFTs)
   and the rules ``deferral_limit(L)``, ``flush_fft_limit(L)``, for L = 16 ... 512.

Run: ``python benchmarks/crossover.py`` (``--runs``: part 2 only; ``--quick``: fewer steps;
``--sizes 256 512``: those lattices only).
"""

import argparse
import time

import numpy as np
from epmsweep.engine import (
    DEFAULT_SHEAR_MODULUS,
    ImposedRate,
    InitialState,
    ModelParameters,
    deferral_limit,
    fft_crossover,
    real_space_propagator,
    simulate,
)
from epmsweep.engine.redistribution import fft_workspace, redistribute_fft, redistribute_sparse, tiled_kernel
from epmsweep.engine.simulate import flush_fft_limit, redistribution_limits
from epmsweep.engine.stepping import DEFER_MIN
from numba import njit
from rocket_fft import c2r, r2c


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
    """Best of 5 timings of ``reps`` compiled steps, per step (CPU seconds of this thread)."""
    fn(1, *args)  # compile / warm
    best = np.inf
    for _ in range(5):
        t0 = time.thread_time()
        fn(reps, *args)
        best = min(best, time.thread_time() - t0)
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


MODES = ("deferred", "sparse", "fft", "auto")
DRIVES = (1e-4, 1e-3, 1e-2)  # R = mu x gdot
STEPS = {16: 100_000, 32: 50_000, 64: 10_000, 128: 2_000, 256: 1_000, 512: 400}
EAGER_MAX = 128  # "deferred" and "sparse" are timed up to this L (beyond, a step of either takes plastic x N)


@njit
def pair_steps(reps, field, spectrum, out, axes):
    for _ in range(reps):
        r2c(field, spectrum, axes, True, 1.0, 1)
        c2r(spectrum, out, axes, False, 1.0, 1)


def pair_floor(L: int) -> float:
    """Seconds of one bare compiled FFT pair (rfft2 + irfft2, rocket-fft) on an L x L field, best of 5."""
    field = np.random.default_rng(0).normal(size=(L, L))
    return per_step(pair_steps, max(10, 20_000_000 // (8 * L * L)), field, *fft_workspace(L)[:1],
                    np.empty((L, L)), np.arange(2))  # fmt: skip


def sheared(
    params: ModelParameters, state: InitialState, shear_rate: float, strain: float, seed: int = 0
) -> InitialState:
    """The maps of ``state`` sheared at ``shear_rate`` up to ``strain``."""
    proto = ImposedRate(shear_rate, strain_end=strain, n_records=2, snapshot_strains=(strain,))
    ds = simulate(params, state, proto, seed=seed)
    return InitialState(ds.threshold.values[-1], ds.local_stress.values[-1], state.shear_modulus)


def runs(sizes, scale: float) -> None:
    """Microseconds per step of each mode from a flowing state, best of 3 interleaved with the pair
    floor, in CPU time of this thread (other processes' load inflates it less than wall time)."""
    print(f"{'L':>5} {'R':>7} {'plastic':>8}" + "".join(f" {m + ' us':>12}" for m in MODES)
          + f" {'pair us':>9} {'auto/pair':>9} {'auto/fft':>8} {'ps/NlogN':>8}  fastest  auto")  # fmt: skip
    for L in sizes:
        params = ModelParameters(L=L)
        modes = MODES if L <= EAGER_MAX else ("fft", "auto")
        hot = sheared(params, InitialState.rejuvenated(L, seed=0), 1e-2 / DEFAULT_SHEAR_MODULUS, 0.1)
        for R in DRIVES:  # from flow at R = 1e-2 (strain 0.1), 3000 steps at R before the timings
            shear_rate = R / DEFAULT_SHEAR_MODULUS
            state = sheared(params, hot, shear_rate, 3000 * params.dt * shear_rate)
            n_steps = max(10, int(scale * STEPS[L]))
            proto = ImposedRate(shear_rate, t_end=n_steps * params.dt, n_records=10)
            cost, pair = {}, np.inf
            for _ in range(3):  # interleaved, best of each
                for mode in modes:
                    t0 = time.thread_time()
                    out = simulate(params, state, proto, seed=1, redistribution=mode)
                    cost[mode] = min(cost.get(mode, np.inf), (time.thread_time() - t0) / n_steps)
                pair = min(pair, pair_floor(L))
            plastic = float(out.plastic_fraction.mean()) * L * L
            fastest = min(cost, key=cost.get)
            fft_min, defer_max, _ = redistribution_limits(L, "auto")
            auto = "fft" if plastic >= fft_min else "deferred" if DEFER_MIN <= plastic < defer_max else "sparse"
            per_nlogn = cost["auto"] / (L * L * np.log2(L * L)) * 1e12
            print(f"{L:>5} {R:>7g} {plastic:>8.1f}" + "".join(f" {cost[m] * 1e6:>12.1f}" if m in cost else f" {'-':>12}"
                                                               for m in MODES)
                  + f" {pair * 1e6:>9.1f} {cost['auto'] / pair:>9.2f} {cost['auto'] / cost['fft']:>8.2f}"
                  f" {per_nlogn:>8.2f}  {fastest:>7}  {auto}")  # fmt: skip
        print(
            f"L = {L}: engine rules deferral_limit(L) = {deferral_limit(L)}, fft_crossover(L) = {fft_crossover(L)}, "
            f"flush_fft_limit(L) = {flush_fft_limit(L) if flush_fft_limit(L) <= L * L else 'never'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", action="store_true", help="only the whole-run comparison")
    parser.add_argument("--quick", action="store_true", help="a quarter of the steps (noisier figures)")
    parser.add_argument("--sizes", type=int, nargs="+", default=sorted(STEPS), choices=sorted(STEPS),
                        help="lattice sizes of the whole-run comparison")  # fmt: skip
    args = parser.parse_args()
    if not args.runs:
        kernels()
    runs(args.sizes, 0.25 if args.quick else 1.0)


if __name__ == "__main__":
    main()
