"""`epmsweep calibrate` end to end, and a calibration killed mid-study (SIGKILL) resumed without recomputing."""

import os
import signal
import subprocess
import sys
import time

import optuna
import xarray as xr
from epmsweep.calibrate import calibrate
from epmsweep.sweep.cli import main
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from .conftest import write_calibration


def test_cli_end_to_end_on_a_running_scheduler(references, client, tmp_path, capsys):
    folder, refs = references
    path = write_calibration(folder, refs, evaluations=4, population=3)
    out = tmp_path / "out"
    code = main(["calibrate", str(path), "--out", str(out), "--scheduler", client.scheduler.address, "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "fit: best objective" in printed and "tau_res = " in printed and "thresholds.scale = " in printed
    hist = xr.open_dataset(out / "fit.nc")
    assert hist.sizes["candidate"] == 4 and float(hist["objective"].min()) == hist.attrs["best_objective"]
    assert (out / "fit_figures" / "fit.png").is_file() and (out / "fit_figures" / "objective.pdf").is_file()


def _run_files(runs_dir) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in runs_dir.glob("*.nc")}


def test_killed_calibration_resumes_without_computing_any_run_twice(references, client, tmp_path):
    folder, refs = references
    path = write_calibration(folder, refs, evaluations=9, population=4)
    out = tmp_path / "out"
    runs = out / "fit" / "runs"
    command = [sys.executable, "-m", "epmsweep.sweep.cli", "calibrate", str(path), "--out", str(out),
               "--workers", "1", "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:  # kill once the start and part of the first generation are stored
        deadline = time.monotonic() + 120
        while len(list(runs.glob("*.nc"))) < 20 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its cluster's processes, at once
        proc.wait()
    before = _run_files(runs)
    storage = JournalStorage(JournalFileBackend(str(out / "fit" / "study.journal")))
    journal = optuna.load_study(study_name="fit", storage=storage)
    told = {t.number: t.params for t in journal.trials if t.state.is_finished()}
    assert 1 <= len(told) < 9 and len(before) >= 20  # killed mid-study

    result = calibrate(path, out=out, client=client, progress=False, figures=False)
    after = _run_files(runs)
    hist = result.history
    assert sorted(hist.candidate.values.tolist()) == list(range(9))
    assert all(after[name] == stat for name, stat in before.items())  # no stored run computed again
    resumed = hist.drop_sel(candidate=list(told))
    assert int(resumed["runs_computed"].sum()) == len(after) - len(before)  # each missing run computed once
    for number, params in told.items():  # the evaluations told before the kill are kept, not redone
        assert hist["value"].sel(candidate=number).values.tolist() == [params[p] for p in hist.parameter.values]
