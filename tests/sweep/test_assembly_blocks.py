"""Assembly a block of runs at a time: every run at its place, the chunks a block each, the summary
computed from the written groups, the netCDF library's settings left as they were."""

import importlib

import netCDF4
import numpy as np
import pytest
import xarray as xr
from conftest import small_spec
from epmsweep.analysis import steady_strain_rate, steady_stress
from epmsweep.sweep import RunStore, make_plan, parse_spec
from epmsweep.sweep.execute import compute_run, prepare_store

N_RECORDS = 10
ASSEMBLY = importlib.import_module("epmsweep.sweep.assemble")  # the module: the package exports a function of its name


@pytest.fixture(scope="module")
def blocked(tmp_path_factory):
    """A sweep of 3 replicas with one run missing per protocol, assembled in blocks of 2 runs (the
    seed dim of 3 ends in a partial block)."""
    out = tmp_path_factory.mktemp("blocks")
    plan = make_plan(parse_spec(small_spec(name="blocks", replicas=3)))
    store = RunStore(out, "blocks")
    with store.locked():
        keys = prepare_store(store, plan)
        missing = {plan.runs[4].key, plan.runs[-1].key}
        runs = {r.key: compute_run(r)[1].to_dataset() for r in plan.runs if r.key not in missing}
        store.write_runs(runs)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(ASSEMBLY, "BLOCK_BYTES", 2 * 8 * (N_RECORDS + 1))
            cache = netCDF4.get_chunk_cache()
            path = ASSEMBLY.assemble_plan(plan, store, out / "blocks.nc")
            assert netCDF4.get_chunk_cache() == cache  # the process-wide setting is restored
    assert len(keys) == 24
    return plan, runs, missing, path


def test_every_run_is_at_its_place_and_missing_ones_are_nan(blocked):
    plan, runs, missing, path = blocked
    for run in plan.runs:
        with xr.open_dataset(path, group=run.protocol) as group:
            at = group.sel(run.coords)
            if run.key in missing:
                assert not at.completed and at.stress.isnull().all()
                continue
            assert at.completed
            series = [n for n, v in runs[run.key].data_vars.items() if "x" not in v.dims]
            assert len(series) >= 4
            for name in series:
                np.testing.assert_array_equal(at[name].values, runs[run.key][name].values, err_msg=name)


def test_series_are_chunked_a_block_of_runs_each(blocked):
    *_, path = blocked
    with netCDF4.Dataset(path) as nc:
        group = nc["imposed_rate"]
        assert group["stress"].dimensions[:-1] == ("initial_state", "shear_rate", "seed")
        assert group["stress"].chunking() == [1, 1, 2, N_RECORDS + 1]
        assert group["peak_stress"].chunking() == [1, 1, 2]
        assert group["local_stress"].chunking()[:3] == [1, 1, 1]  # fields: one run a chunk


def test_the_summary_is_the_analysis_of_the_written_groups(blocked):
    *_, path = blocked
    root = xr.open_dataset(path)
    with xr.open_dataset(path, group="imposed_rate") as rate, xr.open_dataset(path, group="imposed_stress") as creep:
        np.testing.assert_allclose(root.steady_stress, steady_stress(rate.load())["stress"], rtol=1e-12)
        flow = steady_strain_rate(creep.load())
        np.testing.assert_allclose(root.steady_strain_rate, flow["strain_rate"], rtol=1e-12)
        np.testing.assert_array_equal(root.stuck_fraction, flow["stuck_fraction"])
