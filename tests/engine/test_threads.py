"""Runs in threads of one process: the compiled loop releases the GIL and shares no state."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from epmsweep.engine import ImposedRate, ImposedStress, InitialState, ModelParameters, simulate

P = ModelParameters(L=32)
RUNS = [
    (ImposedRate(1e-3, strain_end=0.2, n_records=20, snapshot_strains=(0.2,)), 1, "auto"),
    (ImposedStress(0.6, t_end=30.0, n_records=20, snapshot_times=(30.0,)), 2, "auto"),
    (ImposedRate(1e-2, strain_end=0.2, n_records=20), 3, "fft"),
    (ImposedRate(2e-3, strain_end=0.2, n_records=20), 4, "deferred"),
]


def one(case):
    protocol, seed, redistribution = case
    return simulate(P, InitialState.rejuvenated(32, seed=seed), protocol, seed=seed, redistribution=redistribution)


def test_threads_give_the_serial_results():
    serial = [one(case) for case in RUNS]
    with ThreadPoolExecutor(2) as pool:
        threaded = list(pool.map(one, RUNS))
    for a, b in zip(serial, threaded, strict=True):
        assert a.data_vars.keys() == b.data_vars.keys()
        for k in a.data_vars:
            assert np.array_equal(a[k].values, b[k].values, equal_nan=True), k


def test_the_time_loop_releases_the_gil():
    from epmsweep.engine import stepping

    assert stepping.run.targetoptions.get("nogil") is True
