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
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from .initial_state import InitialState
from .parameters import ModelParameters
from .protocols import ImposedRate, ImposedStress, Protocol
from .simulate import simulate

FIRST_PREFIX = 1000  # steps
DEFAULT_BUDGET = 0.2  # CPU seconds of the longest prefix
STEP_COUNTERS = ("steps_fast_forward", "steps_elastic", "steps_sparse", "steps_deferred", "steps_fft")


@dataclass(frozen=True)
class RunCost:
    """Measured cost of one run.

    Attributes
    ----------
    n_steps : int
        Time steps of the whole run (``protocol.schedule(dt)``).
    prefix_steps : int
        Steps of the longest prefix simulated.
    prefix_seconds : float
        CPU seconds of that prefix (one call of ``simulate``, set-up included).
    seconds_per_step : float
        CPU seconds per step over the later half of the prefix, used for the remaining steps.
    stopped : bool
        The prefix reached an absorbing state: the whole run ends there.
    counters : dict
        The prefix's step counts by kind (``steps_fft``, ``steps_deferred``, ...).
    """

    n_steps: int
    prefix_steps: int
    prefix_seconds: float
    seconds_per_step: float
    stopped: bool
    counters: dict

    @property
    def seconds(self) -> float:
        """Estimated CPU seconds of the whole run."""
        if self.stopped or self.prefix_steps >= self.n_steps:
            return self.prefix_seconds
        return self.prefix_seconds + (self.n_steps - self.prefix_steps) * self.seconds_per_step

    @property
    def expensive_fraction(self) -> float:
        """Fraction of the prefix's steps that redistributed stress (deferred, sparse or FFT)."""
        total = sum(self.counters.get(k, 0) for k in STEP_COUNTERS)
        busy = sum(self.counters.get(k, 0) for k in ("steps_sparse", "steps_deferred", "steps_fft"))
        return busy / total if total else 0.0


def truncated(protocol: Protocol, n_steps: int, dt: float) -> Protocol:
    """``protocol`` cut after ``n_steps`` steps, with a few records and no snapshots."""
    if isinstance(protocol, ImposedRate):
        return dataclasses.replace(protocol, strain_end=None, t_end=n_steps * dt, n_records=10, snapshot_strains=())
    return dataclasses.replace(protocol, t_end=n_steps * dt, n_records=10, t_first_record=None, snapshot_times=())


def _timed(params, state, protocol, seed) -> tuple[float, dict, bool]:
    start = time.thread_time()
    ds = simulate(params, state, protocol, seed)
    seconds = time.thread_time() - start
    arrested = bool(ds.get("stuck", False))  # only creep runs arrest
    return seconds, {k: int(ds.attrs[k]) for k in STEP_COUNTERS}, arrested


def warm() -> None:
    """Load the compiled engine (or compile it into the cache) so that no timing includes it."""
    simulate(ModelParameters(L=8), InitialState.rejuvenated(8, seed=0), ImposedRate(1e-2, strain_end=0.01), seed=0)


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
    if not isinstance(protocol, (ImposedRate, ImposedStress)):
        raise TypeError("protocol must be ImposedRate or ImposedStress")
    if isinstance(seed, np.random.Generator):
        raise TypeError("calibrate needs a seed or SeedSequence: every prefix restarts the same stream")
    n_steps = protocol.schedule(params.dt)[0]
    n, previous = min(FIRST_PREFIX, n_steps), None
    while True:
        whole = n >= n_steps
        prefix = protocol if whole else truncated(protocol, n, params.dt)
        seconds, counters, stopped = _timed(params, state, prefix, seed)
        if previous is not None:
            per_step = max(seconds - previous[1], 0.0) / (n - previous[0])
        else:
            per_step = seconds / max(n, 1)
        if whole or stopped or seconds >= budget:
            return RunCost(n_steps, n, seconds, per_step, stopped, counters)
        previous, n = (n, seconds), min(2 * n, n_steps)
