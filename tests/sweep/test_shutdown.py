"""A normal run ends without Dask shutdown warnings: the embedded cluster's worker processes are
given the time they need to exit (``open_client``, ``stop_workers``), on a real LocalCluster."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

EPMSWEEP = str(Path(sys.executable).with_name("epmsweep"))
TINY = {
    "name": "tiny",
    "seed": 1,
    "replicas": 1,
    "model": {"L": 16},
    "initial_states": {"rejuvenated": {"kind": "rejuvenated", "shear_modulus": 15.0}},
    "imposed_rate": {"shear_rate": [0.01, 0.02], "strain_end": 0.2},
}
# A worker preload that makes each worker process take 5 s to exit after the worker has closed,
# as a process holding Numba, xarray and SciPy does on a loaded machine, and records whether it
# got to the end of its exit or was killed on the way.
SLOW_EXIT = """
import atexit, os, time

def slow_exit():
    marks = os.environ["SLOW_EXIT_MARKS"]
    with open(os.path.join(marks, f"{os.getpid()}.start"), "w"):
        pass
    time.sleep(5.0)
    with open(os.path.join(marks, f"{os.getpid()}.end"), "w"):
        pass

atexit.register(slow_exit)
"""


def run_tiny_sweep(tmp_path: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    cmd = [EPMSWEEP, "run", "tiny.yaml", "--out", "results", "--workers", "2", "--no-progress"]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)


def warnings_in(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "WARNING" in line or "still alive" in line or "ERROR" in line]


def test_a_normal_run_ends_without_shutdown_warnings(tmp_path):
    out = run_tiny_sweep(tmp_path)
    assert out.returncode == 0, out.stderr
    assert "tiny: 2 done, 0 failed" in out.stdout
    assert (tmp_path / "results" / "tiny.nc").is_file()
    assert warnings_in(out.stderr) == [], out.stderr


def test_workers_slow_to_exit_are_waited_for_not_killed(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    (tmp_path / "slow_exit.py").write_text(SLOW_EXIT)
    env = {
        **os.environ,
        "SLOW_EXIT_MARKS": str(marks),
        "DASK_DISTRIBUTED__WORKER__PRELOAD": json.dumps([str(tmp_path / "slow_exit.py")]),
    }
    out = run_tiny_sweep(tmp_path, env)
    assert out.returncode == 0, out.stderr
    assert "tiny: 2 done, 0 failed" in out.stdout
    started = sorted(p.stem for p in marks.glob("*.start"))
    assert len(started) == 2, started  # both worker processes ran the preload and began their slow exit
    assert sorted(p.stem for p in marks.glob("*.end")) == started  # and finished it: none was killed
    assert warnings_in(out.stderr) == [], out.stderr


def _records_one_line() -> bool:
    """In a worker: a record with an exception, as the heartbeat logs one, is formatted on one line."""
    import logging

    handlers = logging.getLogger("distributed").handlers
    try:
        raise ConnectionError("scheduler closed")
    except ConnectionError:
        record = logging.getLogger("distributed.worker").makeRecord(
            "distributed.worker", logging.ERROR, __file__, 0, "heartbeat failed", (), sys.exc_info())
    for handler in handlers:
        handler.filter(record)
    return bool(handlers) and "\n" not in handlers[0].format(record) and "scheduler closed" in record.getMessage()


def test_the_commands_workers_log_without_tracebacks():
    """The clients of the commands (``client_from_args``) make every worker log Dask's records with
    an exception on one line: a heartbeat that meets a closing scheduler prints no traceback."""
    import argparse

    from epmsweep.sweep.client import client_from_args

    args = argparse.Namespace(workers=2, scheduler=None, scheduler_file=None, cluster=None, jobs=None, max_jobs=None)
    with client_from_args(args) as client:
        assert list(client.run(_records_one_line).values()) == [True, True]
