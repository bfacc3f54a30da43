"""Two drivers on one store, a scheduler lost mid-sweep, a sweep with nothing to run on, workers as on
separate machines writing into a shared store: nothing is lost or recorded wrongly, and no driver
waits without saying why."""

import json
import os
import signal
import subprocess
import sys
import time

import dask.config
import numpy as np
import pytest
from conftest import record_figure, small_spec, write_spec
from distributed import Client
from epmsweep.sweep import RunStore, open_client, run_sweep
from epmsweep.sweep.execute import BATCH_FROM, StoreAccess, SweepIncomplete, sees_store

CLI = [sys.executable, "-m", "epmsweep.sweep.cli"]


def creep_free_spec(name: str, replicas: int, strain_end: float) -> dict:
    spec = small_spec(name=name, replicas=replicas, model={"L": 16},
                      imposed_rate={"shear_rate": [0.01, 0.03], "strain_end": strain_end, "n_records": 20})
    del spec["imposed_stress"]
    return spec


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def indexed_runs(store: RunStore) -> list[str]:
    """The run keys of every line of the index, in order (a run indexed twice appears twice)."""
    lines = store.index_path.read_text().splitlines() if store.index_path.is_file() else []
    return [key for line in lines for key in json.loads(line)["runs"]]


def test_a_second_driver_on_the_same_store_is_refused(tmp_path):
    """Two `epmsweep run` started on one store: the second stops at once naming the first; the first's
    half-written files are untouched, every run is computed once, and stale temporaries of an
    earlier driver (store and assembly) are gone once the first has started."""
    out = tmp_path / "out"
    path = write_spec(tmp_path / "s.yaml", creep_free_spec("shared", replicas=10, strain_end=20.0))
    store = RunStore(out, "shared")
    store.runs.mkdir(parents=True)
    stale = [store.runs / ".x.nc.tmp999", out / ".shared.nc.tmp999"]
    for p in stale:
        p.write_bytes(b"left by a killed driver")
    first = subprocess.Popen([*CLI, "run", str(path), "--out", str(out), "--workers", "2", "--no-progress"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (store.root / ".lock").is_file() and (store.root / ".lock").read_text(), 120, "the lock")
        second = subprocess.run([*CLI, "run", str(path), "--out", str(out), "--workers", "2"],
                                capture_output=True, text=True, timeout=120)
        assert first.poll() is None, "the first driver must still be running"
        assert second.returncode == 2, second.stderr
        assert f"{store.root}: is in use by another driver (pid {first.pid} on " in second.stderr
        assert "Traceback" not in second.stderr
        assert not any(p.exists() for p in stale)
        stdout, stderr = first.communicate(timeout=600)
    finally:
        first.kill()
    assert first.returncode == 0, stderr
    keys = indexed_runs(store)
    assert len(keys) == len(set(keys)) == 40  # each run written once, by the first driver only
    record_figure("Concurrent drivers", "two `epmsweep run` on one store (40 runs): the second refused at once "
                  "naming the first (pid, host, start); the first computed each run once, its temporaries "
                  "untouched; stale temporaries of store and assembly removed at start")


def start_scheduler(tmp_path, workers: int):
    """A `dask scheduler` and `dask worker` processes, as on separate machines (own local folders)."""
    sched_file = tmp_path / f"scheduler-{time.monotonic_ns()}.json"
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "5s"}
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", "0", "--dashboard-address", ":0", "--scheduler-file", str(sched_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    wait_for(sched_file.is_file, 60, "the scheduler file")
    for i in range(workers):
        local = tmp_path / f"worker-{i}-{time.monotonic_ns()}"
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                                       str(sched_file), "--nthreads", "1", "--local-directory", str(local),
                                       "--death-timeout", "10", "--no-dashboard"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
    return sched_file, procs


def stop(procs):
    for p in procs:
        p.kill()
        p.wait(timeout=30)


def test_workers_as_on_separate_machines_write_batches_into_a_shared_store(tmp_path, client):
    """A `dask scheduler` and 3 `dask worker` processes with their own local folders, the store on
    a folder they share: every worker sees the store (the driver's token), the batched runs are
    each indexed once, and the data equal a sweep of one run per task on the local cluster."""
    spec = creep_free_spec("shared", replicas=(BATCH_FROM + 20) // 4, strain_end=0.2)  # 2 states x 2 rates
    out = tmp_path / "shared-folder"
    sched_file, procs = start_scheduler(tmp_path, workers=3)
    try:
        with Client(scheduler_file=str(sched_file), timeout=60) as remote:
            remote.wait_for_workers(3, timeout=120)
            tree = run_sweep(spec, out=out, client=remote, progress=False)
            store = RunStore(out, "shared")
            access = StoreAccess(str(out), "shared", (store.root / ".probe").read_text())
            seen = remote.run(sees_store, access)
    finally:
        stop(procs)
    assert len(seen) == 3 and all(seen.values()), seen
    keys = indexed_runs(store)
    assert len(keys) == len(set(keys)) == BATCH_FROM + 20 == store.status().done
    with dask.config.set({"epmsweep.sweep.runs-per-task": 1}):
        reference = run_sweep(spec, out=tmp_path / "reference", client=client, progress=False)
    for name in reference["imposed_rate"].to_dataset().data_vars:
        np.testing.assert_array_equal(tree["imposed_rate"][name].values, reference["imposed_rate"][name].values)


def test_losing_the_scheduler_leaves_runs_pending_not_failed(tmp_path):
    """SIGKILL the scheduler mid-sweep: the driver ends with a message (no traceback), records no
    failure; the rerun on a new cluster computes exactly the missing runs, bit-identical to an
    undisturbed sweep."""
    spec = creep_free_spec("lost", replicas=10, strain_end=20.0)
    path = write_spec(tmp_path / "s.yaml", spec)
    out = tmp_path / "out"
    store = RunStore(out, "lost")
    sched_file, procs = start_scheduler(tmp_path, workers=2)
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "5s"}
    try:
        driver = subprocess.Popen([*CLI, "run", str(path), "--out", str(out), "--scheduler-file", str(sched_file),
                                   "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        wait_for(lambda: len(indexed_runs(store)) >= 5 or driver.poll() is not None, 300, "5 stored runs")
        procs[0].send_signal(signal.SIGKILL)
        stdout, stderr = driver.communicate(timeout=180)
    finally:
        stop(procs)
    assert driver.returncode == 1, stderr
    assert "the connection to the Dask scheduler was lost" in stderr and "runs not computed" in stderr
    assert "Traceback" not in stderr and "KeyError" not in stderr
    status = store.status()
    assert store.failures() == {} and status.failed == 0 and 5 <= status.done < 40
    before = {k: store.run_path(k).stat().st_mtime_ns for k in store.indexed_keys(store.stored_keys())}
    with open_client(n_workers=2) as client:
        tree = run_sweep(spec, out=out, client=client, progress=False)
        reference = run_sweep(spec, out=tmp_path / "reference", client=client, progress=False)
    assert {k: store.run_path(k).stat().st_mtime_ns for k in before} == before  # not recomputed
    assert store.status().done == 40
    for name in reference["imposed_rate"].to_dataset().data_vars:
        np.testing.assert_array_equal(tree["imposed_rate"][name].values, reference["imposed_rate"][name].values)
    record_figure("Scheduler killed", f"40 runs, scheduler SIGKILLed after {status.done} stored: the driver ended "
                  f"with exit 1 and a message, 0 runs recorded failed, {status.pending} pending; the rerun on a new "
                  "cluster computed those only, bit-identical to an undisturbed sweep")


def test_a_sweep_with_no_worker_says_why_and_stops_at_the_stall_timeout(tmp_path, capsys):
    """A scheduler with no worker: the driver reports the task states every stall-report and gives up
    at stall-timeout with the runs pending, never silently waiting forever."""
    import dask.config
    from distributed import Client

    sched_file, procs = start_scheduler(tmp_path, workers=0)
    try:
        with dask.config.set({"epmsweep.sweep.stall-report": "2 s", "epmsweep.sweep.stall-timeout": "7 s"}), \
                Client(scheduler_file=str(sched_file)) as client, \
                pytest.raises(SweepIncomplete, match="no run finished for epmsweep.sweep.stall-timeout = 7 s"):
            run_sweep(creep_free_spec("idle", 1, 1.0), out=tmp_path, client=client, progress=False)
    finally:
        stop(procs)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("epmsweep: no run finished")]
    assert lines and all("0 workers connected" in line for line in lines), lines
    assert any("'no-worker'" in line or "'queued'" in line for line in lines), lines
    assert RunStore(tmp_path, "idle").failures() == {}
    record_figure("Stalled sweep", f"a scheduler with no worker: {len(lines)} reports in 7 s saying 0 workers are "
                  "connected and the runs' task states, then the driver stopped at stall-timeout, runs pending")
