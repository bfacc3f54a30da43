"""Exact properties of the time loop: invariants, equivalences, reproducibility."""

import importlib

import numpy as np
import pytest
from epmsweep.engine import ImposedRate, ImposedStress, InitialState, ModelParameters, simulate
from epmsweep.engine.redistribution import fft_workspace, redistribute_fft, redistribute_sparse, tiled_kernel
from epmsweep.engine.simulate import deferral_limit, deferred_capacity

P16 = ModelParameters(L=16)


def values(ds):
    """All data of a run, without the attrs that describe how it was computed."""
    return {k: ds[k].values for k in ds.data_vars}


def assert_same_run(a, b):
    va, vb = values(a), values(b)
    assert va.keys() == vb.keys()
    for k in va:
        np.testing.assert_array_equal(va[k], vb[k], err_msg=k)


def test_mean_local_stress_equals_external_stress_at_every_step():
    state = InitialState(
        InitialState.rejuvenated(16, seed=0).threshold, np.random.default_rng(1).normal(0.1, 0.05, (16, 16))
    )
    n_steps = 400
    for protocol in (
        ImposedRate(
            0.05, t_end=n_steps * P16.dt, n_records=n_steps, snapshot_strains=0.05 * P16.dt * np.arange(n_steps)
        ),
        ImposedStress(0.7, t_end=n_steps * P16.dt, snapshot_times=P16.dt * np.arange(n_steps)),
    ):
        ds = simulate(P16, state, protocol, seed=3)
        assert int(ds.plastic.sum()) > 0, "the test must exercise plastic steps"
        mean = ds.local_stress.mean(("y", "x")).values
        if isinstance(protocol, ImposedRate):
            np.testing.assert_allclose(mean, ds.stress.values[:n_steps], rtol=0, atol=1e-12)
        else:
            np.testing.assert_allclose(mean, 0.7, rtol=0, atol=1e-12)


def test_elastic_slope_is_mu_before_first_yield():
    state = InitialState.rejuvenated(32, seed=2, shear_modulus=23.0)
    ds = simulate(ModelParameters(), state, ImposedRate(1e-3, strain_end=0.005, n_records=500), seed=0)
    elastic = (ds.plastic_strain == 0).values
    assert elastic.sum() > 10 and not elastic.all(), "the window must contain the first yield"
    np.testing.assert_allclose(ds.stress.values[elastic], 23.0 * ds.strain.values[elastic], rtol=1e-10, atol=1e-14)


def test_creep_below_weakest_threshold_is_stuck():
    state = InitialState.rejuvenated(32, seed=4)
    sigma0 = 0.999 * state.threshold.min()
    ds = simulate(ModelParameters(), state, ImposedStress(sigma0, t_end=100.0), seed=1)
    assert int(ds.stuck) == 1 and float(ds.arrest_time) == 0.0
    assert np.all(ds.strain_rate.values[1:] == 0.0) and np.all(ds.strain.values == 0.0)
    assert np.all(ds.stress.values == sigma0)


def test_creep_stuck_after_transient_freezes_exactly():
    """Between the weakest threshold and the yield stress the run flows a little, then arrests for ever."""
    state = InitialState.rejuvenated(32, seed=4)
    ds = simulate(ModelParameters(), state, ImposedStress(0.3, t_end=5000.0), seed=1)
    assert int(ds.stuck) == 1 and 0 < float(ds.arrest_time) < 5000.0
    after = ds.time.values > float(ds.arrest_time)
    assert after.sum() > 0
    assert np.all(ds.strain_rate.values[after][1:] == 0.0)
    assert np.all(ds.plastic_fraction.values[after] == 0.0)
    assert ds.strain.values[-1] > 0


@pytest.mark.parametrize("L", [8, 32, 64])
def test_sparse_and_fft_redistribution_agree(L):
    from epmsweep.engine import real_space_propagator

    rng = np.random.default_rng(L)
    g = real_space_propagator(L)
    for k in (1, 5, L):
        plist = np.sort(rng.choice(L * L, k, replace=False)).astype(np.int64)
        d = rng.normal(size=k)
        a = rng.normal(size=L * L)
        b = a.copy()
        redistribute_sparse(a, plist, d, k, tiled_kernel(g), L)
        dense = np.zeros(L * L)
        dense[plist] = d
        total = redistribute_fft(b, dense.reshape(L, L), np.fft.rfft2(g), *fft_workspace(L))
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
        assert total == pytest.approx(d.sum(), abs=1e-12)


def test_sparse_and_fft_runs_agree():
    state = InitialState.rejuvenated(16, seed=0)
    proto = ImposedRate(1e-2, strain_end=1.0, n_records=50)
    a = simulate(P16, state, proto, seed=9, redistribution="sparse")
    b = simulate(P16, state, proto, seed=9, redistribution="fft")
    assert a.attrs["steps_fft"] == 0 and b.attrs["steps_sparse"] == 0 and b.attrs["steps_fft"] > 1000
    for k in ("stress", "plastic_strain", "plastic_fraction"):
        np.testing.assert_allclose(a[k].values, b[k].values, rtol=0, atol=1e-10)


def assert_same_trajectory(a, b, atol=1e-10):
    """Two runs took the same switching decisions: equal plastic states and thresholds, and
    stresses equal up to round-off."""
    for k in ("plastic_fraction", "threshold", "plastic", "stuck"):
        if k in a or k in b:  # stuck: imposed stress only
            np.testing.assert_array_equal(a[k].values, b[k].values, err_msg=k)
    for k in ("stress", "plastic_strain", "local_stress"):
        np.testing.assert_allclose(a[k].values, b[k].values, rtol=0, atol=atol, err_msg=k)


@pytest.mark.parametrize(
    "L, protocol, mode",
    [
        (32, ImposedRate(1e-3, strain_end=1.0, n_records=100, snapshot_strains=(0.5, 1.0)), "auto"),
        (32, ImposedStress(0.55, t_end=300.0, n_records=100, snapshot_times=(100.0, 300.0)), "deferred"),
        (64, ImposedRate(1e-4, strain_end=0.15, n_records=100, snapshot_strains=(0.1, 0.15)), "auto"),
        (16, ImposedRate(1e-2, strain_end=1.0, n_records=100, snapshot_strains=(1.0,)), "deferred"),
    ],
)
def test_deferred_redistribution_takes_the_eager_decisions(L, protocol, mode):
    """Deferring the far stresses against adding every kernel at every step (sparse): the same
    trajectory over 10^4-10^5 steps and hundreds of flushes. A missed crossing of any elastic
    site would change a clock, then the plastic states."""
    params, state = ModelParameters(L=L), InitialState.rejuvenated(L, seed=3)
    deferred = simulate(params, state, protocol, seed=8, redistribution=mode)
    eager = simulate(params, state, protocol, seed=8, redistribution="sparse")
    steps = deferred.attrs["steps_deferred"] + deferred.attrs["steps_fft"] + deferred.attrs["steps_sparse"]
    assert deferred.attrs["steps_deferred"] > 0.5 * steps and deferred.attrs["deferred_flushes"] > 100
    assert eager.attrs["steps_deferred"] == 0
    assert_same_trajectory(deferred, eager)


@pytest.mark.parametrize("capacity", [88, 100])
def test_deferred_stretches_that_outgrow_their_capacity_end_exactly(monkeypatch, capacity):
    """With room for few pending sites (~87 plastic here), stretches do not begin, or end early
    (when new plastic sites do not fit, or the plastic ones at a flush): still the eager trajectory."""
    params, state = ModelParameters(L=32), InitialState.rejuvenated(32, seed=5)
    protocol = ImposedRate(2e-3, strain_end=0.6, n_records=60, snapshot_strains=(0.6,))
    roomy = simulate(params, state, protocol, seed=2, redistribution="deferred")
    monkeypatch.setattr(importlib.import_module("epmsweep.engine.simulate"), "deferred_capacity", lambda n, m: capacity)
    cramped = simulate(params, state, protocol, seed=2, redistribution="deferred")
    eager = simulate(params, state, protocol, seed=2, redistribution="sparse")
    assert cramped.attrs["steps_deferred"] > 1000 and cramped.attrs["steps_sparse"] > 1000
    assert cramped.attrs["deferred_flushes"] > roomy.attrs["deferred_flushes"]
    assert_same_trajectory(cramped, eager)
    assert_same_trajectory(roomy, eager)


@pytest.mark.parametrize("L", [32, 64, 128, 256, 512, 1024])
def test_deferral_limit_leaves_room_for_the_stretch(L):
    """A stretch may begin from any number of plastic sites below the limit, with room for as many
    again joining it (else those steps would add their kernels eagerly, at plastic x N)."""
    limit = deferral_limit(L)
    assert 0 < limit and deferred_capacity(L * L, limit) >= 2 * limit + 64


def test_deferred_flushes_by_fft_take_the_eager_decisions(monkeypatch):
    """Flushes adding the pending field with an FFT pair (from 16 pending sites here, as from
    L = 128 on): the eager trajectory, with stresses that differ in round-off from real-space flushes."""
    params, state = ModelParameters(L=32), InitialState.rejuvenated(32, seed=3)
    protocol = ImposedRate(1e-3, strain_end=0.6, n_records=60, snapshot_strains=(0.3, 0.6))
    kernels = simulate(params, state, protocol, seed=8)
    monkeypatch.setattr(importlib.import_module("epmsweep.engine.simulate"), "flush_fft_limit", lambda L: 16)
    ffts = simulate(params, state, protocol, seed=8)
    eager = simulate(params, state, protocol, seed=8, redistribution="sparse")
    steps = ffts.attrs["steps_deferred"] + ffts.attrs["steps_fft"] + ffts.attrs["steps_sparse"]
    assert ffts.attrs["steps_deferred"] > 0.5 * steps and ffts.attrs["deferred_flushes"] > 100
    assert not np.array_equal(ffts.local_stress.values, kernels.local_stress.values)
    assert_same_trajectory(ffts, eager)
    assert_same_trajectory(kernels, eager)


@pytest.mark.parametrize("shear_rate", [1e-4, 1e-3])
def test_fast_forward_is_identical_to_stepping(shear_rate):
    state = InitialState.rejuvenated(16, seed=1)
    proto = ImposedRate(shear_rate, strain_end=0.5, n_records=100, snapshot_strains=(0.1, 0.3))
    fast = simulate(P16, state, proto, seed=5, fast_forward=True)
    plain = simulate(P16, state, proto, seed=5, fast_forward=False)
    assert fast.attrs["steps_fast_forward"] > 0 and plain.attrs["steps_fast_forward"] == 0
    assert_same_run(fast, plain)


def test_same_seed_same_run_different_seed_different_run():
    state = InitialState.rejuvenated(16, seed=0)
    proto = ImposedStress(0.6, t_end=50.0, snapshot_times=(25.0,))
    a, b = simulate(P16, state, proto, seed=11), simulate(P16, state, proto, seed=11)
    assert_same_run(a, b)
    c = simulate(P16, state, proto, seed=12)
    assert not np.array_equal(a.strain.values, c.strain.values)
    seq = np.random.SeedSequence(11, spawn_key=(3, 4))
    assert_same_run(simulate(P16, state, proto, seed=seq), simulate(P16, state, proto, seed=seq))
    assert simulate(P16, state, proto, seed=seq).attrs["seed_spawn_key"] == "[3, 4]"


def test_output_labels_units_and_provenance():
    ds = simulate(P16, InitialState.rejuvenated(16, seed=0), ImposedRate(1e-2, strain_end=0.2), seed=1)
    assert ds.stress.dims == ("strain",) and "threshold" not in ds  # no snapshots asked for
    for name in ("time", "strain", "stress", "strain_rate", "plastic_fraction", "peak_stress"):
        assert ds[name].attrs["units"] and ds[name].attrs["long_name"]
    for key in ("L", "tau_pl", "tau_res", "dt", "shear_rate", "shear_modulus", "seed_entropy", "epmsweep_version"):
        assert key in ds.attrs
    assert ds.strain.values[-1] == pytest.approx(0.2)
    assert float(ds.peak_stress) >= ds.stress.max()


def test_switching_clock_has_the_per_step_law():
    """K = steps to the first success of trials of probability p = 1 - exp(-dt/tau): P(K > k) = (1 - p)^k."""
    from epmsweep.engine.stepping import clock

    rng, dt_over_tau, n = np.random.default_rng(0), 0.01, 200_000
    draws = np.array([clock(rng, dt_over_tau) for _ in range(n)])
    p = -np.expm1(-dt_over_tau)
    assert draws.min() == 1
    for k in (0, 1, 10, 100, 300):
        expected = (1 - p) ** k
        err = np.sqrt(expected * (1 - expected) / n)
        assert abs(np.mean(draws > k) - expected) <= 5 * err + 1e-12, k
    assert abs(draws.mean() - 1 / p) < 5 * draws.std() / np.sqrt(n)


def test_switching_rates_far_above_threshold():
    """Every site far above threshold: the plastic fraction follows the two-state chain
    f' = (1 - f) p_pl + f (1 - p_res) step by step (16 seeds x 4096 sites, 5 binomial sigmas)."""
    params = ModelParameters(L=64, tau_pl=1.0, tau_res=0.5)
    state = InitialState.rejuvenated(64, seed=0)
    p_pl, p_res = params.switching_probabilities()
    runs = [
        simulate(params, state, ImposedStress(1e3, t_end=3.0, n_records=300, t_first_record=0.01), seed=s)
        for s in range(16)
    ]
    steps = np.rint(runs[0].time.values / params.dt).astype(int)
    f = np.zeros(steps.max() + 1)
    for k in range(steps.max()):
        f[k + 1] = (1 - f[k]) * p_pl + f[k] * (1 - p_res)
    measured = np.mean([ds.plastic_fraction.values for ds in runs], axis=0)
    sigma = np.sqrt(f[steps] * (1 - f[steps]) / (16 * 4096))
    assert np.all(np.abs(measured - f[steps]) <= 5 * sigma + 1e-12)
    assert f[steps].max() > 0.2, "the window must reach the stationary mix"


def test_stresses_depend_on_mu_times_rate_only():
    """MODEL.md: mu cancels from the stress dynamics. mu = 4 at gdot = 2^-8 and mu = 8 at 2^-9 load
    at the same mu * gdot (exact in binary): the same stresses bit for bit; creep strain scales as 1/mu."""
    thr = InitialState.rejuvenated(16, seed=2).threshold
    a, b = (InitialState(thr, np.zeros((16, 16)), shear_modulus=mu) for mu in (4.0, 8.0))
    fa = simulate(P16, a, ImposedRate(2.0**-8, t_end=300.0, n_records=50), seed=4)
    fb = simulate(P16, b, ImposedRate(2.0**-9, t_end=300.0, n_records=50), seed=4)
    assert float(fa.plastic_fraction.max()) > 0
    np.testing.assert_array_equal(fa.stress.values, fb.stress.values)
    np.testing.assert_array_equal(fa.strain.values, 2 * fb.strain.values)
    ca = simulate(P16, a, ImposedStress(0.6, t_end=100.0), seed=4)
    cb = simulate(P16, b, ImposedStress(0.6, t_end=100.0), seed=4)
    np.testing.assert_array_equal(ca.plastic_fraction.values, cb.plastic_fraction.values)
    np.testing.assert_array_equal(ca.strain.values, 2 * cb.strain.values)


def test_runs_of_one_lattice_share_its_kernel_and_leave_it_unchanged():
    """The kernel is made once for the runs of one lattice, and a run through the sparse, deferred
    and FFT paths only reads it: afterwards it equals a kernel made anew, array for array."""
    from epmsweep.engine import real_space_propagator
    from epmsweep.engine.redistribution import compiled_kernel, lattice_kernel

    lattice_kernel.cache_clear()
    state = InitialState.rejuvenated(16, seed=3)
    for redistribution in ("deferred", "sparse", "fft"):
        simulate(P16, state, ImposedRate(1e-2, strain_end=0.5, n_records=10), seed=2, redistribution=redistribution)
    assert lattice_kernel.cache_info().misses == 1 and lattice_kernel.cache_info().hits == 2
    shared = lattice_kernel(16, P16.kernel, P16.normalise_self)
    fresh = compiled_kernel(real_space_propagator(16, P16.kernel, P16.normalise_self))
    for name, value in fresh._asdict().items():
        np.testing.assert_array_equal(getattr(shared, name), value, err_msg=name)
