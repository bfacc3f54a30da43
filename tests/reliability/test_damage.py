"""Damaged files are detected before the HDF5 library reads them, and no damaged file hangs a command."""

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from conftest import record_figure, small_spec, write_spec
from epmsweep.engine import InitialState, ParameterError
from epmsweep.sweep import RunStore, open_results, parse_spec, run_sweep
from epmsweep.sweep.spec import SpecError

BIT_FLIPS = 64
BLOCK = 256
HANGING_BLOCK = 3072  # zeroing bytes 3072-3327 of a run file makes netCDF/HDF5 spin forever in its open


def rate_spec(name: str) -> dict:
    spec = small_spec(name=name)
    del spec["imposed_stress"]
    return spec


def zeroed(data: bytes, start: int) -> bytes:
    out = bytearray(data)
    out[start : start + BLOCK] = bytes(len(out[start : start + BLOCK]))
    return bytes(out)


def test_bit_flips_and_zeroed_blocks_are_detected_and_recomputed(tmp_path, client):
    """Every single-bit flip (64 at random places) and every zeroed 256-byte block of a run file is
    detected by the index's checksum, the file removed, and the rerun recomputes it bit for bit."""
    clean = run_sweep(rate_spec("damage"), out=tmp_path / "clean", client=client, progress=False)
    run_sweep(rate_spec("damage"), out=tmp_path, client=client, progress=False).close()
    store = RunStore(tmp_path, "damage")
    keys = sorted(store.stored_keys())
    originals = {k: store.run_path(k).read_bytes() for k in keys}
    rng = np.random.default_rng(0)
    trials = [("flip", k, int(rng.integers(len(originals[k]) * 8))) for k in rng.choice(keys, BIT_FLIPS)]
    victim = keys[0]
    trials += [  # the blocks that hold something (zeroing a block of zeros changes nothing)
        ("zero", victim, start) for start in range(0, len(originals[victim]), BLOCK)
        if zeroed(originals[victim], start) != originals[victim]
    ]
    missed = []
    for how, key, where in trials:
        data = bytearray(originals[key])
        if how == "flip":
            data[where // 8] ^= 1 << (where % 8)
        else:
            data = zeroed(bytes(data), where)
        store.run_path(key).write_bytes(bytes(data))
        if key in RunStore(tmp_path, "damage").done_keys(keys) or store.run_path(key).exists():
            missed.append((how, key, where))
        store.run_path(key).write_bytes(originals[key])
    assert not missed, f"damage assembled as valid data: {missed[:5]}"
    blocks = len(trials) - BIT_FLIPS
    assert ("zero", victim, HANGING_BLOCK) in trials
    # damaged files left in place, including the block that hangs the HDF5 library, are recomputed
    store.run_path(keys[1]).write_bytes(zeroed(originals[keys[1]], HANGING_BLOCK))
    store.run_path(keys[2]).write_bytes(originals[keys[2]][:-1] + bytes([originals[keys[2]][-1] ^ 0x10]))
    tree = run_sweep(rate_spec("damage"), out=tmp_path, client=client, progress=False)
    assert store.verify(keys[1]) and store.verify(keys[2])
    for name in tree["imposed_rate"].to_dataset().data_vars:
        np.testing.assert_array_equal(tree["imposed_rate"][name].values, clean["imposed_rate"][name].values)
    record_figure("Damaged run files", f"{BIT_FLIPS} single-bit flips at random places and all {blocks} "
                  f"{BLOCK}-byte blocks of a run file that hold data, zeroed (bytes "
                  f"{HANGING_BLOCK}-{HANGING_BLOCK + BLOCK - 1} make the HDF5 open spin forever): every one "
                  "detected by the index's SHA-256 before any HDF5 open, "
                  "removed and recomputed; the rerun's dataset bit-identical to an undamaged sweep")


def test_a_file_that_hangs_the_hdf5_library_is_an_error_not_a_hang(tmp_path, client):
    """`epmsweep plot` of such a file and a sweep whose initial state is such a file end with an error
    naming the file, within the open timeout, instead of spinning forever deaf to signals."""
    run_sweep(rate_spec("hang"), out=tmp_path, client=client, progress=False).close()
    store = RunStore(tmp_path, "hang")
    key = sorted(store.stored_keys())[0]
    bad = tmp_path / "bad.nc"
    bad.write_bytes(zeroed(store.run_path(key).read_bytes(), HANGING_BLOCK))
    env_timeout = "DASK_EPMSWEEP__SWEEP__OPEN_TIMEOUT=5s"
    cmd = ["env", env_timeout, sys.executable, "-m", "epmsweep.sweep.cli", "plot", str(bad)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"epmsweep: error: {bad}: assembled sweep file: reading it did not end within 5 s " \
                                  "(a damaged file)"
    # the same file given as an initial state
    spec = write_spec(tmp_path / "s.yaml", small_spec(initial_states={"m": {"path": str(bad)}}))
    cmd = ["env", env_timeout, sys.executable, "-m", "epmsweep.sweep.cli", "run", str(spec), "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "initial_states.m.path" in done.stderr, done.stderr
    assert "initial-state file: reading it did not end within 5 s (a damaged file)" in done.stderr
    assert "Traceback" not in done.stderr
    with pytest.raises(ParameterError, match="assembled sweep file is not a readable netCDF file"):
        open_results(spec)


def test_state_files_with_time_units_or_strings_are_refused(tmp_path):
    """A threshold map with CF time units is not decoded into dates and loaded as stresses; one of
    strings is an error naming file and variable, not a traceback."""
    ok = InitialState.rejuvenated(8, seed=1).to_dataset()
    timed = ok.copy()
    timed["threshold"].attrs["units"] = "days since 2000-01-01"
    timed.to_netcdf(tmp_path / "timed.nc")
    assert xr.open_dataset(tmp_path / "timed.nc").threshold.dtype.kind == "M"  # what CF decoding would give
    strings = ok.copy()
    strings["threshold"] = strings["threshold"].astype(str)
    strings.to_netcdf(tmp_path / "strings.nc")
    spec = small_spec(initial_states={"timed": {"path": str(tmp_path / "timed.nc")},
                                      "strings": {"path": str(tmp_path / "strings.nc")}})
    with pytest.raises(SpecError) as err:
        parse_spec(spec)
    reasons = dict(err.value.errors)
    assert "threshold: units must be 'epsilon_LS / sigma_LS^2', got 'days since 2000-01-01'" in \
        reasons["initial_states.timed.path"]
    assert "threshold: must be numbers, got values of dtype <U" in reasons["initial_states.strings.path"]
