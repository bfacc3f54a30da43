"""A store that cannot be written, a sweep too large, options that cannot work: one clear message each
(exit 2, no traceback), before any compute where it can be known before."""

import os
import re
import subprocess
import sys
from contextlib import contextmanager

import dask.config
import pytest
from conftest import record_figure, small_spec, write_spec
from epmsweep.sweep import RunStore, make_plan, parse_spec
from epmsweep.sweep.spec import SpecError

CLI = [sys.executable, "-m", "epmsweep.sweep.cli"]


def cli(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    done = subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    assert "Traceback" not in done.stderr, done.stderr
    return done


@contextmanager
def mounted(path, options: str):
    """A tmpfs at ``path`` (root and mount(8) needed; the test is skipped without them)."""
    path.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def rate_spec(name: str, **rate) -> dict:
    spec = small_spec(name=name)
    del spec["imposed_stress"]
    spec["imposed_rate"].update(rate)
    return spec


def test_a_full_disk_is_said_and_loses_nothing(tmp_path):
    """A store on a 2 MB filesystem filled by the sweep: 'no space left on the device' naming the file,
    no temporary left, the stored runs valid; with space, the rerun computes only the rest."""
    spec = rate_spec("full", snapshot_strains=[0.05 * i for i in range(1, 7)])
    spec = write_spec(tmp_path / "s.yaml", {**spec, "model": {"L": 64}})  # ~450 kB a run: 4 fit
    with mounted(tmp_path / "disk", "size=2m") as disk:
        done = cli("run", spec, "--out", disk, "--workers", "2", "--no-progress")
        assert done.returncode == 2, done.stderr
        assert "cannot write: no space left on the device" in done.stderr and str(disk) in done.stderr
        store = RunStore(disk, "full")
        assert not [p for p in disk.rglob(".*.tmp*")]
        stored = store.stored_keys()
        assert 0 < len(stored) < 8 and store.done_keys(stored) == stored
        before = {k: store.run_path(k).stat().st_mtime_ns for k in stored}
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        again = cli("run", spec, "--out", disk, "--workers", "2", "--no-progress")
        assert again.returncode == 0, again.stderr
        assert {k: store.run_path(k).stat().st_mtime_ns for k in stored} == before
        assert store.status().done == 8
    record_figure("Disk full", f"a store on a 2 MB tmpfs: the sweep stopped after {len(stored)} of 8 runs with "
                  "'no space left on the device' and the file, no temporary left, stored runs valid; after "
                  "the remount the rerun computed the rest only")


def test_a_read_only_store_and_a_folder_at_a_run_path_stop_before_any_compute(tmp_path):
    spec_path = write_spec(tmp_path / "s.yaml", rate_spec("ro"))
    store = RunStore(tmp_path / "out", "ro")
    store.runs.mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(store.runs), str(store.runs)], check=False, capture_output=True)
    if subprocess.run(["mount", "-o", "remount,ro,bind", str(store.runs)], capture_output=True).returncode:
        pytest.skip("a read-only bind mount needs root")
    try:
        done = cli("run", spec_path, "--out", tmp_path / "out")
    finally:
        subprocess.run(["umount", "-l", str(store.runs)], check=True)
    assert done.returncode == 2 and f"{store.runs}/.writable: cannot write" in done.stderr, done.stderr
    assert "runs to compute" not in done.stdout  # no cluster was started
    key = make_plan(parse_spec(spec_path)).runs[0].key
    store.run_path(key).mkdir()
    done = cli("run", spec_path, "--out", tmp_path / "out")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"epmsweep: error: {store.run_path(key)}: is a folder where a run file belongs: " \
                                  "remove it"


def test_another_sweep_under_the_same_name_is_not_silently_replaced(tmp_path):
    short = {"strain_end": 0.1, "snapshot_strains": []}
    first = write_spec(tmp_path / "a.yaml", rate_spec("same", shear_rate=[0.01, 0.03], **short))
    other = write_spec(tmp_path / "b.yaml", rate_spec("same", shear_rate=[0.05], **short))
    assert cli("run", first, "--out", tmp_path, "--workers", "1", "--no-progress").returncode == 0
    assembled = (tmp_path / "same.nc").read_bytes()
    done = cli("run", other, "--out", tmp_path, "--workers", "1", "--no-progress")
    assert done.returncode == 2
    assert "holds another sweep named 'same' (8 of its planned runs are not in this one" in done.stderr
    assert (tmp_path / "same.nc").read_bytes() == assembled
    assert cli("run", other, "--out", tmp_path, "--workers", "1", "--replace", "--no-progress").returncode == 0


def test_sizes_beyond_the_limits_are_refused_with_how_to_raise_them():
    huge = small_spec(replicas=100_000, imposed_rate={"shear_rate": {"logspace": [-4, -1, 50]},
                                                      "strain_end": 0.3})
    with pytest.raises(SpecError, match=r"expands to 10400000 runs, more than epmsweep.sweep.max-runs = 1000000: "
                                        r"raise epmsweep.sweep.max-runs \(e.g. DASK_EPMSWEEP__SWEEP__MAX_RUNS="):
        parse_spec(huge)
    big = small_spec(model={"L": 4096}, imposed_rate={"shear_rate": [1e-2], "strain_end": 10.0,
                                                      "snapshot_strains": [0.01 * i for i in range(1, 1001)]})
    with pytest.raises(SpecError) as err:
        parse_spec(big)
    reason = dict(err.value.errors)["imposed_rate.shear_rate[0]"]
    assert re.match(r"a run would write 26\d\.\d+ GiB \(L = 4096, dt = [\d.e-]+\), more than "
                    r"epmsweep.sweep.max-run-bytes = 4.00 GiB: fewer records or snapshots, or raise", reason), reason
    with dask.config.set({"epmsweep.sweep.max-run-bytes": "1 TiB"}):
        assert parse_spec(big).model["L"] == 4096


def test_cluster_options_that_cannot_work_are_said_at_once(tmp_path):
    spec = write_spec(tmp_path / "s.yaml", rate_spec("opts"))
    quick = {"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    cases = {
        ("--workers", "-1"): "epmsweep: error: --workers: must be a number of worker processes >= 1, got -1",
        ("--scheduler", "nonsense"): "epmsweep: error: --scheduler: not a scheduler address or file: 'nonsense'",
        ("--scheduler", "tcp://127.0.0.1:9"): "epmsweep: error: --scheduler: no scheduler reachable at "
                                              "tcp://127.0.0.1:9 within 2 s",
        ("--scheduler-file", tmp_path / "none.json"): f"epmsweep: error: --scheduler-file: {tmp_path / 'none.json'} "
                                                      "does not exist (waited 2 s)",
    }
    for option, message in cases.items():
        done = cli("run", spec, "--out", tmp_path, *option, env=quick, timeout=120)
        assert done.returncode == 2 and message in done.stderr, (option, done.stderr)
