"""The same sweep on a batch system: Slurm and PBS worker jobs (dask-jobqueue), or one MPI launch (dask-mpi).

Settings are read through ``dask.config`` with defaults in ``deploy/jobqueue.yaml``; the batch
scripts are in ``deploy/slurm`` and ``deploy/pbs``; ``deploy/README.md`` is the step-by-step guide.

From Python::

    from epmsweep.sweep import open_client, run_sweep
    with open_client(cluster="slurm", jobs=4) as client:
        tree = run_sweep("sweep.yaml", out="results", client=client)
"""

from .cluster import job_cluster, make_cluster
from .config import KINDS, default_out, setting, use_config_file
from .mpi import mpi_client

__all__ = ["KINDS", "default_out", "job_cluster", "make_cluster", "mpi_client", "setting", "use_config_file"]
