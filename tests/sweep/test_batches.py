"""Batched tasks and results written by the workers: same results as one run per task, sized batches."""

from typing import NamedTuple

import dask.config
import numpy as np
import pytest
import xarray as xr
from conftest import small_spec
from epmsweep.engine import ParameterError
from epmsweep.sweep import RunStore, make_plan, parse_spec, run_sweep
from epmsweep.sweep.execute import (
    BATCH_FROM,
    TAIL_FRACTION,
    StoreAccess,
    batches,
    compute_batch,
    compute_run,
    prepare_store,
    runs_to_compute,
)
from epmsweep.sweep.plan import Runs
from epmsweep.sweep.settings import setting_seconds


class Task(NamedTuple):
    key: str


def data_of(tree: xr.DataTree) -> dict:
    return {(g, n): tree[g][n].values for g in tree.children for n in tree[g].to_dataset().data_vars}


def assert_same_data(a: xr.DataTree, b: xr.DataTree) -> None:
    da, db = data_of(a), data_of(b)
    assert da.keys() == db.keys()
    for k in da:
        np.testing.assert_array_equal(da[k], db[k], err_msg=str(k))


def many_spec(name: str) -> dict:
    """BATCH_FROM + 20 runs of ~1 ms: sized into batches by the cost model."""
    spec = small_spec(name=name, replicas=(BATCH_FROM + 20) // 4, model={"L": 8})
    spec["imposed_rate"] = {"shear_rate": [0.01, 0.03], "strain_end": 0.05, "n_records": 5}
    del spec["imposed_stress"]
    return spec


def test_batched_runs_written_by_the_workers_equal_one_run_per_task(tmp_path, client):
    """The same sweep with one run per task, 7 runs per task and batches sized by the cost model:
    bit-identical data, every run indexed once, no temporary left."""
    spec = many_spec("many")
    with dask.config.set({"epmsweep.sweep.runs-per-task": 1}):
        single = run_sweep(spec, out=tmp_path / "single", client=client, progress=False)
    with dask.config.set({"epmsweep.sweep.runs-per-task": 7}):
        seven = run_sweep(spec, out=tmp_path / "seven", client=client, progress=False)
    sized = run_sweep(spec, out=tmp_path / "sized", client=client, progress=False)
    n = len(make_plan(parse_spec(spec)).runs)
    for out, tree in (("seven", seven), ("sized", sized)):
        assert_same_data(tree, single)
        store = RunStore(tmp_path / out, "many")
        assert store.status().done == n and len(store.index()) == n
        assert not list(store.runs.glob(".*"))


def test_a_worker_writes_only_where_it_sees_the_drivers_token(tmp_path):
    """With the driver's token in the store the results are written there, the batch's runs in one
    file, and only its name, size and digest come back; with another token (another filesystem)
    the results come back."""
    store = RunStore(tmp_path, "w").create()
    token = store.write_probe()
    runs = list(make_plan(parse_spec(small_spec(name="w"))).runs)[:3]
    elsewhere = compute_batch(compute_run, runs, StoreAccess(str(tmp_path), "w", "another token"))
    assert [o for o, _ in elsewhere] == ["ok"] * 3 and not store.stored_keys()
    shared = compute_batch(compute_run, runs, StoreAccess(str(tmp_path), "w", token))
    assert [o for o, _ in shared] == ["stored"] * 3
    entry = shared[0][1]
    assert {e for _, e in shared} == {entry} and store.file_path(entry.file).stat().st_size == entry.size
    assert [p.name for p in store.runs.iterdir()] == [f"{entry.file}.nc"], "one file for the batch"
    assert store.indexed_keys(r.key for r in runs) == set(), "the driver indexes them, not the worker"
    store.record_runs({r.key: entry for r, (_, entry) in zip(runs, shared, strict=True)})
    assert all(store.verify(r.key) for r in runs)



def test_a_run_stored_from_its_record_reads_back_as_from_its_dataset(tmp_path):
    """A worker stores the engine's arrays (``simulate_record``) without building a Dataset: every
    variable (series, scalars, snapshot fields, clocks; both protocols) reads back with the same
    dims, dtype, values and attributes as the run stored from ``simulate``'s Dataset."""
    runs = make_plan(parse_spec(small_spec(name="r", replicas=1))).runs
    runs = [next(r for r in runs if r.protocol == p) for p in ("imposed_rate", "imposed_stress")]
    store = RunStore(tmp_path, "r").create()
    for i, run in enumerate(runs):
        record = compute_run(run)[1]
        from_record, from_dataset = f"{2 * i:064x}", f"{2 * i + 1:064x}"
        store.write_runs({from_record: record})
        store.write_runs({from_dataset: record.to_dataset()})
        a, b = store.read_variables(from_record), store.read_variables(from_dataset)
        assert a.keys() == b.keys() and {"local_stress", "plastic"} & a.keys() == (
            {"local_stress", "plastic"} if run.protocol == "imposed_rate" else set()
        )
        for name, (dims, attrs, values) in a.items():
            assert (dims, attrs, values.dtype) == (b[name][0], b[name][1], b[name][2].dtype), name
            np.testing.assert_array_equal(values, b[name][2], err_msg=name)
        assert store.read_run(from_record).attrs == store.read_run(from_dataset).attrs

def test_batches_are_sized_from_the_cost_and_leave_every_worker_work():
    """Consecutive tasks up to task-seconds of compute; none more than a 1 / (2 n_workers) share of
    the compute still to cut, so that the batches shrink towards the end, down to TAIL_FRACTION."""
    target = setting_seconds("task-seconds")
    tasks = [Task(str(i)) for i in range(1000)]
    cut = list(batches(tasks, lambda key: target / 8, n_workers=4))
    assert [t for b in cut for t in b] == tasks
    assert {len(b) for b in cut[:100]} == {8}, "task-seconds a batch while much compute is left"
    assert len(cut[-1]) == 1 and min(len(b) for b in cut) == 1, "the tail: short batches"
    cut = list(batches(tasks, lambda key: target / 1000, n_workers=4))
    sizes = [len(b) for b in cut]
    assert [t for b in cut for t in b] == tasks and sizes[0] == 125, "a share of the compute: 1/8 of it"
    assert sizes == sorted(sizes, reverse=True) and sizes[-2] == TAIL_FRACTION * 1000, "shrinking to the tail floor"
    assert len(cut) >= 2 * 4, "two batches a worker at least"
    assert list(batches(tasks[:5], None, n_workers=4)) == [[t] for t in tasks[:5]]
    with dask.config.set({"epmsweep.sweep.runs-per-task": 0}), pytest.raises(ParameterError, match="runs-per-task"):
        batches(tasks, None, n_workers=4)


def test_runs_to_compute_are_made_only_as_their_batches_are_cut(tmp_path, monkeypatch):
    """The runs to compute of a fresh sweep are a RunSubset: their keys known, no Run made until a
    batch is cut, and then the Runs of the plan, in plan order."""
    plan = make_plan(parse_spec(small_spec(replicas=4)))
    store = RunStore(tmp_path, "small")
    with store.locked():
        todo = runs_to_compute(plan, prepare_store(store, plan), store)
    made, make = [], Runs.__getitem__
    monkeypatch.setattr(Runs, "__getitem__", lambda self, i: made.append(i) or make(self, i))
    cut = batches(todo, lambda key: setting_seconds("task-seconds") / 4, n_workers=2)
    assert len(todo) == len(plan.runs) and todo.run_keys == list(plan.keys()) and not made
    first = next(cut)
    assert len(first) == 4 and made == [0, 1, 2, 3]
    assert [r.key for r in first + [r for b in cut for r in b]] == list(plan.keys())


def test_run_files_written_but_never_indexed_are_indexed_not_computed_again(tmp_path, client):
    """A driver stopped after the workers wrote three single runs and a batch of three but before
    it indexed them: the rerun indexes those (their files untouched) and computes the rest; an
    unindexed file holding another run, and a truncated one, are removed and computed again."""
    spec = small_spec(name="w")
    runs = list(make_plan(parse_spec(spec)).runs)
    store = RunStore(tmp_path, "w").create()
    access = StoreAccess(str(tmp_path), "w", store.write_probe())
    written = [compute_batch(compute_run, batch, access) for batch in [[r] for r in runs[:5]] + [runs[5:8]]]
    assert [o for batch in written for o, _ in batch] == ["stored"] * 8 and len(list(store.runs.iterdir())) == 6
    foreign, truncated = runs[3].key, runs[4].key
    store.run_path(foreign).write_bytes(store.run_path(runs[0].key).read_bytes())  # holds run 0
    data = store.run_path(truncated).read_bytes()
    store.run_path(truncated).write_bytes(data[: len(data) // 2])
    entries = dict(zip([r.key for r in runs[:8]], [entry for batch in written for _, entry in batch], strict=True))
    kept = {k: store.file_path(e.file).stat() for k, e in entries.items() if k not in (foreign, truncated)}
    tree = run_sweep(spec, out=tmp_path, client=client, progress=False)
    for key, before in kept.items():
        after = store.run_path(key).stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), "not computed again"
    assert store.status().done == len(runs) and all(store.verify(r.key) for r in runs)
    again = run_sweep(spec, out=tmp_path / "fresh", client=client, progress=False)
    assert_same_data(tree, again)
