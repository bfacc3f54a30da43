"""Threshold laws and initial states, including the netCDF file format."""

import numpy as np
import pytest
import scipy.stats
import xarray as xr
from epmsweep.engine import InitialState, ParameterError, ThresholdDistribution

N_SAMPLES = 400_000


def test_weibull_sampler_matches_the_law():
    """Mean 0.5146 and median 0.4464 (MODEL.md); KS distance to the exact CDF small for 4e5 samples."""
    d = ThresholdDistribution()
    x = d.sample(np.random.default_rng(1), N_SAMPLES)
    assert d.mean() == pytest.approx(0.5146, abs=1e-4)
    assert x.mean() == pytest.approx(0.5146, abs=4 * x.std() / np.sqrt(N_SAMPLES))
    assert np.median(x) == pytest.approx(0.4464, abs=3e-3)
    ks = scipy.stats.kstest(x, scipy.stats.weibull_min(1.5, scale=0.57).cdf)
    assert ks.statistic < 3e-3


def test_shift_moves_every_draw():
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    plain = ThresholdDistribution().sample(rng_a, 1000)
    shifted = ThresholdDistribution(shift=0.2).sample(rng_b, 1000)
    np.testing.assert_allclose(shifted - plain, 0.2, atol=1e-14)


def test_tabulated_law_from_scipy():
    law = scipy.stats.gamma(3.0, scale=0.2)
    d = ThresholdDistribution.from_scipy(law)
    x = d.sample(np.random.default_rng(2), N_SAMPLES)
    assert x.mean() == pytest.approx(law.mean(), rel=5e-3)
    assert scipy.stats.kstest(x, law.cdf).statistic < 3e-3


def test_rejuvenated_and_annealed_states():
    rej = InitialState.rejuvenated(64, seed=3)
    ann = InitialState.annealed(64, shift=0.15, seed=3, shear_modulus=20.0)
    assert rej.L == 64 and rej.shear_modulus == 15.0 and ann.shear_modulus == 20.0
    np.testing.assert_allclose(ann.threshold - rej.threshold, 0.15, atol=1e-14)
    assert np.all(rej.stress == 0)
    assert not np.array_equal(rej.threshold, InitialState.rejuvenated(64, seed=4).threshold)


def test_initial_state_file_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    stress = rng.normal(0, 0.1, (16, 16))
    state = InitialState(rng.uniform(0.2, 1.0, (16, 16)), stress, 17.5, "E2", {"energy": -2.34})
    loaded = InitialState.load(state.save(tmp_path / "e2.nc"))
    np.testing.assert_array_equal(loaded.threshold, state.threshold)
    np.testing.assert_array_equal(loaded.stress, state.stress)
    assert loaded.shear_modulus == 17.5 and loaded.name == "E2"
    assert loaded.provenance["energy"] == pytest.approx(-2.34)
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary left behind


def _write(path, **variables):
    attrs = variables.pop("attrs", {"shear_modulus": 15.0})
    xr.Dataset({k: (("y", "x"), v) for k, v in variables.items()}, attrs=attrs).to_netcdf(path)
    return path


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"threshold": np.ones((4, 4))}, "stress: variable is missing"),
        ({"threshold": np.ones((4, 4)), "stress": np.zeros((4, 4)), "attrs": {}}, "shear_modulus"),
        ({"threshold": np.ones((4, 6)), "stress": np.zeros((4, 6))}, "square"),
        ({"threshold": np.full((4, 4), np.nan), "stress": np.zeros((4, 4))}, "non-finite"),
        ({"threshold": -np.ones((4, 4)), "stress": np.zeros((4, 4))}, ">= 0"),
    ],
)
def test_bad_initial_state_files(tmp_path, variables, message):
    path = _write(tmp_path / "bad.nc", **variables)
    with pytest.raises(ParameterError) as err:
        InitialState.load(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        InitialState.load(tmp_path / "nope.nc")
    garbage = tmp_path / "garbage.nc"
    garbage.write_bytes(b"this is not netCDF" * 10)
    with pytest.raises(ParameterError, match="not a readable netCDF"):
        InitialState.load(garbage)
