"""The objective on constructed data, and common random numbers across candidates."""

import numpy as np
import pytest
import xarray as xr
from epmsweep.calibrate import OBSERVABLES, Curve, chi_square, model_curve, objective_terms, weighted_objective
from epmsweep.sweep.plan import make_plan

RATES = np.array([0.01, 0.03, 0.1])
STRAIN = np.linspace(0.0, 2.0, 21)


def flow(rate, yield_stress):
    return yield_stress + 0.5 * rate**0.5


def group(yield_stress: float, noise: float) -> xr.Dataset:
    """An imposed-rate group of 4 replicas whose stress is flat at the flow-curve value (+- noise per replica)."""
    offsets = noise * np.array([-1.5, -0.5, 0.5, 1.5])
    stress = flow(RATES[:, None, None], yield_stress) + offsets[None, :, None] + 0 * STRAIN
    return xr.Dataset(
        {"stress": (("initial_state", "shear_rate", "seed", "strain"), stress[None])},
        coords={"initial_state": ["s"], "shear_rate": RATES, "seed": np.arange(4), "strain": STRAIN},
        attrs={"protocol": "imposed_rate"},
    )


def reference(truth: float, err: float = 0.01) -> Curve:
    return Curve("flow", OBSERVABLES["flow_curve"], "s", None, 2.0, RATES, flow(RATES, truth), np.full(3, err))


def test_zero_at_the_truth_and_growing_away_from_it():
    ref = reference(0.6)
    terms = [objective_terms({"imposed_rate": group(y, noise=0.0)}, (ref,))["flow"] for y in (0.6, 0.61, 0.63, 0.7)]
    assert terms[0] == pytest.approx(0.0, abs=1e-20)
    assert terms[1] == pytest.approx(3 * (0.01 / 0.01) ** 2)  # three points, one sigma each
    assert np.all(np.diff(terms) > 0)
    assert weighted_objective({"flow": terms[1]}, (ref,)) == pytest.approx(2.0 * terms[1])


def test_replica_errors_enter_the_denominator():
    ref = reference(0.6)
    exact = group(0.61, noise=0.0)
    noisy = group(0.61, noise=0.02)
    m = model_curve({"imposed_rate": noisy}, ref)
    sem = np.std(0.02 * np.array([-1.5, -0.5, 0.5, 1.5]), ddof=1) / 2
    np.testing.assert_allclose(m["err"], sem)
    expected = 3 * 0.01**2 / (0.01**2 + sem**2)
    assert chi_square(ref, m) == pytest.approx(expected)
    assert chi_square(ref, m) < chi_square(ref, model_curve({"imposed_rate": exact}, ref))


def test_transient_reference_is_interpolated_at_its_points():
    ds = group(0.6, 0.0)
    ds["stress"] = ds["stress"] * (ds["strain"] / 2.0)  # a linear loading curve
    x = np.array([0.25, 1.05])
    curve = Curve("load", OBSERVABLES["stress_strain"], "s", 0.03, 1.0, x, np.zeros(2), np.ones(2))
    np.testing.assert_allclose(model_curve({"imposed_rate": ds}, curve)["mean"], flow(0.03, 0.6) * x / 2.0)


def test_candidates_run_with_the_same_replica_seeds(tmp_path):
    """Common random numbers: candidate sweeps differ in their run keys, not in their seeds."""
    from epmsweep.calibrate import OBSERVABLES, parse_calibration, reference_dataset

    from .conftest import write_calibration

    reference_dataset(OBSERVABLES["flow_curve"], RATES, flow(RATES, 0.6), [0.01] * 3).to_netcdf(tmp_path / "f.nc")
    spec = parse_calibration(write_calibration(tmp_path, {"f": {"observable": "flow_curve", "path": "f.nc"}}))
    a = make_plan(spec.candidate({"tau_res": 2.0, "thresholds.scale": 0.57})).runs
    b = make_plan(spec.candidate({"tau_res": 3.1, "thresholds.scale": 0.57})).runs
    assert len(a) == len(b) == 3 * 4
    for ra, rb in zip(a, b, strict=True):
        assert ra.coords == rb.coords and ra.key != rb.key
        assert ra.state_seed.spawn_key == rb.state_seed.spawn_key
        assert ra.dynamics_seed.spawn_key == rb.dynamics_seed.spawn_key
    _, state_a, _ = a[0].build()
    _, state_b, _ = b[0].build()
    np.testing.assert_array_equal(state_a.threshold, state_b.threshold)  # same initial map at the same P_d
