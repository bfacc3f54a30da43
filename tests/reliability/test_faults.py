"""Faults during a sweep lose nothing: worker deaths, driver interruption, corrupt or outdated files."""

import os
import signal
import subprocess
import sys
import threading
import time

import netCDF4
import numpy as np
import pytest
import xarray as xr
from conftest import record_figure, small_spec, write_spec
from distributed import Client, LocalCluster
from epmsweep.sweep import RunStore, open_client, run_sweep

KILLS = 3


def long_spec(name: str, replicas: int = 10, strain_end: float = 3.0) -> dict:
    spec = small_spec(name=name, replicas=replicas, model={"L": 16},
                      imposed_rate={"shear_rate": [0.01, 0.03], "strain_end": strain_end, "n_records": 20})
    del spec["imposed_stress"]
    return spec


def same_data(a, b) -> bool:
    return all(
        np.array_equal(a[g][v].values, b[g][v].values, equal_nan=True)
        for g in a.children
        for v in a[g].to_dataset().data_vars
    )


def test_worker_deaths_lose_nothing(tmp_path):
    """SIGKILL a worker process 3 times while it computes: every run is stored once, results unchanged."""
    spec = long_spec("killed", strain_end=60.0)  # ~0.5 s per run
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        kills, errors = [], []

        def killer():
            try:
                time.sleep(1.0)
                while len(kills) < KILLS:
                    busy = [w for w, tasks in client.processing().items() if tasks]
                    if busy:
                        victim = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                        os.kill(victim, signal.SIGKILL)
                        kills.append(victim)
                    time.sleep(1.0)
            except Exception as exc:  # reported by the assertion below
                errors.append(exc)

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        tree = run_sweep(spec, out=tmp_path / "killed", client=client, progress=False)
        thread.join(timeout=60)
    store = RunStore(tmp_path / "killed", "killed")
    assert not errors and len(kills) == KILLS, f"the sweep must outlast the kills ({errors})"
    assert store.status().done == 40 and not store.failures()
    assert not [p for p in store.runs.iterdir() if p.name.startswith(".")]
    with open_client(n_workers=2) as client:
        reference = run_sweep(spec, out=tmp_path / "reference", client=client, progress=False)
    assert same_data(tree, reference)
    record_figure("Worker death", f"40 runs, {KILLS} worker processes SIGKILLed while computing: 40 stored once, "
                  "0 failed, no partial file, assembled data bit-identical to an undisturbed sweep")


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["ctrl-c", "sigterm", "sigkill"]
)
def test_driver_killed_then_resume(tmp_path, client, signum):
    """Ctrl-C, SIGTERM (a batch job's end) or SIGKILL to the sweep command part-way: the same command
    computes only the missing runs, and the final dataset is bit-identical to that of an
    uninterrupted sweep."""
    spec = long_spec("interrupted")
    path = write_spec(tmp_path / "int.yaml", spec)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "epmsweep.sweep.cli", "run", str(path), "--out", str(out), "--workers", "2",
           "--no-progress"]
    proc = subprocess.Popen(cmd, start_new_session=True, stderr=subprocess.PIPE, text=True)
    store = RunStore(out, "interrupted")
    deadline = time.time() + 120
    while len(store.index()) < 5 and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signum)
    _, err = proc.communicate(timeout=60)
    if signum in (signal.SIGINT, signal.SIGTERM):
        assert proc.returncode == 128 + signum and "resume" in err, err
    else:
        assert proc.returncode == -signal.SIGKILL
    before = {k: store.run_path(k).stat().st_mtime_ns for k in store.indexed_keys(store.stored_keys())}
    assert 5 <= len(before) < 40, "the interruption must land part-way"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    after = {k: store.run_path(k).stat().st_mtime_ns for k in store.stored_keys()}
    assert len(after) == 40 and all(after[k] == t for k, t in before.items())
    assert not [p for p in store.runs.iterdir() if p.name.startswith(".")]
    reference = run_sweep(spec, out=tmp_path / "reference", client=client, progress=False)
    with xr.open_datatree(out / "interrupted.nc", engine="netcdf4") as resumed:
        assert same_data(resumed, reference)
    name = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM", signal.SIGKILL: "SIGKILL"}[signum]
    record_figure(f"Driver interrupted, {name}", f"40 runs, {name} after {len(before)} stored: the rerun computed "
                  f"the {40 - len(before)} missing runs only; dataset bit-identical to an uninterrupted sweep")


def test_failed_runs_are_listed_and_retried_alone(tmp_path, client):
    """Runs whose stresses overflow (an engine-detected blow-up) are recorded with traceback and
    parameters, the others finish, ``epmsweep status`` lists them, ``--retry-failed`` reruns them only."""
    spec = small_spec(name="blowup", imposed_stress={"stress": [0.6, 1.7e308], "t_end": 5.0, "n_records": 10})
    del spec["imposed_rate"]
    path = write_spec(tmp_path / "blowup.yaml", spec)
    out = tmp_path / "out"

    def epmsweep(*args):
        return subprocess.run([sys.executable, "-m", "epmsweep.sweep.cli", *args, "--out", str(out)],
                              capture_output=True, text=True, timeout=600)

    r = epmsweep("run", str(path), "--workers", "2", "--no-progress")
    assert r.returncode == 1 and "4 done, 4 failed, 0 pending" in r.stdout, r.stdout + r.stderr
    store = RunStore(out, "blowup")
    failures = store.failures()
    assert len(failures) == 4
    for rec in failures.values():
        assert rec["kind"] == "NumericalInstabilityError" and "Traceback" in rec["traceback"]
        assert rec["protocol"] == "imposed_stress" and rec["coords"]["stress_imposed"] == 1.7e308
    status = epmsweep("status")
    assert "blowup: 8 planned, 4 done, 0 pending, 4 failed" in status.stdout
    assert sum("NumericalInstabilityError" in line for line in status.stdout.splitlines()) == 4
    stored = {k: store.run_path(k).stat().st_mtime_ns for k in store.stored_keys()}
    recorded = {k: (store.failed / f"{k}.json").stat().st_mtime_ns for k in failures}
    assert epmsweep("run", str(path), "--no-progress").returncode == 1  # failed runs are not retried by default
    assert all((store.failed / f"{k}.json").stat().st_mtime_ns == t for k, t in recorded.items())
    r = epmsweep("run", str(path), "--workers", "2", "--no-progress", "--retry-failed")
    assert "4 done, 4 failed" in r.stdout
    assert {k: store.run_path(k).stat().st_mtime_ns for k in store.stored_keys()} == stored
    assert all((store.failed / f"{k}.json").stat().st_mtime_ns > t for k, t in recorded.items())
    record_figure("Failures", "8 runs, 4 of them overflow (engine-detected NumericalInstabilityError): 4 stored, "
                  "4 recorded with traceback and parameters and listed by `epmsweep status`; a plain rerun computes "
                  "nothing, `--retry-failed` reruns the 4 failed runs only")


def test_outdated_and_truncated_files_are_recomputed(tmp_path, client):
    spec = long_spec("formats", replicas=2)
    run_sweep(spec, out=tmp_path, client=client, progress=False)
    store = RunStore(tmp_path, "formats")
    old, truncated = sorted(store.stored_keys())[:2]
    with netCDF4.Dataset(store.run_path(old), "a") as nc:
        nc.setncattr("result_format", 0)
    data = store.run_path(truncated).read_bytes()
    store.run_path(truncated).write_bytes(data[: len(data) // 2])
    tree = run_sweep(spec, out=tmp_path, client=client, progress=False)
    assert int(tree["imposed_rate"]["completed"].sum()) == 8
    assert store.verify(old) and store.verify(truncated)
    record_figure("Corruption", "8 runs; 1 file of an older result format and 1 truncated file: both detected "
                  "and recomputed, never assembled")


def test_embedded_cluster_listens_on_localhost_only():
    with open_client(n_workers=1) as client:
        info = client.scheduler_info()
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
        assert all(w.startswith("tcp://127.0.0.1:") for w in info["workers"])
        assert client.dashboard_link.startswith("http://127.0.0.1:")
