"""Deployment settings: job scripts generated from the Dask configuration, precedence, and bad settings.

There is no PBS server here: the PBS path is checked through the script that dask-jobqueue's own
``PBSCluster.job_script()`` generates from our settings, which is what ``qsub`` would receive.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import dask
import pytest
import yaml
from conftest import write_spec
from deploy_helpers import REPO, TINY, epmsweep
from epmsweep.deploy import make_cluster
from epmsweep.deploy.config import walltime, worker_lifetime
from epmsweep.engine import ParameterError

SITE = {
    "queue": "short",
    "account": "proj42",
    "cores": 4,
    "memory": "8GiB",
    "walltime": "01:00:00",
    "interface": "lo",
    "local-directory": "/scratch/$USER",
    "job-script-prologue": ["module load python/3.11", "source /shared/venv/bin/activate"],
}


def flatten(tree: dict, prefix: str = "") -> dict:
    """Nested settings as dotted keys, for ``dask.config.set`` (which replaces whole subtrees otherwise)."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def job_script(kind: str, **deploy) -> str:
    settings = {f"jobqueue.{kind}.{key}": value for key, value in SITE.items()}
    settings.update({f"epmsweep.deploy.{key}": value for key, value in deploy.items()})
    with dask.config.set(settings), make_cluster(kind) as cluster:
        return cluster.job_script()


def test_pbs_job_script_carries_the_site_settings():
    script = job_script("pbs", **{"numba-cache-dir": "/shared/numba", "lifetime-stagger": "5 minutes"})
    lines = script.splitlines()
    for directive in ("#PBS -N epmsweep-worker", "#PBS -q short", "#PBS -A proj42",
                      "#PBS -l select=1:ncpus=4:mem=", "#PBS -l walltime=01:00:00"):
        assert any(line.startswith(directive) for line in lines), (directive, script)
    prologue = ["module load python/3.11", "source /shared/venv/bin/activate", "export NUMBA_CACHE_DIR=/shared/numba"]
    positions = [lines.index(line) for line in prologue]
    worker = next(i for i, line in enumerate(lines) if "distributed.cli.dask_worker" in line)
    assert positions == sorted(positions) and positions[-1] < worker  # in order, before the worker starts
    command = lines[worker].split()
    # 4 single-threaded workers per job, retiring 50 +- 5 minutes after they start: before the 1 h walltime
    expected = {"--nthreads": "1", "--nworkers": "4", "--lifetime": "3000s", "--lifetime-stagger": "300s",
                "--interface": "lo", "--local-directory": "/scratch/$USER"}
    for option, value in expected.items():
        assert command[command.index(option) + 1] == value, (option, lines[worker])


def test_slurm_job_script_carries_the_site_settings():
    script = job_script("slurm", lifetime="40 minutes", **{"lifetime-stagger": "10 minutes"})
    for directive in ("#SBATCH -J epmsweep-worker", "#SBATCH -p short", "#SBATCH -A proj42", "#SBATCH -n 1",
                      "#SBATCH --cpus-per-task=4", "#SBATCH --mem=8G", "#SBATCH -t 01:00:00"):
        assert directive in script.splitlines(), (directive, script)
    assert "--lifetime 2400s --lifetime-stagger 600s" in script


def test_tls_settings_reach_the_workers(tmp_path):
    made = subprocess.run([str(REPO / "deploy" / "make-certificates.sh"), str(tmp_path / "certs"), "1"],
                          capture_output=True, text=True, check=True)
    tls = yaml.safe_load(Path(made.stdout.strip()).read_text())
    with dask.config.set(flatten(tls)), make_cluster("slurm") as cluster:
        assert cluster.scheduler_address.startswith("tls://")
        script = cluster.job_script()
    for option in ("--protocol tls://", f"--tls-ca-file {tmp_path / 'certs' / 'ca.pem'}",
                   f"--tls-cert {tmp_path / 'certs' / 'node.pem'}", f"--tls-key {tmp_path / 'certs' / 'node.key'}"):
        assert option in script, (option, script)


def test_site_files_and_variables_win_over_the_defaults(tmp_path):
    """Even a site value equal to dask-jobqueue's own default (walltime 00:30:00) is kept."""
    (tmp_path / "site.yaml").write_text("jobqueue:\n  slurm:\n    walltime: '00:30:00'\n    cores: 3\n")
    probe = ("import dask, epmsweep.deploy; print([dask.config.get('jobqueue.slurm.' + k) "
             "for k in ('walltime', 'cores', 'queue', 'memory')])")
    env = {**os.environ, "DASK_CONFIG": str(tmp_path), "DASK_JOBQUEUE__SLURM__QUEUE": "long"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['00:30:00', 3, 'long', '16GB']"  # memory: our default


@pytest.mark.parametrize(("kind", "value", "seconds"), [
    ("slurm", "1-02:00:00", 93600), ("slurm", "90", 5400), ("pbs", "90", 90), ("pbs", "02:30:00", 9000),
    ("slurm", "45:30", 2730),
    # Slurm's day forms: D-HH, D-HH:MM, D-HH:MM:SS (1-12:00 is 36 h, not 24 h 12 min)
    ("slurm", "1-12", 129600), ("slurm", "1-12:00", 129600), ("slurm", "1-12:30", 131400),
    ("slurm", "2-0:0:30", 172830),
])
def test_walltime_formats(kind, value, seconds):
    with dask.config.set({f"jobqueue.{kind}.walltime": value}):
        assert walltime(kind) == timedelta(seconds=seconds)


@pytest.mark.parametrize(("kind", "value"), [
    ("pbs", "1-12:00"), ("slurm", "1-2:3:4:5"), ("slurm", "-5"), ("slurm", "1h"),
])
def test_walltime_forms_outside_the_batch_systems_are_named(kind, value):
    with dask.config.set({f"jobqueue.{kind}.walltime": value}), pytest.raises(ParameterError) as err:
        walltime(kind)
    assert err.value.field == f"jobqueue.{kind}.walltime" and repr(value) in err.value.reason


def test_default_lifetime_ends_two_staggers_before_the_walltime():
    with dask.config.set({"jobqueue.slurm.walltime": "02:00:00", "epmsweep.deploy.lifetime-stagger": "5 minutes"}):
        assert worker_lifetime("slurm") == (timedelta(minutes=110), timedelta(minutes=5))


@pytest.mark.parametrize(("settings", "key", "reason"), [
    ({"epmsweep.deploy.lifetime": "2h"}, "epmsweep.deploy.lifetime", "shorter than jobqueue.slurm.walltime"),
    ({"epmsweep.deploy.lifetime": "soon"}, "epmsweep.deploy.lifetime", "positive duration"),
    ({"jobqueue.slurm.walltime": "1:2:3:4"}, "jobqueue.slurm.walltime", "D-HH:MM:SS"),
    ({"jobqueue.slurm.processes": 2}, "jobqueue.slurm.processes", "one thread each"),
    ({"epmsweep.deploy.tls": True}, "distributed.comm.tls.scheduler.cert", "certificate file"),
])
def test_bad_settings_are_named(settings, key, reason):
    with dask.config.set(settings), pytest.raises(ParameterError) as err:
        make_cluster("slurm")
    assert key in str(err.value) and reason in str(err.value)


def test_bad_settings_stop_the_command_before_anything_starts(tmp_path):
    spec = write_spec(tmp_path / "tiny.yaml", TINY)
    config = write_spec(tmp_path / "site.yaml", {"epmsweep": {"deploy": {"lifetime": "3h"}}})
    proc = epmsweep("run", str(spec), "--cluster", "pbs", "--config", str(config), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "epmsweep: error: epmsweep.deploy.lifetime: lifetime + stagger" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()

    proc = epmsweep("run", str(spec), "--jobs", "2", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "--jobs: applies to --cluster slurm or pbs only" in proc.stderr

    (tmp_path / "list.yaml").write_text("- not a mapping\n")
    proc = epmsweep("run", str(spec), "--config", str(tmp_path / "list.yaml"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "must be a YAML mapping" in proc.stderr


def test_doctor_reports_bad_settings(tmp_path):
    config = write_spec(tmp_path / "site.yaml", {"jobqueue": {"pbs": {"walltime": "00:05:00"}}})
    proc = epmsweep("doctor", "--cluster", "pbs", "--config", str(config))
    assert proc.returncode == 1
    assert "FAIL settings: epmsweep.deploy.lifetime-stagger: twice the stagger" in proc.stdout
