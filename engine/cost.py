"""Cost model of a run: its compute time measured on a short real prefix of the run itself.

The cost of a step depends on how many sites are plastic (elastic stretches are jumped over or
stepped cheaply, a few plastic sites are deferred, many take an FFT pair), and that depends on the
dynamics, so it is measured, not guessed: ``calibrate`` runs ``simulate`` on the same parameters,
initial state, protocol and seed, cut after n steps, for n = 1000, 2000, 4000, ... until the
prefix takes ``budget`` seconds of CPU or covers the whole run. Cutting a run changes nothing
before the cut (same random stream, same decisions), so the prefix is exactly the start of the
run. The rest is extrapolated at the cost per step of the last doubling (the later half of the
prefix, past the loading transient); a prefix that reached an absorbing state (creep arrest) is
the whole run, since the run stops there too. Times are CPU seconds of the calling thread (the
engine is single-threaded), so other load on the machine does not inflate them.

A quasistatic run is measured the same way in its own units: its prefixes are its first n = 100,
200, 400, ... avalanches (``Quasistatic(n_avalanches=n)``, exactly the start of the run), and the
rest is extrapolated per avalanche (a run of ``n_avalanches``) or per unit strain (a run to
``strain_end``: the strain of the prefix's last trigger). From a fresh state the avalanches per
unit strain grow until the flow is steady (by strain ~1), so a prefix within that transient
undercounts a long run; a cost per unit strain grows about as N at L = 16..64.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from .initial_state import InitialState
from .parameters import ModelParameters
from .protocols import ImposedRate, ImposedStress, Protocol, Quasistatic
from .simulate import simulate, simulate_record

FIRST_PREFIX = {"step": 1000, "avalanche": 100, "strain": 100}  # steps, or avalanches of a quasistatic run
DEFAULT_BUDGET = 0.2  # CPU seconds of the longest prefix
STEP_COUNTERS = ("steps_fast_forward", "steps_elastic", "steps_sparse", "steps_deferred", "steps_fft")


@dataclass(frozen=True)
class RunCost:
    """Measured cost of one run, its length counted in ``unit``.

    Attributes
    ----------
    unit : str
        What a run's length counts: ``"step"`` (time steps, the time-stepped protocols),
        ``"avalanche"`` (a quasistatic run of ``n_avalanches``) or ``"strain"`` (one to ``strain_end``).
    length : float
        Length of the whole run (``run_length``).
    prefix_length : float
        Length covered by the longest prefix simulated.
    prefix_seconds : float
        CPU seconds of that prefix (one call of ``simulate``, set-up included).
    seconds_per_unit : float
        CPU seconds per unit of length over the later half of the prefix, used for the rest.
    stopped : bool
        The prefix reached an absorbing state: the whole run ends there.
    counters : dict
        The prefix's step counts by kind (``steps_fft``, ``steps_deferred``, ...).
    """

    unit: str
    length: float
    prefix_length: float
    prefix_seconds: float
    seconds_per_unit: float
    stopped: bool
    counters: dict

    @property
    def seconds(self) -> float:
        """Estimated CPU seconds of the whole run."""
        if self.stopped or self.prefix_length >= self.length:
            return self.prefix_seconds
        return self.prefix_seconds + (self.length - self.prefix_length) * self.seconds_per_unit

    @property
    def expensive_fraction(self) -> float:
        """Fraction of the prefix's steps that redistributed stress (deferred, sparse or FFT)."""
        total = sum(self.counters.get(k, 0) for k in STEP_COUNTERS)
        busy = sum(self.counters.get(k, 0) for k in ("steps_sparse", "steps_deferred", "steps_fft"))
        return busy / total if total else 0.0


def run_length(protocol: Protocol, dt: float) -> tuple[float, str]:
    """(length, unit) of a run: its time steps (``"step"``), or for a quasistatic run its number of
    avalanches (``"avalanche"``) or its end strain (``"strain"``)."""
    if not isinstance(protocol, Quasistatic):
        return protocol.schedule(dt).n_steps, "step"
    if protocol.n_avalanches is not None:
        return protocol.n_avalanches, "avalanche"
    return protocol.strain_end, "strain"


def truncated(protocol: Protocol, n: int, dt: float) -> Protocol:
    """``protocol`` cut after ``n`` steps (a quasistatic run: after ``n`` avalanches), with a few
    records and no snapshots."""
    if isinstance(protocol, Quasistatic):
        return dataclasses.replace(protocol, strain_end=None, n_avalanches=n, snapshot_strains=())
    if isinstance(protocol, ImposedRate):
        return dataclasses.replace(protocol, strain_end=None, t_end=n * dt, n_records=10, snapshot_strains=())
    return dataclasses.replace(protocol, t_end=n * dt, n_records=10, t_first_record=None, snapshot_times=())


def _timed(params, state, protocol, seed, unit: str) -> tuple[float, float, dict, bool]:
    """CPU seconds of one run, the length it covered in ``unit``, its step counters, and whether it arrested."""
    start = time.thread_time()
    record = simulate_record(params, state, protocol, seed)  # what a sweep's worker runs
    seconds = time.thread_time() - start
    values = {name: entry[1] for name, entry in record.variables.items()}
    arrested = bool(values.get("stuck", False))  # only creep runs arrest
    if unit == "step":
        covered = protocol.schedule(params.dt).n_steps
    else:  # the prefix's avalanches, or the strain of its last trigger
        n = values["avalanche"].size
        covered = n if unit == "avalanche" else float(values["strain"][-1]) if n else 0.0
    return seconds, covered, {k: int(record.attrs[k]) for k in STEP_COUNTERS}, arrested


def warm() -> None:
    """Load the compiled engine, both loops (or compile it into the cache), so that no timing includes it."""
    params, state = ModelParameters(L=8), InitialState.rejuvenated(8, seed=0)
    simulate(params, state, ImposedRate(1e-2, strain_end=0.01), seed=0)
    simulate(params, state, Quasistatic(n_avalanches=1), seed=0)


def calibrate(
    params: ModelParameters,
    state: InitialState,
    protocol: Protocol,
    seed: int | np.random.SeedSequence,
    *,
    budget: float = DEFAULT_BUDGET,
) -> RunCost:
    """Measure the cost of the run ``simulate(params, state, protocol, seed)`` on prefixes of it.

    Parameters
    ----------
    params, state, protocol, seed
        The run, as given to ``simulate`` (a seed, not a Generator: each prefix restarts the stream).
    budget : float
        CPU seconds of the longest prefix; the calibration takes about twice that at most.

    Returns
    -------
    RunCost
        ``.seconds`` is the estimated CPU time of the whole run.
    """
    if not isinstance(protocol, (ImposedRate, ImposedStress, Quasistatic)):
        raise TypeError("protocol must be ImposedRate, ImposedStress or Quasistatic")
    if isinstance(seed, np.random.Generator):
        raise TypeError("calibrate needs a seed or SeedSequence: every prefix restarts the same stream")
    length, unit = run_length(protocol, params.dt)
    n, previous = FIRST_PREFIX[unit], None
    if unit != "strain":
        n = min(n, length)
    while True:
        whole = unit != "strain" and n >= length
        prefix = protocol if whole else truncated(protocol, n, params.dt)
        seconds, covered, counters, stopped = _timed(params, state, prefix, seed, unit)
        if covered >= length and not whole:  # a prefix past the end of a run to strain_end: time the run itself
            prefix, whole = protocol, True
            seconds, covered, counters, stopped = _timed(params, state, prefix, seed, unit)
            covered = length
        if previous is not None and covered > previous[0]:
            per_unit = max(seconds - previous[1], 0.0) / (covered - previous[0])
        else:
            per_unit = seconds / covered if covered else 0.0
        if whole or stopped or seconds >= budget:
            return RunCost(unit, length, covered, seconds, per_unit, stopped, counters)
        previous, n = (covered, seconds), 2 * n if unit == "strain" else min(2 * n, length)
