"""`epmsweep plan`: runs per protocol and axis, stored runs, and a compute estimate that matches a real
sweep; the command's errors: one line, exit status 2, no traceback."""

import subprocess
import sys
from importlib.resources import files

import pytest
from conftest import small_spec, write_spec
from epmsweep.sweep import RunStore, make_plan, parse_spec, run_sweep
from epmsweep.sweep.estimate import estimate


def epmsweep(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "epmsweep.sweep.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=600, cwd=cwd)


def test_plan_lists_axes_counts_stored_runs_and_estimate(tmp_path, client):
    out = tmp_path / "out"
    run_sweep(small_spec(), out=out, client=client, progress=False)  # 16 runs stored
    grown = small_spec(replicas=3, imposed_rate={"shear_rate": [0.01, 0.03, 0.1], "strain_end": 0.3,
                                                 "n_records": 10, "snapshot_strains": [0.3]})
    path = write_spec(tmp_path / "grown.yaml", grown)  # the 16 stored runs keep their keys
    r = epmsweep("plan", path, "--out", out, "--budget", "0.02", "--workers", "2")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "imposed_rate: 18 runs (8 stored)" in lines and "imposed_stress: 12 runs (8 stored)" in lines
    assert "total: 30 runs, 16 stored, 14 to compute" in lines
    estimate_line = next(line for line in lines if line.startswith("estimated compute:"))
    assert "for the 14 runs to compute" in estimate_line and "on 2 local cores" in estimate_line
    assert "measured on 10 of 10 parameter points" in r.stdout
    # --dry-run prints the same plan, here with a model axis, and computes nothing
    path = write_spec(tmp_path / "axes.yaml", small_spec(axes={"tau_res": [2.0, 2.5, 3.0]}))
    dry = epmsweep("run", path, "--out", tmp_path / "fresh", "--dry-run", "--budget", "0.02")
    assert dry.returncode == 0, dry.stderr
    axes = [line.split() for line in dry.stdout.splitlines() if line.startswith("  ") and not line.startswith("  (")]
    assert axes[:4] == [["initial_state", "2", "rejuvenated..annealed"], ["shear_rate", "2", "0.01..0.03"],
                        ["tau_res", "3", "2.0..3.0"], ["seed", "2", "0..1", "(replicas)"]]
    assert axes[5] == ["stress_imposed", "2", "0.4..0.8"]
    assert "total: 48 runs, 0 stored, 48 to compute" in dry.stdout and not (tmp_path / "fresh").exists()


def test_estimate_is_within_a_factor_two_of_the_demo_sweep(tmp_path, client):
    """The cost model, calibrated on short real prefixes, against the CPU time the demo's 27 runs took."""
    spec = parse_spec(str(files("epmsweep.sweep") / "demo.yaml"))
    est = estimate(make_plan(spec))
    assert est.points == est.calibrated == 9
    run_sweep(spec, out=tmp_path, client=client, progress=False)
    store = RunStore(tmp_path, "demo")
    measured = {}
    for key in store.stored_keys():
        measured[key] = store.read_run(key).attrs["compute_cpu_seconds"]
    assert measured.keys() == est.run_seconds.keys() and len(measured) == 27
    ratio = est.seconds() / sum(measured.values())
    assert 0.5 <= ratio <= 2.0, f"estimated {est.seconds():.1f} s, measured {sum(measured.values()):.1f} s of CPU"
    by_protocol = {}
    for run in make_plan(spec).runs:
        e, m = by_protocol.get(run.protocol, (0.0, 0.0))
        by_protocol[run.protocol] = (e + est.run_seconds[run.key], m + measured[run.key])
    for protocol, (e, m) in by_protocol.items():
        assert 0.5 <= e / m <= 2.0, f"{protocol}: estimated {e:.1f} s, measured {m:.1f} s"


@pytest.mark.parametrize(
    "args",
    [
        ("assemble", "nosuch"),
        ("status", "nosuch"),
        ("plot", "nosuch.nc"),
        ("plot", "nosuch"),
        ("plot", "not-netcdf.nc"),
        ("plan", "nosuch.yaml"),
        ("run", "nosuch.yaml"),
        ("plan", "dup.yaml"),
    ],
)
def test_command_errors_are_one_line_and_exit_2(tmp_path, args):
    (tmp_path / "not-netcdf.nc").write_text("plain text\n")
    (tmp_path / "dup.yaml").write_text("name: a\nname: b\n")
    (tmp_path / "out" / "other").mkdir(parents=True)  # a folder that is not a sweep
    r = epmsweep(*args, "--out", tmp_path / "out", cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("epmsweep: error: ") and args[1] in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not r.stdout


def test_every_problem_of_a_file_is_a_line_of_the_command(tmp_path):
    path = write_spec(tmp_path / "bad.yaml", small_spec(replicas=0, model={"L": 8.5}))
    r = epmsweep("plan", path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.splitlines() == [
        f"epmsweep: error: {path}: replicas: must be an integer in 1..100000, got 0",
        f"epmsweep: error: {path}: model.L: must be an integer >= 2 and <= 4096 (memory), got 8.5",
    ]
