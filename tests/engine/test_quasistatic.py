"""Quasistatic shear: exact properties of the avalanche loop and its gdot -> 0 physics."""

import numpy as np
import pytest
from epmsweep.engine import (
    EndlessAvalancheError,
    ImposedRate,
    InitialState,
    ModelParameters,
    ParameterError,
    Quasistatic,
    simulate,
)

P32 = ModelParameters(L=32)


@pytest.fixture(scope="module")
def sheared():
    """A rejuvenated 32 x 32 lattice sheared quasistatically to strain 0.6, snapshots on the way."""
    state = InitialState.rejuvenated(32, seed=1)
    protocol = Quasistatic(strain_end=0.6, snapshot_strains=tuple(np.linspace(0.0, 0.6, 13)))
    return state, simulate(P32, state, protocol, seed=5)


def sigma_at(ds, strain: np.ndarray, start_stress: float) -> np.ndarray:
    """Sigma at strains between avalanches: the last avalanche's end plus the elastic load since."""
    k = np.searchsorted(ds.strain.values, strain, side="right") - 1
    after = np.where(k >= 0, ds.stress_after.values[np.maximum(k, 0)], start_stress)
    since = np.where(k >= 0, ds.strain.values[np.maximum(k, 0)], 0.0)
    return after + ds.attrs["shear_modulus"] * (strain - since)


def flow_stress(ds, start: float) -> float:
    """Strain-weighted mean of Sigma from strain ``start`` on: between two triggers Sigma rises
    linearly from the end of one avalanche to the trigger of the next."""
    keep = ds.strain.values >= start
    strain, before, after = ds.strain.values[keep], ds.stress_before.values[keep], ds.stress_after.values[keep]
    width = np.diff(strain)
    return float(np.sum(0.5 * (after[:-1] + before[1:]) * width) / width.sum())


def test_strain_between_avalanches_is_elastic_with_slope_mu(sheared):
    state, ds = sheared
    assert ds.avalanche.size > 500, "the run must hold many avalanches"
    rise = ds.stress_before.values[1:] - ds.stress_after.values[:-1]
    np.testing.assert_allclose(rise, state.shear_modulus * np.diff(ds.strain.values), rtol=0, atol=1e-12)
    assert np.all(np.diff(ds.strain.values) > 0), "each avalanche is triggered at a larger strain"
    assert np.all(ds.activations.values >= 1) and np.all(ds.avalanche_duration.values > 0)


def test_stress_drop_is_the_mean_plastic_strain_of_the_avalanche(sheared):
    """Eq. 2 at fixed strain: Sigma falls by mu times the mean plastic strain increment, so
    stress_drop N / mu is the avalanche size (the plastic strain summed over sites)."""
    state, ds = sheared
    n = P32.n_sites
    np.testing.assert_allclose(ds.stress_drop.values * n / state.shear_modulus, ds.avalanche_size.values,
                               rtol=1e-9, atol=1e-9)  # fmt: skip
    assert float(ds.avalanche_size.min()) > 0


def test_mean_local_stress_equals_sigma_and_every_site_is_stable_between_avalanches(sheared):
    state, ds = sheared
    strain = ds.snapshot_strain.values
    np.testing.assert_allclose(ds.local_stress.mean(("y", "x")).values, sigma_at(ds, strain, 0.0), rtol=0,
                               atol=1e-11)  # fmt: skip
    assert not ds.plastic.any(), "no site is plastic between avalanches"
    assert bool((ds.local_stress <= ds.threshold).all()), "no site is above threshold between avalanches"
    # the trigger loads the weakest site just above its threshold: the closest gap is tiny
    gap = (ds.threshold - ds.local_stress).min(("y", "x"))
    assert float(gap.isel(snapshot_strain=slice(1, None)).min()) >= 0


def test_same_seed_same_run_and_the_paths_take_the_same_decisions():
    """Deferred stretches (the default from one plastic site) and kernels added at every step take
    the same switching decisions: the same avalanches, stresses equal up to round-off."""
    state = InitialState.rejuvenated(32, seed=2)
    protocol = Quasistatic(n_avalanches=300)
    auto = simulate(P32, state, protocol, seed=9)
    again = simulate(P32, state, protocol, seed=9)
    sparse = simulate(P32, state, protocol, seed=9, redistribution="sparse")
    for name in protocol.series:
        np.testing.assert_array_equal(auto[name].values, again[name].values, err_msg=name)
    np.testing.assert_array_equal(auto.activations.values, sparse.activations.values)
    np.testing.assert_array_equal(auto.avalanche_duration.values, sparse.avalanche_duration.values)
    np.testing.assert_allclose(auto.stress_after.values, sparse.stress_after.values, rtol=0, atol=1e-9)
    assert auto.attrs["steps_deferred"] > 0 and sparse.attrs["steps_deferred"] == 0


def test_quasistatic_flow_stress_is_the_low_rate_limit_of_the_flow_curve():
    """The quasistatic steady stress (strain-weighted, strain 0.5 to 2, 4 replicas) lies within
    errors below the steady stress at the lowest finite rates, R = mu gdot = 1e-4, and is close to
    the paper's dynamical yield stress 0.5107."""
    qs, rate = [], []
    for seed in range(4):
        state = InitialState.rejuvenated(32, seed=seed)
        qs.append(flow_stress(simulate(P32, state, Quasistatic(strain_end=2.0), seed=100 + seed), 0.5))
        ds = simulate(P32, state, ImposedRate(1e-4 / state.shear_modulus, strain_end=1.5, n_records=150),
                      seed=100 + seed)  # fmt: skip
        rate.append(float(ds.stress.where(ds.strain >= 0.5).mean()))
    (m_qs, e_qs), (m_rate, e_rate) = ((np.mean(v), np.std(v, ddof=1) / 2) for v in (qs, rate))
    error = 3 * np.hypot(e_qs, e_rate)
    assert m_qs <= m_rate + error, (m_qs, m_rate, error)
    assert m_rate - m_qs <= error + 0.01, "the excess stress at R = 1e-4 is below 0.01 (flow curve)"
    assert abs(m_qs - 0.5107) < 0.03


def test_annealed_states_overshoot_more_than_rejuvenated_ones():
    """Peak stress minus quasistatic flow stress, mean of 4 replicas: annealed above rejuvenated
    by more than 3 standard errors. The annealed thresholds are shifted by 0.6, so that even the
    weakest site is stable above the flow stress (about 0.51): a shift of 0.3 leaves sites that
    yield below it, and under quasistatic shear the state then flows without a peak."""
    overshoot = {}
    for shift in (0.0, 0.6):
        values = []
        for seed in range(4):
            state = InitialState.annealed(32, shift, seed=seed) if shift else InitialState.rejuvenated(32, seed=seed)
            ds = simulate(P32, state, Quasistatic(strain_end=1.2), seed=100 + seed)
            values.append(float(ds.peak_stress) - flow_stress(ds, 0.6))
        overshoot[shift] = (np.mean(values), np.std(values, ddof=1) / 2)
    (m0, e0), (m1, e1) = overshoot[0.0], overshoot[0.6]
    assert m1 - m0 > 3 * np.hypot(e0, e1), overshoot


def test_an_avalanche_longer_than_max_duration_is_an_error_not_a_hang():
    state = InitialState.rejuvenated(32, seed=1)
    with pytest.raises(EndlessAvalancheError, match="max_duration = 0.05"):
        simulate(P32, state, Quasistatic(strain_end=1.0, max_duration=0.05), seed=1)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "strain_end"),
        ({"strain_end": 1.0, "n_avalanches": 10}, "strain_end"),
        ({"n_avalanches": 0}, "n_avalanches"),
        ({"strain_end": 1.0, "snapshot_strains": (2.0,)}, "snapshot_strains"),
        ({"n_avalanches": 10, "snapshot_strains": (0.1,)}, "snapshot_strains"),
        ({"strain_end": 1.0, "max_duration": 0.0}, "max_duration"),
    ],
)
def test_bad_quasistatic_arguments_name_the_field(kwargs, field):
    with pytest.raises(ParameterError) as err:
        Quasistatic(**kwargs)
    assert err.value.field == field
