"""Opening a Dask client: an embedded local cluster by default, an existing scheduler, or a batch-system cluster."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dask.config
from dask.utils import parse_timedelta
from distributed import Client, LocalCluster, WorkerPlugin
from epmsweep.deploy.config import KINDS
from epmsweep.engine import ParameterError

WORKER_EXIT_TIMEOUT = 60.0
"""Seconds the embedded cluster's worker processes get to exit at the end of a command that went
through (the nanny's own default is 5 s, of which it waits 4 for the process: less than a worker
holding Numba, xarray and SciPy takes to exit on a loaded machine)."""


class _WithoutTraceback(logging.Filter):
    """Dask's log records as one line each: when a connection drops, its internals log tracebacks
    that help no user; the command says what happened and what to do."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            record.msg, record.args = f"{record.getMessage()} ({record.exc_info[1]!r})", ()
            record.exc_info = record.exc_text = None
        return True


def log_without_tracebacks() -> None:
    """Log Dask's records in this process as one line each (``_WithoutTraceback``)."""
    for handler in logging.getLogger("distributed").handlers:
        if not any(isinstance(f, _WithoutTraceback) for f in handler.filters):
            handler.addFilter(_WithoutTraceback())


class WorkersLogWithoutTracebacks(WorkerPlugin):
    """``log_without_tracebacks`` in every worker process, those that join later included (a
    worker's heartbeat to a scheduler that is closing logs a traceback otherwise)."""

    def setup(self, worker) -> None:
        log_without_tracebacks()


@contextlib.contextmanager
def _workers_without_tracebacks(clients: contextlib.AbstractContextManager[Client]) -> Iterator[Client]:
    with clients as client:
        client.register_plugin(WorkersLogWithoutTracebacks())
        yield client


@contextlib.contextmanager
def open_client(
    *,
    n_workers: int | None = None,
    scheduler: str | None = None,
    scheduler_file: str | None = None,
    cluster: str | None = None,
    jobs: int | None = None,
    max_jobs: int | None = None,
) -> Iterator[Client]:
    """A connected ``distributed.Client``, closed (with its cluster, if embedded) on exit.

    Parameters
    ----------
    n_workers : int, optional
        Worker processes of the embedded cluster (default: one per core), one thread each: the
        engine is single-threaded compiled code.
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``, ``tls://...``); security settings
        come from Dask's configuration (``distributed.comm.tls.*``).
    scheduler_file : str, optional
        Scheduler file written by ``dask scheduler --scheduler-file`` or dask-mpi.
    cluster : {"slurm", "pbs", "mpi"}, optional
        Start worker jobs on Slurm or PBS with dask-jobqueue (``jobs`` to ``max_jobs`` jobs, shut
        down on exit), or, under ``mpirun``/``srun``, form the cluster from the MPI ranks with
        dask-mpi; settings come from the Dask configuration (``epmsweep.deploy``).
    jobs, max_jobs : int, optional
        Number of worker jobs (default 1), adaptively up to ``max_jobs`` (default: ``jobs``).

    The embedded cluster listens on 127.0.0.1 only and its dashboard on localhost only. At the end
    of a block that went through, its workers are stopped before the cluster (``stop_workers``),
    each given up to ``WORKER_EXIT_TIMEOUT`` seconds to exit; after an exception (Ctrl-C included)
    the cluster closes as usual, and a worker still computing is killed after a few seconds.
    """
    if sum(bool(x) for x in (scheduler, scheduler_file, cluster)) > 1:
        raise ValueError("give at most one of scheduler, scheduler_file and cluster")
    if cluster == "mpi":
        from epmsweep.deploy import mpi_client

        if jobs is not None or max_jobs is not None:
            raise ValueError("jobs and max_jobs apply to batch-system clusters; under MPI the ranks are the workers")
        with mpi_client() as client:
            yield client
        return
    if cluster:
        from epmsweep.deploy import job_cluster

        with job_cluster(cluster, jobs or 1, max_jobs) as batch_cluster, Client(batch_cluster) as client:
            yield client
        return
    if scheduler or scheduler_file:
        with connect(scheduler, scheduler_file) as client:
            yield client
        return
    if n_workers is not None and (isinstance(n_workers, bool) or n_workers < 1):
        raise ParameterError("--workers", f"must be a number of worker processes >= 1, got {n_workers!r}")
    n = n_workers or os.cpu_count() or 1
    with LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as cluster:
        with Client(cluster) as client:
            yield client
        stop_workers(cluster)  # reached only when the block went through


def connect(scheduler: str | None, scheduler_file: str | None) -> Client:
    """A Client of a running scheduler, given by address or scheduler file, within Dask's connect
    timeout (``distributed.comm.timeouts.connect``); a scheduler file that does not appear within
    it, an unreachable or malformed address is a ParameterError saying which and why."""
    timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), "s")
    if scheduler_file:
        path = Path(scheduler_file)
        if not path.exists():
            print(f"epmsweep: waiting up to {timeout:g} s for the scheduler file {path}", file=sys.stderr)
        deadline = time.monotonic() + timeout
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not path.is_file():
            raise ParameterError(
                "--scheduler-file",
                f"{path} does not exist (waited {timeout:g} s): give the file a running `dask scheduler "
                "--scheduler-file` or dask-mpi writes",
            )
    what = ("--scheduler-file", str(scheduler_file)) if scheduler_file else ("--scheduler", str(scheduler))
    try:
        return Client(scheduler, scheduler_file=scheduler_file, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ParameterError(what[0], f"no scheduler reachable at {what[1]} within {timeout:g} s ({exc})") from None
    except (ValueError, TypeError) as exc:
        raise ParameterError(what[0], f"not a scheduler address or file: {what[1]!r} ({exc})") from None


def stop_workers(cluster: LocalCluster, timeout: float = WORKER_EXIT_TIMEOUT) -> None:
    """Stop every worker of a local cluster, waiting up to ``timeout`` seconds for each process to exit.

    ``LocalCluster.close`` closes its nannies with their default timeout of 5 s: a worker process
    that has not exited 4 s after being told to stop is killed, with the warning "Worker process
    still alive after 4.0 seconds, killing". A worker holding the engine (Numba, LLVM), xarray and
    SciPy needs about a second of CPU to exit, which on a loaded machine (two cores, other jobs)
    takes more than 4 s, while it has nothing left to do. Closed here first with a longer timeout,
    the nannies are already closed when the cluster closes. Run it only when no task is running:
    a task still computing would be waited for up to ``timeout``.
    """

    async def close_all() -> None:
        nannies = list(cluster.workers.values())
        await asyncio.gather(*(w.close(timeout=timeout, reason="epmsweep-done") for w in nannies))

    cluster.sync(close_all, callback_timeout=2 * timeout)


def add_config_option(p: argparse.ArgumentParser) -> None:
    """``--config``: Dask configuration files merged over the current one (applied by the command)."""
    p.add_argument(
        "--config", action="append", default=[],
        help="YAML file of Dask configuration merged over the current one (site settings, TLS); repeatable",
    )  # fmt: skip


def add_client_options(p: argparse.ArgumentParser, *, mpi: bool = True) -> None:
    """The command-line options of ``open_client``: where a command's Dask work runs.

    ``mpi=False`` leaves out ``--cluster mpi`` (for work that cannot run in MPI-launched processes).
    """
    p.add_argument("--workers", type=int, default=None, help="worker processes of the local cluster (default: cores)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:port, tls://...)")
    where.add_argument("--scheduler-file", help="scheduler file of a running Dask cluster (dask-mpi, dask scheduler)")
    how = "start worker jobs on Slurm or PBS (dask-jobqueue)"
    if mpi:
        how += ", or form the cluster from the MPI ranks of an mpirun/srun launch (dask-mpi)"
    where.add_argument(
        "--cluster", choices=[*KINDS, "mpi"] if mpi else list(KINDS),
        help=f"{how}; settings from the Dask config (deploy/README.md)",
    )  # fmt: skip
    p.add_argument("--jobs", type=int, default=None, help="worker jobs of --cluster slurm|pbs (default: 1)")
    p.add_argument("--max-jobs", type=int, default=None, help="scale adaptively from --jobs up to this many jobs")


def client_from_args(args: argparse.Namespace) -> contextlib.AbstractContextManager[Client]:
    """``open_client`` with the options of ``add_client_options`` (checked before anything starts), its
    workers logging without tracebacks as the command does."""
    if (args.jobs is not None or args.max_jobs is not None) and args.cluster not in KINDS:
        raise ParameterError("--jobs", f"applies to --cluster {' or '.join(KINDS)} only")
    if args.cluster in KINDS:
        from epmsweep.deploy.cluster import cluster_options

        cluster_options(args.cluster)  # every batch-system setting, before the store or a job is touched
    return _workers_without_tracebacks(open_client(
        n_workers=args.workers, scheduler=args.scheduler, scheduler_file=args.scheduler_file,
        cluster=args.cluster, jobs=args.jobs, max_jobs=args.max_jobs,
    ))  # fmt: skip
