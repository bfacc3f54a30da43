"""The ``epmsweep`` command: plan, run, status, assemble, demo, plot, doctor, calibrate, micro.

``--out`` is the store folder (``<out>/<name>/runs``, ``<out>/<name>.nc``) for every command that
takes it; figures go to ``--figures`` (default: ``<dataset stem>_figures/`` next to the dataset).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from importlib.resources import files
from pathlib import Path

from epmsweep.deploy.config import KINDS, default_out, use_config_file
from epmsweep.engine import ParameterError, __version__
from epmsweep.engine.cost import DEFAULT_BUDGET
from epmsweep.micro.lammps_library import LammpsUnavailableError

from .assemble import open_results
from .client import add_client_options, add_config_option, client_from_args, log_without_tracebacks
from .execute import SweepIncomplete, assemble, assembled_path, run_sweep
from .plan import make_plan
from .spec import parse_spec
from .store import RunStore


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch system ending the job at its walltime, ``kill``): stop as on Ctrl-C."""


def _raise_terminated(signum, frame):
    raise Terminated


@contextlib.contextmanager
def _sigterm_stops_like_ctrl_c():
    """Turn SIGTERM into ``Terminated`` while the command runs, so that clusters and worker jobs are
    shut down on the way out instead of the process dying on the spot (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _add_out_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out", default=None,
        help="store folder: <out>/<name>/runs, the assembled <out>/<name>.nc (default: epmsweep.deploy.out: results)",
    )  # fmt: skip
    add_config_option(p)


def _add_figures_option(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--figures", default=None, metavar="DIR", help=f"folder of the PNG figures (default: {default})")


def _stored_sweep(out: str, name: str) -> RunStore:
    """The store of sweep ``name`` under ``out``, or ParameterError if there is none."""
    store = RunStore(out, name)
    if not store.has_plan() or not (store.root / "spec.json").is_file():
        raise ParameterError(name, f"no sweep of that name under {out} (no {store.plan_path})")
    return store


def _add_cluster_options(p: argparse.ArgumentParser) -> None:
    _add_out_option(p)
    add_client_options(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _check_out(out: str) -> None:
    """The output folder is, or can be made, a writable folder: checked before any cluster starts
    (nothing is made here)."""
    path = Path(out).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise ParameterError("--out", f"cannot make the output folder {out}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ParameterError("--out", f"cannot make the output folder {out}: {existing} is not writable")


def cmd_plan(args: argparse.Namespace) -> int:
    from .estimate import describe, describe_estimate, estimate

    spec = parse_spec(args.spec)
    plan = make_plan(spec)
    stored = RunStore(args.out, spec.name).indexed_keys(plan.keys())
    print(f"{spec.name}: {args.spec} -> {Path(args.out) / spec.name}")
    for line in describe(plan, stored):
        print(line)
    if getattr(args, "no_estimate", False):
        return 0
    sys.stdout.flush()
    est = estimate(plan, budget=args.budget)
    for line in describe_estimate(plan, stored, est, cores=getattr(args, "workers", None)):
        print(line)
    return 0


def _run(args: argparse.Namespace, spec_file: str) -> int:
    spec = parse_spec(spec_file)  # the whole file is validated before any cluster starts
    _check_out(args.out)
    cluster = client_from_args(args)  # started by run_sweep after the store's checks, if there is work ...
    # ... except under MPI, where every rank runs this command and only the client rank returns from forming it
    with cluster if args.cluster == "mpi" else contextlib.nullcontext() as client:
        tree = run_sweep(
            spec, out=args.out, client=client, cluster=lambda: cluster,
            retry_failed=getattr(args, "retry_failed", False), replace=getattr(args, "replace", False),
            progress=not args.no_progress,
        )  # fmt: skip
    name = tree.attrs["name"]
    tree.close()
    status = RunStore(args.out, name).status()
    print(f"{name}: {status.done} done, {status.failed} failed, {status.pending} pending -> {Path(args.out) / name}.nc")
    return 0 if status.failed == 0 else 1


def _plot(tree, outdir: Path, args: argparse.Namespace | None = None) -> None:
    from epmsweep.analysis import write_figures

    vector, dpi = getattr(args, "vector", "pdf"), getattr(args, "dpi", 300)
    for path in write_figures(tree, outdir, formats=("png", vector), dpi=dpi):
        print(f"figure: {path}")


def cmd_run(args: argparse.Namespace) -> int:
    if args.dry_run:
        return cmd_plan(args)
    return _run(args, args.spec)


def cmd_demo(args: argparse.Namespace) -> int:
    spec = str(files("epmsweep.sweep") / "demo.yaml")
    code = _run(args, spec)
    _plot(assemble(args.out, "demo"), Path(args.figures or figures_folder(assembled_path(args.out, "demo"))))
    return code


def cmd_status(args: argparse.Namespace) -> int:
    out = Path(args.out)
    names = args.names
    if not names and out.is_dir():
        names = sorted(p.name for p in out.iterdir() if RunStore(out, p.name).has_plan())
    if not names:
        print(f"no sweeps under {out}")
        return 1
    stores = [_stored_sweep(args.out, name) for name in names]
    for name, store in zip(names, stores, strict=True):
        s = store.status()
        print(f"{name}: {s.planned} planned, {s.done} done, {s.pending} pending, {s.failed} failed")
        for key, rec in sorted(store.failures().items()):
            first = next(iter((rec.get("error") or "").splitlines()), "")
            where = f"{rec.get('protocol', '')} {rec.get('coords', {})}"
            print(f"  failed {key[:12]} {where}: {rec.get('kind', '')}: {first}")
    return 0


def cmd_assemble(args: argparse.Namespace) -> int:
    _stored_sweep(args.out, args.name)
    tree = assemble(args.out, args.name)
    print(f"{Path(args.out) / args.name}.nc: {tree.attrs['runs_completed']} of {tree.attrs['runs_planned']} runs")
    return 0


def figures_folder(dataset: Path) -> Path:
    """Default folder of a dataset's figures: ``<dataset stem>_figures`` next to it."""
    return dataset.with_name(f"{dataset.stem}_figures")


def _dataset_path(dataset: str, out: str) -> Path:
    """An assembled dataset given as a path, or as a sweep name (``<out>/<name>.nc``)."""
    path = Path(dataset)
    if path.is_file():
        return path
    by_name = assembled_path(out, dataset)
    if path.suffix != ".nc" and by_name.is_file():
        return by_name
    where = "no such file" if path.suffix == ".nc" or path.parent != Path() else f"neither a file nor {by_name}"
    raise ParameterError(dataset, f"no assembled dataset ({where})")


def cmd_plot(args: argparse.Namespace) -> int:
    path = _dataset_path(args.dataset, args.out)
    with open_results(path) as tree:
        _plot(tree, Path(args.figures) if args.figures else figures_folder(path), args)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from epmsweep.deploy.doctor import run_checks

    failed = 0
    for check in run_checks(args.cluster, submit=args.submit):
        failed += not check.ok
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    return 1 if failed else 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from epmsweep.calibrate import calibrate, parse_calibration

    spec = parse_calibration(args.calibration)  # the whole file is validated before any cluster starts
    _check_out(args.out)
    with client_from_args(args) as client:
        result = calibrate(spec, out=args.out, client=client, progress=not args.no_progress)
    best = result.history.attrs["best_candidate"]
    print(f"{spec.name}: best objective {result.best_objective:.6g} (evaluation {best})")
    for name, value in result.best.items():
        print(f"  {name} = {value:.6g} +- {result.best_err[name]:.2g}")
    print(f"history: {result.path}")
    for path in result.figures:
        print(f"figure: {path}")
    return 0


def _add_calibrate_parser(sub) -> None:
    p = sub.add_parser("calibrate", help="fit model parameters to reference curves (resumes a killed calibration)")
    p.add_argument("calibration", help="calibration file (YAML)")
    _add_cluster_options(p)
    p.set_defaults(func=cmd_calibrate)


def _add_plan_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--budget", type=float, default=DEFAULT_BUDGET, metavar="SECONDS",
        help=f"CPU seconds of each calibration run of the estimate (default: {DEFAULT_BUDGET})",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="epmsweep", description="Elasto-plastic lattice sweeps on Dask.")
    parser.add_argument("--version", action="version", version=f"epmsweep {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plan", help="runs per protocol and axis, runs stored, estimated compute (nothing runs)")
    p.add_argument("spec", help="sweep file (YAML)")
    _add_out_option(p)
    _add_plan_options(p)
    p.add_argument("--workers", type=int, default=None, help="cores the wall time is estimated for (default: all)")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("run", help="run a sweep file (resumes: stored runs are skipped)")
    p.add_argument("spec", help="sweep file (YAML)")
    p.add_argument("--retry-failed", action="store_true", help="rerun the runs recorded as failed")
    p.add_argument("--dry-run", action="store_true", help="compute nothing: print what `epmsweep plan` prints")
    p.add_argument(
        "--replace", action="store_true",
        help="replace a different sweep of the same name under --out (its matching runs are reused)",
    )  # fmt: skip
    _add_cluster_options(p)
    _add_plan_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="run the embedded demo sweep and draw its figures")
    _add_cluster_options(p)
    _add_figures_option(p, "<out>/demo_figures")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("status", help="done / pending / failed runs per sweep")
    p.add_argument("names", nargs="*", help="sweep names (default: every sweep under --out)")
    _add_out_option(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("assemble", help="assemble the stored runs of a sweep into <out>/<name>.nc")
    p.add_argument("name", help="sweep name")
    _add_out_option(p)
    p.set_defaults(func=cmd_assemble)

    p = sub.add_parser("plot", help="draw the figures of an assembled dataset as PNG and PDF (or SVG)")
    p.add_argument("dataset", help="assembled netCDF file (<out>/<name>.nc), or a sweep name under --out")
    _add_out_option(p)
    _add_figures_option(p, "<dataset stem>_figures next to the dataset")
    p.add_argument("--vector", choices=("pdf", "svg"), default="pdf", help="vector format written beside each PNG")
    p.add_argument("--dpi", type=int, default=300, help="resolution of the PNG files (default 300, print)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("doctor", help="check the settings and the machine before running on a cluster")
    p.add_argument("--cluster", choices=[*KINDS, "mpi"], default=None, help="also check this kind of cluster")
    p.add_argument("--submit", action="store_true", help="with --cluster slurm|pbs: start one worker job and time it")
    add_config_option(p)
    p.set_defaults(func=cmd_doctor)

    _add_calibrate_parser(sub)

    from epmsweep.micro.cli import add_micro_parser  # particle simulations; LAMMPS loads only when they run

    add_micro_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log_without_tracebacks()
    try:
        with _sigterm_stops_like_ctrl_c():
            for path in getattr(args, "config", []):
                use_config_file(path)
            if hasattr(args, "out"):
                args.out = args.out or default_out()
            return args.func(args)
    except ParameterError as err:
        for line in str(err).splitlines():  # a sweep file's problems: one a line
            print(f"epmsweep: error: {line}", file=sys.stderr)
        return 2
    except SweepIncomplete as err:  # scheduler lost, an input changed: what finished is stored
        print(f"epmsweep: {err}", file=sys.stderr)
        return 1
    except LammpsUnavailableError as err:  # particle commands without the micro extra, or in an Open MPI process
        print(f"epmsweep: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        what = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        print(f"epmsweep: {what}; finished runs are stored, run the same command again to resume", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main())
