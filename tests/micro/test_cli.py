"""The ``epmsweep micro`` commands, run as a user would (console script, real LAMMPS, real cluster)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import xarray as xr
from epmsweep.engine import InitialState

EPMSWEEP = str(Path(sys.executable).with_name("epmsweep"))


def run(*args, cwd):
    return subprocess.run([EPMSWEEP, "micro", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_prepare_measure_and_shear_from_the_command_line(tmp_path, client):
    out = run("prepare", "glass.nc", "--n", "256", "--t-melt", "5", "--seed", "2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "E/N = -2." in out.stdout
    out = run("measure", "glass.nc", "state.nc", "--grid", "2", "--strain-step", "5e-4",
              "--scheduler", client.scheduler.address, cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    state = InitialState.load(tmp_path / "state.nc")
    assert state.L == 2 and state.shear_modulus > 0 and np.all(state.threshold > state.stress)
    assert len(list((tmp_path / "state_thresholds" / "runs").glob("*.nc"))) == 4  # the probe store, resumable
    out = run("shear", "glass.nc", "flow.nc", "--rate", "0.01", "--strain-end", "0.1", "--n-records", "5", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    flow = xr.load_dataset(tmp_path / "flow.nc")
    assert flow.sizes["strain"] == 6 and float(flow.strain[-1]) == 0.1


def test_bad_input_exits_2_with_the_field_named(tmp_path):
    out = run("shear", "missing.nc", "flow.nc", "--rate", "0.01", cwd=tmp_path)
    assert out.returncode == 2 and "missing.nc" in out.stderr and "does not exist" in out.stderr
    out = run("prepare", "g.nc", "--rate", "-1", cwd=tmp_path)
    assert out.returncode == 2 and "protocol.rate" in out.stderr
    for command in ("measure", "ingest"):  # the sweep command's cluster options, checked the same way
        out = run(command, "missing.nc", "state.nc", "--jobs", "2", cwd=tmp_path)
        assert out.returncode == 2 and "--jobs" in out.stderr and "--cluster slurm or pbs" in out.stderr
        out = run(command, "missing.nc", "state.nc", "--cluster", "mpi", cwd=tmp_path)  # LAMMPS needs MPICH
        assert out.returncode == 2 and "invalid choice: 'mpi'" in out.stderr
    assert "Traceback" not in out.stderr
