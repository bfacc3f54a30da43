"""The calibration study: an ask-and-tell optimiser whose generations run as sweeps on the Dask cluster.

Each generation asks the optimiser for ``population`` candidates, turns each into the sweep of its
parameters (``CalibrationSpec.candidate``), computes the runs not yet stored in one pass on the
cluster (``sweep.execute``: parallel over every run of every candidate), assembles each candidate's
sweep, and tells the optimiser its objective (``objective``). The first evaluation is the start
(the file's model and initial states), so that CMA-ES, which needs a finished trial to know its
search space, starts from there.

Optimiser: Optuna (maintained, ask-and-tell, seeded samplers, persistent storage). Its CMA-ES
sampler suits a bounded, derivative-free objective with the mild noise left by common random
numbers, and evaluates a whole population per generation, which is what a cluster wants; TPE,
random and grid samplers run the same loop (random and grid are the baselines). The study lives in
``<out>/<name>/study.journal`` (an Optuna journal file, appended one operation a line), the runs
in ``<out>/<name>/runs`` (the run store, same keys as sweeps), the candidates' assembled sweeps in
``<out>/<name>/candidates``. A killed calibration resumes: finished evaluations are read back,
candidates asked but not told are evaluated from the stored runs, and only missing runs are
computed. Runs with the same key stored by earlier sweeps under ``<out>`` are linked in, not rerun.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import optuna
import xarray as xr
from distributed import Client
from epmsweep.engine import ParameterError
from epmsweep.sweep.assemble import assemble_plan
from epmsweep.sweep.client import open_client
from epmsweep.sweep.execute import execute
from epmsweep.sweep.plan import Plan, make_plan
from epmsweep.sweep.store import RunStore
from optuna.distributions import FloatDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from tqdm.auto import tqdm

from .objective import objective_terms, weighted_objective
from .results import Calibration, history, write_outcome
from .spec import CalibrationSpec, Parameter, parse_calibration

SIGMA0 = 0.25
"""Initial CMA-ES step, as a fraction of each parameter's range (Optuna maps the bounds to [0, 1])."""


def distributions(parameters: tuple[Parameter, ...]) -> dict[str, FloatDistribution]:
    """The search space: one bounded float per parameter, log-uniform where ``log``."""
    return {p.name: FloatDistribution(p.low, p.high, log=p.log) for p in parameters}


def grid_values(p: Parameter, n: int) -> list[float]:
    """``n`` equally spaced values over the bounds (in log10 where ``log``)."""
    if p.log:
        return np.logspace(np.log10(p.low), np.log10(p.high), n).tolist()
    return np.linspace(p.low, p.high, n).tolist()


def make_sampler(spec: CalibrationSpec) -> optuna.samplers.BaseSampler:
    """The seeded Optuna sampler of the file's ``optimizer`` block."""
    opt = spec.optimizer
    if opt.sampler == "cmaes":
        x0 = {p.name: p.start for p in spec.parameters}
        with warnings.catch_warnings():  # x0 and sigma0: deprecated in Optuna 4.9, kept until 6 (pinned < 6)
            warnings.simplefilter("ignore", FutureWarning)
            return optuna.samplers.CmaEsSampler(
                x0=x0, sigma0=SIGMA0, seed=opt.seed, popsize=opt.population, n_startup_trials=0,
                warn_independent_sampling=False,
            )  # fmt: skip
    if opt.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=opt.seed, constant_liar=True)
    if opt.sampler == "grid":
        space = {p.name: grid_values(p, opt.grid_points) for p in spec.parameters}
        return optuna.samplers.GridSampler(space, seed=opt.seed)
    return optuna.samplers.RandomSampler(seed=opt.seed)


def budget(spec: CalibrationSpec) -> int:
    """Number of evaluations of the study (a grid is evaluated whole, at most ``evaluations``)."""
    opt = spec.optimizer
    if opt.sampler == "grid":
        return min(opt.evaluations, opt.grid_points ** len(spec.parameters))
    return opt.evaluations


def _link_stored(store: RunStore, keys: set[str], out: Path) -> int:
    """Bring into ``store`` the runs of ``keys`` that other stores under ``out`` hold (verified, then
    hard-linked or copied, and indexed); returns how many."""
    found = 0
    for other in sorted(p for p in out.iterdir() if (p / "runs").is_dir() and p != store.root):
        source = RunStore(out, other.name)
        for key in sorted(source.indexed_keys(keys)):
            if store.link_from(source, key):
                keys.discard(key)
                found += 1
    return found


def candidate_groups(path: Path) -> dict[str, xr.Dataset]:
    """The per-protocol groups of an assembled candidate sweep, loaded into memory."""
    with xr.open_datatree(path, engine="netcdf4") as tree:
        return {name: tree[name].to_dataset().load() for name in tree.children}


class _Evaluator:
    """Evaluates candidates as sweeps on a client opened on first need."""

    def __init__(self, spec: CalibrationSpec, store: RunStore, out: Path, client: Client | None, n_workers):
        self.spec, self.store, self.out = spec, store, out
        self.client, self.n_workers = client, n_workers
        self.stack = contextlib.ExitStack()

    def _client(self) -> Client:
        if self.client is None:
            self.client = self.stack.enter_context(open_client(n_workers=self.n_workers))
        return self.client

    def candidate_path(self, number: int) -> Path:
        return self.store.root / "candidates" / f"{number:05d}.nc"

    def plan(self, number: int, params: dict) -> Plan:
        return make_plan(self.spec.candidate(params, name=f"{self.spec.name}_{number:05d}"))

    def __call__(self, trials: dict[int, dict]) -> dict[int, tuple[dict[str, float], int]]:
        """{trial number: params} -> {trial number: (terms, runs computed for it)}."""
        plans = {n: self.plan(n, params) for n, params in trials.items()}
        keys = {r.key for plan in plans.values() for r in plan.runs}
        missing = keys - self.store.done_keys(keys)
        if missing:
            _link_stored(self.store, missing, self.out)
        skip = self.store.done_keys(keys) | set(self.store.failures())
        todo, computed = {}, {}
        for n, plan in plans.items():
            new = [r for r in plan.runs if r.key not in skip and r.key not in todo]
            todo.update((r.key, r) for r in new)
            computed[n] = len(new)
        if todo:
            execute(list(todo.values()), self.store, self._client(), progress=False)
        out = {}
        for n, plan in plans.items():
            path = assemble_plan(plan, self.store, self.candidate_path(n), with_summary=False)
            out[n] = (objective_terms(candidate_groups(path), self.spec.references), computed[n])
        return out


def _keep_file(store: RunStore, spec: CalibrationSpec) -> None:
    """Keep the calibration file in its store; a store holding another file of the same name is an error."""
    kept = store.root / "calibration.yaml"
    if kept.is_file() and (store.root / "study.journal").is_file() and kept.read_text() != spec.text:
        raise ParameterError(spec.source, f"{store.root} holds a calibration of the same name from another "
                                          "file: give this one another name, or remove that folder")  # fmt: skip
    kept.write_text(spec.text)


def _storage(root: Path) -> JournalStorage:
    return JournalStorage(JournalFileBackend(str(root / "study.journal")))


def _tell(study: optuna.Study, spec: CalibrationSpec, trial: optuna.Trial, terms: dict, computed: int) -> None:
    """Record the terms and the runs computed on the trial, and tell its objective (failed if NaN)."""
    value = weighted_objective(terms, spec.references)
    trial.set_user_attr("terms", terms)
    trial.set_user_attr("runs_computed", computed)
    if np.isfinite(value):
        study.tell(trial, value)
    else:
        study.tell(trial, state=TrialState.FAIL)


def _pending(study: optuna.Study) -> dict[int, optuna.Trial]:
    """Trials asked but never told (the calibration was killed while they ran)."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return {t.number: optuna.Trial(study, t._trial_id) for t in running}


def calibrate(
    calibration: CalibrationSpec | dict | str | os.PathLike,
    *,
    out: str | os.PathLike = "results",
    client: Client | None = None,
    n_workers: int | None = None,
    progress: bool = True,
    figures: bool = True,
) -> Calibration:
    """Run (or resume) a calibration and return its outcome; the history goes to ``<out>/<name>.nc``.

    Parameters
    ----------
    calibration : CalibrationSpec, dict or path
        The calibration file (``calibrate.spec``), validated before anything runs.
    out : path
        The store folder (as for sweeps).
    client : distributed.Client, optional
        Where the runs go; without it an embedded LocalCluster of ``n_workers`` processes is
        started when there is something to compute.
    progress : bool
        A progress bar over evaluations with the best objective so far.
    figures : bool
        Write the figures (``calibrate.figures``) to ``<out>/<name>_figures``.
    """
    spec = calibration if isinstance(calibration, CalibrationSpec) else parse_calibration(calibration)
    out = Path(out)
    store = RunStore(out, spec.name)
    with store.locked():  # one driver per store, as for sweeps
        store.create()
        (store.root / "candidates").mkdir(exist_ok=True)
        _keep_file(store, spec)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            study_name=spec.name, storage=_storage(store.root), sampler=make_sampler(spec), direction="minimize",
            load_if_exists=True,
        )  # fmt: skip
        space, total = distributions(spec.parameters), budget(spec)
        evaluate = _Evaluator(spec, store, out, client, n_workers)
        with evaluate.stack, _progress(study, total, progress) as bar:
            if not study.trials:
                study.enqueue_trial({p.name: p.start for p in spec.parameters})
            while True:
                running = _pending(study)
                finished = sum(t.state.is_finished() for t in study.trials)
                if not running:  # the start alone first: CMA-ES needs one finished trial for its search space
                    n_new = min(spec.optimizer.population if finished else 1, total - finished)
                    for _ in range(n_new):
                        trial = study.ask(space)
                        running[trial.number] = trial
                if not running:
                    break
                outcome = evaluate({n: t.params for n, t in running.items()})
                for number, (terms, computed) in sorted(outcome.items()):
                    _tell(study, spec, running[number], terms, computed)
                bar.update(len(running))
                bar.set_postfix(best=f"{_best_value(study):.4g}", refresh=True)
        return write_outcome(spec, history(spec, study), out, figures=figures, candidate_path=evaluate.candidate_path)


def _best_value(study: optuna.Study) -> float:
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return min((t.value for t in done), default=float("nan"))


@contextlib.contextmanager
def _progress(study: optuna.Study, total: int, enabled: bool) -> Iterator[tqdm]:
    finished = len([t for t in study.trials if t.state.is_finished()])
    bar = tqdm(total=total, initial=finished, unit="eval", disable=not enabled, file=sys.stderr, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()
