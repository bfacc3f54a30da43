"""``simulate``: one lattice run from an initial state under a protocol, as an xarray Dataset."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import NamedTuple

import numpy as np
import xarray as xr

from . import deferred, quasistatic, stepping
from .errors import EndlessAvalancheError, NumericalInstabilityError, ParameterError
from .initial_state import InitialState
from .parameters import ModelParameters
from .protocols import Drive, ImposedRate, ImposedStress, Protocol, Quasistatic
from .redistribution import Kernel, lattice_kernel
from .thresholds import ThresholdLaw
from .variables import entry
from .version import RESULT_FORMAT_VERSION, __version__

REDISTRIBUTION = ("auto", "deferred", "sparse", "fft")


CAPACITY_MAX = 1024
"""Most pending sites of a deferred stretch at any L (``deferred_capacity``)."""


def deferred_capacity(n_sites: int, defer_max: int) -> int:
    """Most pending sites of a deferred stretch (``engine.deferred``); past them it ends early.
    Its kernel matrix reserves this x (n_sites + 8) x 8 bytes of address space (auto: 2 MB at
    L = 32, 15 MB at L = 64, 110 MB at L = 128, 8 kB x n_sites beyond), of which only the part in
    use becomes resident (``deferred.reserved``: no transparent huge pages)."""
    return min(n_sites, 2 * defer_max + 64, CAPACITY_MAX)


def deferral_limit(L: int) -> int:
    """Number of plastic sites below which the deferred redistribution is the fastest.

    Empirical rule from ``benchmarks/crossover.py``: none at L = 16 (adding kernels to 256 sites
    costs less than the bookkeeping), about 3L from L = 32 to 128 (the deferred cost grows about
    as the square of the plastic sites, the FFT pair's as N log N), L from L = 256 on (about even
    with the FFT pair from ~300 plastic sites at L = 256), and at most 480, so that the pending
    sites of a stretch (up to twice the plastic ones + 64) fit in ``CAPACITY_MAX``: beyond it the
    plastic sites would add their kernels eagerly (cost plastic x N).
    """
    if L < 32:
        return 0
    return 3 * L if L <= 128 else min(L, (CAPACITY_MAX - 64) // 2)


def fft_crossover(L: int) -> int:
    """Number of plastic sites from which one FFT pair is cheaper than adding one kernel per site.

    Empirical rule from ``benchmarks/crossover.py`` (measured crossovers about 256, 128, 64 and
    48-64 at L = 16, 32, 64, 128): adding kernels costs ~N per plastic site (four sites per pass),
    the FFT pair ~N log N per step.
    """
    return max(48, 4096 // L)


def flush_fft_limit(L: int) -> int:
    """Number of sites from which a deferred flush adds their field (the pending increments, the
    relaxed sites' bounds) with one FFT pair instead of one kernel each (``deferred.add_field``):
    ``fft_crossover(L)`` from L = 128 on, where a flush of the hundreds of pending sites by kernels
    costs several FFT pairs (``benchmarks/README.md``, crossover section: runs at L = 128 take 0.83-1.01
    of their time with kernel flushes); never below, where it gained nothing and the kernels are kept."""
    return fft_crossover(L) if L >= 128 else L * L + 1


def redistribution_limits(L: int, redistribution: str) -> tuple[int, int, int]:
    """(fft_min, defer_max, flush_fft_min) of the time loop for a mode of ``simulate``: FFTs from
    fft_min plastic sites on, deferral from ``stepping.DEFER_MIN`` up to below defer_max, else
    kernels added; a flush of ``"auto"`` uses an FFT pair from flush_fft_min pending sites."""
    n = L * L
    fft_min = {"auto": deferral_limit(L) or fft_crossover(L), "fft": 1}.get(redistribution, n + 1)
    defer_max = {"auto": deferral_limit(L), "deferred": n + 1}.get(redistribution, 0)
    return fft_min, defer_max, flush_fft_limit(L) if redistribution == "auto" else n + 1


class _Loop(NamedTuple):
    """The state of a run's time loop common to every protocol (``stepping``)."""

    lattice: stepping.Lattice
    drive: Drive
    rates: stepping.Rates
    law: ThresholdLaw
    kernel: Kernel
    paths: stepping.Paths
    work: stepping.Work

    def deferral(self) -> deferred.Deferral:
        n = self.lattice.s.size
        return deferred.deferral(n, deferred_capacity(n, self.paths.defer_max))


NONFINITE = "the stress or the plastic strain became non-finite (NaN or inf)"


Recorded = tuple[dict, stepping.Snapshots, np.ndarray]
"""The values of a run's variables by name, its snapshots and their clock."""


def _time_stepped(loop: _Loop, protocol: ImposedRate | ImposedStress, dt: float, rng) -> Recorded:
    """The records of a time-stepped run (``stepping.run``), its snapshots and their clock."""
    n = loop.lattice.s.size
    sched = protocol.schedule(dt)
    records, snapshots = stepping.recorders(sched, n)
    outcome = stepping.run(*loop[:6], loop.deferral(), loop.work, records, snapshots, sched.n_steps, rng)
    if outcome.status != stepping.STATUS_OK:
        raise NumericalInstabilityError(NONFINITE)
    time = sched.record_steps * dt
    values = {
        "time": time, "stress": records.stress, "plastic_strain": records.plastic_strain,
        "plastic_fraction": records.n_plastic / n, **protocol.clock_values(time, records.plastic_strain, outcome, dt),
        protocol.record_dim: sched.record_clock,
    }  # fmt: skip
    return values, snapshots, sched.snapshot_clock


def _quasistatic(loop: _Loop, protocol: Quasistatic, dt: float, rng) -> Recorded:
    """The records of a quasistatic run (``quasistatic.shear``), its snapshots and their clock."""
    n, mu = loop.lattice.s.size, loop.drive.shear_modulus
    strains = np.asarray(sorted(set(protocol.snapshot_strains)), dtype=float)
    goal = quasistatic.Goal(
        math.inf if protocol.strain_end is None else protocol.strain_end,
        quasistatic.MAX_AVALANCHES if protocol.n_avalanches is None else protocol.n_avalanches,
        protocol.max_steps(dt), strains,
    )  # fmt: skip
    _, snapshots = stepping.recorders(stepping.Schedule(0, np.zeros(0, np.int64), np.zeros(strains.size, np.int64),
                                                        np.zeros(0), strains), n)  # fmt: skip
    records, progress = quasistatic.shear(*loop[:6], loop.deferral(), loop.work, goal, snapshots, rng)
    if progress.status == quasistatic.STATUS_ENDLESS:
        raise EndlessAvalancheError(
            f"avalanche {progress.count} (at strain {progress.strain:.6g}) did not end within max_duration = "
            f"{protocol.max_duration:g} time units: raise max_duration if so long an avalanche is expected"
        )
    if progress.status != stepping.STATUS_OK:
        raise NumericalInstabilityError(NONFINITE)
    curve = np.concatenate([[loop.drive.start_stress], records.stress_before, [progress.sigma_ext]])
    strain = np.concatenate([[0.0], records.strain, [progress.strain]])
    peak = int(np.argmax(curve))
    values = {
        "avalanche": np.arange(records.strain.size), "strain": records.strain,
        "stress_before": records.stress_before, "stress_after": records.stress_after,
        "stress_drop": records.stress_before - records.stress_after, "avalanche_size": records.increments / mu,
        "activations": records.activations, "avalanche_duration": records.steps * dt,
        "peak_stress": curve[peak], "strain_at_peak": strain[peak],
    }  # fmt: skip
    return values, snapshots, strains


def _seed_attrs(seed) -> dict:
    if isinstance(seed, np.random.SeedSequence):
        return {"seed_entropy": str(seed.entropy), "seed_spawn_key": str(list(seed.spawn_key))}
    if isinstance(seed, np.random.Generator):
        return {"seed_entropy": "external numpy Generator", "seed_spawn_key": "[]"}
    return {"seed_entropy": str(int(seed)), "seed_spawn_key": "[]"}


Entry = tuple[tuple[str, ...], np.ndarray, dict]
"""A variable of a run: (dims, values, attributes), the tuple form xarray takes."""


class RunRecord(NamedTuple):
    """One run's results as plain arrays (``simulate_record``), before they become the Dataset that
    ``simulate`` returns (``to_dataset``): what a sweep's worker stores without building one."""

    data: dict[str, Entry]
    """Data variables by name."""
    coords: dict[str, Entry]
    """Coordinates by name (the clocks; with snapshots, their clock and ``y``, ``x``)."""
    attrs: dict
    """Parameters, seed, versions and step counters."""

    @property
    def variables(self) -> dict[str, Entry]:
        """Data variables, then coordinates."""
        return {**self.data, **self.coords}

    @property
    def sizes(self) -> dict[str, int]:
        """The length of every dim of the run's variables."""
        return {d: n for dims, values, _ in self.variables.values() for d, n in zip(dims, values.shape, strict=True)}

    def to_dataset(self) -> xr.Dataset:
        return xr.Dataset(self.data, coords=self.coords, attrs=self.attrs)

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> RunRecord:
        def entries(variables) -> dict[str, Entry]:
            return {str(n): (v.dims, v.values, dict(v.attrs)) for n, v in variables.items()}

        return cls(entries(ds.data_vars), entries(ds.coords), dict(ds.attrs))


def simulate(
    params: ModelParameters,
    initial_state: InitialState,
    protocol: Protocol,
    seed: int | np.random.SeedSequence | np.random.Generator,
    *,
    redistribution: str = "auto",
    fast_forward: bool = True,
) -> xr.Dataset:
    """Run the lattice model once.

    Parameters
    ----------
    params : ModelParameters
        Model parameters; ``params.L`` must match the initial state.
    initial_state : InitialState
        Threshold and stress maps (L, L) and the shear modulus mu.
    protocol : ImposedRate, ImposedStress or Quasistatic
        Drive, run length, recording cadence and snapshot times.
    seed : int, SeedSequence or Generator
        Source of the run's random stream (a Generator is used as given; nothing global).
    redistribution : {"auto", "deferred", "sparse", "fft"}
        How the plastic strain increments are propagated: "sparse" adds the real-space kernel of
        every plastic site at every step, "fft" uses an FFT pair at every step, "deferred" defers
        the real-space redistribution (``engine.deferred``) whenever its sites fit (else
        "sparse"); "auto" defers below ``deferral_limit(L)`` plastic sites (its flushes by FFT
        from ``flush_fft_limit(L)`` sites) and uses FFTs above (below L = 32: adds kernels below
        ``fft_crossover(L)``, FFTs above). All take the same
        switching decisions.
    fast_forward : bool
        Jump over purely elastic stretches under imposed rate (identical results).

    Returns
    -------
    xarray.Dataset
        Variables declared in ``engine.variables``, on the protocol's clock dims. Imposed rate:
        series ``stress`` (Sigma), ``strain_rate``, ``plastic_strain``, ``plastic_fraction`` indexed
        by ``strain`` (the requested record strains; exact ``time`` as a coordinate), scalars
        ``peak_stress``, ``strain_at_peak``. Imposed stress: series ``strain`` (since the stress
        step), ``stress``, ``strain_rate``, ``plastic_strain``, ``plastic_fraction`` indexed by
        ``time``, scalars ``stuck`` (bool), ``arrest_time``. When snapshots are requested, fields
        ``local_stress``, ``threshold``, ``plastic`` (bool) on (``snapshot_strain`` or
        ``snapshot_time``, ``y``, ``x``). Quasistatic: per avalanche (dim ``avalanche``) ``strain``
        and ``stress_before`` at its trigger, ``stress_after``, ``stress_drop``, ``avalanche_size``
        (plastic strain summed over sites), ``activations``, ``avalanche_duration`` (from the
        trigger, activation delays included), scalars ``peak_stress``, ``strain_at_peak``;
        snapshots on ``snapshot_strain``. Parameters, seed and versions in ``attrs``.

    Raises
    ------
    EndlessAvalancheError
        A quasistatic avalanche outlasted the protocol's ``max_duration``.
    """
    return simulate_record(
        params, initial_state, protocol, seed, redistribution=redistribution, fast_forward=fast_forward
    ).to_dataset()


def simulate_record(
    params: ModelParameters,
    initial_state: InitialState,
    protocol: Protocol,
    seed: int | np.random.SeedSequence | np.random.Generator,
    *,
    redistribution: str = "auto",
    fast_forward: bool = True,
) -> RunRecord:
    """``simulate``, its results as plain arrays (``RunRecord``): the same values, without the
    cost of building a Dataset (a sizeable part of a short run's)."""
    if not isinstance(params, ModelParameters):
        raise ParameterError("params", "must be a ModelParameters")
    if not isinstance(initial_state, InitialState):
        raise ParameterError("initial_state", "must be an InitialState")
    if not isinstance(protocol, (ImposedRate, ImposedStress, Quasistatic)):
        raise ParameterError("protocol", "must be ImposedRate, ImposedStress or Quasistatic")
    if initial_state.L != params.L:
        raise ParameterError("initial_state", f"is {initial_state.L} x {initial_state.L} but L = {params.L}")
    if redistribution not in REDISTRIBUTION:
        raise ParameterError("redistribution", f"must be one of {REDISTRIBUTION}, got {redistribution!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    L, dt = params.L, params.dt
    stress0 = initial_state.stress.ravel()
    quasi = isinstance(protocol, Quasistatic)  # most steps with one to a few plastic sites
    defer_min, horizon = (1, stepping.TRACK_HORIZON) if quasi else (stepping.DEFER_MIN, 0.0)
    loop = _Loop(
        stepping.lattice(stress0 - np.mean(stress0), initial_state.threshold.ravel()),
        protocol.drive(float(np.mean(stress0)), initial_state.shear_modulus, dt),
        stepping.rates(dt, params.tau, params.tau_pl, params.tau_res), params.thresholds.compiled(),
        lattice_kernel(L, params.kernel, params.normalise_self),
        stepping.Paths(*redistribution_limits(L, redistribution), fast_forward, defer_min, horizon), stepping.work(L),
    )  # fmt: skip
    values, snapshots, snapshot_clock = (_quasistatic if quasi else _time_stepped)(loop, protocol, dt, rng)

    def declare(names) -> dict:
        return {name: entry(name, values[name], protocol) for name in names}

    coords = declare((protocol.record_dim, *protocol.record_coords))
    data = declare((*protocol.series, *protocol.scalars))
    n_snap = snapshot_clock.size
    if n_snap:  # no snapshot variables at all when none were asked for
        values.update({protocol.snapshot_dim: snapshot_clock, "y": np.arange(L), "x": np.arange(L)})
        coords.update(declare((protocol.snapshot_dim, "y", "x")))
        fields = {"local_stress": snapshots.stress, "threshold": snapshots.threshold, "plastic": snapshots.plastic}
        values.update({k: v.reshape(n_snap, L, L) for k, v in fields.items()})
        data.update(declare(fields))
    return RunRecord(
        data,
        coords,
        {
            **params.to_attrs(),
            **protocol.to_attrs(),
            "shear_modulus": initial_state.shear_modulus,
            "initial_state": initial_state.name,
            **_seed_attrs(seed),
            "redistribution": redistribution,
            "fast_forward": int(fast_forward),
            **{name: int(loop.work.counts[0][name]) for name in stepping.COUNTS.names},
            "epmsweep_version": __version__,
            "result_format": RESULT_FORMAT_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    )
