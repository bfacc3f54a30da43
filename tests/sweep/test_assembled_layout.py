"""Assembled files behave like xarray data: index coordinates, selection, dtypes, units, root summary."""

import netCDF4
import numpy as np
import pytest
import xarray as xr
from conftest import small_spec
from epmsweep.engine import ParameterError
from epmsweep.engine.units import unit_registry
from epmsweep.sweep import open_results, run_sweep


@pytest.fixture(scope="module")
def assembled(tmp_path_factory, client):
    out = tmp_path_factory.mktemp("layout")
    spec = small_spec(name="layout", axes={"tau_res": [2.5, 1, 1.5]})
    run_sweep(spec, out=out, client=client, progress=False).close()
    return out / "layout.nc"


def test_open_dataset_gives_the_summary(assembled):
    root = xr.open_dataset(assembled)
    assert {"steady_stress", "steady_stress_err", "steady_strain_rate", "stuck_fraction"} <= set(root.data_vars)
    assert root.steady_stress.dims == ("initial_state", "shear_rate", "tau_res")
    assert np.isfinite(root.steady_stress.values).all()
    assert "group=" in root.attrs["how_to_open"] and root.attrs["groups"] == "imposed_rate imposed_stress"
    with open_results(assembled) as tree:  # the summary is the analysis of the groups, not a copy of it
        rate = tree["imposed_rate"].to_dataset()
        window = rate.stress.where(rate.strain >= 0.5 * 0.3).mean("strain").mean("seed")
        np.testing.assert_allclose(root.steady_stress.values, window.values, rtol=1e-12)


def test_axes_are_sorted_and_typed_from_all_values(assembled):
    rate = xr.open_dataset(assembled, group="imposed_rate")
    assert rate.tau_res.values.tolist() == [1.0, 1.5, 2.5] and rate.tau_res.dtype == np.float64
    assert rate.tau_res.attrs["units"] == "tau_LJ"
    # selection by value on every axis
    one = rate.sel(tau_res=slice(1.0, 1.5), shear_rate=0.03, strain=0.3, initial_state="annealed", seed=1)
    assert one.stress.shape == (2,) and np.isfinite(one.stress).all()
    # each run sits at its own coordinates: its attrs say which tau_res it ran with
    assert (rate.completed.values).all()


def test_clocks_are_index_coordinates(assembled):
    rate = xr.open_dataset(assembled, group="imposed_rate")
    creep = xr.open_dataset(assembled, group="imposed_stress")
    assert {"strain", "snapshot_strain", "y", "x"} <= set(rate.indexes)
    assert rate.stress.dims[-1] == "strain" and "time" in rate.coords
    assert rate.local_stress.sel(snapshot_strain=0.3).dims[-2:] == ("y", "x")
    assert creep.strain_rate.dims[-1] == "time" and "time" in creep.indexes
    assert creep.sel(time=2.0, method="nearest").strain.shape == (2, 2, 3, 2)


def test_flags_decode_as_booleans_and_no_variable_is_empty(assembled):
    rate = xr.open_dataset(assembled, group="imposed_rate")
    creep = xr.open_dataset(assembled, group="imposed_stress")
    assert rate.plastic.dtype == bool and creep.stuck.dtype == bool and rate.completed.dtype == bool
    assert "local_stress" not in creep and "snapshot_time" not in creep.dims
    for ds in (rate, creep):
        assert not [n for n, v in ds.variables.items() if 0 in v.shape]


def test_every_units_attribute_parses(assembled):
    ureg = unit_registry()
    with open_results(assembled) as tree:
        for node in tree.subtree:
            for name, var in node.variables.items():
                if "units" in var.attrs:
                    ureg.parse_units(var.attrs["units"])
                elif var.dtype.kind not in "OUS":
                    assert name == "completed" or var.attrs.get("dtype") == "bool", f"{node.path}:{name} has no units"


def test_variables_are_compressed(assembled):
    with netCDF4.Dataset(assembled) as nc:
        filters = nc["imposed_rate"]["local_stress"].filters()
        assert filters["zlib"] and filters["shuffle"]


def test_extending_a_sweep_keeps_the_axis_sorted(tmp_path, client):
    spec = small_spec(name="grow")
    run_sweep(spec, out=tmp_path, client=client, progress=False)
    spec["imposed_rate"]["shear_rate"] = [0.01, 0.03, 0.02]  # a rate between the existing ones, appended
    tree = run_sweep(spec, out=tmp_path, client=client, progress=False)
    rate = tree["imposed_rate"].to_dataset()
    assert rate.shear_rate.values.tolist() == [0.01, 0.02, 0.03]
    assert rate.sel(shear_rate=slice(0.015, 0.05)).sizes["shear_rate"] == 2
    assert rate.completed.all()
    tree.close()


def test_open_results_refuses_other_files(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        open_results(tmp_path / "nosuch.nc")
    (tmp_path / "text.nc").write_text("not netCDF")
    with pytest.raises(ParameterError, match="not a readable netCDF file"):
        open_results(tmp_path / "text.nc")
    xr.Dataset({"a": ("x", [1.0])}).to_netcdf(tmp_path / "other.nc")
    with pytest.raises(ParameterError, match="not an assembled epmsweep sweep"):
        open_results(tmp_path / "other.nc")
