"""Execution on a real LocalCluster: reproducibility, resume, failures, assembly."""

import os
import signal
import subprocess
import sys
import time

import dask.config
import numpy as np
import pytest
import xarray as xr
from conftest import small_spec, write_spec
from distributed import Client, LocalCluster
from epmsweep.engine import InitialState, simulate
from epmsweep.sweep import RunStore, assemble, make_plan, parse_spec, run_sweep
from epmsweep.sweep.execute import SweepIncomplete
from epmsweep.sweep.store import Status


def data_of(tree: xr.DataTree) -> dict:
    return {
        (group, name): tree[group][name].values
        for group in tree.children
        for name in tree[group].to_dataset().data_vars
    }


def assert_same_data(a: xr.DataTree, b: xr.DataTree):
    da, db = data_of(a), data_of(b)
    assert da.keys() == db.keys()
    for k in da:
        np.testing.assert_array_equal(da[k], db[k], err_msg=str(k))


def test_results_do_not_depend_on_worker_count(tmp_path, client):
    two = run_sweep(small_spec(), out=tmp_path / "two", client=client, progress=False)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster, Client(cluster) as one_client:
        one = run_sweep(small_spec(), out=tmp_path / "one", client=one_client, progress=False)
    assert int(two["imposed_rate"]["completed"].sum()) == 8
    assert_same_data(one, two)


def test_assembled_dataset_labels_and_values(tmp_path, client):
    spec = parse_spec(small_spec())
    tree = run_sweep(spec, out=tmp_path, client=client, progress=False)
    rate = tree["imposed_rate"].to_dataset()
    assert rate["stress"].dims == ("initial_state", "shear_rate", "seed", "strain")
    assert rate["threshold"].dims == ("initial_state", "shear_rate", "seed", "snapshot_strain", "y", "x")
    assert list(rate.initial_state.values) == ["rejuvenated", "annealed"]
    np.testing.assert_allclose(rate.shear_rate, [0.01, 0.03])
    assert "shear_modulus" in rate.coords and rate["stress"].attrs["units"]
    assert rate.shear_rate.attrs["units"] == "1 / tau_LJ"
    assert tree.attrs["epmsweep_version"] and tree.attrs["base_seed"] == 7 and "imposed_rate" in tree.attrs["spec"]
    # one run recomputed directly with the engine equals its slice of the assembly, bit for bit
    run = next(r for r in make_plan(spec).runs if r.protocol == "imposed_stress" and r.coords["seed"] == 1)
    params, state, protocol = run.build()
    direct = simulate(params, state, protocol, run.dynamics_seed)
    position = dict(zip(("initial_state", "stress_imposed", "seed"), run.index, strict=True))
    sliced = tree["imposed_stress"].to_dataset().isel(position)
    for name in ("time", "strain", "stress", "strain_rate", "plastic_fraction", "arrest_time"):
        np.testing.assert_array_equal(sliced[name].values, direct[name].values, err_msg=name)
    # the replicas of one state start from the same map at every rate
    first = rate["threshold"].isel(snapshot_strain=0)
    assert not np.array_equal(first.isel(seed=0, shear_rate=0), first.isel(seed=1, shear_rate=0))


def test_a_damaged_file_of_a_batch_is_assembled_as_its_runs_missing(tmp_path, client):
    """Runs stored four to a file: a file with garbage is caught as the assembly reads it, its four
    runs are not completed, the others are, and the file is removed."""
    spec = parse_spec(small_spec())
    with dask.config.set({"epmsweep.sweep.runs-per-task": 4}):
        run_sweep(spec, out=tmp_path, client=client, progress=False).close()
    store = RunStore(tmp_path, "small")
    index = store.index()
    assert len(index) == 16 and len({e.file for e in index.values()}) == 4
    victim = sorted(index)[0]
    lost = {k for k, e in index.items() if e.file == index[victim].file}
    store.run_path(victim).write_bytes(b"garbage")
    with assemble(tmp_path, "small") as tree:
        completed = sum(int(tree[g]["completed"].sum()) for g in tree.children)
    assert len(lost) == 4 and completed == 12 and not store.run_path(victim).exists()
    assert store.stored_keys() == set(index) - lost


def test_an_initial_state_changed_during_the_sweep_is_never_mixed_in(tmp_path, client):
    """A state file swapped after planning: its runs are left pending (not failed, not computed from
    the other content), the driver says why; swapped back, a rerun computes exactly those, and the
    dataset equals an undisturbed sweep's."""
    state_file = tmp_path / "measured.nc"
    InitialState.rejuvenated(8, seed=3).save(state_file)
    original = state_file.read_bytes()
    spec = small_spec(initial_states={"rejuvenated": {"kind": "rejuvenated"}, "measured": {"path": str(state_file)}})
    parsed = parse_spec(spec)
    clean = run_sweep(parsed, out=tmp_path / "clean", client=client, progress=False)
    InitialState.rejuvenated(8, seed=4).save(state_file)  # another valid state under the same path
    with pytest.raises(SweepIncomplete, match="8 runs not computed: .*measured.nc: the initial-state file changed"):
        run_sweep(parsed, out=tmp_path / "out", client=client, progress=False)
    store = RunStore(tmp_path / "out", "small")
    assert store.failures() == {}
    assert store.status() == Status(planned=16, done=8, failed=0)
    state_file.write_bytes(original)
    tree = run_sweep(parsed, out=tmp_path / "out", client=client, progress=False)
    assert store.status() == Status(planned=16, done=16, failed=0)
    assert_same_data(tree, clean)
    # a corrupt stored run is detected and recomputed, never assembled
    victim = next(iter(store.stored_keys()))
    store.run_path(victim).write_bytes(b"truncated")
    tree = run_sweep(parsed, out=tmp_path / "out", client=client, progress=False)
    assert store.verify(victim)
    assert_same_data(tree, clean)


def test_resume_after_the_sweep_process_is_killed(tmp_path, client):
    spec = small_spec(name="resume", replicas=6,
                      imposed_rate={"shear_rate": [0.01, 0.03], "strain_end": 2.0, "n_records": 10})
    del spec["imposed_stress"]
    path = write_spec(tmp_path / "resume.yaml", spec)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "epmsweep.sweep.cli", "run", str(path), "--out", str(out), "--workers", "2",
         "--no-progress"],
        start_new_session=True,
    )
    store = RunStore(out, "resume")
    deadline = time.time() + 120
    while len(store.index()) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # stored: indexed by the driver (a file a worker wrote after the driver's last index line is recomputed)
    before = {k: store.run_path(k).stat().st_mtime_ns for k in store.indexed_keys(store.stored_keys())}
    assert 3 <= len(before) < 24, "the kill must land part-way"
    tree = run_sweep(path, out=out, client=client, progress=False)
    after = {k: store.run_path(k).stat().st_mtime_ns for k in store.stored_keys()}
    assert len(after) == 24
    assert all(after[k] == t for k, t in before.items()), "stored runs must not be recomputed"
    assert not list((out / "resume" / "runs").glob(".*"))  # no temporary file survives a finished sweep
    reference = run_sweep(path, out=tmp_path / "reference", client=client, progress=False)
    assert_same_data(tree, reference)


@pytest.mark.parametrize("workers", [2])
def test_cli_end_to_end(tmp_path, workers):
    path = write_spec(tmp_path / "cli.yaml", small_spec(name="cli"))
    out = tmp_path / "out"

    def epmsweep(*args):
        return subprocess.run([sys.executable, "-m", "epmsweep.sweep.cli", *args], capture_output=True, text=True,
                              timeout=600)

    r = epmsweep("run", str(path), "--out", str(out), "--workers", str(workers), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "16 done, 0 failed, 0 pending" in r.stdout
    r = epmsweep("status", "--out", str(out))
    assert "cli: 16 planned, 16 done, 0 pending, 0 failed" in r.stdout
    r = epmsweep("assemble", "cli", "--out", str(out))
    assert "16 of 16 runs" in r.stdout
    r = epmsweep("plot", str(out / "cli.nc"), "--figures", str(tmp_path / "figs"))
    assert r.returncode == 0, r.stderr
    assert {p.name for p in (tmp_path / "figs").glob("*.png")} >= {"flow_curve.png", "stress_strain.png", "creep.png"}
    r = epmsweep("plot", "cli", "--out", str(out))  # a sweep name: <out>/cli.nc, figures in <out>/cli_figures
    assert r.returncode == 0, r.stderr
    assert (out / "cli_figures" / "flow_curve.png").is_file() and f"figure: {out / 'cli_figures'}" in r.stdout
    bad = write_spec(tmp_path / "bad.yaml", small_spec(replicas=0))
    r = epmsweep("run", str(bad), "--out", str(out))
    assert r.returncode == 2
    assert f"{bad}: replicas: must be an integer" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "a-file").write_text("")
    r = epmsweep("run", str(path), "--out", str(tmp_path / "a-file" / "out"))  # before any cluster starts
    assert r.returncode == 2 and "--out: cannot make the output folder" in r.stderr and "Traceback" not in r.stderr
    r = epmsweep("--help")
    assert all(c in r.stdout for c in ("plan", "run", "status", "assemble", "demo", "plot"))
