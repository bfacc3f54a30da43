"""Statistical physics of the model at the paper's lattice size (several seeds, stated tolerances)."""

import numpy as np
import pytest
from epmsweep.engine import (
    ImposedRate,
    ImposedStress,
    InitialState,
    ModelParameters,
    ThresholdDistribution,
    simulate,
)

P = ModelParameters()
SEEDS = range(4)


def steady_stress(shear_rate, strain_end=8.0, snapshots=()):
    """Mean and standard error over seeds of Sigma averaged over strain > strain_end / 2."""
    means, runs = [], []
    for seed in SEEDS:
        ds = simulate(
            P,
            InitialState.rejuvenated(32, seed=seed),
            ImposedRate(shear_rate, strain_end=strain_end, n_records=160, snapshot_strains=snapshots),
            seed=100 + seed,
        )
        means.append(float(ds.stress.where(ds.strain > strain_end / 2).mean()))
        runs.append(ds)
    return np.mean(means), np.std(means, ddof=1) / np.sqrt(len(means)), runs


@pytest.fixture(scope="module")
def fast_flow():
    return steady_stress(1e-2, snapshots=(5.0, 6.0, 7.0, 8.0))


def test_steady_stress_rises_with_shear_rate(fast_flow):
    hi, hi_err, _ = fast_flow
    lo, lo_err, _ = steady_stress(2e-3)
    assert 0.45 < lo < hi < 0.75
    assert hi - lo > 5 * np.hypot(hi_err, lo_err)


def test_imposed_rate_and_creep_lie_on_one_flow_curve(fast_flow):
    """Creep at the steady stress of gdot = 1e-2 flows at 1e-2 (within 10%: replica scatter at L = 32)."""
    sigma, _, _ = fast_flow
    rates = []
    for seed in SEEDS:
        ds = simulate(P, InitialState.rejuvenated(32, seed=seed), ImposedStress(sigma, t_end=1500.0), seed=200 + seed)
        late = ds.time.values > 500
        assert int(ds.stuck) == 0
        rates.append(np.ptp(ds.strain.values[late]) / np.ptp(ds.time.values[late]))
    assert np.mean(rates) == pytest.approx(1e-2, rel=0.10)


def test_threshold_renewal_raises_mean_threshold(fast_flow):
    """Weak sites yield and are renewed, strong ones persist: P_a is shifted above P_d (mean 0.5146)."""
    _, _, runs = fast_flow
    thresholds = np.concatenate([ds.threshold.values.ravel() for ds in runs])
    p_d_mean = ThresholdDistribution().mean()
    # 16 snapshots of 1024 sites; successive snapshots are 1 strain unit apart (uncorrelated at gdot = 1e-2)
    err = thresholds.std() / np.sqrt(thresholds.size)
    assert thresholds.mean() > p_d_mean + 10 * err
