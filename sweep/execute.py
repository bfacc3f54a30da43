"""Running a sweep on a Dask client: only the runs not yet stored, streamed to the store as they finish."""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import math
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import dask.config
import xarray as xr
from distributed import Client, as_completed
from epmsweep.engine import EndlessAvalancheError, NumericalInstabilityError, ParameterError, RunRecord, simulate_record
from epmsweep.engine.cost import warm as warm_engine
from epmsweep.engine.errors import InputChangedError
from tqdm.auto import tqdm

from .assemble import assemble_plan
from .client import open_client
from .plan import Plan, Run, RunSubset, canonical_json, make_plan
from .settings import setting_int, setting_seconds
from .spec import Spec, parse_spec
from .store import RunStore, StoreError

IN_FLIGHT_PER_WORKER = 4
BATCH_FROM = 100  # runs to compute; fewer go one a task (their dispatch costs well under a second)
MAX_BATCH = 10_000  # runs of one task at most: the index line of its file stays well within a block
TAIL_FRACTION = 0.05  # of task-seconds: the shortest batch of a sweep's tail (dispatch and a file stay small beside it)
SIZING_BUDGET, SIZING_POINTS = 0.02, 8  # CPU seconds a prefix and parameter points of the batch-sizing estimate
TASK_RETRIES = 2  # for exceptions other than the engine's own (deterministic) errors
DETERMINISTIC_ERRORS = (ParameterError, NumericalInstabilityError, EndlessAvalancheError)
INFRASTRUCTURE_ERRORS = (concurrent.futures.CancelledError, OSError, TimeoutError, InputChangedError)
"""Errors that say nothing about the run itself (the scheduler or a connection lost, a result
cancelled, an input file changed): the run is left pending, never recorded as failed."""


class SweepIncomplete(RuntimeError):
    """Runs were left pending for reasons outside them (scheduler lost, input changed); finished runs
    are stored and a rerun computes the rest."""


BATCH_JOB_VARIABLES = ("SLURM_JOB_ID", "PBS_JOBID")  # set by the batch system inside a job


def batch_job_id() -> str:
    """The Slurm or PBS job this process runs in, empty outside a batch job."""
    return next((os.environ[v] for v in BATCH_JOB_VARIABLES if os.environ.get(v)), "")


def computed_where() -> dict[str, str]:
    """Attributes of a result saying where it was computed: ``worker_host``, ``batch_job_id``."""
    return {"worker_host": socket.gethostname(), "batch_job_id": batch_job_id()}


def failure_record(exc: BaseException) -> dict:
    """What the store keeps of a run that raised: exception type, message and traceback."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {"kind": type(exc).__name__, "error": str(exc), "traceback": tb}


def compute_run(run: Run) -> tuple[str, RunRecord | dict]:
    """Worker side: simulate one run (``simulate_record``: stored without building a Dataset).
    Deterministic engine errors come back as a failure record.

    The run records where it was computed: ``worker_host`` and ``batch_job_id`` (the Slurm or PBS
    job of the worker, empty outside a batch job), and what it took: ``compute_seconds`` (wall) and
    ``compute_cpu_seconds`` (CPU of the computing thread) of ``simulate_record``.
    """
    try:
        params, state, protocol = run.build()
        wall, cpu = time.perf_counter(), time.thread_time()
        record = simulate_record(params, state, protocol, run.dynamics_seed)
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    except DETERMINISTIC_ERRORS as err:
        return "failed", failure_record(err)
    record.attrs.update(
        {
            "compute_seconds": wall,
            "compute_cpu_seconds": cpu,
            "run_protocol": run.protocol,
            "run_coords": canonical_json(run.coords),
            "initial_state_seed_spawn_key": str(list(run.state_seed.spawn_key)),
            **computed_where(),
        }
    )
    return "ok", record


def warm_worker() -> str:
    """Load (or compile into the cache) the engine, both loops, on a worker before fan-out."""
    warm_engine()
    return os.environ.get("NUMBA_CACHE_DIR", "default")


@dataclass(frozen=True)
class StoreAccess:
    """What a task needs to write into a store it may share with the driver: the store's folder
    and the token the driver wrote to its ``.probe``."""

    out: str
    name: str
    token: str


@functools.cache
def sees_store(access: StoreAccess) -> bool:
    """True if this process reads the driver's token in the store: it shares the store's filesystem."""
    try:
        return (RunStore(access.out, access.name).root / ".probe").read_text() == access.token
    except OSError:
        return False


def compute_batch(compute: Callable, tasks: list, access: StoreAccess | None) -> list[tuple[str, object]]:
    """Worker side: ``compute`` each task in turn, ``[(outcome, value)]`` in task order.

    An exception other than the infrastructure's is retried ``TASK_RETRIES`` times, then recorded
    as the task's failure; an infrastructure error fails the whole batch (its tasks are left
    pending). Where this worker sees the store (``access``), the batch's results are written there
    together (``RunStore.write_files``: ``("stored", IndexEntry)``) and only the file's name, size
    and digest go back to the driver; otherwise, or if the write fails, the results go back
    (``("ok", RunRecord)``) and the driver writes them.
    """
    out = []
    for task in tasks:
        for _ in range(TASK_RETRIES + 1):
            try:
                result = compute(task)
                break
            except INFRASTRUCTURE_ERRORS:
                raise
            except Exception as exc:
                result = ("failed", failure_record(exc))
        out.append(result)
    if access is not None and sees_store(access):
        finished = {t.key: value for t, (outcome, value) in zip(tasks, out, strict=True) if outcome == "ok"}
        with contextlib.suppress(StoreError):
            entries = RunStore(access.out, access.name).write_files(finished)
            out = [("stored", entries[t.key]) if t.key in entries else r for t, r in zip(tasks, out, strict=True)]
    return out


def task_keys(tasks: Sequence) -> list[str]:
    """The keys of ``tasks``: known without making the runs of a ``RunSubset``."""
    return tasks.run_keys if isinstance(tasks, RunSubset) else [t.key for t in tasks]


def batches(tasks: Sequence, seconds: Callable[[str], float] | None, n_workers: int) -> Iterator[list]:
    """``tasks`` cut into consecutive batches of about ``epmsweep.sweep.task-seconds`` of compute
    (``seconds(key)`` each, by task key), or of ``epmsweep.sweep.runs-per-task`` tasks when set;
    one task a batch without either. Sized by guided self-scheduling: no batch holds more than a
    share (``1 / (2 n_workers)``) of the compute still to cut, so that the last batches are short
    and every worker has work until the end, nor less than ``TAIL_FRACTION`` of task-seconds, nor
    more than ``MAX_BATCH`` runs. The batches are cut as they are taken: a task (a Run of a
    ``RunSubset``) is made when its batch is."""
    fixed = dask.config.get("epmsweep.sweep.runs-per-task")
    if fixed is not None:
        size = setting_int("runs-per-task")
        if size < 1:
            reason = f"must be a number of runs >= 1 or null, got {fixed!r}"
            raise ParameterError("epmsweep.sweep.runs-per-task", reason)
        return (list(tasks[i : i + size]) for i in range(0, len(tasks), size))
    if seconds is None:
        return ([tasks[i]] for i in range(len(tasks)))
    return _guided(tasks, [seconds(k) for k in task_keys(tasks)], setting_seconds("task-seconds"), n_workers)


def _guided(tasks: Sequence, costs: list[float], target: float, n_workers: int) -> Iterator[list]:
    """The batches of ``batches`` by guided self-scheduling, ``costs`` the seconds of each task."""
    remaining, shares = math.fsum(costs), 2 * max(1, n_workers)
    start, total, budget = 0, 0.0, 0.0
    for i, cost in enumerate(costs):
        if i == start:
            budget = min(target, max(TAIL_FRACTION * target, remaining / shares))
        total += cost
        if total >= budget or i + 1 - start >= MAX_BATCH:
            yield list(tasks[start : i + 1])
            remaining -= total
            start, total = i + 1, 0.0
    if start < len(costs):
        yield list(tasks[start:])


class _Capacity:
    """Futures to keep in flight: a few per worker, the worker count refreshed at most every second."""

    def __init__(self, client: Client):
        self.client, self.checked, self.value = client, -1.0, IN_FLIGHT_PER_WORKER

    def __call__(self) -> int:
        now = time.monotonic()
        if now - self.checked > 1.0 and self.client.status == "running":
            workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
            self.value, self.checked = IN_FLIGHT_PER_WORKER * max(1, len(workers)), now
        return self.value


def _why_stalled(client: Client, keys: list[str]) -> str:
    """What the scheduler says of the runs in flight: connected workers and the tasks' states."""
    if client.status != "running":
        return f"the client is {client.status}: the scheduler is unreachable"
    try:
        n_workers = len(client.scheduler_info(n_workers=-1).get("workers", {}))
        states = client.run_on_scheduler(
            lambda dask_scheduler, keys: {k: ts.state for k in keys if (ts := dask_scheduler.tasks.get(k))}, keys=keys
        )
    except Exception as exc:  # a dying connection raises several types
        return f"the scheduler does not answer ({type(exc).__name__}: {exc})"
    by_state: dict[str, int] = {}
    for state in states.values():
        by_state[state] = by_state.get(state, 0) + 1
    return f"{n_workers} workers connected; runs in flight by task state: {by_state or 'none known'}"


class _Watchdog:
    """Says why when no run has finished for ``epmsweep.sweep.stall-report`` seconds (and again each
    time), and stops the sweep after ``epmsweep.sweep.stall-timeout`` seconds without one, if set."""

    def __init__(self, client: Client, in_flight: Callable[[], list], write: Callable[[str], None]):
        self.client, self.in_flight, self.write = client, in_flight, write
        self.report, self.timeout = setting_seconds("stall-report"), setting_seconds("stall-timeout")
        self.last = time.monotonic()
        self.expired = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="epmsweep-watchdog")

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def progressed(self) -> None:
        self.last = time.monotonic()

    def _watch(self) -> None:
        reported = self.last
        while not self._stop.wait(1.0):
            now = time.monotonic()
            idle, since_report = now - self.last, now - max(reported, self.last)
            if self.report is not None and since_report >= self.report:
                reported = now
                why = _why_stalled(self.client, [f.key for f in self.in_flight()])
                self.write(f"epmsweep: no run finished for {idle:.0f} s: {why}")
            if self.timeout is not None and idle >= self.timeout:
                self.expired.set()
                self.client.cancel(self.in_flight())  # wakes the result loop: the runs are left pending
                return


def execute(
    runs: Sequence[Run],
    store: RunStore,
    client: Client,
    *,
    progress: bool = True,
    compute: Callable = compute_run,
    warm: Callable = warm_worker,
    seconds: Callable[[str], float] | None = None,
) -> dict[str, int]:
    """Compute ``runs`` on ``client`` and store each as it finishes; returns counts by outcome.

    The runs go out in batches (``batches``: one Dask task computes several short runs, sized
    from ``seconds``, the estimated compute of a run by key, when given; the runs of a
    ``RunSubset`` are made as their batch is sent), a sliding window of a few
    tasks per worker in flight, which keeps the scheduler's graph small. A worker that shares
    the store's filesystem writes its results there itself (atomically); otherwise they come
    back through Dask and this process writes them. Only this process writes the index, as each
    task finishes: an interruption loses at most the runs in flight (those whose files a worker
    wrote are indexed by the next driver, ``RunStore.index_unindexed``). ``compute`` (worker side,
    one run in, ``("ok", RunRecord or Dataset)`` or ``("failed", record)`` out) and ``warm`` (run once on
    every worker first) default to the lattice engine's; other tasks with ``key``, ``protocol``
    and ``coords`` (the particle simulations' probes) pass their own.

    Outcomes: ``done`` (stored), ``failed`` (the run's own error, recorded in the store) and
    ``pending`` (``INFRASTRUCTURE_ERRORS``: not recorded, computed by a rerun). A lost scheduler
    or an input file changed during the sweep raises SweepIncomplete after what finished is stored.
    """
    counts = {"done": 0, "failed": 0, "pending": 0}
    if not runs:
        return counts
    client.run(warm)
    access = StoreAccess(str(store.root.parent), store.root.name, store.write_probe())
    n_workers = len(client.scheduler_info(n_workers=-1).get("workers", {}))
    pending = batches(runs, seconds, n_workers)
    in_flight: dict[str, tuple[list[Run], object]] = {}  # task key -> (runs, future), until handled
    reasons: list[str] = []

    def submit_next(n: int) -> list:
        futures = []
        if client.status != "running":
            return futures
        for batch in pending:
            key = f"runs-{batch[0].key}-{len(batch)}"
            fut = client.submit(compute_batch, compute, batch, access, key=key, retries=TASK_RETRIES, pure=False)
            in_flight[fut.key] = (batch, fut)
            futures.append(fut)
            if len(futures) >= n:
                break
        return futures

    def handle(run: Run, outcome: str, value) -> None:
        if outcome == "failed":
            store.write_failure(run.key, {"protocol": run.protocol, "coords": run.coords, **value})
        elif outcome == "pending" and isinstance(value, InputChangedError) and str(value) not in reasons:
            reasons.append(str(value))
        counts[{"ok": "done", "stored": "done"}.get(outcome, outcome)] += 1

    capacity = _Capacity(client)
    bar = tqdm(total=len(runs), unit="run", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    stream = as_completed(submit_next(capacity()))
    futures = lambda: [f for _, f in list(in_flight.values())]  # noqa: E731 (read by the watchdog thread)
    watchdog = _Watchdog(client, futures, lambda line: tqdm.write(line, file=sys.stderr))
    try:
        with watchdog:
            for fut in stream:
                batch = in_flight[fut.key][0]
                try:  # a result lost with a retiring worker is recomputed by the scheduler: wait (watched)
                    results = fut.result()
                except INFRASTRUCTURE_ERRORS as exc:
                    results = [("pending", exc)] * len(batch)
                except Exception as exc:
                    results = [("failed", failure_record(exc))] * len(batch)
                del in_flight[fut.key]
                fut.release()
                outcomes = list(zip(batch, results, strict=True))
                stored = {run.key: value for run, (outcome, value) in outcomes if outcome == "stored"}
                stored |= store.write_files({run.key: value for run, (outcome, value) in outcomes if outcome == "ok"})
                if stored:
                    store.record_runs(stored)
                for run, (outcome, value) in outcomes:
                    handle(run, outcome, value)
                watchdog.progressed()
                bar.update(len(batch))
                bar.set_postfix(failed=counts["failed"], pending=counts["pending"], refresh=False)
                for new in submit_next(max(0, capacity() - len(in_flight))):
                    stream.add(new)
    except BaseException:
        if client.status == "running":
            client.cancel(list(stream.futures))
        raise
    finally:
        bar.close()
    if client.status == "running" and not watchdog.expired.is_set():
        store.remove_temporaries()  # of workers killed mid-write: no task is in flight any more
    left = len(runs) - counts["done"] - counts["failed"]
    if watchdog.expired.is_set():
        reasons.append(f"no run finished for epmsweep.sweep.stall-timeout = {watchdog.timeout:g} s")
    if client.status != "running":
        reasons.append(f"the connection to the Dask scheduler was lost (client {client.status})")
    if left:
        reasons = reasons or ["their results were lost with the workers or the connection"]
        raise SweepIncomplete(
            f"{left} runs not computed: {'; '.join(reasons)}. {counts['done']} runs finished and are stored; "
            "run the same command again to compute the rest"
        )
    return counts


def assembled_path(out: str | os.PathLike, name: str) -> Path:
    return Path(out) / f"{name}.nc"


def run_sweep(
    spec: Spec | dict | str | os.PathLike,
    *,
    out: str | os.PathLike = "results",
    client: Client | None = None,
    n_workers: int | None = None,
    cluster: Callable[[], AbstractContextManager[Client]] | None = None,
    retry_failed: bool = False,
    replace: bool = False,
    progress: bool = True,
) -> xr.DataTree:
    """Run a sweep (file, dict or parsed Spec) and return the assembled DataTree.

    Finished runs already in ``<out>/<name>/runs`` are skipped (resume: the index says which,
    no indexed file is opened; files no driver indexed are checked and indexed); failed runs
    are skipped unless ``retry_failed``. A stored file that the assembly finds damaged is
    removed, its run computed again and the sweep assembled again. Without ``client``,
    ``cluster()`` gives one for the compute (default: an embedded LocalCluster with
    ``n_workers`` single-threaded worker processes), opened only when there is something to
    compute, after the store is checked, and closed. The assembled file is ``<out>/<name>.nc``.
    The store is locked for the call (a second driver gets a StoreError); a store holding
    another sweep of the same name (one with runs this one does not plan) is a StoreError
    unless ``replace`` (stored runs are reused where they match: run keys are content hashes).
    """
    spec = spec if isinstance(spec, Spec) else parse_spec(spec)
    plan = make_plan(spec)
    store = RunStore(out, spec.name)
    with store.locked():
        keys = prepare_store(store, plan, replace)
        planned = set(keys)
        for _ in range(2):  # again for the runs whose files the assembly found damaged (and removed)
            todo = runs_to_compute(plan, keys, store, retry_failed)
            if todo:
                cluster = cluster or functools.partial(open_client, n_workers=n_workers)
                with nullcontext(client) if client is not None else cluster() as c:
                    if progress:
                        where = f"dashboard: {c.dashboard_link}"
                        print(f"{spec.name}: {len(todo)} runs to compute ({len(keys) - len(todo)} stored or failed); "
                              f"{where}")  # fmt: skip
                    execute(todo, store, c, progress=progress, seconds=run_seconds(plan, todo))
            path = assemble_plan(plan, store, assembled_path(out, spec.name))
            if store.indexed_keys(planned) | set(store.failures()) >= planned:
                break
        return xr.open_datatree(path, engine="netcdf4")


def prepare_store(store: RunStore, plan: Plan, replace: bool = False) -> list[str]:
    """Check that ``store`` may take ``plan`` (``check_same_sweep``), ready it (``RunStore.create``)
    and record the sweep file and the plan; returns the plan's keys in plan order. The caller holds
    the store's lock."""
    keys = list(plan.keys())
    check_same_sweep(store, plan.spec.name, set(keys), replace)
    store.create()
    store.write_spec(plan.spec)
    store.write_plan(keys)
    return keys


def runs_to_compute(plan: Plan, keys: list[str], store: RunStore, retry_failed: bool = False) -> RunSubset:
    """The runs of ``plan`` (``keys``: its keys in plan order) with no indexed file and, unless
    ``retry_failed``, no failure record: a ``RunSubset``, each Run made when it is asked for
    (when its batch is sent). No file is opened."""
    skip = store.indexed_keys(keys) | (set() if retry_failed else set(store.failures()))
    positions = [i for i, key in enumerate(keys) if key not in skip]
    return plan.runs.subset(positions, [keys[i] for i in positions])


def run_seconds(plan: Plan, todo: Sequence[Run]) -> Callable[[str], float] | None:
    """Estimated compute seconds of each run by key (``estimate`` on a few parameter points, short
    prefixes), for sizing batches; None for a few runs, which go one a task."""
    if len(todo) < BATCH_FROM:
        return None
    from .estimate import estimate

    est = estimate(plan, budget=SIZING_BUDGET, max_points=SIZING_POINTS)
    return est.run_seconds.__getitem__


def check_same_sweep(store: RunStore, name: str, planned: set[str], replace: bool) -> None:
    """StoreError if ``store`` holds a sweep ``name`` with runs not among ``planned``: its
    assembled ``<out>/<name>.nc`` would be replaced by one without them. Extending a sweep (every
    stored planned run still planned) is not a replacement; ``replace`` allows one."""
    if replace:
        return
    dropped = sum(1 for key in store.read_plan() if key not in planned)
    if not dropped:
        return
    raise StoreError(
        str(store.root),
        f"holds another sweep named {name!r} ({dropped} of its planned runs are not in this one; "
        f"its file: {store.root / 'spec.yaml'}): give this one another name or --out, or replace it "
        "(--replace; stored runs that match are reused)",
    )


def assemble(out: str | os.PathLike, name: str, *, plan: Plan | None = None) -> xr.DataTree:
    """Assemble the stored runs of sweep ``name`` into ``<out>/<name>.nc`` and open it."""
    store = RunStore(out, name)
    plan = plan or make_plan(store.read_spec())
    with store.locked():
        store.create()
        path = assemble_plan(plan, store, assembled_path(out, name))
    return xr.open_datatree(path, engine="netcdf4")
