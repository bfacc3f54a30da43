"""The sweep under a real mpirun (Debian's Open MPI) with dask-mpi, and the PBS batch script.

Rank 0 is the scheduler, rank 1 the sweep, rank 2 a worker; the result must equal the test suite's
LocalCluster result bit for bit. Debian's ``/usr/bin/mpirun`` is called explicitly: the environment
may also hold another MPI's launcher (an MPICH wheel installs one), which must not start these ranks.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import write_spec
from deploy_helpers import (
    EPMSWEEP,
    REPO,
    TINY,
    assert_same_results,
    epmsweep,
    numba_cache_files,
    open_result,
    reference,
    run_attributes,
)

MPIRUN = "/usr/bin/mpirun"
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def mpirun(n: int) -> list[str]:
    """mpirun for n ranks on this 2-core machine (oversubscribed; as root it must be allowed)."""
    return [MPIRUN, *(["--allow-run-as-root"] if os.geteuid() == 0 else []), "--oversubscribe", "-np", str(n)]


@pytest.fixture(scope="module")
def numba_cache(tmp_path_factory):
    """One Numba cache for every worker of this module, as on a shared filesystem."""
    return tmp_path_factory.mktemp("numba-cache")


def mpi_settings(numba_cache) -> dict:
    return {"epmsweep": {"deploy": {
        "numba-cache-dir": str(numba_cache),
        "mpi": {"interface": "lo", "dashboard-address": "127.0.0.1:0"},
    }}}


def test_mpi4py_and_mpirun_are_the_same_open_mpi():
    probe = "from mpi4py import MPI; print(MPI.Get_library_version())"  # in a child: MPI_Init here would
    library = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout  # taint mpirun
    assert "Open MPI" in library
    assert "Open MPI" in subprocess.run([MPIRUN, "--version"], capture_output=True, text=True).stdout
    proc = epmsweep("doctor", "--cluster", "mpi", env={**os.environ, "PATH": SYSTEM_PATH})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok   mpirun: /usr/bin/mpirun: mpirun (Open MPI)" in proc.stdout


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_sweep_under_mpirun_equals_local_cluster(tmp_path, client, numba_cache, tls):
    spec = write_spec(tmp_path / "tiny.yaml", TINY)
    configs = ["--config", str(write_spec(tmp_path / "mpi.yaml", mpi_settings(numba_cache)))]
    if tls:
        made = subprocess.run([str(REPO / "deploy" / "make-certificates.sh"), str(tmp_path / "certs"), "1"],
                              capture_output=True, text=True, check=True)
        configs += ["--config", made.stdout.strip()]
    proc = subprocess.run(
        [*mpirun(3), EPMSWEEP, "run", str(spec), "--cluster", "mpi", *configs, "--out", str(tmp_path / "out"),
         "--no-progress"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    scheme = "tls://" if tls else "tcp://"
    assert f"Scheduler at:     {scheme}127.0.0.1:" in proc.stderr and f"Start worker at:      {scheme}" in proc.stderr
    assert proc.stdout.count("tiny: 16 done, 0 failed, 0 pending") == 1  # printed by the sweep rank only
    attrs = run_attributes(tmp_path / "out", "tiny")
    assert len(attrs) == 16 and {a["batch_job_id"] for a in attrs} == {""}  # no batch system here
    assert numba_cache_files(numba_cache), "the workers did not use the configured Numba cache"
    assert_same_results(open_result(tmp_path / "out", "tiny"), reference(TINY, client, tmp_path / "local"))


def test_too_few_ranks_is_a_clear_error(tmp_path):
    spec = write_spec(tmp_path / "tiny.yaml", TINY)
    proc = subprocess.run([*mpirun(2), EPMSWEEP, "run", str(spec), "--cluster", "mpi", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120, cwd=REPO)
    assert proc.returncode != 0
    assert "needs at least 3 MPI ranks (scheduler, sweep, a worker), got 2" in proc.stderr
    assert not (tmp_path / "out").exists()  # stopped before any cluster or store


def test_an_error_on_the_sweep_rank_ends_the_whole_launch(tmp_path, numba_cache):
    """The sweep rank fails once the cluster is up (its store folder cannot be made): the launch must
    end with an error at once, not leave workers waiting for a scheduler that has gone."""
    spec = write_spec(tmp_path / "tiny.yaml", TINY)
    config = write_spec(tmp_path / "mpi.yaml", mpi_settings(numba_cache))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "tiny").write_text("a file where the sweep's folder should be")
    proc = subprocess.run(
        [*mpirun(3), EPMSWEEP, "run", str(spec), "--cluster", "mpi", "--config", str(config),
         "--out", str(tmp_path / "out"), "--no-progress"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode != 0  # within the timeout: without the abort, the workers wait until killed
    assert "is a file where the sweep's folder belongs" in proc.stderr, proc.stderr[-3000:]  # printed before the abort


def test_pbs_batch_script_in_a_pbs_like_environment(tmp_path, client, numba_cache):
    """deploy/pbs/sweep.pbs run as PBS would run it (PBS_NODEFILE with 3 slots, PBS_JOBID, PBS_O_WORKDIR).

    There is no PBS server here: the script, mpirun, dask-mpi and the sweep are real, the batch
    system's environment is written by the test.
    """
    write_spec(tmp_path / "tiny.yaml", TINY)  # SPEC is relative to PBS_O_WORKDIR, as with qsub -v
    config = write_spec(tmp_path / "mpi.yaml", mpi_settings(numba_cache))
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("localhost\n" * 3)
    env = {
        **os.environ, "PBS_NODEFILE": str(nodefile), "PBS_JOBID": "4242.pbs-server", "PBS_O_WORKDIR": str(tmp_path),
        "SPEC": "tiny.yaml", "OUT": "out", "EPMSWEEP": EPMSWEEP, "EPMSWEEP_CONFIG": str(config),
        "MPI_LAUNCH": " ".join(mpirun(3)[:-2]),
    }
    proc = subprocess.run(["bash", str(REPO / "deploy" / "pbs" / "sweep.pbs")], env=env, capture_output=True,
                          text=True, timeout=300, cwd="/", stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {a["batch_job_id"] for a in run_attributes(tmp_path / "out", "tiny")} == {"4242.pbs-server"}
    assert_same_results(open_result(tmp_path / "out", "tiny"), reference(TINY, client, tmp_path / "local"))
