"""Opening a Dask client: an embedded local cluster by default, or an existing scheduler."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from distributed import Client, LocalCluster


@contextlib.contextmanager
def open_client(
    *,
    n_workers: int | None = None,
    scheduler: str | None = None,
    scheduler_file: str | None = None,
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

    The embedded cluster listens on 127.0.0.1 only and its dashboard on localhost only.
    """
    if scheduler and scheduler_file:
        raise ValueError("give at most one of scheduler and scheduler_file")
    if scheduler or scheduler_file:
        with Client(scheduler, scheduler_file=scheduler_file) as client:
            yield client
        return
    n = n_workers or os.cpu_count() or 1
    with (
        LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
