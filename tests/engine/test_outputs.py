"""Outputs of single runs: the declared vocabulary, labeled clocks, units that parse, dtypes."""

import matplotlib
import numpy as np
import pytest
from epmsweep.engine import ImposedRate, ImposedStress, InitialState, ModelParameters, simulate
from epmsweep.engine.units import unit_registry
from epmsweep.engine.variables import VARIABLES

matplotlib.use("Agg")
P16 = ModelParameters(L=16)
STATE = InitialState.rejuvenated(16, seed=0)


@pytest.fixture(scope="module")
def flow():
    return simulate(P16, STATE, ImposedRate(1e-2, strain_end=1.0, n_records=50, snapshot_strains=(0.5, 1.0)), seed=3)


@pytest.fixture(scope="module")
def creep():
    return simulate(P16, STATE, ImposedStress(0.6, t_end=100.0, n_records=40, snapshot_times=(50.0,)), seed=3)


def test_imposed_rate_series_are_indexed_by_strain(flow):
    assert flow.stress.dims == ("strain",) and "strain" in flow.indexes
    np.testing.assert_allclose(flow.strain.values, np.linspace(0, 1.0, 51), rtol=0, atol=1e-15)
    # the exact time of each record is a coordinate: strain = gdot t to within half a time step
    assert "time" in flow.coords and flow.time.dims == ("strain",)
    assert np.max(np.abs(flow.strain.values - 1e-2 * flow.time.values)) <= 0.5 * 1e-2 * P16.dt + 1e-15
    assert float(flow.stress.sel(strain=0.5)) == float(flow.stress.values[25])
    lines = flow.stress.plot(x="strain")
    assert lines[0].axes.get_xlabel() == "shear strain [1]"
    assert len(lines[0].axes.get_ylabel()) < 40  # xarray's automatic label fits a figure


def test_creep_series_are_indexed_by_time(creep):
    assert creep.strain_rate.dims == ("time",) and "time" in creep.indexes
    assert creep.strain.dims == ("time",)  # the response under imposed stress
    picked = creep.sel(time=30.0, method="nearest")
    assert abs(float(picked.time) - 30.0) < 5.0
    assert np.all(np.diff(creep.time.values) > 0)


def test_snapshots_carry_their_clock_and_lattice_coordinates(flow, creep):
    assert flow.local_stress.dims == ("snapshot_strain", "y", "x")
    assert list(flow.snapshot_strain.values) == [0.5, 1.0]
    assert flow.threshold.sel(snapshot_strain=1.0).shape == (16, 16)
    np.testing.assert_array_equal(flow.y.values, np.arange(16))
    assert creep.threshold.dims == ("snapshot_time", "y", "x") and list(creep.snapshot_time.values) == [50.0]


def test_no_zero_length_variables_without_snapshots():
    ds = simulate(P16, STATE, ImposedStress(0.6, t_end=10.0, n_records=10), seed=1)
    assert not [name for name, var in ds.variables.items() if 0 in var.shape]
    assert "local_stress" not in ds and "snapshot_time" not in ds.dims


def test_flags_are_booleans(flow, creep):
    assert flow.plastic.dtype == bool and creep.stuck.dtype == bool


def test_every_output_uses_the_declared_vocabulary(flow, creep):
    for ds in (flow, creep):
        for name, var in ds.variables.items():
            declared = VARIABLES[name]
            assert var.attrs["units"] == declared.units and var.attrs["long_name"] == declared.long_name, name
            assert var.dtype == np.dtype(declared.dtype), name


def test_every_units_attribute_parses(flow, creep):
    ureg = unit_registry()
    for ds in (flow, creep):
        for var in ds.variables.values():
            ureg.parse_units(var.attrs["units"])  # raises on an unknown unit
    stress = ureg.Quantity(1.0, flow.stress.attrs["units"])
    rate = ureg.Quantity(1.0, flow.strain_rate.attrs["units"])
    time = ureg.Quantity(1.0, creep.time.attrs["units"])
    assert (rate * time).dimensionless and not stress.dimensionless


def test_imposed_rate_with_run_length_in_time_is_indexed_by_time():
    ds = simulate(P16, STATE, ImposedRate(1e-2, t_end=20.0, n_records=20), seed=1)
    assert ds.stress.dims == ("time",) and ds.strain.dims == ("time",) and "strain" in ds.coords
    assert float(ds.time[-1]) == 20.0
