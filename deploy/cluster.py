"""Worker jobs on a batch system with dask-jobqueue: one mechanism, thin Slurm and PBS variants.

Everything a job needs comes from the Dask configuration (``jobqueue.<kind>.*``, defaults in
``deploy/jobqueue.yaml``); this module only adds what the sweep service requires of its workers:
one thread each, a lifetime shorter than the walltime (so that adaptive scaling replaces them before
the batch system kills them), the shared Numba cache and, when asked, TLS.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator

from epmsweep.engine import ParameterError

from .config import KINDS, jobqueue_setting, setting, tls_security, worker_lifetime

CLUSTER_CLASSES = {"slurm": "SLURMCluster", "pbs": "PBSCluster"}


def _cluster_class(kind: str):
    if kind not in KINDS:
        raise ParameterError("--cluster", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    try:
        import dask_jobqueue
    except ImportError:
        raise ParameterError(
            "--cluster", "needs dask-jobqueue: pip install 'epmsweep[deploy]' (deploy/README.md)"
        ) from None
    return getattr(dask_jobqueue, CLUSTER_CLASSES[kind])


def cluster_options(kind: str) -> dict:
    """Keyword arguments of the jobqueue cluster of ``kind`` beyond what it reads from ``jobqueue.<kind>.*``.

    Raises ParameterError, naming the configuration key, for settings the sweep service cannot use.
    """
    cores = jobqueue_setting(kind, "cores")
    processes = jobqueue_setting(kind, "processes") or cores
    if not isinstance(cores, int) or cores < 1:
        raise ParameterError(f"jobqueue.{kind}.cores", f"must be a whole number >= 1, got {cores!r}")
    if processes != cores:
        raise ParameterError(
            f"jobqueue.{kind}.processes",
            f"must equal jobqueue.{kind}.cores ({cores}) or be null: workers run one thread each, got {processes!r}",
        )
    worker_args = list(jobqueue_setting(kind, "worker-extra-args") or [])
    lifetime = worker_lifetime(kind)
    if lifetime is not None:
        life, stagger = (f"{int(t.total_seconds())}s" for t in lifetime)
        worker_args += ["--lifetime", life, "--lifetime-stagger", stagger]
    prologue = list(jobqueue_setting(kind, "job-script-prologue") or [])
    if setting("numba-cache-dir"):
        prologue.append(f"export NUMBA_CACHE_DIR={shlex.quote(str(setting('numba-cache-dir')))}")
    options = {"processes": processes, "worker_extra_args": worker_args, "job_script_prologue": prologue}
    security = tls_security()
    if security is not None:
        options.update(security=security, protocol="tls://")
    return options


def make_cluster(kind: str):
    """A dask-jobqueue cluster of ``kind`` ("slurm" or "pbs") from the Dask configuration, with no job yet.

    Its scheduler runs in this process; ``cluster.job_script()`` shows the script each job runs.
    """
    cls = _cluster_class(kind)
    return cls(**cluster_options(kind))


@contextlib.contextmanager
def job_cluster(kind: str, jobs: int = 1, max_jobs: int | None = None) -> Iterator:
    """A running jobqueue cluster of ``jobs`` to ``max_jobs`` worker jobs, shut down on exit.

    Scaling is adaptive between the bounds (with ``max_jobs`` None: exactly ``jobs``), so a job that
    ends (worker lifetime, walltime, node failure) is replaced by a new one. On exit, normal or by
    an exception such as KeyboardInterrupt, every job is cancelled and the scheduler closed.
    """
    max_jobs = jobs if max_jobs is None else max_jobs
    if not isinstance(jobs, int) or jobs < 1:
        raise ParameterError("--jobs", f"must be a whole number >= 1, got {jobs!r}")
    if not isinstance(max_jobs, int) or max_jobs < jobs:
        raise ParameterError("--max-jobs", f"must be a whole number >= --jobs ({jobs}), got {max_jobs!r}")
    cluster = make_cluster(kind)
    try:
        cluster.adapt(minimum_jobs=jobs, maximum_jobs=max_jobs)
        yield cluster
    finally:
        cluster.close()
