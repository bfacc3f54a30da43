"""Speed of the particle side: frozen-matrix probe on a cut-out vs the full system, pairwise vs per-particle damping.

Both measured side by side in one run on one glass of N particles (default 1024, instantaneous
quench), serial LAMMPS (one process, as in the Dask tasks).

    .venv/bin/python benchmarks/micro.py [N]
"""

import sys
import time

from epmsweep.engine import ImposedRate
from epmsweep.micro import Dissipation, FrozenMatrixProbe, QuenchProtocol, prepare_glass, probe_cell, shear
from epmsweep.micro.stress_map import default_grid


def timed(f):
    t = time.perf_counter()
    value = f()
    return value, time.perf_counter() - t


def main(n: int) -> None:
    glass, t_prep = timed(lambda: prepare_glass(n, QuenchProtocol(), seed=1))
    L = default_grid(glass.box[0])
    print(f"N = {n}, grid {L} x {L}, preparation (melt 50 time units + cg) {t_prep:.1f} s")

    print("\nfrozen-matrix probe of cell (1, 1), strain step 1e-4 (baseline: full system)")
    full, t_full = timed(lambda: probe_cell(glass, (1, 1), L, FrozenMatrixProbe(cutout=False)))
    cut, t_cut = timed(lambda: probe_cell(glass, (1, 1), L, FrozenMatrixProbe(cutout=True)))
    for label, r, t in (("full system", full, t_full), ("cut-out", cut, t_cut)):
        print(f"  {label:12s} {r.n_free + r.n_frozen:6d} particles  {t:6.2f} s  threshold {r.threshold:.10f}")
    print(f"  speed-up {t_full / t_cut:.1f}x, threshold difference {abs(full.threshold - cut.threshold):.1e}")

    steps = 4000
    protocol = ImposedRate(1e-2, t_end=steps * 0.005, n_records=10)
    print(f"\nimposed rate 1e-2, {steps} MD steps (baseline: pairwise dissipation, the paper's)")
    rates = {}
    for kind in ("pairwise", "particle"):
        _, t = timed(lambda kind=kind: shear(glass, protocol, dissipation=Dissipation(kind)))
        rates[kind] = steps / t
        print(f"  {kind:9s} {rates[kind]:8.0f} steps/s  {rates[kind] * n / 1e6:6.2f} M particle-steps/s")
    print(f"  per-particle damping is {rates['particle'] / rates['pairwise']:.1f}x faster")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1024)
