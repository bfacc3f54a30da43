"""Quasistatic sweeps on a real LocalCluster: the block, its runs, the padded group, resume, the summary."""

import shutil

import numpy as np
import pytest
import xarray as xr
from conftest import small_spec, write_spec
from epmsweep.analysis import quasistatic_flow_stress
from epmsweep.engine import Quasistatic, simulate
from epmsweep.engine.units import STRESS
from epmsweep.sweep import RunStore, SpecError, make_plan, parse_spec, run_sweep
from epmsweep.sweep.assemble import assemble_plan
from epmsweep.sweep.cli import main
from epmsweep.sweep.estimate import estimate

SERIES = Quasistatic.series


def quasistatic_spec(name: str = "qs", **overrides) -> dict:
    """2 initial states x 2 values of tau_res x 2 replicas of L = 16 sheared quasistatically to strain 0.3."""
    spec = {
        "name": name,
        "seed": 11,
        "replicas": 2,
        "model": {"L": 16},
        "initial_states": {"rejuvenated": {"kind": "rejuvenated"}, "annealed": {"kind": "annealed", "shift": 0.2}},
        "quasistatic": {"strain_end": 0.3, "snapshot_strains": [0.15, 0.3]},
        "axes": {"tau_res": [3.0, 2.0]},
    }
    spec.update(overrides)
    return spec


@pytest.fixture(scope="module")
def swept(tmp_path_factory, client):
    """The sweep run once, its plan and its assembled tree (closed at the end)."""
    out = tmp_path_factory.mktemp("qs")
    spec = parse_spec(quasistatic_spec())
    tree = run_sweep(spec, out=out, client=client, progress=False)
    yield out, make_plan(spec), tree
    tree.close()


def test_the_block_has_no_axis_of_its_own_and_takes_the_others():
    spec = parse_spec(quasistatic_spec(imposed_rate={"shear_rate": [0.01, 0.03], "strain_end": 0.3}))
    plan = make_plan(spec)
    assert spec.protocols["quasistatic"] == ({"strain_end": 0.3, "snapshot_strains": (0.15, 0.3)}, ())
    assert plan.dims["quasistatic"] == ("initial_state", "tau_res", "seed")
    quasi = [r for r in plan.runs if r.protocol == "quasistatic"]
    assert len(quasi) == 2 * 2 * 2 and len(plan.runs) == 8 + 2 * 2 * 2 * 2
    assert set(quasi[0].coords) == {"initial_state", "tau_res", "seed"}
    assert len({r.key for r in plan.runs}) == len(plan.runs), "every run has its own key"
    assert quasi[0].protocol_instance() == Quasistatic(strain_end=0.3, snapshot_strains=(0.15, 0.3))
    # a run of n_avalanches
    counted = parse_spec(quasistatic_spec(quasistatic={"n_avalanches": 50, "max_duration": 100.0}))
    assert make_plan(counted).runs[0].protocol_instance() == Quasistatic(n_avalanches=50, max_duration=100.0)


@pytest.mark.parametrize(
    ("block", "field", "reason"),
    [
        ({}, "quasistatic.strain_end", "give exactly one of strain_end and n_avalanches"),
        ({"strain_end": 1.0, "n_avalanches": 10}, "quasistatic.strain_end", "give exactly one"),
        ({"n_avalanches": 0}, "quasistatic.n_avalanches", ">= 1"),
        ({"n_avalanches": 2.5}, "quasistatic.n_avalanches", "must be an integer"),
        ({"strain_end": -0.1}, "quasistatic.strain_end", "> 0"),
        ({"n_avalanches": 10, "snapshot_strains": [0.1]}, "quasistatic.snapshot_strains", "needs strain_end"),
        ({"strain_end": 0.3, "snapshot_strains": [0.5]}, "quasistatic.snapshot_strains", "beyond the end"),
        ({"strain_end": 0.3, "max_duration": 1e20}, "quasistatic.max_duration", "steps of dt = 0.01"),
        ({"strain_end": 0.3, "shear_rate": [0.01]}, "quasistatic.shear_rate",
         "unknown key; allowed: ['max_duration', 'n_avalanches', 'snapshot_strains', 'strain_end']"),
        ([0.3], "quasistatic", "must be a mapping, got list"),
    ],
)
def test_bad_quasistatic_blocks_name_file_field_and_reason(tmp_path, block, field, reason):
    path = write_spec(tmp_path / "bad.yaml", quasistatic_spec(quasistatic=block))
    with pytest.raises(SpecError) as err:
        parse_spec(path)
    assert str(err.value).startswith(f"{path}: {field}: ") and reason in str(err.value), str(err.value)


def test_every_error_of_a_quasistatic_file_is_reported_at_once(tmp_path):
    spec = quasistatic_spec(quasistatic={"n_avalanches": 10, "snapshot_strains": [0.1], "max_duration": -1.0},
                            imposed_rate={"shear_rate": [-0.01], "strain_end": 1.0})
    path = write_spec(tmp_path / "s.yaml", spec)
    with pytest.raises(SpecError) as err:
        parse_spec(path)
    assert set(err.value.errors) == {
        ("quasistatic.max_duration", "must be a finite number > 0, got -1.0"),
        ("imposed_rate.shear_rate[0]", "must be a finite number > 0, got -0.01"),
    }
    # once max_duration is right, the rule tying snapshots to strain_end speaks
    spec["quasistatic"]["max_duration"] = 10.0
    with pytest.raises(SpecError, match="quasistatic.snapshot_strains: needs strain_end"):
        parse_spec(write_spec(path, spec))


def test_padded_group_layout(swept):
    _, plan, tree = swept
    assert tree.attrs["groups"] == "quasistatic"
    ds = tree["quasistatic"].to_dataset()
    assert ds.attrs["protocol"] == "quasistatic" and ds.attrs["record_dim"] == "avalanche"
    for name in SERIES:
        assert ds[name].dims == ("initial_state", "tau_res", "seed", "avalanche"), name
    assert ds["threshold"].dims == ("initial_state", "tau_res", "seed", "snapshot_strain", "y", "x")
    assert ds["peak_stress"].dims == ds["n_avalanches"].dims == ds["completed"].dims == ("initial_state", "tau_res",
                                                                                           "seed")  # fmt: skip
    assert list(ds.initial_state.values) == ["rejuvenated", "annealed"]
    assert list(ds.tau_res.values) == [2.0, 3.0], "axes are sorted"
    n = ds["n_avalanches"].values
    assert bool(ds["completed"].all()) and n.min() > 10 and n.min() < n.max(), "runs of different lengths"
    assert ds.avalanche.dtype == np.int64 and ds.avalanche.attrs["units"] == "1"
    np.testing.assert_array_equal(ds.avalanche.values, np.arange(n.max()))
    np.testing.assert_array_equal(ds.snapshot_strain.values, [0.15, 0.3])
    beyond = (ds.avalanche >= ds["n_avalanches"]).transpose(*ds["strain"].dims).values  # each run's padding
    for name in SERIES:
        values = ds[name].values
        padding, written = (-1, "-1") if name == "activations" else (np.nan, "NaN")
        assert values.dtype == ("int64" if name == "activations" else "float64"), name
        np.testing.assert_array_equal(values[beyond], padding, err_msg=name)
        inside = values[~beyond]
        assert np.isfinite(inside).all() and (inside != -1).all(), f"{name}: padding inside a run"
        comment = ds[name].attrs["comment"]
        assert comment.endswith(f"are {written}") and "n_avalanches" in comment, comment
    assert "comment" not in ds["peak_stress"].attrs and ds["n_avalanches"].attrs["units"] == "1"


def test_each_run_equals_the_engine_bit_for_bit(swept):
    _, plan, tree = swept
    ds = tree["quasistatic"].to_dataset()
    for run in plan.runs:
        params, state, protocol = run.build()
        direct = simulate(params, state, protocol, run.dynamics_seed)
        sliced = ds.isel(dict(zip(plan.dims["quasistatic"], run.index, strict=True)))
        count = int(sliced["n_avalanches"])
        assert count == direct.avalanche.size
        for name in (*SERIES, "peak_stress", "strain_at_peak"):
            got = sliced[name].values[:count] if name in SERIES else sliced[name].values
            np.testing.assert_array_equal(got, direct[name].values, err_msg=f"{run.coords} {name}")
        for name in ("local_stress", "threshold", "plastic"):
            np.testing.assert_array_equal(sliced[name].values, direct[name].values, err_msg=name)


def test_root_summary_holds_the_quasistatic_flow_stress(swept):
    _, plan, tree = swept
    root = tree.to_dataset()
    flow = root["quasistatic_flow_stress"]
    assert flow.dims == ("initial_state", "tau_res") and flow.attrs["units"] == STRESS
    expected = quasistatic_flow_stress(tree["quasistatic"].to_dataset())
    np.testing.assert_allclose(flow.values, expected["flow_stress"].values, rtol=1e-12)
    err = root["quasistatic_flow_stress_err"].values
    np.testing.assert_allclose(err, expected["flow_stress_err"].values, rtol=1e-12)
    for state in ("rejuvenated", "annealed"):
        for tau_res in (2.0, 3.0):
            lows, highs = [], []
            for run in plan.runs:
                if run.coords["initial_state"] == state and run.coords["tau_res"] == tau_res:
                    direct = simulate(*run.build(), run.dynamics_seed)
                    late = direct.strain.values >= 0.5 * direct.strain.values[-1]
                    lows.append(direct.stress_after.values[late].mean())
                    highs.append(direct.stress_before.values[late].mean())
            # the sawtooth's mean lies between its bottoms (after each avalanche) and its tops (before)
            value = float(flow.sel(initial_state=state, tau_res=tau_res))
            assert np.mean(lows) < value < np.mean(highs)
    assert 0.3 < float(flow.min()) and float(flow.max()) < 2.0, "a flow stress of the order of the thresholds"


def test_an_extended_sweep_computes_only_the_new_runs(swept, client):
    out, plan, tree = swept
    store = RunStore(out, "qs")
    before = {k: store.run_path(k).stat().st_mtime_ns for k in store.stored_keys()}
    assert len(before) == len(plan.runs) == 8
    extended = parse_spec(quasistatic_spec(replicas=3))
    with run_sweep(extended, out=out, client=client, progress=False) as again:
        after = {k: store.run_path(k).stat().st_mtime_ns for k in store.stored_keys()}
        assert len(after) == 12 and all(after[k] == t for k, t in before.items()), "stored runs are not recomputed"
        old, new = tree["quasistatic"].to_dataset(), again["quasistatic"].to_dataset().isel(seed=slice(0, 2))
        longest = int(old["n_avalanches"].max())
        for name in SERIES:
            np.testing.assert_array_equal(new[name].isel(avalanche=slice(0, longest)).values, old[name].values)


def test_runs_of_n_avalanches_beside_the_other_protocols(tmp_path, client):
    spec = small_spec(name="mixed", quasistatic={"n_avalanches": 40}, imposed_stress={"stress": [0.5], "t_end": 2.0})
    with run_sweep(spec, out=tmp_path, client=client, progress=False) as tree:
        assert set(tree.children) == {"imposed_rate", "imposed_stress", "quasistatic"}
        ds = tree["quasistatic"].to_dataset()
        assert ds["stress_after"].dims == ("initial_state", "seed", "avalanche") and ds.sizes["avalanche"] == 40
        assert (ds["n_avalanches"] == 40).all() and not ds["stress_after"].isnull().any()
        assert "comment" in ds["activations"].attrs
        root = tree.to_dataset()
        assert {"steady_stress", "steady_strain_rate", "quasistatic_flow_stress"} <= set(root.data_vars)
        assert root["quasistatic_flow_stress"].dims == ("initial_state",)


def test_missing_runs_are_padding_and_not_completed(swept, tmp_path):
    """A run file removed from the store: its entries are NaN / -1 and it is not completed."""
    out, plan, _ = swept
    copy = tmp_path / "copy"
    shutil.copytree(out / "qs", copy / "qs")
    store = RunStore(copy, "qs")
    lost = plan.runs[0]
    store.run_path(lost.key).unlink()
    with xr.open_datatree(assemble_plan(plan, store, copy / "qs.nc"), engine="netcdf4") as tree:
        ds = tree["quasistatic"].to_dataset().isel(dict(zip(plan.dims["quasistatic"], lost.index, strict=True)))
        assert not bool(ds["completed"]) and int(ds["n_avalanches"]) == -1
        assert ds["strain"].isnull().all() and (ds["activations"] == -1).all()


def test_plot_of_a_quasistatic_sweep_draws_its_figures(swept, tmp_path, capsys):
    out, _, _ = swept
    assert main(["plot", "qs", "--out", str(out), "--figures", str(tmp_path / "figures")]) == 0
    drawn = {p.stem for p in tmp_path.glob("figures/*.png")}
    assert drawn == {"quasistatic_stress_strain", "avalanche_sizes", "quasistatic_flow_stress"}, capsys.readouterr().out


def test_the_estimate_costs_every_quasistatic_run(swept):
    _, plan, _ = swept
    est = estimate(plan, budget=0.01, max_points=2)
    assert est.points == 4 and est.calibrated == 2
    assert set(est.run_seconds) == {r.key for r in plan.runs} and all(s > 0 for s in est.run_seconds.values())


def test_an_endless_avalanche_is_the_run_s_recorded_failure_and_the_group_is_still_written(tmp_path, client):
    spec = quasistatic_spec(name="endless", replicas=1, axes={},
                            quasistatic={"strain_end": 0.3, "max_duration": 0.05})  # 5 steps: no avalanche ends
    with run_sweep(spec, out=tmp_path, client=client, progress=False) as tree:
        ds = tree["quasistatic"].to_dataset()
        assert not ds["completed"].any() and (ds["n_avalanches"] == -1).all() and ds.sizes["avalanche"] == 1
        assert ds["stress_after"].isnull().all() and tree.to_dataset()["quasistatic_flow_stress"].isnull().all()
    failures = RunStore(tmp_path, "endless").failures()
    assert len(failures) == 2
    assert all(f["kind"] == "EndlessAvalancheError" and "max_duration = 0.05" in f["error"] for f in failures.values())
