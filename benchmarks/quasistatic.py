"""Quasistatic shear: seconds per unit strain in steady flow, against the finite-rate engine.

For each lattice size a rejuvenated state (mu = 1, the unit of the figures quoted below) is
first sheared quasistatically into steady flow; from that state the quasistatic protocol and the
time-stepped engine at R = mu gdot = 1e-3 and 1e-4 are timed over the same strain window, side
by side in this process (CPU time of this thread, after a warm-up). Prints seconds per unit
strain, avalanches and activations per second, and the ratios: the finite rate at R = 1e-4 over
the quasistatic protocol (target: at least 10), and the quasistatic protocol over GooseEPM's
seconds per unit strain in steady flow, measured on this machine class with its own rules
(instantaneous failures, Gaussian thresholds; ``GOOSE_EPM``), as context (target: at most 2).
Run: ``python benchmarks/quasistatic.py [--quick] [--sizes 32 64 ...]``.
"""

from __future__ import annotations

import argparse
import time

from epmsweep.engine import ImposedRate, InitialState, ModelParameters, Quasistatic, simulate

SHEAR_MODULUS = 1.0
GOOSE_EPM = {32: 0.0065, 128: 1.26}
"""GooseEPM, seconds per unit strain in steady quasistatic flow (152 k and 12.2 k failures per second)."""
WINDOW = {32: 20.0, 64: 5.0, 128: 1.0, 256: 0.2, 512: 0.02}
"""Strain window timed at each L (a second or more of the quasistatic protocol at a time)."""
RATES = (1e-3, 1e-4)


def steady_state(L: int) -> InitialState:
    """A state in steady quasistatic flow: a rejuvenated lattice sheared quasistatically to strain 1."""
    state = InitialState.rejuvenated(L, seed=0, shear_modulus=SHEAR_MODULUS)
    ds = simulate(ModelParameters(L=L), state, Quasistatic(strain_end=1.0, snapshot_strains=(1.0,)), seed=1)
    return InitialState(ds.threshold.values[-1], ds.local_stress.values[-1], SHEAR_MODULUS, name="steady")


def timed(params: ModelParameters, state: InitialState, protocol) -> tuple[float, object]:
    start = time.thread_time()
    ds = simulate(params, state, protocol, seed=2)
    return time.thread_time() - start, ds


def measure(L: int, window: float) -> dict:
    params, state = ModelParameters(L=L), steady_state(L)
    seconds, ds = timed(params, state, Quasistatic(strain_end=window))
    row = {
        "L": L, "window": window, "qs": seconds / window, "avalanches_per_s": ds.avalanche.size / seconds,
        "activations_per_s": int(ds.activations.sum()) / seconds,
    }  # fmt: skip
    for rate in RATES:
        seconds, _ = timed(params, state, ImposedRate(rate / SHEAR_MODULUS, strain_end=window, n_records=10))
        row[rate] = seconds / window
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--quick", action="store_true", help="a tenth of each strain window")
    args = parser.parse_args()
    simulate(ModelParameters(L=8), InitialState.rejuvenated(8, seed=0), Quasistatic(n_avalanches=5), seed=0)
    simulate(ModelParameters(L=8), InitialState.rejuvenated(8, seed=0), ImposedRate(1e-2, strain_end=0.01), seed=0)
    print("seconds per unit strain in steady flow (mu = 1), CPU time of one thread")
    print(f"{'L':>4} {'window':>7} {'quasistatic':>12} {'R=1e-3':>9} {'R=1e-4':>9} {'1e-4/qs':>8} "
          f"{'aval/s':>9} {'act/s':>9} {'GooseEPM':>9} {'qs/Goose':>9}")  # fmt: skip
    for L in args.sizes:
        row = measure(L, WINDOW[L] / (10 if args.quick else 1))
        goose = GOOSE_EPM.get(L)
        ctx = f"{goose:9.4f} {row['qs'] / goose:9.2f}" if goose else f"{'-':>9} {'-':>9}"
        print(f"{L:4d} {row['window']:7.3g} {row['qs']:12.4g} {row[1e-3]:9.4g} {row[1e-4]:9.4g} "
              f"{row[1e-4] / row['qs']:8.1f} {row['avalanches_per_s']:9.3g} {row['activations_per_s']:9.3g} {ctx}",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
