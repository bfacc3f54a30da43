"""The cost model's calibration runs real prefixes of the run it costs."""

import numpy as np
from epmsweep.engine import ImposedRate, ImposedStress, InitialState, ModelParameters, simulate
from epmsweep.engine.cost import calibrate, truncated


def test_a_prefix_is_exactly_the_start_of_its_run():
    params, state = ModelParameters(L=8), InitialState.rejuvenated(8, seed=2)
    full = ImposedRate(1e-2, strain_end=0.2, n_records=10)  # 2000 steps, a record every 200
    seed = np.random.SeedSequence(5)
    whole = simulate(params, state, full, seed)
    prefix = simulate(params, state, truncated(full, 1000, params.dt), seed)  # a record every 100 steps
    common = np.intersect1d(whole.time.values, prefix.time.values)
    assert common.size == 6
    np.testing.assert_array_equal(whole.stress.where(whole.time.isin(common), drop=True).values,
                                  prefix.stress.where(prefix.time.isin(common), drop=True).values)


def test_calibration_covers_short_runs_and_stops_at_arrest():
    params, state = ModelParameters(L=8), InitialState.rejuvenated(8, seed=2)
    short = calibrate(params, state, ImposedRate(1e-2, strain_end=0.05), seed=1, budget=10.0)
    assert short.prefix_steps == short.n_steps == 500 and short.seconds == short.prefix_seconds > 0
    long = calibrate(params, state, ImposedRate(1e-2, strain_end=50.0), seed=1, budget=0.01)
    assert long.prefix_steps < long.n_steps and long.seconds > long.prefix_seconds
    assert 0 < long.expensive_fraction <= 1
    # creep far below the thresholds arrests at once: the run stops there, so the prefix is the whole cost
    stuck = calibrate(params, state, ImposedStress(0.01, t_end=1e6), seed=1)
    assert stuck.stopped and stuck.prefix_steps < stuck.n_steps and stuck.seconds == stuck.prefix_seconds
