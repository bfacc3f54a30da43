"""The store's books: the plan on disk, the index log, and what resume and status read from them."""

import json

import pytest
from conftest import small_spec
from epmsweep.engine.files import file_digest
from epmsweep.sweep import RunStore, make_plan, parse_spec
from epmsweep.sweep import store as store_module
from epmsweep.sweep.execute import prepare_store, runs_to_compute
from epmsweep.sweep.store import IndexEntry, Status


def entry(data: bytes) -> IndexEntry:
    return IndexEntry(len(data), file_digest(data))


def test_the_plan_is_its_keys_in_order_32_bytes_each(tmp_path):
    plan = make_plan(parse_spec(small_spec(replicas=4)))
    store = RunStore(tmp_path, "small")
    with store.locked():
        keys = prepare_store(store, plan)
    assert keys == [r.key for r in plan.runs] and len(keys) == len(set(keys)) == 32
    assert (store.root / "plan.keys").stat().st_size == 32 * len(keys)
    assert store.read_plan() == keys and store.has_plan()
    assert store.status() == Status(planned=32, done=0, failed=0)


def test_a_store_with_the_older_plan_file_is_read_and_its_plan_rewritten(tmp_path):
    plan = make_plan(parse_spec(small_spec(replicas=4)))
    keys = list(plan.keys())
    store = RunStore(tmp_path, "small")
    store.runs.mkdir(parents=True)
    (store.root / "plan.json").write_text(json.dumps({k: {"seed": 0} for k in keys[:20]}))
    data = b"stored run"
    store.run_path(keys[0]).write_bytes(data)
    store.record_runs({keys[0]: entry(data)})
    assert store.has_plan() and sorted(store.read_plan()) == sorted(keys[:20])
    assert store.status() == Status(planned=20, done=1, failed=0)
    with store.locked():
        prepare_store(store, plan)  # extends the older sweep: its 20 runs are all still planned
    assert not (store.root / "plan.json").exists() and store.read_plan() == keys


def test_the_index_keeps_the_last_line_of_a_key_and_ignores_torn_lines(tmp_path, monkeypatch):
    store = RunStore(tmp_path, "s")
    store.runs.mkdir(parents=True)
    keys = [f"{i:064x}" for i in range(300)]
    store.record_runs({k: IndexEntry(i, f"{i:064x}") for i, k in enumerate(keys)})
    store.record_runs({keys[0]: IndexEntry(7, "f" * 64)})
    with open(store.index_path, "a") as f:
        f.write('{"key": "' + "a" * 64 + '", "size": 3\n')  # torn by an interruption
        f.write("x" * 2500 + "\n")  # damage longer than a block
        f.write('{"key": "' + "b" * 30)  # still being written: no end of line yet
    monkeypatch.setattr(store_module, "INDEX_BLOCK", 1000)  # blocks end inside lines
    fresh = RunStore(tmp_path, "s").index()
    assert fresh == store.index() and len(fresh) == 300
    assert fresh[keys[0]] == IndexEntry(7, "f" * 64) and fresh[keys[299]] == IndexEntry(299, f"{299:064x}")
    with open(store.index_path, "a") as f:  # the line being written is completed
        f.write("b" * 34 + '", "size": 5, "digest": "' + "c" * 64 + '"}\n')
    assert store.index()["b" * 64] == IndexEntry(5, "c" * 64) and len(store.index()) == 301


def test_resume_and_status_trust_the_index_and_the_assembly_verifies(tmp_path):
    """No run file is opened to say what is stored; a damaged file is found where it is read."""
    plan = make_plan(parse_spec(small_spec(replicas=4)))
    store = RunStore(tmp_path, "small")
    with store.locked():
        keys = prepare_store(store, plan)
    data = b"a run file"
    for key in keys[:10]:
        store.run_path(key).write_bytes(data)
    store.record_runs({k: entry(data) for k in keys[:10]})
    store.run_path(keys[1]).write_bytes(b"damaged, and of another size")
    store.run_path(keys[2]).unlink()
    store.write_failure(keys[3], {"error": "raised"})  # an older failure of a run stored since: stored
    store.write_failure(keys[20], {"error": "raised"})
    assert store.status() == Status(planned=32, done=9, failed=1)
    todo = runs_to_compute(plan, keys, store)
    assert [r.key for r in todo] == [keys[2]] + [k for k in keys[10:] if k != keys[20]]
    assert todo[1] == plan.runs[10]
    assert len(runs_to_compute(plan, keys, store, retry_failed=True)) == 1 + 22
    assert store.verified_bytes(keys[1]) is None and not store.run_path(keys[1]).exists()
    assert store.verified_bytes(keys[0]) == data


def test_a_folder_at_the_path_of_an_unindexed_run_is_named(tmp_path):
    plan = make_plan(parse_spec(small_spec(replicas=4)))
    store = RunStore(tmp_path, "small")
    with store.locked():
        keys = prepare_store(store, plan)
    store.run_path(keys[5]).mkdir()
    with pytest.raises(store_module.StoreError, match=f"{keys[5]}.nc: is a folder where a run file belongs"):
        runs_to_compute(plan, keys, store)
