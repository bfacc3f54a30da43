"""Scheduler, workers and the sweep in one MPI launch, with dask-mpi.

``mpirun -np N epmsweep run sweep.yaml --cluster mpi`` (or ``srun``) starts the same program on N
ranks: rank 0 becomes the Dask scheduler, ranks 2 to N-1 workers (one thread each, under a nanny),
and rank 1 goes on to run the sweep as the only client. When the sweep ends, rank 1 closes the
scheduler and every rank exits.

``mpirun -np N python -m epmsweep.deploy.mpi --scheduler-file FILE`` starts only the scheduler
(rank 0) and workers (ranks 1 to N-1), which write their address to FILE on a shared filesystem;
``epmsweep run sweep.yaml --scheduler-file FILE`` then drives the sweep from anywhere that sees it.

Used by the batch scripts in ``deploy/slurm`` and ``deploy/pbs``.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import sys
from collections.abc import Iterator

from distributed import Client
from epmsweep.engine import ParameterError

from .config import setting, tls_security, use_config_file


def _dask_mpi():
    try:
        import dask_mpi
        from mpi4py import MPI
    except ImportError as err:
        raise ParameterError(
            "--cluster mpi", f"needs dask-mpi and mpi4py built against your MPI ({err}; deploy/README.md)"
        ) from None
    return dask_mpi, MPI


def _rank_options(min_ranks: int, role: str):
    """dask-mpi, the security and the keyword arguments shared by both modes, from the configuration."""
    dask_mpi, MPI = _dask_mpi()
    size = MPI.COMM_WORLD.Get_size()
    if size < min_ranks:
        raise ParameterError("--cluster mpi", f"needs at least {min_ranks} MPI ranks ({role}), got {size}")
    security = tls_security()
    if setting("numba-cache-dir"):  # inherited by the worker processes that the nannies start
        os.environ["NUMBA_CACHE_DIR"] = str(setting("numba-cache-dir"))
    options = {
        "interface": setting("mpi.interface"),
        "local_directory": setting("mpi.local-directory"),
        "dashboard_address": setting("mpi.dashboard-address"),
        "protocol": "tls" if security is not None else None,
        "nthreads": 1,
        "worker_class": "distributed.Nanny",
    }
    return dask_mpi, security, options


@contextlib.contextmanager
def mpi_client() -> Iterator[Client]:
    """On rank 1, a client of the cluster formed by all ranks; the other ranks serve it and exit.

    Settings: ``epmsweep.deploy.mpi.*`` (interface, local directory, dashboard address),
    ``epmsweep.deploy.numba-cache-dir`` and ``epmsweep.deploy.tls``.

    An error on rank 1 ends the whole launch: after the command has reported it, ``MPI_Abort``
    runs at exit instead of ``MPI_Finalize``, in which this rank would wait for workers that wait
    for the gone scheduler until the job's walltime. Finished runs are already stored; Ctrl-C and
    SIGTERM reach every rank from the launcher and end it as usual.
    """
    dask_mpi, security, options = _rank_options(3, "scheduler, sweep, a worker")
    dask_mpi.initialize(**options)  # ranks other than 1 serve the cluster inside this call and exit at its end
    try:
        with Client(security=security) as client:  # the scheduler address was set in the Dask config
            yield client
    except Exception:
        atexit.register(_abort_launch)  # atexit runs last-registered first: before dask-mpi's own handler
        raise


def _abort_launch() -> None:
    from mpi4py import MPI  # imported by _rank_options already

    sys.stderr.flush()
    MPI.COMM_WORLD.Abort(1)


def serve(scheduler_file: str) -> None:
    """Rank 0: the scheduler, writing ``scheduler_file``; other ranks: workers. Returns when it closes."""
    dask_mpi, _, options = _rank_options(2, "scheduler, a worker")
    dask_mpi.execute(client_function=None, scheduler_file=scheduler_file, **options)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m epmsweep.deploy.mpi",
        description="Under mpirun/srun: a Dask scheduler (rank 0) and workers (other ranks) that write their "
        "address to a scheduler file; drive a sweep with epmsweep run --scheduler-file FILE.",
    )
    parser.add_argument("--scheduler-file", required=True, help="file for the scheduler address (shared filesystem)")
    parser.add_argument("--config", action="append", default=[], help="YAML file of Dask configuration (repeatable)")
    args = parser.parse_args(argv)
    try:
        for path in args.config:
            use_config_file(path)
        serve(args.scheduler_file)
    except ParameterError as err:
        print(f"epmsweep.deploy.mpi: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
