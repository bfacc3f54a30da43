"""Shared pieces of the deployment tests: tiny sweep files, the reference result, Dask settings files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import xarray as xr
from conftest import small_spec
from epmsweep.sweep import RunStore, run_sweep

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
EPMSWEEP = str(VENV_BIN / "epmsweep")

# 16 runs of both protocols on an 8 x 8 lattice: a few seconds of compute in all
TINY = small_spec(name="tiny", seed=11)
# 30 creep runs of about a second each: long enough for workers to retire, or for an interruption, mid-sweep
LONG = {
    "name": "long",
    "seed": 5,
    "replicas": 15,
    "model": {"L": 8},
    "initial_states": {"rejuvenated": {"kind": "rejuvenated"}},
    "imposed_stress": {"stress": [0.7, 0.8], "t_end": 20000.0, "n_records": 10},
}


def loaded(tree: xr.DataTree) -> xr.DataTree:
    """The tree in memory with its file closed now, not by the garbage collector in whatever thread
    it runs (HDF5 must not be entered from two threads: such a close crashed a netCDF read here)."""
    tree.load()
    tree.close()
    return tree


def reference(spec: dict, client, out: Path) -> xr.DataTree:
    """The sweep computed on the test suite's LocalCluster."""
    return loaded(run_sweep(spec, out=out, client=client, progress=False))


def open_result(out: Path, name: str) -> xr.DataTree:
    return loaded(xr.open_datatree(out / f"{name}.nc", engine="netcdf4"))


def assert_same_results(tree: xr.DataTree, expected: xr.DataTree) -> None:
    """Every data variable and coordinate of every protocol group identical, bit for bit (NaN == NaN).

    Attributes may differ (creation time); the values, dtypes, dimensions and coordinates may not.
    """
    assert set(tree.children) == set(expected.children)
    for group in expected.children:
        got, want = tree[group].to_dataset(), expected[group].to_dataset()
        assert set(got.variables) == set(want.variables), group
        for name, var in want.variables.items():
            other = got[name]
            assert other.dims == var.dims and other.dtype == var.dtype, (group, name)
            if var.dtype.kind == "f":
                assert np.array_equal(other.values, var.values, equal_nan=True), (group, name)
            else:
                assert np.array_equal(other.values, var.values), (group, name)
        assert int(got["completed"].sum()) == got["completed"].size, f"{group}: runs missing"


def run_attributes(out: Path, name: str) -> list[dict]:
    """The attributes of every stored run of sweep ``name`` as its file holds them, and its key."""
    store = RunStore(out, name)
    return [{**store.read_run(k).attrs, "run_key": k} for k in sorted(store.stored_keys(), key=store.run_path)]


def numba_cache_files(folder: Path) -> list[Path]:
    """Numba's index files of functions cached under ``folder``."""
    return list(folder.rglob("*.nbi"))


def epmsweep(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """The ``epmsweep`` command of this environment."""
    return subprocess.run([EPMSWEEP, *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO,
                          stdin=subprocess.DEVNULL)
