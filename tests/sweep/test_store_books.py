"""The store's books: the plan on disk, the index log, and what resume and status read from them."""

import json

import numpy as np
import pytest
import xarray as xr
from conftest import small_spec
from epmsweep.engine import RESULT_FORMAT_VERSION
from epmsweep.engine.files import file_digest
from epmsweep.sweep import RunStore, make_plan, parse_spec
from epmsweep.sweep import store as store_module
from epmsweep.sweep.execute import prepare_store, runs_to_compute
from epmsweep.sweep.store import IndexEntry, Status


def entry(name: str, data: bytes) -> IndexEntry:
    return IndexEntry(name, len(data), file_digest(data))


def fake_run(n_records: int, seed: int, snapshots: int = 0) -> xr.Dataset:
    """A run's Dataset of each kind of variable: series on a record clock, a scalar, a flag, fields."""
    rng = np.random.default_rng(seed)
    ds = xr.Dataset(
        {
            "stress": ("strain", rng.random(n_records), {"units": "1", "long_name": "stress"}),
            "peak_stress": ((), rng.random()),
            "yielded": ((), bool(seed % 2)),
            "activations": ("strain", rng.integers(0, 9, n_records)),
        },
        coords={"strain": np.linspace(0, 1, n_records)},
        attrs={"result_format": RESULT_FORMAT_VERSION, "seed": seed, "snapshot_strains": [0.5, 1.0]},
    )
    if snapshots:
        ds["local_stress"] = (("snapshot_strain", "y", "x"), rng.random((snapshots, 4, 4)))
    return ds


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
    store.record_runs({keys[0]: entry(keys[0], data)})
    assert store.has_plan() and sorted(store.read_plan()) == sorted(keys[:20])
    assert store.status() == Status(planned=20, done=1, failed=0)
    with store.locked():
        prepare_store(store, plan)  # extends the older sweep: its 20 runs are all still planned
    assert not (store.root / "plan.json").exists() and store.read_plan() == keys


def test_the_index_keeps_the_last_line_of_a_key_and_ignores_torn_lines(tmp_path, monkeypatch):
    store = RunStore(tmp_path, "s")
    store.runs.mkdir(parents=True)
    keys = [f"{i:064x}" for i in range(300)]
    store.record_runs({k: IndexEntry(k, i, f"{i:064x}") for i, k in enumerate(keys[:200])})
    batch = IndexEntry("e" * 64, 99, "d" * 64)
    store.record_runs(dict.fromkeys(keys[200:], batch))  # a file of 100 runs: one line
    store.record_runs({keys[0]: IndexEntry("f" * 64, 7, "f" * 64)})
    with open(store.index_path, "a") as f:
        f.write('{"key": "' + "9" * 64 + '", "size": 3, "digest": "' + "c" * 64 + '"}\n')  # one run a file, before
        f.write('{"file": "' + "a" * 64 + '", "size": 3\n')  # torn by an interruption
        f.write("x" * 9000 + "\n")  # damage longer than a block
        f.write('{"file": "' + "b" * 30)  # still being written: no end of line yet
    assert len(store.index_path.read_text().splitlines()) == 200 + 1 + 1 + 4
    monkeypatch.setattr(store_module, "INDEX_BLOCK", 8000)  # blocks end inside lines
    fresh = RunStore(tmp_path, "s").index()
    assert fresh == store.index() and len(fresh) == 300
    assert fresh[keys[0]] == IndexEntry("f" * 64, 7, "f" * 64)
    assert fresh[keys[199]] == IndexEntry(keys[199], 199, keys[199])
    assert {fresh[k] for k in keys[200:]} == {batch}
    with open(store.index_path, "a") as f:  # the line being written is completed
        f.write("b" * 34 + '", "size": 5, "digest": "' + "c" * 64 + '", "runs": ["' + "1" * 64 + '"]}\n')
    assert store.index()["1" * 64] == IndexEntry("b" * 64, 5, "c" * 64) and len(store.index()) == 301


def test_a_file_holds_runs_of_different_lengths_and_reads_back_exactly(tmp_path):
    """Several runs in one file (ragged series, scalars, flags, fields): each read back bit for bit,
    with its attributes; runs with other variables go to a file of their own."""
    store = RunStore(tmp_path, "s").create()
    runs = {f"{i:064x}": fake_run(n_records=3 + i, seed=i, snapshots=2) for i in range(5)}
    runs["f" * 64] = fake_run(n_records=4, seed=9)  # no fields: another file
    entries = store.write_files(runs)
    assert len({e.file for e in entries.values()}) == 2 and len(list(store.runs.iterdir())) == 2
    assert store.indexed_keys(runs) == set(), "written, not indexed"
    store.record_runs(entries)
    assert len(store.index_path.read_text().splitlines()) == 2 and store.stored_keys() == set(runs)
    for key, ds in runs.items():
        back = store.read_run(key)
        assert back.attrs == {**ds.attrs, "seed": ds.attrs["seed"]}
        assert set(back.variables) == set(ds.variables)
        for name, var in ds.variables.items():
            dims, attrs, values = back.variables[name]
            assert dims == var.dims and attrs.get("units") == var.attrs.get("units")
            np.testing.assert_array_equal(values, var.values, err_msg=name)


def test_storing_runs_drops_their_failure_records_only(tmp_path):
    """Runs that failed before and are stored now lose their failure records; other records stay."""
    store = RunStore(tmp_path, "s").create()
    keys = [f"{i:064x}" for i in range(3)]
    for key in keys:
        store.write_failure(key, {"error": "boom"})
    store.write_runs({key: fake_run(n_records=4, seed=i) for i, key in enumerate(keys[:2])})
    assert set(store.failures()) == {keys[2]}


def test_a_damaged_file_loses_its_runs_where_it_is_read(tmp_path):
    """A bit flipped in a file of five runs: resume trusts the index until the file is read, then the
    file is removed and its five runs are no longer stored (they are computed again)."""
    store = RunStore(tmp_path, "s").create()
    runs = {f"{i:064x}": fake_run(n_records=4, seed=i) for i in range(5)}
    store.write_runs(runs)
    path = store.run_path(next(iter(runs)))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    assert store.indexed_keys(runs) == set(runs)
    assert store.read_run(next(iter(runs))) is None and not path.exists()
    assert store.indexed_keys(runs) == set() and all(store.read_run(k) is None for k in runs)


def test_a_store_of_one_plain_file_a_run_is_recomputed(tmp_path):
    """Run files of the older store format (one plain netCDF file a run, its own index line): not
    read, removed at the store's start, their runs computed again."""
    store = RunStore(tmp_path, "s")
    store.runs.mkdir(parents=True)
    key = "a" * 64
    fake_run(n_records=4, seed=1).assign_attrs(run_key=key).to_netcdf(store.run_path(key))
    data = store.run_path(key).read_bytes()
    store.index_path.write_text(json.dumps({"key": key, "size": len(data), "digest": file_digest(data)}) + "\n")
    with store.locked():
        store.create()
    assert not store.run_path(key).exists() and store.stored_keys() == set()


def test_resume_and_status_trust_the_index_and_the_assembly_verifies(tmp_path):
    """No run file is opened to say what is stored; a damaged file is found where it is read."""
    plan = make_plan(parse_spec(small_spec(replicas=4)))
    store = RunStore(tmp_path, "small")
    with store.locked():
        keys = prepare_store(store, plan)
    for i, key in enumerate(keys[:10]):
        store.write_runs({key: fake_run(n_records=4, seed=i)})
    store.run_path(keys[1]).write_bytes(b"damaged, and of another size")
    store.run_path(keys[2]).unlink()
    store.write_failure(keys[3], {"error": "raised"})  # an older failure of a run stored since: stored
    store.write_failure(keys[20], {"error": "raised"})
    assert store.status() == Status(planned=32, done=9, failed=1)
    todo = runs_to_compute(plan, keys, store)
    assert [r.key for r in todo] == [keys[2]] + [k for k in keys[10:] if k != keys[20]]
    assert todo[1] == plan.runs[10]
    assert len(runs_to_compute(plan, keys, store, retry_failed=True)) == 1 + 22
    assert store.read_run(keys[1]) is None and not store.run_path(keys[1]).exists()
    assert store.read_run(keys[0]).attrs["seed"] == 0


def test_a_folder_at_the_path_of_an_unindexed_run_is_named(tmp_path):
    plan = make_plan(parse_spec(small_spec(replicas=4)))
    store = RunStore(tmp_path, "small")
    with store.locked():
        keys = prepare_store(store, plan)
    store.run_path(keys[5]).mkdir()
    with pytest.raises(store_module.StoreError, match=f"{keys[5]}.nc: is a folder where a run file belongs"):
        runs_to_compute(plan, keys, store)
