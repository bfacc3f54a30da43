"""Loading protocols: imposed shear rate (stress feedback, Eq. 2), imposed stress (creep) and
quasistatic shear (the gdot -> 0 limit, avalanche by avalanche)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .declarations import check_declared, declared
from .errors import ParameterError

MAX_RECORDS = 10**6


MAX_STEPS = 10**13
"""Longest run accepted, in time steps (about a month of compute at 4 million steps per second)."""


def _n_steps(name: str, duration: float, dt: float) -> int:
    n = duration / dt
    if not n < MAX_STEPS:
        raise ParameterError(name, f"the run would take {n:.3g} steps of dt = {dt:g}, more than {MAX_STEPS:.0e}")
    return int(round(n))


def _to_steps(name: str, times: np.ndarray, dt: float, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct steps nearest to ``times`` (sorted) and the index in ``times`` of each one's first time."""
    steps = np.rint(np.asarray(times, dtype=float) / dt)  # compared before the cast: 1e300 must not wrap
    if steps.size and not np.all(steps <= n_steps):
        raise ParameterError(name, f"lies beyond the end of the run (t = {n_steps * dt:g})")
    steps, first = np.unique(steps.astype(np.int64), return_index=True)
    return steps, first


class Drive(NamedTuple):
    """How a protocol drives the time loop, per time step dt."""

    start_stress: float  # external stress Sigma at t = 0
    load: float  # added to Sigma each step (mu gdot dt; 0 under imposed stress)
    stress_fixed: bool  # Sigma never changes: no stress feedback; an absorbing state ends the run
    shear_modulus: float  # mu: the plastic strain is the summed increments / (N mu)


class Outcome(NamedTuple):
    """What the time loop reports besides its records."""

    status: int  # 0: every recorded value finite
    arrest_step: int  # step of the absorbing state reached under fixed Sigma, or -1
    peak_stress: float  # largest Sigma
    peak_step: int  # its first step


class Schedule(NamedTuple):
    """When a run records, for a time step dt.

    ``record_clock`` and ``snapshot_clock`` are the values of the protocol's ``record_dim`` and
    ``snapshot_dim`` coordinates: the requested strains or times (a record or snapshot is taken at
    the time step nearest to them, within dt / 2), or the exact times of log-spaced records.
    """

    n_steps: int
    record_steps: np.ndarray  # (n_records,) int64, increasing, from 0
    snapshot_steps: np.ndarray  # (n_snapshots,) int64, increasing
    record_clock: np.ndarray  # (n_records,) float64
    snapshot_clock: np.ndarray  # (n_snapshots,) float64


@dataclass(frozen=True)
class ImposedRate:
    """Imposed shear rate: dSigma/dt = mu (gdot - mean plastic strain rate).

    The run ends at ``strain_end`` (strain gdot t) or at ``t_end``: give exactly one.
    Records are uniform in strain: ``n_records`` intervals from 0 to the end.

    Parameters
    ----------
    shear_rate : float
        gdot (1 / time), > 0.
    strain_end, t_end : float, optional
        Run length in strain or in time.
    n_records : int
        Number of recording intervals (n_records + 1 records, including t = 0).
    snapshot_strains : tuple of float
        Strains at which the fields (stress, threshold, plastic state) are stored.
    """

    shear_rate: float = declared(gt=0)
    strain_end: float | None = declared(None, gt=0)
    t_end: float | None = declared(None, gt=0)
    n_records: int = declared(200, ge=1, le=MAX_RECORDS)
    snapshot_strains: tuple[float, ...] = declared((), ge=0)

    name = "imposed_rate"
    primary_dim = "shear_rate"
    snapshot_dim = "snapshot_strain"
    series = ("stress", "strain_rate", "plastic_strain", "plastic_fraction")
    scalars = ("peak_stress", "strain_at_peak")

    def __post_init__(self) -> None:
        check_declared(self)
        if (self.strain_end is None) == (self.t_end is None):
            raise ParameterError("strain_end", "give exactly one of strain_end and t_end")

    @property
    def duration(self) -> float:
        return self.t_end if self.t_end is not None else self.strain_end / self.shear_rate

    @property
    def record_dim(self) -> str:
        """Records are uniform in strain and indexed by it (by time when the run length is ``t_end``)."""
        return "strain" if self.t_end is None else "time"

    @property
    def record_coords(self) -> tuple[str, ...]:
        """The other clock, a coordinate on ``record_dim``: exact time (or strain) of each record."""
        return ("time",) if self.t_end is None else ("strain",)

    def schedule(self, dt: float) -> Schedule:
        """When the run records, for time step ``dt``."""
        n = _n_steps("strain_end" if self.t_end is None else "t_end", self.duration, dt)
        records, first = np.unique(np.rint(np.linspace(0, n, self.n_records + 1)).astype(np.int64), return_index=True)
        end = self.strain_end if self.t_end is None else self.t_end
        strains = np.asarray(self.snapshot_strains, dtype=float)
        snaps, first_snap = _to_steps("snapshot_strains", strains / self.shear_rate, dt, n)
        return Schedule(n, records, snaps, np.linspace(0.0, end, self.n_records + 1)[first], strains[first_snap])

    def drive(self, mean_stress: float, shear_modulus: float, dt: float) -> Drive:
        """Sigma starts at the initial state's mean stress and gains mu gdot dt per step, less
        the mean plastic increment."""
        return Drive(mean_stress, shear_modulus * self.shear_rate * dt, False, shear_modulus)

    def clock_values(self, time: np.ndarray, plastic_strain: np.ndarray, outcome: Outcome, dt: float) -> dict:
        """``strain``, ``strain_rate`` at the record ``time`` and the scalars of the run."""
        return {
            "strain": self.shear_rate * time, "strain_rate": np.full(time.size, self.shear_rate),
            "peak_stress": outcome.peak_stress, "strain_at_peak": self.shear_rate * outcome.peak_step * dt,
        }  # fmt: skip

    def to_attrs(self) -> dict:
        return {
            "protocol": self.name,
            "shear_rate": self.shear_rate,
            "run_length": self.duration,
            "n_records": self.n_records,
        }


@dataclass(frozen=True)
class ImposedStress:
    """Imposed stress (creep): every local stress is shifted at t = 0 so that mean = ``stress``.

    Records are log-spaced in time from ``t_first_record`` to ``t_end`` (plus t = 0).
    The run stops early, exactly, when it reaches an absorbing (stuck) state.

    Parameters
    ----------
    stress : float
        Imposed external stress Sigma_0 (stress units), >= 0.
    t_end : float
        Run length (time units).
    n_records : int
        Number of log-spaced record times (duplicates after rounding to steps are merged).
    t_first_record : float, optional
        First log-spaced record time; default 10 dt.
    snapshot_times : tuple of float
        Times at which the fields are stored.
    """

    stress: float = declared(ge=0)
    t_end: float = declared(gt=0)
    n_records: int = declared(200, ge=1, le=MAX_RECORDS)
    t_first_record: float | None = declared(None, gt=0)
    snapshot_times: tuple[float, ...] = declared((), ge=0)

    name = "imposed_stress"
    primary_dim = "stress_imposed"
    record_dim = "time"
    record_coords = ()
    snapshot_dim = "snapshot_time"
    series = ("strain", "stress", "strain_rate", "plastic_strain", "plastic_fraction")
    scalars = ("stuck", "arrest_time")

    def __post_init__(self) -> None:
        check_declared(self)

    @property
    def duration(self) -> float:
        return self.t_end

    def schedule(self, dt: float) -> Schedule:
        """When the run records, for time step ``dt``: log-spaced records at their exact times."""
        n = _n_steps("t_end", self.t_end, dt)
        t_first = self.t_first_record if self.t_first_record is not None else 10 * dt
        if t_first >= self.t_end:
            raise ParameterError("t_first_record", f"must be < t_end = {self.t_end:g}")
        times = np.geomspace(t_first, self.t_end, self.n_records)
        records = np.unique(np.concatenate([[0], np.rint(times / dt).astype(np.int64)]))
        requested = np.asarray(self.snapshot_times, dtype=float)
        snaps, first = _to_steps("snapshot_times", requested, dt, n)
        return Schedule(n, records, snaps, records * dt, requested[first])

    def drive(self, mean_stress: float, shear_modulus: float, dt: float) -> Drive:
        """Sigma is the imposed stress throughout (the initial state's stresses are shifted to it)."""
        return Drive(float(self.stress), 0.0, True, shear_modulus)

    def clock_values(self, time: np.ndarray, plastic_strain: np.ndarray, outcome: Outcome, dt: float) -> dict:
        """``strain`` (the plastic strain since the stress step), ``strain_rate`` (NaN at t = 0)
        at the record ``time``, and whether and when the run got stuck."""
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.concatenate([[np.nan], np.diff(plastic_strain) / np.diff(time)])
        stuck = outcome.arrest_step >= 0
        return {
            "strain": plastic_strain, "strain_rate": rate,
            "stuck": stuck, "arrest_time": outcome.arrest_step * dt if stuck else np.nan,
        }  # fmt: skip

    def to_attrs(self) -> dict:
        return {
            "protocol": self.name,
            "stress_imposed": self.stress,
            "run_length": self.duration,
            "n_records": self.n_records,
        }


@dataclass(frozen=True)
class Quasistatic:
    """Quasistatic shear (gdot -> 0): load exactly to the next threshold crossing, hold the strain.

    Between avalanches the lattice is loaded elastically (Sigma grows by mu per unit strain) until
    the elastic site nearest to its threshold is just above it; then the strain is held (Eq. 2
    with gdot = 0: Sigma relaxes by the mean plastic increment) while the stochastic dynamics
    runs (activation after a tau_pl delay, relaxation, threshold renewal after tau_res) until no
    site is plastic and none is above threshold: one avalanche. The run ends at ``strain_end``
    or after ``n_avalanches``: give exactly one. Records are per avalanche.

    Parameters
    ----------
    strain_end : float, optional
        Strain at which the run ends (loading stops there; no avalanche starts beyond it).
    n_avalanches : int, optional
        Number of avalanches after which the run ends.
    snapshot_strains : tuple of float
        Strains at which the fields are stored (the relaxed state loaded elastically to them);
        with ``strain_end`` only.
    max_duration : float
        Longest avalanche accepted (time units); one lasting longer ends the run with an error.
    """

    strain_end: float | None = declared(None, gt=0)
    n_avalanches: int | None = declared(None, ge=1, le=MAX_RECORDS)
    snapshot_strains: tuple[float, ...] = declared((), ge=0)
    max_duration: float = declared(1e4, gt=0)

    name = "quasistatic"
    primary_dim = None
    record_dim = "avalanche"
    record_coords = ()
    snapshot_dim = "snapshot_strain"
    series = ("strain", "stress_before", "stress_after", "stress_drop", "avalanche_size", "activations",
              "avalanche_duration")  # fmt: skip
    scalars = ("peak_stress", "strain_at_peak")

    def __post_init__(self) -> None:
        check_declared(self)
        if (self.strain_end is None) == (self.n_avalanches is None):
            raise ParameterError("strain_end", "give exactly one of strain_end and n_avalanches")
        if self.snapshot_strains and self.strain_end is None:
            raise ParameterError("snapshot_strains", "needs strain_end (the strain n_avalanches reach is not known)")
        if self.strain_end is not None and any(s > self.strain_end for s in self.snapshot_strains):
            raise ParameterError("snapshot_strains", f"lies beyond the end of the run (strain {self.strain_end:g})")

    def max_steps(self, dt: float) -> int:
        """Most time steps of one avalanche."""
        return _n_steps("max_duration", self.max_duration, dt)

    def drive(self, mean_stress: float, shear_modulus: float, dt: float) -> Drive:
        """Sigma starts at the initial state's mean stress; within an avalanche the strain is held
        (no load per step, stress feedback on); the loading between avalanches is exact."""
        return Drive(mean_stress, 0.0, False, shear_modulus)

    def to_attrs(self) -> dict:
        return {
            "protocol": self.name,
            "strain_end": np.nan if self.strain_end is None else self.strain_end,
            "n_avalanches": -1 if self.n_avalanches is None else self.n_avalanches,
            "max_duration": self.max_duration,
        }


Protocol = ImposedRate | ImposedStress | Quasistatic
"""A protocol describes itself: ``name``, ``primary_dim`` (its sweep axis; None for
``Quasistatic``), ``record_dim`` and ``record_coords`` (the clock of its records), ``snapshot_dim``,
``series`` and ``scalars`` (the declared output variables it produces, ``engine.variables``) and
``drive`` (its ``Drive`` of the time loop). The time-stepped protocols also give ``schedule(dt)``
(their record steps) and ``clock_values`` (their strain, rate and scalars); ``Quasistatic`` runs
its own loop (``engine.quasistatic``), records per avalanche."""
