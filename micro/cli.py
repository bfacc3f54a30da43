"""``epmsweep micro``: prepare a glass, measure its initial state, ingest a dump, shear particles."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from epmsweep.engine import ImposedRate, ImposedStress, ParameterError
from epmsweep.engine.files import save_dataset
from epmsweep.sweep.client import add_client_options, add_config_option, client_from_args

from .lammps_library import require_lammps


def cmd_prepare(args: argparse.Namespace) -> int:
    from .model import GlassModel
    from .preparation import QuenchProtocol, prepare_glass

    protocol = QuenchProtocol(args.T_melt, args.t_melt, args.rate, args.T_final, args.anneal)
    require_lammps()  # after the arguments are checked
    glass = prepare_glass(args.n, protocol, args.seed, GlassModel(potential=args.potential))
    print(f"{glass.save(args.output)}: {glass.n} particles, E/N = {glass.attrs['energy_per_particle']:.5f}")
    return 0


def _report(state, path: Path) -> None:
    state.save(path)
    print(
        f"{path}: {state.L} x {state.L} cells, mu = {state.shear_modulus:.3f}, mean threshold "
        f"{state.threshold.mean():.3f}, mean stress {state.stress.mean():+.4f}"
    )


def cmd_measure(args: argparse.Namespace) -> int:
    from .configuration import Configuration
    from .frozen_matrix import FrozenMatrixProbe
    from .initial_state import measure_initial_state

    clients = client_from_args(args)  # options checked here; the cluster starts at the `with`
    glass = Configuration.load(args.glass)
    probe = FrozenMatrixProbe(strain_step=args.strain_step, cutout=not args.full_system)
    output = Path(args.output)
    require_lammps()  # before any cluster starts: the modulus is measured here, the thresholds on the workers
    with clients as client:
        state = measure_initial_state(
            glass, args.grid, probe=probe, client=client, out=args.store or output.parent, name=output.stem
        )
    _report(state, output)
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from .ingest import initial_state_from_dump

    clients = client_from_args(args)  # options checked here; the cluster starts at the `with`
    threshold = None
    if args.thresholds:
        path = Path(args.thresholds)
        if not path.is_file():
            raise ParameterError(str(path), "threshold map file does not exist")
        threshold = np.loadtxt(path, ndmin=2)
    if threshold is None or args.shear_modulus is None:
        require_lammps()  # frozen-matrix probes or the modulus are measured; a dump with both given needs none
    output = Path(args.output)
    with clients as client:
        state = initial_state_from_dump(
            args.dump, args.grid, threshold=threshold, shear_modulus=args.shear_modulus,
            stress_column=args.stress_column, client=client, out=args.store or output.parent, name=output.stem,
        )  # fmt: skip
    _report(state, output)
    return 0


def cmd_shear(args: argparse.Namespace) -> int:
    from .configuration import Configuration
    from .model import Dissipation
    from .rheology import shear

    if (args.rate is None) == (args.stress is None):
        raise ParameterError("--rate/--stress", "give exactly one of --rate and --stress")
    if args.rate is not None:
        protocol = ImposedRate(args.rate, strain_end=args.strain_end, n_records=args.n_records)
    else:
        protocol = ImposedStress(args.stress, t_end=args.t_end, n_records=args.n_records)
    glass, dissipation = Configuration.load(args.glass), Dissipation(args.dissipation, args.zeta)
    require_lammps()  # after the arguments are checked
    ds = shear(glass, protocol, dissipation=dissipation)
    save_dataset(ds, args.output)
    print(f"{args.output}: {ds.sizes[protocol.record_dim]} records, final stress {float(ds.stress[-1]):.4f}")
    return 0


STORE_HELP = "folder of the per-probe store, as --out of the sweep commands (default: next to output)"


def add_micro_parser(sub) -> None:
    """Add ``epmsweep micro ...`` to the ``epmsweep`` command's subparsers."""
    micro = sub.add_parser("micro", help="particle simulations with LAMMPS: glasses, initial states, reference curves")
    msub = micro.add_subparsers(dest="micro_command", required=True)

    p = msub.add_parser("prepare", help="melt, quench and minimise a 2D binary LJ glass")
    p.add_argument("output", help="configuration file to write (netCDF)")
    p.add_argument("--n", type=int, default=1024, help="particles (default 1024)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--T-melt", dest="T_melt", type=float, default=1.0, help="liquid temperature (default 1.0)")
    p.add_argument("--t-melt", dest="t_melt", type=float, default=50.0, help="time in the liquid (default 50)")
    p.add_argument("--rate", type=float, default=math.inf, help="cooling rate dT/dt (default inf: instantaneous)")
    p.add_argument("--T-final", dest="T_final", type=float, default=0.3, help="end of the cooling (default 0.3)")
    p.add_argument("--anneal", type=float, default=0.0, help="time held at T_final (default 0)")
    p.add_argument("--potential", choices=["shifted", "smooth"], default="shifted")
    p.set_defaults(func=cmd_prepare)

    p = msub.add_parser("measure", help="stress map, frozen-matrix thresholds (a Dask sweep) and modulus of a glass")
    p.add_argument("glass", help="configuration file (from `epmsweep micro prepare`)")
    p.add_argument("output", help="initial-state file to write (netCDF, loadable by the engine and sweep files)")
    p.add_argument("--grid", type=int, default=None, help="cells per side (default: cells of about 9.88 sigma)")
    p.add_argument("--strain-step", type=float, default=1e-4, help="quasistatic strain step of the probes")
    p.add_argument("--full-system", action="store_true", help="probe on the full system instead of cut-outs")
    p.add_argument("--out", "--store", dest="store", default=None, help=STORE_HELP)
    add_client_options(p, mpi=False)  # LAMMPS needs MPICH in-process: no mpirun-launched workers
    add_config_option(p)
    p.set_defaults(func=cmd_measure)

    p = msub.add_parser("ingest", help="initial state from your own LAMMPS dump (positions, per-atom stress)")
    p.add_argument("dump", help="text dump with id type x y and the xy column of compute stress/atom")
    p.add_argument("output", help="initial-state file to write (netCDF)")
    p.add_argument("--grid", type=int, default=None, help="cells per side (default: cells of about 9.88 sigma)")
    p.add_argument("--stress-column", default=None, help="name of the xy stress column (default: the only c_*[4])")
    p.add_argument("--thresholds", default=None, help="text file of an L x L threshold map (default: frozen matrix)")
    p.add_argument("--shear-modulus", type=float, default=None, help="mu (default: measured)")
    p.add_argument("--out", "--store", dest="store", default=None, help=STORE_HELP)
    add_client_options(p, mpi=False)  # LAMMPS needs MPICH in-process: no mpirun-launched workers
    add_config_option(p)
    p.set_defaults(func=cmd_ingest)

    p = msub.add_parser("shear", help="particle run at imposed rate or imposed stress (feedback)")
    p.add_argument("glass", help="configuration file")
    p.add_argument("output", help="dataset to write (netCDF; lattice variable names)")
    p.add_argument("--rate", type=float, default=None, help="imposed shear rate")
    p.add_argument("--strain-end", type=float, default=1.0, help="run length in strain (imposed rate)")
    p.add_argument("--stress", type=float, default=None, help="imposed stress sigma_0 (feedback B = 1)")
    p.add_argument("--t-end", type=float, default=100.0, help="run length in time (imposed stress)")
    p.add_argument("--n-records", type=int, default=100)
    p.add_argument("--dissipation", choices=["pairwise", "particle"], default="pairwise")
    p.add_argument("--zeta", type=float, default=1.0, help="dissipation coefficient (default 1)")
    p.set_defaults(func=cmd_shear)
