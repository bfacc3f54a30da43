"""Sweep service figures, each against a baseline measured in the same run.

1. Throughput: N runs of about a second each on the 2-worker local cluster (the service: plan,
   submit, transfer, atomic write, assembly) against the same runs in a plain serial loop of
   ``simulate`` in a fresh process without Dask (target: >= 1.9x on two cores), and against two
   such loops side by side in two processes, each on half the runs: what two cores give two
   independent processes here, the ceiling of any two workers doing the loop's work.
2. Very short runs (~1 ms): wall time per run through the service (batched tasks, workers writing
   their files, assembly) against a serial loop of the same runs (target: service >= 1.5x faster)
   and two loops side by side, and against a serial loop of ``simulate_record`` (what the workers
   compute: the same values, no Dataset built per run), and the driver's CPU per run (target
   <= 0.5 ms); medians of three interleaved rounds.
3. Assembly of the 10^4 runs of step 2 (stored as the service wrote them): wall time and
   peak memory of the assembling process (target: < 30 s, bounded memory).
4. Driver ingestion with negligible compute: ``execute`` of 2 x 10^4 runs whose compute returns one
   stored result (workers write the batch files, the driver dispatches and indexes):
   runs per second and the driver's CPU per run (target: >= 2000 runs/s, <= 0.5 ms a run).
5. ``--plan`` (alone): a sweep of 10^6 runs (1000 replicas x 1000 shear rates, L = 16): planning
   (every key made, the plan written), finding the runs to compute while none is stored (the 10^6
   runs are not made), ``status`` and the resume check with every run stored, each in a fresh
   process: wall seconds and peak memory (target: each < 10 s, < 1 GB).
6. ``--assembly`` (alone): assembly of 10^4 and of 10^5 stored runs (L = 8, 101 records, 100 runs a
   file) in a fresh process each: wall seconds and peak memory, and the memory above that of
   importing the package at both sizes (target: < 60 s; memory bounded, not growing with the runs).

Run: ``python benchmarks/sweep.py [--quick | --short | --plan | --assembly]`` (quick: 40 long runs,
2000 short runs, 4000 ingested; short: lines 2 and 3 alone).
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from epmsweep.engine import simulate, simulate_record
from epmsweep.engine.files import file_digest
from epmsweep.sweep import RunStore, make_plan, open_client, parse_spec, run_sweep
from epmsweep.sweep.execute import compute_run, execute, prepare_store, runs_to_compute
from epmsweep.sweep.store import IndexEntry, file_name


def spec(name: str, replicas: int, L: int, strain_end: float) -> dict:
    return {
        "name": name,
        "seed": 1,
        "replicas": replicas,
        "model": {"L": L},
        "initial_states": {"rejuvenated": {"kind": "rejuvenated"}},
        "imposed_rate": {"shear_rate": [1e-2], "strain_end": strain_end, "n_records": 100},
    }


def serial(sweep: dict, records: bool = False) -> float:
    """Wall seconds of a plain loop of ``simulate`` over the runs of ``sweep`` (``records``: of
    ``simulate_record``, the workers' own compute, without a Dataset a run)."""
    run_once = simulate_record if records else simulate
    t0 = time.perf_counter()
    for run in make_plan(parse_spec(sweep)).runs:
        params, state, protocol = run.build()
        run_once(params, state, protocol, run.dynamics_seed)
    return time.perf_counter() - t0


def loops(sweep: dict, parts: int = 1, records: bool = False) -> float:
    """Wall seconds of ``serial`` in ``parts`` fresh processes at once, each on ``1 / parts`` of the
    runs of ``sweep`` (its replicas split; the engine loaded in every process before the clocks
    start; part i seeded ``seed + i``): the slowest. ``parts = 1`` is the plain serial loop of the
    service's runs in a script without Dask; ``parts = 2`` is what two cores give two independent
    processes here; ``records``: loops of ``simulate_record``."""
    code = (
        "import sys; sys.path.insert(0, {here!r}); from sweep import serial, spec\n"
        "serial(spec('warm', 2, 8, 0.05)); print('ready', flush=True); sys.stdin.readline()\n"
        "print(serial({part!r}, {records!r}))"
    )
    here, n = str(Path(__file__).parent), sweep["replicas"] // parts
    shares = [{**sweep, "seed": sweep["seed"] + i, "replicas": n} for i in range(parts)]
    procs = [
        subprocess.Popen([sys.executable, "-c", code.format(here=here, part=part, records=records)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for part in shares
    ]  # fmt: skip
    for p in procs:
        p.stdout.readline()
    for p in procs:  # all loaded: start together
        p.stdin.write("\n")
        p.stdin.flush()
    return max(float(p.communicate()[0]) for p in procs)


def service(sweep: dict, out: Path, client) -> tuple[float, float]:
    """Wall time of ``run_sweep`` and CPU time of this process (the driver: client, embedded
    scheduler, index, batch sizing, assembly's writes) during it, in seconds."""
    t0, c0 = time.perf_counter(), time.process_time()
    run_sweep(sweep, out=out, client=client, progress=False)
    return time.perf_counter() - t0, time.process_time() - c0


def copied(template, run):
    """The compute of the ingestion figure: one stored result, whatever the run."""
    return "ok", template


def ingestion(out: Path, client, n_runs: int) -> tuple[float, float]:
    """Wall time and driver CPU of ``execute`` for ``n_runs`` runs whose compute is ``copied``
    (negligible beside the bookkeeping), sized as runs of 10 us each."""
    plan = make_plan(parse_spec(spec("ingest", n_runs, 8, 0.05)))
    store = RunStore(out, "ingest")
    template = compute_run(plan.runs[0])[1]
    with store.locked():
        runs = runs_to_compute(plan, prepare_store(store, plan), store)
        t0, c0 = time.perf_counter(), time.process_time()
        counts = execute(runs, store, client, progress=False, compute=functools.partial(copied, template),
                         seconds=lambda run: 1e-5)  # fmt: skip
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert counts["done"] == n_runs and len(store.indexed_keys(r.key for r in runs)) == n_runs, counts
    return wall, cpu


def assembly(out: Path, name: str) -> tuple[float, float, float]:
    """Wall time and peak resident memory (MiB) of ``assemble`` in a fresh process, and the peak of
    a process that only imports the package (the baseline of the memory figure)."""
    code = (
        "import resource, sys, time; from epmsweep.sweep import assemble; t0 = time.perf_counter();"
        f"assemble({str(out)!r}, {name!r}); "
        "print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    baseline = (
        "import resource; import epmsweep.sweep; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    base_mem = float(subprocess.check_output([sys.executable, "-c", baseline]))
    wall, mem = map(float, subprocess.check_output([sys.executable, "-c", code]).split())
    return wall, mem, base_mem


def fresh_process(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; its printed words, then its wall seconds and peak
    resident memory (MiB)."""
    wrapped = (
        "import resource, time; t0 = time.perf_counter()\n" + code + "\n"
        "print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    return subprocess.check_output([sys.executable, "-c", wrapped], text=True).split()


def bookkeeping(out: Path, replicas: int = 1000, n_rates: int = 1000) -> list[tuple[str, float, float]]:
    """Wall seconds and peak memory (MiB) of planning a sweep of ``replicas`` x ``n_rates`` runs
    (every key made, the store checked, the plan written), of finding its runs to compute while
    none is stored (planning again, as ``run_sweep`` does), of ``status`` and of the resume check
    (planning again and finding the runs to compute, as ``run_sweep`` does) of the same sweep with
    every run stored, each in a fresh process. The stored runs are empty files of 100 runs each
    with their index lines: neither step opens a run file."""
    sweep = spec("plan", replicas, 16, 1.0)
    sweep["imposed_rate"]["shear_rate"] = [1e-4 * (i + 1) for i in range(n_rates)]
    setup = (
        "from epmsweep.sweep import RunStore, make_plan, parse_spec\n"
        "from epmsweep.sweep.execute import prepare_store, runs_to_compute\n"
        f"spec = parse_spec({sweep!r}); plan = make_plan(spec); store = RunStore({str(out)!r}, 'plan')\n"
    )
    plan_code = setup + "with store.locked(): prepare_store(store, plan)"
    check = setup + "with store.locked(): print(len(runs_to_compute(plan, prepare_store(store, plan), store)))"
    figures = [("plan", *map(float, fresh_process(plan_code)))]
    todo = fresh_process(check)
    figures.append((f"runs to compute of the fresh sweep ({todo[0]})", *map(float, todo[1:])))
    store = RunStore(out, "plan")
    keys = store.read_plan()
    entries = {}
    for i in range(0, len(keys), 100):
        name = file_name(keys[i : i + 100])
        os.close(os.open(store.file_path(name), os.O_CREAT | os.O_WRONLY))
        entries.update(dict.fromkeys(keys[i : i + 100], IndexEntry(name, 0, file_digest(b""))))
    store.record_runs(entries)
    status = fresh_process(setup + "s = store.status(); assert s.done == s.planned == len(plan.runs), s; print(s.done)")
    figures.append((f"status ({status[0]} done)", *map(float, status[1:])))
    resume = fresh_process(check)
    figures.append((f"resume check ({resume[0]} to compute)", *map(float, resume[1:])))
    return figures


def assembly_at_scale(out: Path, n_files: int = 1000, per_file: int = 100) -> tuple[float, float, float]:
    """Wall seconds and peak memory (MiB) of assembling ``n_files`` x ``per_file`` stored runs (L = 8,
    101 records each) in a fresh process, and the peak of a process that only imports the package.
    The store holds ``per_file`` real runs, copied under every planned key, ``per_file`` to a file,
    as a sweep of short batched runs writes them."""
    sweep = spec("scale", per_file, 8, 0.05)
    sweep["imposed_rate"]["shear_rate"] = [1e-2 * (1 + i / n_files) for i in range(n_files)]
    plan = make_plan(parse_spec(sweep))
    store = RunStore(out, "scale")
    with store.locked():
        store.create()
        store.write_spec(plan.spec)
        store.write_plan(r.key for r in plan.runs)
        results = [compute_run(run)[1] for run in plan.runs[:per_file]]
        for i in range(0, len(plan.runs), per_file):
            store.write_runs({r.key: ds for r, ds in zip(plan.runs[i : i + per_file], results, strict=True)})
    return assembly(out, "scale")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--short", action="store_true", help="only the short runs and their assembly (lines 2 and 3)")
    parser.add_argument("--plan", action="store_true", help="only plan, status and resume check of a 10^6-run sweep")
    parser.add_argument("--assembly", action="store_true", help="only the assembly of 10^4- and 10^5-run sweeps")
    args = parser.parse_args()
    if args.assembly:
        above = {}
        for n_files in (100, 1000):
            with tempfile.TemporaryDirectory() as tmp:
                wall, mem, base_mem = assembly_at_scale(Path(tmp), n_files)
            above[n_files] = mem - base_mem
            print(f"6. assembly of {100 * n_files} runs: {wall:.1f} s (target < 60 s), peak RSS {mem:.0f} MiB "
                  f"(importing the package alone: {base_mem:.0f} MiB)", flush=True)  # fmt: skip
        print(f"6. memory above the import: {above[100]:.0f} MiB for 10^4 runs, {above[1000]:.0f} MiB for 10^5: "
              f"{above[1000] / max(above[100], 1.0):.1f}x for 10x the runs (bounded: a block of runs and a run file)")
        return
    if args.plan:
        with tempfile.TemporaryDirectory() as tmp:
            for step, seconds, mem in bookkeeping(Path(tmp)):
                print(f"5. {step} of a 10^6-run sweep: {seconds:.1f} s, peak RSS {mem:.0f} MiB (target < 10 s, < 1 GB)")
        return
    n_long, n_short, n_ingest = (40, 2000, 4000) if args.quick else (200, 10_000, 20_000)
    long_runs = spec("long", n_long, 32, 10.0)
    short_runs = spec("short", n_short, 8, 0.05)
    with tempfile.TemporaryDirectory() as tmp, open_client(n_workers=2) as client:
        out = Path(tmp)
        service(spec("warm", 2, 8, 0.05), out, client)  # workers import and load the engine once
        for step, runs, rounds in ((1, long_runs, 1), (2, short_runs, 3))[1 if args.short else 0 :]:
            n = runs["replicas"]
            measured = [
                (loops(runs), loops(runs, parts=2), loops(runs, records=True),
                 *service({**runs, "name": f"{runs['name']}-{r}"}, out, client))
                for r in range(rounds)
            ]  # fmt: skip
            t_serial, t_pair, t_records, t_service, cpu = np.median(measured, axis=0)  # interleaved: the host's noise
            print(f"{step}. {n} runs of ~{1e3 * t_serial / n:.2f} ms: serial loop {t_serial:.1f} s, 2-worker "
                  f"service {t_service:.1f} s (batched, workers write, assembly included): speed-up "
                  f"{t_serial / t_service:.2f}x (target >= {1.9 if step == 1 else 1.5}x); two serial loops side by "
                  f"side {t_pair:.1f} s ({t_serial / t_pair:.2f}x: what two cores give two loops here); serial loop "
                  f"of simulate_record (the workers' compute, no Dataset a run) {t_records:.1f} s, service "
                  f"{t_records / t_service:.2f}x that; driver CPU {1e3 * cpu / n:.2f} ms/run, {n / t_service:.0f} "
                  "runs/s")  # fmt: skip
        wall, mem, base_mem = assembly(out, "short-0")
        print(f"3. assembly of {n_short} runs: {wall:.1f} s (target < 30 s), "
              f"peak RSS {mem:.0f} MiB (importing the package alone: {base_mem:.0f} MiB)")
        if args.short:
            return
        wall, cpu = ingestion(out, client, n_ingest)
        print(f"4. ingestion of {n_ingest} runs of negligible compute: {n_ingest / wall:.0f} runs/s "
              f"(target >= 2000), driver CPU {1e3 * cpu / n_ingest:.3f} ms/run (target <= 0.5)")


if __name__ == "__main__":
    main()
