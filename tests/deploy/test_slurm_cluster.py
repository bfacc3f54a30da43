"""The sweep on a real Slurm: worker jobs from dask-jobqueue, worker lifetimes, Ctrl-C, TLS, batch mode.

A single-node Slurm (munged, slurmctld, slurmd from Debian's packages) is started for this module
and stopped at its end. Results are compared bit for bit with the same sweep on the test suite's
LocalCluster; where each run was computed is read from the run files (``batch_job_id``) and checked
against the jobs that Slurm itself reports.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time
from datetime import datetime, timedelta

import numpy as np
import pytest
from conftest import write_spec
from deploy_helpers import (
    EPMSWEEP,
    LONG,
    REPO,
    TINY,
    VENV_BIN,
    assert_same_results,
    epmsweep,
    loaded,
    numba_cache_files,
    open_result,
    reference,
    run_attributes,
)
from epmsweep.engine import InitialState
from epmsweep.sweep import RunStore, run_sweep
from epmsweep.sweep.execute import compute_run
from epmsweep.sweep.plan import make_plan
from epmsweep.sweep.spec import parse_spec
from local_slurm import LocalSlurm


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm")).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def numba_cache(tmp_path_factory):
    """One Numba cache for every worker of this module, as on a shared filesystem."""
    return tmp_path_factory.mktemp("numba-cache")


def settings(tmp_path, numba_cache, job_name: str, **deploy) -> dict:
    """Dask settings for jobs on the test Slurm: 1 core each, loopback only, the project's venv."""
    return {
        "jobqueue": {
            "slurm": {
                "name": job_name,
                "cores": 1,
                "memory": "1GB",
                "walltime": "00:10:00",
                "interface": "lo",
                "log-directory": str(tmp_path / "jobs"),
                "job-script-prologue": [f"source {VENV_BIN / 'activate'}"],
                "scheduler-options": {"dashboard_address": "127.0.0.1:0"},
            }
        },
        "epmsweep": {
            "deploy": {
                "numba-cache-dir": str(numba_cache),
                "lifetime-stagger": "1 minute",
                "mpi": {"interface": "lo", "dashboard-address": "127.0.0.1:0"},
                **deploy,
            }
        },
    }


def jobs_named(slurm: LocalSlurm, name: str) -> dict[str, dict]:
    return {job["JobId"]: job for job in slurm.jobs() if job["JobName"] == name}


def test_sweep_on_slurm_jobs_equals_local_cluster(slurm, numba_cache, tmp_path, client):
    spec = write_spec(tmp_path / "tiny.yaml", TINY)
    config = write_spec(tmp_path / "site.yaml", settings(tmp_path, numba_cache, "epmsweep-jobs2"))
    proc = epmsweep("run", str(spec), "--cluster", "slurm", "--jobs", "2", "--config", str(config),
                    "--out", str(tmp_path / "out"), "--no-progress", env=slurm.env)
    assert proc.returncode == 0, proc.stderr + slurm.logs()
    assert "tiny: 16 done, 0 failed, 0 pending" in proc.stdout

    jobs = jobs_named(slurm, "epmsweep-jobs2")
    assert len(jobs) == 2, jobs  # --jobs 2, and no job had to be replaced
    assert not slurm.active_jobs(), "jobs left running after the sweep"
    assert {job["JobState"] for job in jobs.values()} == {"CANCELLED"}  # shut down by the driver at the end
    computed_in = {attrs["batch_job_id"] for attrs in run_attributes(tmp_path / "out", "tiny")}
    assert computed_in and computed_in <= set(jobs), computed_in  # every run was computed inside those jobs
    assert numba_cache_files(numba_cache), "the workers did not use the configured Numba cache"

    expected = reference(TINY, client, tmp_path / "local")
    assert_same_results(open_result(tmp_path / "out", "tiny"), expected)


def test_particle_thresholds_measured_in_slurm_jobs(slurm, numba_cache, tmp_path, client):
    """``epmsweep micro measure --cluster slurm``: the frozen-matrix probes run inside worker jobs
    and give the same initial state, bit for bit, as on the test suite's LocalCluster."""
    from epmsweep.micro import FrozenMatrixProbe, QuenchProtocol, measure_initial_state, prepare_glass

    glass = prepare_glass(256, QuenchProtocol(t_melt=5.0), seed=2)
    glass.save(tmp_path / "glass.nc")
    config = write_spec(tmp_path / "site.yaml", settings(tmp_path, numba_cache, "epmsweep-micro"))
    proc = epmsweep("micro", "measure", str(tmp_path / "glass.nc"), str(tmp_path / "state.nc"), "--grid", "2",
                    "--strain-step", "5e-4", "--cluster", "slurm", "--jobs", "1", "--config", str(config),
                    env=slurm.env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr + slurm.logs()

    jobs = jobs_named(slurm, "epmsweep-micro")
    assert len(jobs) == 1 and not slurm.active_jobs(), jobs
    probes = run_attributes(tmp_path, "state_thresholds")
    assert len(probes) == 4  # one per cell of the 2 x 2 grid
    for attrs in probes:
        assert attrs["batch_job_id"] in jobs, attrs

    measured = InitialState.load(tmp_path / "state.nc")
    expected = measure_initial_state(
        glass, 2, probe=FrozenMatrixProbe(strain_step=5e-4), client=client, out=tmp_path / "local", name="state"
    )
    np.testing.assert_array_equal(measured.threshold, expected.threshold)
    np.testing.assert_array_equal(measured.stress, expected.stress)
    assert measured.shear_modulus == expected.shear_modulus


def seconds_per_run(spec: dict, n: int = 4) -> float:
    """Mean seconds of the first ``n`` runs of ``spec`` computed in this process (after one to compile)."""
    runs = make_plan(parse_spec(spec)).runs[:n]
    compute_run(runs[0])
    start = time.perf_counter()
    for run in runs:
        compute_run(run)
    return (time.perf_counter() - start) / len(runs)


def test_workers_retiring_by_lifetime_lose_nothing(slurm, numba_cache, tmp_path):
    """Workers live 8 runs' time (at least 10 s, +- 1 s) in a sweep of 4 lifetimes' work: adaptive scaling
    (1 to 2 jobs) replaces them.

    A run's time is measured here first (it varies tenfold with the machine's load), and the
    lifetime and the number of runs follow from it: two jobs at a time compute at most two
    lifetimes before they retire, half of what the sweep needs, so it completes only if retired
    workers are replaced; nothing may be lost or computed twice. The driver replaces an ended job
    after 8 s instead of Dask's 15 s (``distributed.deploy.lost-worker-timeout``), still after the job
    has ended by itself, to keep the test short.
    """
    base = dict(LONG, name="lifetime", imposed_stress={**LONG["imposed_stress"], "t_end": 5000.0})
    per_run = seconds_per_run(base)
    lifetime = max(10.0, 8 * per_run)
    replicas = min(200, math.ceil(4 * lifetime / per_run / len(base["imposed_stress"]["stress"])))
    spec = dict(base, replicas=replicas)
    site = settings(tmp_path, numba_cache, "epmsweep-lifetime",
                    **{"lifetime": f"{lifetime:.0f}s", "lifetime-stagger": "1s"})  # fmt: skip
    site["distributed"] = {"deploy": {"lost-worker-timeout": "8s"}}
    config = write_spec(tmp_path / "site.yaml", site)
    proc = epmsweep("run", str(write_spec(tmp_path / "lifetime.yaml", spec)), "--cluster", "slurm", "--jobs", "1",
                    "--max-jobs", "2", "--config", str(config), "--out", str(tmp_path / "out"), "--no-progress",
                    env=slurm.env, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr + slurm.logs()

    n_runs = spec["replicas"] * len(spec["imposed_stress"]["stress"])
    store = RunStore(tmp_path / "out", "lifetime")
    attrs = run_attributes(tmp_path / "out", "lifetime")
    assert len(attrs) == n_runs and len({a["run_key"] for a in attrs}) == n_runs  # every run stored, once
    assert not store.failures()
    assert int(open_result(tmp_path / "out", "lifetime")["imposed_stress"]["completed"].sum()) == n_runs
    jobs = jobs_named(slurm, "epmsweep-lifetime")
    used = {a["batch_job_id"] for a in attrs}
    assert used <= set(jobs)
    # a job ends COMPLETED only when its worker left by itself (the driver cancels the others at the end)
    retired = [datetime.fromisoformat(job["EndTime"]) for job in jobs.values() if job["JobState"] == "COMPLETED"]
    assert retired, {j: job["JobState"] for j, job in jobs.items()}
    replacements = [j for j in used if datetime.fromisoformat(jobs[j]["StartTime"]) >= min(retired)]
    assert replacements, "no run was computed by a job started after a worker retired"
    last_stored = datetime.fromtimestamp(max(store.run_path(a["run_key"]).stat().st_mtime for a in attrs))
    assert min(retired) + timedelta(seconds=1) < last_stored  # the sweep went on after the first retirement


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_cancels_the_jobs_and_the_sweep_resumes(slurm, numba_cache, tmp_path, client, signum):
    """Ctrl-C, or SIGTERM (the driver's own job or session ending), stops the sweep: the worker jobs
    are cancelled, the finished runs kept and the same sweep resumes."""
    spec = write_spec(tmp_path / "long.yaml", LONG)
    config = write_spec(tmp_path / "site.yaml", settings(tmp_path, numba_cache, "epmsweep-interrupt"))
    out = tmp_path / "out"
    driver = subprocess.Popen(
        [EPMSWEEP, "run", str(spec), "--cluster", "slurm", "--jobs", "2", "--config", str(config),
         "--out", str(out), "--no-progress"],
        env=slurm.env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal, whatever ran the tests
    )
    store = RunStore(out, "long")
    deadline = time.monotonic() + 120
    while not (store.runs.is_dir() and store.index()):  # indexed by the driver
        assert driver.poll() is None and time.monotonic() < deadline, "no run finished: " + slurm.logs()
        time.sleep(0.2)
    driver.send_signal(signum)
    _, stderr = driver.communicate(timeout=60)
    assert driver.returncode == 128 + signum, stderr
    assert "resume" in stderr

    deadline = time.monotonic() + 30
    while slurm.active_jobs() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not slurm.active_jobs(), f"worker jobs still queued or running after {signum!r}"
    n_runs = LONG["replicas"] * len(LONG["imposed_stress"]["stress"])
    before = {k: store.run_path(k).stat().st_mtime_ns for k in store.done_keys(store.read_plan())}
    assert 0 < len(before) < n_runs  # interrupted mid-sweep, finished runs kept

    tree = loaded(run_sweep(LONG, out=out, client=client, progress=False))  # the same sweep resumes elsewhere
    assert int(tree["imposed_stress"]["completed"].sum()) == n_runs
    assert all(store.run_path(k).stat().st_mtime_ns == t for k, t in before.items())  # only the rest computed


def test_sweep_over_tls_on_slurm(slurm, numba_cache, tmp_path):
    made = subprocess.run([str(REPO / "deploy" / "make-certificates.sh"), str(tmp_path / "certs"), "1"],
                          capture_output=True, text=True, check=True)
    tls_config = made.stdout.strip()
    spec = write_spec(tmp_path / "tiny.yaml", TINY)
    config = write_spec(tmp_path / "site.yaml", settings(tmp_path, numba_cache, "epmsweep-tls"))
    proc = epmsweep("run", str(spec), "--cluster", "slurm", "--jobs", "1", "--config", str(config),
                    "--config", tls_config, "--out", str(tmp_path / "out"), "--no-progress", env=slurm.env)
    assert proc.returncode == 0, proc.stderr + slurm.logs()
    assert "tiny: 16 done" in proc.stdout
    worker_logs = "".join(p.read_text() for p in (tmp_path / "jobs").glob("*.err"))
    assert "Start worker at:      tls://" in worker_logs, worker_logs[-2000:]
    assert "tcp://" not in worker_logs  # nothing in clear


def test_doctor_submits_one_worker_job(slurm, numba_cache, tmp_path):
    config = write_spec(tmp_path / "site.yaml", settings(tmp_path, numba_cache, "epmsweep-doctor"))
    proc = epmsweep("doctor", "--cluster", "slurm", "--config", str(config), "--submit", env=slurm.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = dict(line[5:].split(": ", 1) for line in proc.stdout.splitlines())
    assert "scheduler" in lines and "tcp://127.0.0.1:" in lines["scheduler"]
    job_id = next(iter(jobs_named(slurm, "epmsweep-doctor")))
    assert f"(job {job_id})" in lines["worker job"], lines
    print(f"doctor --submit on the test Slurm: {lines['worker job']}")  # the figure in deploy/README.md
    assert not slurm.active_jobs()


def batch_env(slurm: LocalSlurm, config) -> dict:
    return {**slurm.env, "EPMSWEEP": EPMSWEEP, "PYTHON": str(VENV_BIN / "python"), "EPMSWEEP_CONFIG": str(config)}


@pytest.mark.parametrize("script", ["sweep.sbatch", "sweep-scheduler-file.sbatch"])
def test_batch_script_runs_the_sweep_inside_one_allocation(slurm, numba_cache, tmp_path, client, script):
    """sbatch of the batch script with 3 tasks (2 CPUs: overcommitted): scheduler, driver and workers inside."""
    spec = write_spec(tmp_path / "tiny.yaml", TINY)
    config = write_spec(tmp_path / "site.yaml", settings(tmp_path, numba_cache, "unused"))
    env = batch_env(slurm, config)
    env["SCHEDULER_FILE"] = str(tmp_path / "scheduler.json")
    command = ["sbatch", "--parsable", "--ntasks=3", "--overcommit", "--mem-per-cpu=1G",
               f"--output={tmp_path / 'batch.out'}", str(REPO / "deploy" / "slurm" / script), str(spec)]
    proc = subprocess.run(
        [*command, str(tmp_path / "out")], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    job_id = proc.stdout.split(";")[0].strip()
    state = slurm.wait_for_job(job_id, timeout=300)
    log = (tmp_path / "batch.out").read_text() if (tmp_path / "batch.out").exists() else ""
    assert state == "COMPLETED", log + slurm.logs()
    assert "tiny: 16 done, 0 failed, 0 pending" in log
    assert {a["batch_job_id"] for a in run_attributes(tmp_path / "out", "tiny")} == {job_id}
    assert not os.path.exists(env["SCHEDULER_FILE"])  # removed at the end (scheduler-file variant)
    assert_same_results(open_result(tmp_path / "out", "tiny"), reference(TINY, client, tmp_path / "local"))
