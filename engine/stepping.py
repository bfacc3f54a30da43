"""The compiled time loop of the lattice model (Numba, no Python per step).

State representation: the local stress is sigma_i = Sigma + s_i, with Sigma the external stress
(a scalar) and s the zero-mean fluctuation field (flat, length N = L * L). A purely elastic step
under imposed rate then only changes the scalar Sigma, which makes the exact fast-forward over
elastic stretches possible: the same floating-point operations as plain stepping, per step O(1).

``run`` takes its state as named tuples, each built by one function: the ``Lattice`` (``lattice``),
the protocol's ``Drive`` (``protocols``), the ``Rates`` (``rates``), the ``ThresholdLaw``
(``thresholds``), the ``Kernel`` (``redistribution.compiled_kernel``), the ``Paths`` of the
redistribution (``paths``), the ``Deferral`` (``deferred.deferral``), the ``Work`` arrays
(``work``) and the ``Records`` and ``Snapshots`` (``recorders``). Each step runs the phases
record, flush, fast-forward, plastic step, switching.
"""

import math
from typing import NamedTuple

import numpy as np
from numba import uint64

from . import deferred
from .deferred import IDLE
from .jit import inline, jit
from .protocols import Outcome, Schedule
from .redistribution import FftWork, fft_workspace, redistribute_fft, redistribute_sparse
from .thresholds import quantile

STATUS_OK, STATUS_NONFINITE = 0, 1

DEFER_MIN = 8
"""A deferred stretch begins with at least this many plastic sites (fewer kernels cost less than
its bookkeeping, ``benchmarks/crossover.py``); it goes on until none or ``defer_max`` are. Under
quasistatic shear, where most steps have one to a few plastic sites between long stretches, it
begins with one (``Paths.defer_min``): a stretch then costs per step about tracked x plastic sites
(``deferred.track_after_step``, ``_switch_tracked``), a kernel per plastic site costs N."""

COUNTS = np.dtype([
    ("steps_sparse", np.int64), ("steps_deferred", np.int64), ("deferred_flushes", np.int64),
    ("steps_fft", np.int64), ("steps_fast_forward", np.int64), ("steps_elastic", np.int64),
])  # fmt: skip
"""How many steps took each path (plastic: kernels added, deferred, FFT; elastic: jumped over or
stepped) and how many deferred stretches were flushed."""


class Lattice(NamedTuple):
    """The site state, flat (N,), changed in place."""

    s: np.ndarray  # float64: stress fluctuation (zero mean); local stress is Sigma + s
    threshold: np.ndarray  # float64: renewed on plastic -> elastic switches
    plastic: np.ndarray  # uint8: n_i (0 elastic, 1 plastic)
    clock: np.ndarray  # int64: steps to each site's next switch (``clock``)


class Rates(NamedTuple):
    """Per-step rates: dt / tau (plastic increments), dt / tau_pl (activation), dt / tau_res (relaxation)."""

    plastic: float
    activation: float
    relaxation: float


class Paths(NamedTuple):
    """Which redistribution a plastic step takes."""

    fft_min: int  # FFTs when at least this many sites are plastic
    defer_max: int  # deferral (``deferred``) from ``defer_min`` up to below this many plastic sites
    flush_fft_min: int  # a deferred flush adds the pending field with an FFT pair from this many pending sites
    fast_forward: bool  # jump over purely elastic steps under imposed rate (bit-identical)
    defer_min: int  # DEFER_MIN, or 1 where steps with few plastic sites dominate (``Quasistatic``)
    track_horizon: float  # sites tracked ahead of need (``deferred.track_after_step``): 0 or TRACK_HORIZON


class Work(NamedTuple):
    """Work arrays of the loop (allocated by the caller: each NumPy constructor in compiled code
    lengthens the cold compile)."""

    plastic_sites: np.ndarray  # (N,) int64: the plastic sites, listed
    increments: np.ndarray  # (N,) float64: their plastic increments of the step
    dense_increments: np.ndarray  # (L, L) float64: the increments of every site, for FFTs
    fft: FftWork
    activated: np.ndarray  # (N,) int64: sites becoming plastic in a switching pass
    events: np.ndarray  # (N,) int64: sites switching in a pass over the tracked sites, increasing
    candidates: np.ndarray  # (N,) int64: sites that may cross first in a fast-forward
    counts: np.ndarray  # (1,) COUNTS


class Records(NamedTuple):
    """Scalar records at ``steps``: Sigma, mean plastic strain, number of plastic sites."""

    steps: np.ndarray  # (n_records,) int64, increasing
    stress: np.ndarray  # (n_records,) float64
    plastic_strain: np.ndarray  # (n_records,) float64
    n_plastic: np.ndarray  # (n_records,) float64


class Snapshots(NamedTuple):
    """Field snapshots at ``steps``: local stress, threshold, plastic state."""

    steps: np.ndarray  # (n_snapshots,) int64, increasing
    stress: np.ndarray  # (n_snapshots, N) float64
    threshold: np.ndarray  # (n_snapshots, N) float64
    plastic: np.ndarray  # (n_snapshots, N) uint8


def lattice(s: np.ndarray, threshold: np.ndarray) -> Lattice:
    """The ``Lattice`` of fluctuations s and thresholds (flat, copied), every site elastic."""
    n = s.size
    return Lattice(s.copy(), threshold.copy(), np.zeros(n, np.uint8), np.empty(n, np.int64))


def rates(dt: float, tau: float, tau_pl: float, tau_res: float) -> Rates:
    """The ``Rates`` of time step dt."""
    return Rates(dt / tau, dt / tau_pl, dt / tau_res)


def work(L: int) -> Work:
    """The ``Work`` of an L x L lattice (counts zero)."""
    n = L * L
    return Work(np.empty(n, np.int64), np.empty(n), np.empty((L, L)), fft_workspace(L),
                np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64), np.zeros(1, COUNTS))  # fmt: skip


def recorders(schedule: Schedule, n: int) -> tuple[Records, Snapshots]:
    """Empty ``Records`` and ``Snapshots`` for a schedule and N sites."""
    n_rec, n_snap = schedule.record_steps.size, schedule.snapshot_steps.size
    records = Records(schedule.record_steps, np.empty(n_rec), np.empty(n_rec), np.empty(n_rec))
    snapshots = Snapshots(schedule.snapshot_steps, np.empty((n_snap, n)), np.empty((n_snap, n)),
                          np.empty((n_snap, n), np.uint8))  # fmt: skip
    return records, snapshots


@jit
def _list_plastic(plastic, plastic_sites):
    """Write the plastic sites' indices into ``plastic_sites``; returns their number.

    (A count returned by a function is a plain integer to Numba: callees taking it are compiled
    once, not also for the literal 0 of an inline initialisation.)
    """
    n_plastic = 0
    for i in range(plastic.size):
        if plastic[i]:
            plastic_sites[n_plastic] = i
            n_plastic += 1
    return n_plastic


@inline
def _sum(s):
    total = 0.0
    for i in range(uint64(s.size)):
        total += s[i]
    return total


@inline
def any_above(s, thr, sigma_ext):
    for i in range(uint64(s.size)):
        if sigma_ext + s[i] > thr[i]:
            return True
    return False


MAX_CLOCK = 2**62


@inline
def clock(rng, dt_over_tau):
    """Steps up to and including the first success of per-step trials of probability
    p = 1 - exp(-dt / tau): the geometric law P(K > k) = exp(-k dt / tau), drawn by inversion
    (an exponential waiting time counted in steps). Capped at 2**62."""
    k = -math.log1p(-rng.random()) / dt_over_tau
    return int(min(k, MAX_CLOCK)) + 1


# --- record phase -------------------------------------------------------------------------------


@inline
def _record(records, next_record, step, sigma_ext, gpl, strain_norm, n_plastic, s, status):
    """Store the records due at ``step`` (the plastic strain is the summed increments ``gpl`` x
    ``strain_norm``); returns the next record's index and the status (a non-finite value recorded
    ends the run)."""
    while next_record < records.steps.size and records.steps[next_record] == step:
        records.stress[next_record] = sigma_ext
        records.plastic_strain[next_record] = gpl * strain_norm
        records.n_plastic[next_record] = n_plastic
        next_record += 1
        if not (math.isfinite(sigma_ext) and math.isfinite(gpl) and math.isfinite(_sum(s))):
            status = STATUS_NONFINITE
    return next_record, status


@inline
def store_snapshot(snapshots, k, sigma_ext, lat):
    """Store the fields of the lattice at external stress Sigma as snapshot ``k``."""
    out_stress, out_thr, out_plastic = snapshots.stress[k], snapshots.threshold[k], snapshots.plastic[k]
    for i in range(lat.s.size):
        out_stress[i] = sigma_ext + lat.s[i]
        out_thr[i] = lat.threshold[i]
        out_plastic[i] = lat.plastic[i]


@inline
def _snapshot(snapshots, next_snapshot, step, sigma_ext, lat):
    """Store the snapshots due at ``step``; returns the next snapshot's index."""
    while next_snapshot < snapshots.steps.size and snapshots.steps[next_snapshot] == step:
        store_snapshot(snapshots, next_snapshot, sigma_ext, lat)
        next_snapshot += 1
    return next_snapshot


# --- fast-forward phase -------------------------------------------------------------------------


@inline
def _crossing_candidates(s, thr, sigma_ext, out):
    """Write into ``out`` the sites whose gap thr - sigma is within round-off of the smallest:
    the only ones that can cross first while the whole field is shifted up uniformly; returns
    their number."""
    gmin = math.inf
    for i in range(uint64(s.size)):
        gmin = min(gmin, thr[i] - (sigma_ext + s[i]))
    tol = deferred.tolerance(s, thr, sigma_ext)
    n = 0
    for i in range(uint64(s.size)):
        if thr[i] - (sigma_ext + s[i]) <= gmin + tol:
            out[n] = i
            n += 1
    return n


@inline
def _fast_forward(lat, sigma_ext, load, step, stop, candidates, counts):
    """Advance Sigma by ``load`` per step, up to ``stop``, while the next elastic step would
    activate nobody; returns the step reached and Sigma."""
    s, thr = lat.s, lat.threshold
    n_cand = _crossing_candidates(s, thr, sigma_ext, candidates)
    while step < stop:
        nxt = sigma_ext + load
        crossed = False
        for k in range(n_cand):
            if nxt + s[candidates[k]] > thr[candidates[k]]:
                crossed = True
                break
        if crossed:
            break
        sigma_ext = nxt
        step += 1
        counts.steps_fast_forward += 1
    return step, sigma_ext


# --- plastic step phase -------------------------------------------------------------------------


@inline
def _fft_increments(lat, sigma_ext, dt_tau, kernel, wk):
    """Dense increments, added with one FFT pair; returns their sum."""
    L = kernel.L
    dense = wk.dense_increments
    for iy in range(L):
        for ix in range(L):
            i = iy * L + ix
            dense[iy, ix] = (sigma_ext + lat.s[i]) * dt_tau if lat.plastic[i] else 0.0
    return redistribute_fft(lat.s, dense, kernel.spectrum, wk.fft.spectrum, wk.fft.field, wk.fft.axes)


@inline
def _sparse_increments(lat, sigma_ext, dt_tau, kernel, wk, n_plastic):
    """Increments of the listed plastic sites, one kernel each; returns their sum."""
    sum_d = 0.0
    for k in range(n_plastic):
        inc = (sigma_ext + lat.s[uint64(wk.plastic_sites[k])]) * dt_tau
        wk.increments[k] = inc
        sum_d += inc
    redistribute_sparse(lat.s, wk.plastic_sites, wk.increments, n_plastic, kernel.tiled, kernel.L)
    return sum_d


@inline
def _plastic_step(lat, sigma_ext, n_plastic, drive, dt_tau, kernel, pth, dfr, stretch, wk):
    """One explicit Euler step with plastic sites: their increments by the path of ``pth`` (a
    deferred stretch begins here if they fit), then the drive; returns Sigma, the summed
    increments and the stretch."""
    counts = wk.counts[0]
    if not stretch.active and pth.defer_min <= n_plastic < pth.defer_max:
        stretch = deferred.begin(lat.s, lat.threshold, sigma_ext, dfr, wk.plastic_sites, n_plastic,
                                 pth.flush_fft_min, kernel)  # fmt: skip
    if n_plastic >= pth.fft_min:
        sum_d = _fft_increments(lat, sigma_ext, dt_tau, kernel, wk)
        counts.steps_fft += 1
    elif stretch.active:
        sum_d, stretch = deferred.deferred_step(lat.s, dfr, stretch, wk.plastic_sites, n_plastic, wk.increments,
                                                sigma_ext, dt_tau)  # fmt: skip
        counts.steps_deferred += 1
    else:
        sum_d = _sparse_increments(lat, sigma_ext, dt_tau, kernel, wk, n_plastic)
        counts.steps_sparse += 1
    if not drive.stress_fixed:
        sigma_ext = sigma_ext + (drive.load - sum_d * (1.0 / lat.s.size))
    return sigma_ext, sum_d, stretch


# --- switching phase ----------------------------------------------------------------------------

TRACK_HORIZON = 0.4
"""Growth of the pending increments (stress units) that a quasistatic deferred stretch tracks
sites ahead of (``deferred.track_after_step``): a site is tracked dozens of steps before it
could cross its threshold, and the untracked ones are scanned that much less often. The
time-stepped protocols track none ahead (0), which keeps their outputs bit for bit."""

SWITCH_BLOCK = 64
"""Sites per block of the switching pass: clocks tick branch-free (vectorised) within a block,
and only a block holding an event is scanned site by site."""


@inline
def _switch_site(i, lat, rts, law, wk, rng, n_relaxed, n_new):
    """The switch of site i, whose clock ran out: a plastic site relaxes (new threshold, clock to
    its activation), an elastic one is listed to activate (clock to its relaxation); returns the
    counts of relaxed and activated sites."""
    if lat.plastic[i]:
        lat.plastic[i] = 0
        lat.threshold[i] = quantile(rng.random(), law)
        lat.clock[i] = clock(rng, rts.activation)
        return n_relaxed + 1, n_new
    wk.activated[n_new] = i
    lat.clock[i] = clock(rng, rts.relaxation)
    return n_relaxed, n_new + 1


@inline
def _relist(lat, n_plastic, n_relaxed, n_new, wk):
    """The plastic sites listed anew after a switching pass: the relaxed ones dropped, the activated
    ones appended (and made plastic); returns their number."""
    plastic, plist, activated = lat.plastic, wk.plastic_sites, wk.activated
    kept = n_plastic
    if n_relaxed:
        kept = 0
        for k in range(n_plastic):
            if plastic[plist[k]]:
                plist[kept] = plist[k]
                kept += 1
    for k in range(n_new):
        plastic[activated[k]] = 1
        plist[kept + k] = activated[k]
    return kept + n_new


@inline
def _switch(lat, sigma_ext, n_plastic, rts, law, wk, rng):
    """One switching phase; returns the new number of plastic sites (listed in ``wk.plastic_sites``)
    and the number of sites activated.

    Rather than one Bernoulli draw per site and step, each site carries a clock: the number of
    trials until its next switch, drawn from the geometric law of the per-step probability
    1 - exp(-dt / tau_x) (``clock``). An elastic site's clock counts the steps it still has to
    spend above threshold before it activates (dt / tau_pl); a plastic site's, the steps before
    it relaxes (dt / tau_res) and draws a new threshold. The per-step trials being independent,
    the switching times have exactly the law of step-by-step draws, at a few draws per event. A
    site that switches in this phase does not switch back in it.
    """
    s, thr, plastic, clocks = lat.s, lat.threshold, lat.plastic, lat.clock
    n = uint64(s.size)
    n_relaxed, n_new = 0, 0
    for start in range(uint64(0), n, uint64(SWITCH_BLOCK)):
        stop = min(start + uint64(SWITCH_BLOCK), n)
        events = 0
        for i in range(start, stop):  # the clocks that run tick (unsigned i: vectorised)
            clocks[i] -= plastic[i] | (sigma_ext + s[i] > thr[i])
            events += clocks[i] == 0
        if events == 0:
            continue
        for i in range(start, stop):
            if clocks[i] == 0:
                n_relaxed, n_new = _switch_site(i, lat, rts, law, wk, rng, n_relaxed, n_new)
    return _relist(lat, n_plastic, n_relaxed, n_new, wk), n_new


@inline
def _switch_tracked(lat, sigma_ext, n_plastic, rts, law, wk, rng, sites, n_sites):
    """``_switch`` during a deferred stretch, over its tracked sites only: every other site is
    elastic and provably below threshold, so its clock does not run. The sites whose clock runs
    out switch in increasing order, as in ``_switch`` (the same random draws)."""
    s, thr, plastic, clocks, events = lat.s, lat.threshold, lat.plastic, lat.clock, wk.events
    n_events = 0
    for k in range(n_sites):
        i = sites[k]
        clocks[i] -= plastic[i] | (sigma_ext + s[i] > thr[i])
        if clocks[i] == 0:
            j = n_events  # insertion in increasing order
            while j > 0 and events[j - 1] > i:
                events[j] = events[j - 1]
                j -= 1
            events[j] = i
            n_events += 1
    n_relaxed, n_new = 0, 0
    for k in range(n_events):
        n_relaxed, n_new = _switch_site(events[k], lat, rts, law, wk, rng, n_relaxed, n_new)
    return _relist(lat, n_plastic, n_relaxed, n_new, wk), n_new


# --- one step and its flush -----------------------------------------------------------------------


@inline
def step_once(lat, sigma_ext, n_plastic, drive, rts, law, kernel, pth, dfr, stretch, wk, rng):
    """One time step: the plastic step (or the drive alone), then switching with the updated
    stresses (exact at every site that may be above threshold). Returns Sigma, the summed
    increments, the new number of plastic sites, the sites activated and the stretch."""
    sum_d = 0.0
    if n_plastic > 0:
        sigma_ext, sum_d, stretch = _plastic_step(lat, sigma_ext, n_plastic, drive, rts.plastic, kernel, pth, dfr,
                                                  stretch, wk)  # fmt: skip
    else:
        wk.counts[0].steps_elastic += 1
        if not drive.stress_fixed:
            sigma_ext = sigma_ext + drive.load
    if stretch.active:
        stretch = deferred.track_after_step(lat.s, lat.threshold, dfr, stretch, sigma_ext, pth.track_horizon, kernel)
    if stretch.active:
        n_plastic, n_new = _switch_tracked(lat, sigma_ext, n_plastic, rts, law, wk, rng, dfr.tracked_sites,
                                           stretch.tracked)  # fmt: skip
    else:
        n_plastic, n_new = _switch(lat, sigma_ext, n_plastic, rts, law, wk, rng)
    if stretch.active:  # the new plastic sites become pending (if they do not fit: flush next step)
        stretch = deferred.admit_new(lat.s, dfr, stretch, wk.plastic_sites, n_plastic, kernel)
    return sigma_ext, sum_d, n_plastic, n_new, stretch


@inline
def settle(lat, sigma_ext, n_plastic, exact_due, pth, kernel, dfr, stretch, wk):
    """Flush a deferred stretch where it ends (``exact_due``: every stress is needed exactly; no
    site plastic; too many) or where its work limit is passed; returns the stretch."""
    ends = exact_due or stretch.overflow or not 0 < n_plastic < pth.defer_max
    if stretch.active and (ends or stretch.work > stretch.work_limit):
        stretch = deferred.flush(lat.s, lat.threshold, sigma_ext, dfr, stretch, lat.plastic, wk.plastic_sites,
                                 n_plastic, not ends, pth.flush_fft_min, kernel, wk.dense_increments,
                                 wk.fft)  # fmt: skip
        wk.counts[0].deferred_flushes += 1
    return stretch


@inline
def start_clocks(lat, rts, rng):
    """Draw every site's clock anew: time to relaxation for plastic sites, to activation for elastic ones."""
    for i in range(lat.s.size):
        lat.clock[i] = clock(rng, rts.relaxation if lat.plastic[i] else rts.activation)


# --- the loop -----------------------------------------------------------------------------------


@jit
def run(lat, drive, rts, law, kernel, pth, dfr, wk, records, snapshots, n_steps, rng):
    """Integrate the model for ``n_steps`` steps of dt, in place (``lat``, ``dfr``, ``wk``,
    ``records``, ``snapshots``), from Sigma = ``drive.start_stress`` with every clock drawn anew.

    ``lat``: ``Lattice``; ``drive``: ``protocols.Drive``; ``rts``: ``Rates``; ``law``:
    ``thresholds.ThresholdLaw``; ``kernel``: ``redistribution.Kernel``; ``pth``: ``Paths``;
    ``dfr``: ``deferred.Deferral``; ``wk``: ``Work`` (its ``counts`` filled); ``records``,
    ``snapshots``: ``Records``, ``Snapshots`` (filled); ``rng``: ``numpy.random.Generator``, the
    run's only source of randomness. Returns a ``protocols.Outcome``.
    """
    s, thr = lat.s, lat.threshold
    counts = wk.counts[0]
    strain_norm = 1.0 / (s.size * drive.shear_modulus)
    n_plastic = _list_plastic(lat.plastic, wk.plastic_sites)
    start_clocks(lat, rts, rng)
    sigma_ext, gpl, step = drive.start_stress, 0.0, 0
    peak, peak_step, arrest_step, status = drive.start_stress, 0, -1, STATUS_OK
    next_record, next_snapshot = 0, 0
    stretch = IDLE
    while True:
        # record the state reached at `step`; a deferred stretch flushes first where exact stresses are due
        if sigma_ext > peak:
            peak, peak_step = sigma_ext, step
        next_record, status = _record(records, next_record, step, sigma_ext, gpl, strain_norm, n_plastic, s, status)
        snapshot = next_snapshot < snapshots.steps.size and snapshots.steps[next_snapshot] == step
        stretch = settle(lat, sigma_ext, n_plastic, snapshot or step >= n_steps or status != STATUS_OK, pth, kernel,
                         dfr, stretch, wk)  # fmt: skip
        next_snapshot = _snapshot(snapshots, next_snapshot, step, sigma_ext, lat)
        if step >= n_steps or status != STATUS_OK:
            break

        if n_plastic == 0:
            if drive.stress_fixed:
                if not any_above(s, thr, sigma_ext):
                    arrest_step = step
                    break
            elif pth.fast_forward:
                stop = min(records.steps[next_record] if next_record < records.steps.size else n_steps,
                           snapshots.steps[next_snapshot] if next_snapshot < snapshots.steps.size else n_steps,
                           n_steps)  # fmt: skip
                step, sigma_ext = _fast_forward(lat, sigma_ext, drive.load, step, stop, wk.candidates, counts)
                if step == stop:
                    continue  # record / snapshot / end at this step, then go on

        step += 1
        sigma_ext, sum_d, n_plastic, _, stretch = step_once(lat, sigma_ext, n_plastic, drive, rts, law, kernel, pth,
                                                            dfr, stretch, wk, rng)  # fmt: skip
        gpl += sum_d

    # an absorbing state is frozen: the remaining records and snapshots are known exactly
    while next_record < records.steps.size:
        records.stress[next_record] = sigma_ext
        records.plastic_strain[next_record] = gpl * strain_norm
        records.n_plastic[next_record] = n_plastic
        next_record += 1
    while next_snapshot < snapshots.steps.size:
        next_snapshot = _snapshot(snapshots, next_snapshot, snapshots.steps[next_snapshot], sigma_ext, lat)
    return Outcome(status, arrest_step, peak, peak_step)
