"""Quasistatic shear (gdot -> 0): the time loop of ``stepping``, avalanche by avalanche.

Between avalanches every site is elastic and below threshold, so loading only shifts Sigma: it
is raised in one jump to the value at which the site nearest to its threshold is just above it
(the exact fast-forward of imposed rate, without the steps), the strain growing by the jump / mu.
Then the strain is held (``Quasistatic.drive``: no load per step, stress feedback on) and the
steps of ``stepping`` run until no site is plastic and none is above threshold. While no site is
plastic and some are above threshold, nothing changes but their activation clocks: the loop jumps
to the first activation (the clocks of the sites above threshold all advance together), so an
avalanche costs time steps only while some site flows; a deferred stretch goes on through such a
wait (its tracked sites hold every site that may be above threshold) and ends with the avalanche.
"""

import math
from typing import NamedTuple

import numpy as np

from .deferred import IDLE
from .jit import inline, jit
from .stepping import STATUS_NONFINITE, STATUS_OK, settle, start_clocks, step_once, store_snapshot

MAX_AVALANCHES = 2**62
"""``Goal.n_avalanches`` of a run to a strain."""

STATUS_ENDLESS = 2
"""An avalanche went on beyond ``Goal.max_steps``."""


class Goal(NamedTuple):
    """Where a quasistatic run ends, and what it stores on the way."""

    strain_end: float  # no avalanche starts beyond this strain (inf: none)
    n_avalanches: int  # or after this many
    max_steps: int  # most time steps of one avalanche
    snapshot_strains: np.ndarray  # (n_snapshots,) float64, increasing, <= strain_end


class Avalanches(NamedTuple):
    """Records of the avalanches, from index 0 (the capacity is the arrays' length)."""

    strain: np.ndarray  # float64: strain at the trigger
    stress_before: np.ndarray  # float64: Sigma at the trigger
    stress_after: np.ndarray  # float64: Sigma at the end
    increments: np.ndarray  # float64: plastic increments summed over sites and steps (stress units)
    activations: np.ndarray  # int64: elastic -> plastic switches
    steps: np.ndarray  # int64: time steps from the trigger to the end


class Progress(NamedTuple):
    """The state of a run between two avalanches, returned by ``run`` and resumed from."""

    sigma_ext: float  # Sigma
    strain: float
    count: int  # avalanches recorded
    next_snapshot: int
    status: int  # STATUS_OK, STATUS_NONFINITE or STATUS_ENDLESS
    done: bool  # the goal is reached


def avalanches(capacity: int) -> Avalanches:
    """Empty ``Avalanches`` for ``capacity`` avalanches."""
    return Avalanches(*(np.empty(capacity) for _ in range(4)), np.empty(capacity, np.int64),
                      np.empty(capacity, np.int64))  # fmt: skip


def grown(records: Avalanches, count: int, capacity: int) -> Avalanches:
    """``records`` moved to arrays of ``capacity`` entries (the first ``count`` kept)."""
    out = avalanches(capacity)
    for old, new in zip(records, out, strict=True):
        new[:count] = old[:count]
    return out


def trimmed(records: Avalanches, count: int) -> Avalanches:
    """The first ``count`` records."""
    return Avalanches(*(a[:count] for a in records))


@inline
def _trigger_stress(s, thr, sigma_ext):
    """The smallest Sigma at which a site is above threshold: Sigma itself if one already is, else
    Sigma plus the smallest gap, raised to the next float until its site is strictly above."""
    site, gmin = 0, math.inf
    for i in range(s.size):
        gap = thr[i] - (sigma_ext + s[i])
        if gap < gmin:
            site, gmin = i, gap
    if gmin < 0.0:
        return sigma_ext
    target = sigma_ext + gmin
    while not target + s[site] > thr[site]:
        target = np.nextafter(target, math.inf)
    return target


@inline
def _wait(lat, sigma_ext, sites, n_sites, every):
    """With no site plastic: advance the activation clocks of the sites above threshold to one
    step before the first activation; returns the steps skipped, or -1 if no site is above. Looks
    at every site (``every``) or at the first ``n_sites`` of ``sites``, which must hold every
    site that may be above threshold (the tracked sites of a deferred stretch)."""
    s, thr, clocks = lat.s, lat.threshold, lat.clock
    n = s.size if every else n_sites
    first = -1
    for k in range(n):
        i = k if every else sites[k]
        if sigma_ext + s[i] > thr[i] and (first < 0 or clocks[i] < first):
            first = clocks[i]
    if first < 0:
        return -1
    if first > 1:
        for k in range(n):
            i = k if every else sites[k]
            if sigma_ext + s[i] > thr[i]:
                clocks[i] -= first - 1
    return first - 1


@jit
def run(lat, drive, rts, law, kernel, pth, dfr, wk, goal, records, snapshots, progress, rng):
    """Shear quasistatically from ``progress`` (a run starts from ``start``) until the goal is
    reached or ``records`` is full, in place (``lat``, ``dfr``, ``wk``, ``records``, ``snapshots``).

    The arguments are those of ``stepping.run`` (``drive``: ``Quasistatic.drive``), with ``goal``:
    ``Goal``, ``records``: ``Avalanches``; every site is elastic and below threshold or, at the
    start, possibly above it. Returns the ``Progress`` reached.
    """
    s, thr = lat.s, lat.threshold
    mu = drive.shear_modulus
    sigma_ext, strain = progress.sigma_ext, progress.strain
    count, next_snapshot = progress.count, progress.next_snapshot
    n_snap = goal.snapshot_strains.size
    n_plastic = 0
    stretch = IDLE
    while count < goal.n_avalanches and count < records.strain.size:
        # load elastically up to the next trigger; the snapshots on the way are the loaded state
        trigger = _trigger_stress(s, thr, sigma_ext)
        trigger_strain = strain + (trigger - sigma_ext) / mu
        while next_snapshot < n_snap and goal.snapshot_strains[next_snapshot] < trigger_strain:
            store_snapshot(snapshots, next_snapshot, sigma_ext + mu * (goal.snapshot_strains[next_snapshot] - strain),
                           lat)  # fmt: skip
            next_snapshot += 1
        if trigger_strain > goal.strain_end:
            return Progress(sigma_ext + mu * (goal.strain_end - strain), goal.strain_end, count, next_snapshot,
                            STATUS_OK, True)  # fmt: skip
        sigma_ext, strain = trigger, trigger_strain
        records.strain[count], records.stress_before[count] = strain, sigma_ext

        # the avalanche, at fixed strain
        total, activations, steps = 0.0, 0, 0
        while True:
            if n_plastic == 0:  # a deferred stretch goes on while sites wait to activate
                skipped = _wait(lat, sigma_ext, dfr.tracked_sites, stretch.tracked, not stretch.active)
                if skipped < 0:
                    stretch = settle(lat, sigma_ext, n_plastic, True, pth, kernel, dfr, stretch, wk)
                    break
                steps += skipped
            else:
                stretch = settle(lat, sigma_ext, n_plastic, False, pth, kernel, dfr, stretch, wk)
            sigma_ext, sum_d, n_plastic, n_new, stretch = step_once(lat, sigma_ext, n_plastic, drive, rts, law,
                                                                    kernel, pth, dfr, stretch, wk, rng)  # fmt: skip
            total += sum_d
            activations += n_new
            steps += 1
            if steps > goal.max_steps:
                return Progress(sigma_ext, strain, count, next_snapshot, STATUS_ENDLESS, True)
        records.stress_after[count], records.increments[count] = sigma_ext, total
        records.activations[count], records.steps[count] = activations, steps
        count += 1
        if not (math.isfinite(sigma_ext) and math.isfinite(total)):
            return Progress(sigma_ext, strain, count, next_snapshot, STATUS_NONFINITE, True)
    return Progress(sigma_ext, strain, count, next_snapshot, STATUS_OK, count >= goal.n_avalanches)


@jit
def start(lat, rts, rng):
    """Draw every site's clock (every site elastic), as ``stepping.run`` does at its start."""
    start_clocks(lat, rts, rng)


def shear(lat, drive, rts, law, kernel, pth, dfr, wk, goal, snapshots, rng) -> tuple[Avalanches, Progress]:
    """A whole quasistatic run (the arguments of ``run``): its records trimmed and its ``Progress``
    at the end; the records grow (doubling) as long as the goal is not reached."""
    start(lat, rts, rng)
    capacity = min(goal.n_avalanches, 1024)
    records = avalanches(capacity)
    progress = Progress(drive.start_stress, 0.0, 0, 0, STATUS_OK, False)
    while True:
        progress = run(lat, drive, rts, law, kernel, pth, dfr, wk, goal, records, snapshots, progress, rng)
        if progress.done:
            return trimmed(records, progress.count), progress
        capacity = min(2 * capacity, goal.n_avalanches)
        records = grown(records, progress.count, capacity)
