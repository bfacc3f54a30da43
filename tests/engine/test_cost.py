"""The cost model's calibration runs real prefixes of the run it costs."""

import numpy as np
from epmsweep.engine import ImposedRate, ImposedStress, InitialState, ModelParameters, Quasistatic, simulate
from epmsweep.engine.cost import calibrate, run_length, truncated


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
    assert short.unit == "step" and short.prefix_length == short.length == 500
    assert short.seconds == short.prefix_seconds > 0
    long = calibrate(params, state, ImposedRate(1e-2, strain_end=50.0), seed=1, budget=0.01)
    assert long.prefix_length < long.length and long.seconds > long.prefix_seconds
    assert 0 < long.expensive_fraction <= 1
    # creep far below the thresholds arrests at once: the run stops there, so the prefix is the whole cost
    stuck = calibrate(params, state, ImposedStress(0.01, t_end=1e6), seed=1)
    assert stuck.stopped and stuck.prefix_length < stuck.length and stuck.seconds == stuck.prefix_seconds


def test_a_quasistatic_prefix_is_exactly_the_first_avalanches_of_its_run():
    params, state = ModelParameters(L=16), InitialState.rejuvenated(16, seed=2)
    seed = np.random.SeedSequence(5)
    whole = simulate(params, state, Quasistatic(strain_end=0.2, snapshot_strains=(0.1,)), seed)
    prefix = simulate(params, state, truncated(Quasistatic(strain_end=0.2), 50, params.dt), seed)
    assert prefix.avalanche.size == 50 < whole.avalanche.size
    for name in Quasistatic.series:
        np.testing.assert_array_equal(prefix[name].values, whole[name].values[:50], err_msg=name)


def test_quasistatic_cost_counts_avalanches_or_strain():
    params, state = ModelParameters(L=16), InitialState.rejuvenated(16, seed=2)
    assert run_length(Quasistatic(n_avalanches=300), params.dt) == (300, "avalanche")
    assert run_length(Quasistatic(strain_end=2.0), params.dt) == (2.0, "strain")
    # a short run is measured whole: by avalanches, or past its end strain
    few = calibrate(params, state, Quasistatic(n_avalanches=60), seed=1, budget=10.0)
    assert few.unit == "avalanche" and few.prefix_length == few.length == 60 and few.seconds == few.prefix_seconds
    short = calibrate(params, state, Quasistatic(strain_end=0.01), seed=1, budget=10.0)
    assert short.prefix_length == short.length == 0.01 and short.seconds == short.prefix_seconds > 0
    # a long one from its first avalanches, the rest per unit of its own length
    for protocol, unit in ((Quasistatic(strain_end=50.0), "strain"), (Quasistatic(n_avalanches=10**6), "avalanche")):
        long = calibrate(params, state, protocol, seed=1, budget=0.01)
        assert long.unit == unit and 0 < long.prefix_length < long.length and long.seconds_per_unit > 0
        np.testing.assert_allclose(long.seconds, long.prefix_seconds
                                   + (long.length - long.prefix_length) * long.seconds_per_unit, rtol=1e-12)
        assert 0 < long.expensive_fraction <= 1
