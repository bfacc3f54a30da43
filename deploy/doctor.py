"""Preflight checks of ``epmsweep doctor``: settings, scheduler address, worker environment, MPI launcher.

Each check says what it found; the usual failures of a first cluster run (a worker Python that
cannot import the package, a scheduler on an interface the compute nodes cannot reach, an mpirun
of another MPI than the one mpi4py was built with, a lifetime longer than the walltime) are
reported here instead of as a sweep that never starts.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from epmsweep.engine import ParameterError, __version__

from .cluster import cluster_options, make_cluster
from .config import KINDS, jobqueue_setting, setting

SUBMIT_COMMANDS = {"slurm": "sbatch", "pbs": "qsub"}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def run_checks(kind: str | None = None, *, submit: bool = False, timeout: float = 600.0) -> list[Check]:
    """Checks for ``kind`` ("slurm", "pbs", "mpi" or None: the local machine only).

    With ``submit`` (Slurm, PBS), one worker job is started and the time until its worker joins
    is reported (waiting at most ``timeout`` seconds).
    """
    checks = [_versions(), _numba_cache()]
    if kind in KINDS:
        checks += _jobqueue_checks(kind, submit, timeout)
    elif kind == "mpi":
        checks += _mpi_checks()
    return checks


def _versions() -> Check:
    import dask
    import distributed
    import numba

    return Check("versions", True, f"epmsweep {__version__}, dask {dask.__version__}, "
                 f"distributed {distributed.__version__}, numba {numba.__version__}, Python {sys.version.split()[0]}")


def _numba_cache() -> Check:
    folder = setting("numba-cache-dir")
    if not folder:
        return Check("numba cache", True, "epmsweep.deploy.numba-cache-dir not set: workers use Numba's default cache")
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as err:
        return Check("numba cache", False, f"{folder} is not writable: {err}")
    return Check("numba cache", True, f"{folder} (writable; it must be on a filesystem the compute nodes share)")


def _worker_environment(kind: str) -> Check:
    """Run the job script's prologue and the worker Python here, and compare versions with this process."""
    import distributed

    python = jobqueue_setting(kind, "python") or sys.executable
    probe = "import distributed, epmsweep.engine as e; print(e.__version__, distributed.__version__)"
    script = "\n".join([*(jobqueue_setting(kind, "job-script-prologue") or []), f"{python} -c '{probe}'"])
    try:
        proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return Check("worker python", False, f"{python} did not answer within 120 s")
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return Check("worker python", False, f"prologue + {python} failed: {last}")
    versions = proc.stdout.split()
    expected = [__version__, distributed.__version__]
    if versions[-2:] != expected:
        return Check("worker python", False, f"{python}: epmsweep, distributed {versions[-2:]}, "
                     f"this process {expected}: use the same environment on both sides")
    return Check("worker python", True, f"{python} after the prologue imports epmsweep {versions[-2]}, "
                 f"distributed {versions[-1]} (same as here)")


def _jobqueue_checks(kind: str, submit: bool, timeout: float) -> list[Check]:
    checks = []
    try:
        options = cluster_options(kind)
    except ParameterError as err:
        return [Check("settings", False, str(err))]
    args = options["worker_extra_args"]
    lifetime = args[args.index("--lifetime") + 1] if "--lifetime" in args else "none"
    checks.append(Check("settings", True, (
        f"{kind}: {jobqueue_setting(kind, 'cores')} single-threaded workers and {jobqueue_setting(kind, 'memory')} "
        f"per job, walltime {jobqueue_setting(kind, 'walltime')}, worker lifetime {lifetime}, "
        f"queue {jobqueue_setting(kind, 'queue')}, account {jobqueue_setting(kind, 'account')}, "
        f"TLS {'on' if 'security' in options else 'off'}")))
    command = shutil.which(SUBMIT_COMMANDS[kind])
    checks.append(Check("submit command", command is not None,
                        command or f"{SUBMIT_COMMANDS[kind]} not found on PATH: run on a login node of the cluster"))
    checks.append(_worker_environment(kind))
    try:
        cluster = make_cluster(kind)
    except (OSError, ValueError, ParameterError) as err:
        return [*checks, Check("scheduler", False, f"cannot start with jobqueue.{kind}.interface / "
                               f"scheduler-options: {err}")]
    with cluster:
        interface = jobqueue_setting(kind, "interface")
        checks.append(Check("scheduler", True, f"listens on {cluster.scheduler_address} "
                            f"({'interface ' + interface if interface else 'default route'}); "
                            f"compute nodes must reach this address, dashboard {cluster.dashboard_link}"))
        if submit and command is not None:
            checks.append(_submit_one(cluster, timeout))
    return checks


def _submit_one(cluster, timeout: float) -> Check:
    from distributed import Client
    from epmsweep.sweep.execute import computed_where

    def where() -> str:
        w = computed_where()
        return f"{w['worker_host']} (job {w['batch_job_id']})"

    start = time.perf_counter()
    cluster.scale(jobs=1)
    with Client(cluster) as client:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except TimeoutError:
            return Check("worker job", False, f"no worker joined within {timeout:.0f} s: see the job's output "
                         "(jobqueue log-directory) and the scheduler address above")
        elapsed = time.perf_counter() - start
        hosts = sorted(set(client.run(where).values()))
    return Check("worker job", True, f"first worker joined {elapsed:.1f} s after submission, on {', '.join(hosts)}")


def _mpi_family(text: str) -> str:
    return "Open MPI" if "Open MPI" in text else "MPICH" if ("MPICH" in text or "HYDRA" in text) else "unknown"


def _mpi_checks() -> list[Check]:
    try:
        import dask_mpi
        import mpi4py

        mpi4py.rc.initialize = False  # the library version needs no MPI_Init (nor its environment in children)
        from mpi4py import MPI
    except ImportError as err:
        return [Check("mpi4py", False, f"{err}: pip install --no-binary=mpi4py mpi4py with your MPI's mpicc on PATH")]
    library = MPI.Get_library_version().strip().splitlines()[0]
    checks = [Check("mpi4py", True, f"dask-mpi {dask_mpi.__version__}; mpi4py uses {library}")]
    mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
    if mpirun is None:
        return [*checks, Check("mpirun", True, "no mpirun/mpiexec on PATH: launch with srun")]
    proc = subprocess.run([mpirun, "--version"], capture_output=True, text=True)
    launcher = (proc.stdout + proc.stderr).strip()
    same = _mpi_family(launcher) == _mpi_family(library)
    first = launcher.splitlines()[0] if launcher else "no version"
    checks.append(Check("mpirun", same, f"{mpirun}: {first}" + ("" if same else
                        f"; it is not the MPI mpi4py was built with ({_mpi_family(library)}): call that MPI's mpirun")))
    return checks
