"""Measurements that make an initial state: stress map, shear modulus, frozen-matrix thresholds."""

import numpy as np
import pytest
from epmsweep.engine import ImposedRate, ImposedStress, InitialState, ModelParameters, ParameterError, simulate
from epmsweep.micro import FrozenMatrixProbe, GlassModel, measure_initial_state, probe_cell, shear_modulus, stress_map
from epmsweep.micro.modulus import elastic_slope
from epmsweep.micro.threshold_map import threshold_map

FAST_PROBE = FrozenMatrixProbe(strain_step=2e-4)


@pytest.mark.parametrize("L", [2, 3, 5])
@pytest.mark.parametrize("name", ["E1", "E3"])
def test_stress_map_mean_equals_global_stress(glasses, name, L):
    local, global_stress = stress_map(glasses[name], L)
    assert local.shape == (L, L)
    assert abs(local.mean() - global_stress) < 1e-13
    # the map is not trivially uniform: cells of ~100 particles carry residual stresses of order 0.1
    assert local.std() > 1e-3


def test_shear_modulus_is_positive_reproducible_and_grows_with_annealing(glasses):
    mu_e1, stresses = shear_modulus(glasses["E1"])
    again, _ = shear_modulus(glasses["E1"])
    assert mu_e1 == again  # same configuration, same serial LAMMPS: bit-identical
    assert 3 < mu_e1 < 40  # 2D Lennard-Jones glasses at density ~1: mu of order 10
    assert np.all(np.diff(stresses[:3]) > 0)
    mu_e3, _ = shear_modulus(glasses["E3"])
    assert mu_e3 > mu_e1  # lower inherent-structure energy, stiffer glass (paper)


def test_cut_out_probe_gives_the_full_system_threshold(glasses):
    # The cut-out keeps every frozen particle within the largest pair cutoff of the cell: the free
    # particles feel the same forces, so the whole quasistatic path is the same up to round-off. Tolerance:
    # one strain step's local stress increment (mu_local * strain_step < 20 * 2e-4), far above round-off.
    cell, L = (1, 2), 3
    cut = probe_cell(glasses["E1"], cell, L, FAST_PROBE)
    full = probe_cell(glasses["E1"], cell, L, FrozenMatrixProbe(strain_step=2e-4, cutout=False))
    assert cut.n_free == full.n_free and cut.n_frozen < full.n_frozen / 3
    assert abs(cut.threshold - full.threshold) < 20 * FAST_PROBE.strain_step
    assert cut.yield_strain == pytest.approx(full.yield_strain, abs=FAST_PROBE.strain_step * 1.01)
    assert cut.threshold > cut.initial_stress  # the cell was loaded before it yielded
    local, _ = stress_map(glasses["E1"], L)
    assert cut.initial_stress == pytest.approx(local[cell], abs=1e-10)


def test_measured_initial_state_loads_in_the_engine_and_runs(glasses, client, tmp_path):
    glass = glasses["E1"]
    state = measure_initial_state(glass, 3, probe=FAST_PROBE, client=client, out=tmp_path / "probes", name="E1")
    path = state.save(tmp_path / "e1.nc")
    loaded = InitialState.load(path)
    local, global_stress = stress_map(glass, 3)
    np.testing.assert_allclose(loaded.stress, local, atol=1e-14)
    assert np.all(loaded.threshold > loaded.stress)  # every cell needed loading to yield
    assert loaded.shear_modulus == pytest.approx(shear_modulus(glass)[0], rel=1e-12)
    assert loaded.provenance["prep_energy_per_particle"] == glass.attrs["energy_per_particle"]
    assert loaded.provenance["prep_quench_rate"] == np.inf and loaded.provenance["thresholds_method"] == "frozen matrix"
    assert loaded.provenance["thresholds_clipped_to_zero"] == int(np.sum(loaded.threshold == 0))

    params = ModelParameters(L=3)
    flow = simulate(params, loaded, ImposedRate(1e-2, strain_end=0.5, n_records=20), seed=1)
    assert flow.stress.values[0] == pytest.approx(global_stress, abs=1e-12)  # Sigma(0) = mean of the map
    assert np.all(np.isfinite(flow.stress.values)) and float(flow.peak_stress) > global_stress
    creep = simulate(params, loaded, ImposedStress(0.05, t_end=50.0), seed=1)
    assert int(creep.stuck) == 1  # far below every measured threshold: nothing can yield

    # The probes are stored per cell: a second map from the same store computes nothing and agrees.
    stored = sorted((tmp_path / "probes" / "E1_thresholds" / "runs").glob("*.nc"))
    assert len(stored) == 9
    mtimes = [p.stat().st_mtime_ns for p in stored]
    again = threshold_map(glass, 3, FAST_PROBE, client=client, out=tmp_path / "probes", name="E1_thresholds")
    np.testing.assert_array_equal(again.threshold.values, loaded.threshold)
    assert [p.stat().st_mtime_ns for p in stored] == mtimes


def test_probe_of_a_cell_outside_the_grid_is_rejected(glasses):
    with pytest.raises(ParameterError, match="cell"):
        probe_cell(glasses["E1"], (3, 0), 3)


def test_smoothed_potential_variant_runs_and_differs(glasses):
    shifted, g_shifted = stress_map(glasses["E1"], 3)
    smooth, g_smooth = stress_map(glasses["E1"], 3, GlassModel(potential="smooth"))
    assert abs(smooth.mean() - g_smooth) < 1e-13
    assert not np.allclose(smooth, shifted)


def test_negative_measured_thresholds_become_zero_and_are_counted():
    import xarray as xr
    from epmsweep.micro.threshold_map import lattice_thresholds

    # a cell with negative local stress that is unstable at its first step has a slightly negative threshold
    measured = xr.Dataset({"threshold": (("y", "x"), np.array([[-0.006, 0.5], [0.3, 0.7]]))}, attrs={"grid_cells": 2})
    thresholds, attrs = lattice_thresholds(measured)
    np.testing.assert_array_equal(thresholds, [[0.0, 0.5], [0.3, 0.7]])
    assert attrs["thresholds_clipped_to_zero"] == 1 and attrs["thresholds_min_measured"] == -0.006
    InitialState(thresholds, np.zeros((2, 2)), 10.0)  # accepted by the engine


def test_elastic_slope_skips_a_drop_at_the_first_step():
    """A glass that relaxes at its first strain step (seen at N = 1024) must not give a negative modulus."""
    strains = 1e-4 * np.arange(5)
    rising = 12.0 * strains
    assert elastic_slope(strains, rising) == pytest.approx(12.0)
    first_drop = np.r_[0.05, rising[1:] - 0.015]
    assert elastic_slope(strains, first_drop) == pytest.approx(12.0)
    late_drop = np.r_[rising[:3], rising[3:] - 0.01]
    assert elastic_slope(strains, late_drop) == pytest.approx(12.0)
