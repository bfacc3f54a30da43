"""Deployment settings: the defaults of ``jobqueue.yaml``, read through ``dask.config``.

The defaults are registered with ``dask.config.update_defaults`` when this module is imported,
after dask-jobqueue's own, so that they replace dask-jobqueue's defaults but never a value the
user set (``~/.config/dask/*.yaml``, ``/etc/dask``, ``DASK_*`` variables, :func:`use_config_file`).
"""

from __future__ import annotations

import os
import signal
import threading
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import dask.config
import yaml
from dask.utils import parse_timedelta
from epmsweep.engine import ParameterError

if TYPE_CHECKING:
    from distributed.security import Security

CONFIG_FILE = Path(__file__).with_name("jobqueue.yaml")
KINDS = ("slurm", "pbs")


def _register_defaults() -> None:
    in_main_thread = threading.current_thread() is threading.main_thread()
    ctrl_c = signal.getsignal(signal.SIGINT) if in_main_thread else None
    try:
        import dask_jobqueue  # noqa: F401  (registers its defaults; ours must come after them)
    except ImportError:  # only the cluster side needs it; it says so when asked for a cluster
        pass
    if in_main_thread:  # dask-jobqueue 0.9.0 replaces Ctrl-C by a silent sys.exit() when imported
        signal.signal(signal.SIGINT, ctrl_c)
    dask.config.update_defaults(yaml.safe_load(CONFIG_FILE.read_text()))
    # the user's files and DASK_* variables keep precedence, also where they repeat a dask-jobqueue default
    dask.config.update(dask.config.config, dask.config.collect(), priority="new")


_register_defaults()


def use_config_file(path: str | os.PathLike) -> None:
    """Merge a YAML file of Dask configuration (a site's settings) over the current configuration.

    As in Dask's own files, ``$VARIABLES`` are kept as written: in job scripts the job's shell
    expands them on the compute node (``local-directory: $TMPDIR``).
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ParameterError(str(path), f"cannot read the configuration file: {err}") from None
    if not isinstance(data, dict):
        raise ParameterError(str(path), "a configuration file must be a YAML mapping (jobqueue: ..., epmsweep: ...)")
    dask.config.update(dask.config.config, data, priority="new")


def setting(name: str):
    """The value of ``epmsweep.deploy.<name>``."""
    return dask.config.get(f"epmsweep.deploy.{name}")


def jobqueue_setting(kind: str, name: str):
    """The value of ``jobqueue.<kind>.<name>`` (dask-jobqueue's own key)."""
    return dask.config.get(f"jobqueue.{kind}.{name}", None)


def default_out() -> str:
    """The folder of the run store when ``--out`` is not given (``epmsweep.deploy.out``)."""
    return str(setting("out") or "results")


def duration(value, key: str) -> timedelta:
    """A Dask duration ("90 minutes", "1h", 3600) as a timedelta; a ParameterError names ``key``."""
    try:
        seconds = parse_timedelta(value, default="s")
    except (ValueError, KeyError, TypeError):
        seconds = None
    if seconds is None or seconds <= 0:
        raise ParameterError(key, f"must be a positive duration such as '90 minutes' or '1h', got {value!r}")
    return timedelta(seconds=seconds)


def walltime(kind: str) -> timedelta | None:
    """The job walltime of ``jobqueue.<kind>.walltime``, or None when unset.

    Slurm's forms (``sbatch --time``): MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS; PBS's:
    SS, MM:SS, HH:MM:SS. With a day count the clock starts at hours.
    """
    key, value = f"jobqueue.{kind}.walltime", jobqueue_setting(kind, "walltime")
    if value is None:
        return None
    text = str(value).strip()
    days, dash, clock = text.rpartition("-")
    allowed = "MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS" if kind == "slurm" else "SS, MM:SS or HH:MM:SS"
    try:
        parts = [float(p) for p in clock.split(":")]
        days_n = float(days) if dash else 0.0
    except ValueError:
        parts = []
    if not 1 <= len(parts) <= 3 or (dash and kind != "slurm") or any(p < 0 for p in parts) or days_n < 0:
        raise ParameterError(key, f"must be {allowed}, got {value!r}")
    if dash:  # D-HH[:MM[:SS]]
        parts += [0.0] * (3 - len(parts))
    elif len(parts) == 1 and kind == "slurm":  # a bare number is minutes
        parts = [parts[0], 0.0]
    seconds = sum(p * 60**i for i, p in enumerate(reversed(parts))) + days_n * 86400
    if seconds <= 0:
        raise ParameterError(key, f"must be positive, got {value!r}")
    return timedelta(seconds=seconds)


def worker_lifetime(kind: str) -> tuple[timedelta, timedelta] | None:
    """(lifetime, stagger) of the workers of ``kind``, checked to end before the walltime.

    With ``epmsweep.deploy.lifetime`` null the lifetime is the walltime minus twice the stagger;
    with neither a lifetime nor a walltime, workers have no lifetime (None).
    """
    stagger_value = setting("lifetime-stagger")
    stagger = duration(stagger_value, "epmsweep.deploy.lifetime-stagger") if stagger_value else timedelta(0)
    wall = walltime(kind)
    if setting("lifetime") is None:
        if wall is None:
            return None
        lifetime = wall - 2 * stagger
        if lifetime <= timedelta(0):
            raise ParameterError(
                "epmsweep.deploy.lifetime-stagger",
                f"twice the stagger ({stagger}) must be shorter than jobqueue.{kind}.walltime ({wall})",
            )
        return lifetime, stagger
    lifetime = duration(setting("lifetime"), "epmsweep.deploy.lifetime")
    if wall is not None and lifetime + stagger >= wall:
        raise ParameterError(
            "epmsweep.deploy.lifetime",
            f"lifetime + stagger ({lifetime + stagger}) must be shorter than jobqueue.{kind}.walltime ({wall}), "
            "so that workers retire before the batch system ends their job",
        )
    return lifetime, stagger


def tls_security() -> Security | None:
    """``distributed.Security`` from ``distributed.comm.tls.*`` when ``epmsweep.deploy.tls`` is true, else None.

    Every certificate and key file named in the configuration is checked to exist before anything starts.
    """
    if not setting("tls"):
        return None
    from distributed.security import Security

    for role in ("scheduler", "worker", "client"):
        for item in ("cert", "key"):  # a key may also sit inside its certificate file
            key = f"distributed.comm.tls.{role}.{item}"
            path = dask.config.get(key, None)
            if not path and item == "cert":
                raise ParameterError(key, "must name a certificate file when epmsweep.deploy.tls is true")
            if path and not Path(path).is_file():
                raise ParameterError(key, f"file does not exist: {path}")
    ca = dask.config.get("distributed.comm.tls.ca-file", None)
    if not ca or not Path(ca).is_file():
        raise ParameterError("distributed.comm.tls.ca-file", f"must name the CA certificate file, got {ca!r}")
    return Security(require_encryption=True)
