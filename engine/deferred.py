"""Deferred real-space redistribution, for steps with few plastic sites.

Adding the kernel of each of k plastic sites to the whole field costs k N per step. Yet a step
needs exact stresses at two kinds of sites only: the plastic ones (their increments) and the
elastic ones that may be above threshold (their switching clocks). This scheme keeps those
*tracked* sites exact through a small dense matrix of kernel values (pending x tracked), sums
the increments D_p of the *pending* sites (those plastic since the last flush), and adds the
field G * D to all other sites only at a *flush*.

The deferred stress of an untracked site i, sum_p G_ip D_p, is at most ``R_i d + margin``
(``pending_slack``): R_i sums the positive part of G_ip over the pending sites, d = max_p D_p,
and the margin covers negative increments plus ``tol``, 1e-9 of the stress scale, far above the
round-off of the sums involved (R itself is kept by adding and subtracting kernels, or at a
flush of many sites by one FFT pair, ``add_field``). While
``Sigma + s_i + R_i d + margin <= thr_i`` the site is provably below threshold; one failing this
test is tracked (its exact stress computed) before the switching pass. Every switching decision
is thus the one plain stepping takes, and every stress the same up to round-off.

The arrays live in a ``Deferral`` (``deferral``), the scalars of the stretch in progress in a
``Stretch``, which the functions below return updated. For a short cold compile, the functions
compiled on their own (``admit``, ``track_uncertain``) call no other compiled function, and the
others are merged into their one caller: Numba re-optimises a callee's code in every caller.
"""

import mmap
from typing import NamedTuple

import numpy as np
from numba import int64, uint64

from .jit import inline, internal
from .redistribution import redistribute_fft, redistribute_sparse

BLOCK = 64
PAD = 8
"""Extra entries per kernel-matrix row: rows a power of two apart would share cache sets."""

FLUSH_WORK = 4.0
"""A deferred stretch ends when its tracked-site updates (tracked x plastic per step, summed) exceed
this many times the cost of an eager step, min(plastic, fft_min) x N (``eager_work``: kernels, or
from ``fft_min`` sites one FFT pair, worth about fft_min kernels): the flush costs about two."""


class Deferral(NamedTuple):
    """Arrays of the deferred state of a lattice of n sites (any number of them may be tracked)."""

    tracked_slot: np.ndarray  # (n,) int64: slot of each site among the tracked ones, or -1
    pending_slot: np.ndarray  # (n,) int64: slot of each site among the pending ones, or -1
    untracked: np.ndarray  # (n,) uint8
    bound: np.ndarray  # (n,) float64: R_i
    tracked_sites: np.ndarray  # (n,) int64
    exact: np.ndarray  # (n,) float64: exact stress fluctuations of the tracked sites
    pending_sites: np.ndarray  # (capacity,) int64
    pending: np.ndarray  # (capacity,) float64: summed increments D_p of the pending sites
    kernel_rows: np.ndarray  # G between pending p and tracked t at p * (n + PAD) + t
    rows_of_plastic: np.ndarray  # (n,) int64: pending slot of each listed plastic site, per step
    new_sites: np.ndarray  # (n,) int64: sites newly pending, or leaving
    weights: np.ndarray  # (n,) float64: +-1 per site of new_sites, for the bounds


class Scan(NamedTuple):
    """The last scan of the untracked sites by a stretch that tracks ahead (``track_after_step``):
    at Sigma ``sigma`` and margin ``margin`` each untracked site was below threshold by more than
    the tolerance even with d = ``d_reach``. While Sigma plus the margin does not rise and d stays
    below ``d_reach``, no untracked site can be above threshold and no scan is needed."""

    sigma: float
    margin: float
    d_reach: float  # -inf: scan at the next step (none yet, or R changed)


UNSCANNED = Scan(0.0, 0.0, -np.inf)


class Stretch(NamedTuple):
    """The deferred stretch in progress (``active`` False: none)."""

    active: bool
    tracked: int  # number of tracked sites
    pending: int  # number of pending sites
    tolerance: float  # round-off margin of the below-threshold test (``tolerance``)
    work: int  # tracked-site updates since the last flush
    work_limit: float  # flush when ``work`` exceeds it (``FLUSH_WORK``)
    overflow: bool  # new plastic sites did not fit: flush at the next step
    scan: Scan


IDLE = Stretch(False, 0, 0, 0.0, 0, 0.0, False, UNSCANNED)


def reserved(size: int) -> np.ndarray:
    """A float64 array of ``size`` entries whose pages become resident only where written: an
    anonymous mapping with transparent huge pages declined (a 2 MB page would make up to 2 MB of
    rows resident for each row in use; NumPy asks for huge pages on large arrays)."""
    mapping = mmap.mmap(-1, max(size, 1) * 8)
    if hasattr(mmap, "MADV_NOHUGEPAGE"):  # Linux
        mapping.madvise(mmap.MADV_NOHUGEPAGE)
    return np.frombuffer(mapping, np.float64, size)


def deferral(n: int, capacity: int) -> Deferral:
    """The deferred state for n sites and at most ``capacity`` pending ones (only the parts of
    ``kernel_rows`` in use, the tracked entries of the pending rows, become resident memory)."""
    return Deferral(
        np.full(n, -1, np.int64), np.full(n, -1, np.int64), np.ones(n, np.uint8), np.zeros(n),
        np.empty(n, np.int64), np.empty(n), np.empty(capacity, np.int64), np.empty(capacity),
        reserved(capacity * (n + PAD)), np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n),
    )  # fmt: skip


@inline
def track(i, s, d, n_t, n_p, kernel):
    """Make site i tracked: its exact stress is s_i plus its share of the pending field."""
    stride = d.tracked_sites.size + PAD
    L = kernel.L
    at_i = kernel.offset[i] + 2 * L * L + L
    v = s[i]
    for p in range(n_p):
        g = kernel.tiled[at_i - kernel.offset[d.pending_sites[p]]]
        d.kernel_rows[p * stride + n_t] = g
        v += g * d.pending[p]
    s[i] = v
    d.exact[n_t] = v
    d.tracked_sites[n_t] = i
    d.tracked_slot[i] = n_t
    d.untracked[i] = 0
    return n_t + 1


@internal
def admit(s, d, n_t, n_p, plastic_sites, n_plastic, kernel):
    """Make every plastic site tracked and pending (those that are not yet); returns whether they
    fit, the new counts and the number of new pending sites (listed in ``d.new_sites``), whose
    positive G the caller adds to R. Changes nothing when they do not fit."""
    new = d.new_sites
    n_new = int64(0)
    for k in range(n_plastic):
        if d.pending_slot[plastic_sites[k]] < 0:
            new[n_new] = plastic_sites[k]
            n_new += 1
    if n_p + n_new > d.pending_sites.size:
        return False, n_t, n_p, int64(0)
    for k in range(n_new):
        if d.tracked_slot[new[k]] < 0:
            n_t = track(new[k], s, d, n_t, n_p, kernel)
    stride = d.tracked_sites.size + PAD
    L = kernel.L
    for k in range(n_new):  # a row of kernel values for the tracked sites, D = 0
        j = new[k]
        at_j = 2 * L * L + L - kernel.offset[j]
        for t in range(n_t):
            d.kernel_rows[n_p * stride + t] = kernel.tiled[kernel.offset[d.tracked_sites[t]] + at_j]
        d.pending_sites[n_p] = j
        d.pending_slot[j] = n_p
        d.pending[n_p] = 0.0
        n_p += 1
    return True, n_t, n_p, n_new


@inline
def add_bounds(d, n, weight, kernel):
    """R_i += weight x sum over the n sites of ``d.new_sites`` of max(G_i,site, 0)."""
    for k in range(n):
        d.weights[k] = weight
    redistribute_sparse(d.bound, d.new_sites, d.weights, n, kernel.tiled_positive, kernel.L)


@inline
def admit_bounded(s, d, n_t, n_p, plastic_sites, n_plastic, kernel):
    """``admit``, then the new pending sites' positive G added to R (if they fit)."""
    fits, n_t, n_p, n_new = admit(s, d, n_t, n_p, plastic_sites, n_plastic, kernel)
    if fits:
        add_bounds(d, n_new, 1.0, kernel)
    return fits, n_t, n_p


@inline
def eager_work(n_plastic, fft_min, n):
    """The ``work_limit`` of a stretch from n_plastic sites (``FLUSH_WORK``), in tracked-site updates."""
    return FLUSH_WORK * min(n_plastic, fft_min) * n


@inline
def begin(s, thr, sigma_ext, d, plastic_sites, n_plastic, fft_min, kernel):
    """A stretch from the plastic sites, or ``IDLE`` if they do not fit (``fft_min``: ``flush``)."""
    fits, n_t, n_p = admit_bounded(s, d, int64(0), int64(0), plastic_sites, n_plastic, kernel)
    if not fits:
        return IDLE
    return Stretch(True, n_t, n_p, tolerance(s, thr, sigma_ext), 0, eager_work(n_plastic, fft_min, s.size), False,
                   UNSCANNED)  # fmt: skip


@inline
def admit_new(s, d, stretch, plastic_sites, n_plastic, kernel):
    """The new plastic sites become pending; if they do not fit, the stretch overflows (and is
    flushed at the next step)."""
    fits, n_t, n_p = admit_bounded(s, d, stretch.tracked, stretch.pending, plastic_sites, n_plastic, kernel)
    if not fits:
        return Stretch(True, stretch.tracked, stretch.pending, stretch.tolerance, stretch.work,
                       stretch.work_limit, True, stretch.scan)  # fmt: skip
    scan = stretch.scan if n_p == stretch.pending else UNSCANNED  # new pending sites: R grew
    return Stretch(True, n_t, n_p, stretch.tolerance, stretch.work, stretch.work_limit, False, scan)


@inline
def add_field(target, sites, values, n_sites, g_tiled, g_hat, fft_min, L, dense, fft):
    """target += G * v over the first n_sites ``sites`` (``values``: v): their kernels (``g_tiled``),
    or from ``fft_min`` of them one FFT pair (``g_hat``; ``dense``: (L, L) work array, ``fft``:
    ``redistribution.FftWork``)."""
    if n_sites < fft_min:
        redistribute_sparse(target, sites, values, n_sites, g_tiled, L)
        return
    for iy in range(L):
        for ix in range(L):
            dense[iy, ix] = 0.0
    for k in range(n_sites):
        dense[sites[k] // L, sites[k] % L] = values[k]
    redistribute_fft(target, dense, g_hat, fft.spectrum, fft.field, fft.axes)


@inline
def flush(s, thr, sigma_ext, d, stretch, plastic, plastic_sites, n_plastic, keep, fft_min, kernel, dense, fft):
    """Add the pending field to the untracked sites and forget every tracked and pending site.
    With ``keep``, go on deferring from the plastic sites alone (R loses the pending sites that
    relaxed); otherwise, or if they do not fit, the deferral ends (R = 0, ``IDLE``). Both sums are
    made by kernels, or from ``fft_min`` sites by one FFT pair (``add_field``).
    """
    n_t, n_p = stretch.tracked, stretch.pending
    if keep:
        n_gone = int64(0)
        for p in range(n_p):
            if not plastic[d.pending_sites[p]]:
                d.new_sites[n_gone] = d.pending_sites[p]
                d.weights[n_gone] = -1.0
                n_gone += 1
        add_field(d.bound, d.new_sites, d.weights, n_gone, kernel.tiled_positive, kernel.positive_spectrum, fft_min,
                  kernel.L, dense, fft)  # fmt: skip
    # the pending field (tracked sites: reset below)
    add_field(s, d.pending_sites, d.pending, n_p, kernel.tiled, kernel.spectrum, fft_min, kernel.L, dense, fft)
    for t in range(n_t):
        s[d.tracked_sites[t]] = d.exact[t]
        d.tracked_slot[d.tracked_sites[t]] = -1
        d.untracked[d.tracked_sites[t]] = 1
    for p in range(n_p):
        d.pending_slot[d.pending_sites[p]] = -1
    fits = False
    if keep:
        fits, n_t, n_p, _ = admit(s, d, int64(0), int64(0), plastic_sites, n_plastic, kernel)
    if not fits:
        for i in range(uint64(s.size)):
            d.bound[i] = 0.0
        return IDLE
    return Stretch(True, n_t, n_p, tolerance(s, thr, sigma_ext), 0, eager_work(n_plastic, fft_min, s.size), False,
                   UNSCANNED)  # fmt: skip


@inline
def tolerance(s, thr, sigma_ext):
    """Margin of the below-threshold test of a deferred stretch: 1e-9 x the scale of the stresses
    and thresholds compared, far above the round-off of the sums involved."""
    scale = abs(sigma_ext)
    for i in range(uint64(s.size)):
        scale = max(scale, abs(s[i]), thr[i])
    return 1e-9 * (1.0 + scale)


@inline
def step_increments(s, d, n_t, plastic_sites, n_plastic, increments, sigma_ext, dt_tau):
    """The plastic increments of a deferred step (written to ``increments``): summed into D and
    applied to the tracked sites (four pending rows per pass). Returns their sum."""
    rows = d.rows_of_plastic
    exact, kmat = d.exact, d.kernel_rows
    stride = uint64(d.tracked_sites.size + PAD)
    sum_d = 0.0
    for k in range(n_plastic):
        j = plastic_sites[k]
        inc = (sigma_ext + s[j]) * dt_tau
        increments[k] = inc
        p = d.pending_slot[j]
        rows[k] = p
        d.pending[p] += inc
        sum_d += inc
    n_tu = uint64(n_t)
    n4 = n_plastic - n_plastic % 4
    for k in range(0, n4, 4):
        a0, a1 = uint64(rows[k]) * stride, uint64(rows[k + 1]) * stride
        a2, a3 = uint64(rows[k + 2]) * stride, uint64(rows[k + 3]) * stride
        d0, d1, d2, d3 = increments[k], increments[k + 1], increments[k + 2], increments[k + 3]
        for t in range(n_tu):
            pair01 = d0 * kmat[a0 + t] + d1 * kmat[a1 + t]
            exact[t] += pair01 + (d2 * kmat[a2 + t] + d3 * kmat[a3 + t])
    for k in range(n4, n_plastic):
        a = uint64(rows[k]) * stride
        inc = increments[k]
        for t in range(n_tu):
            exact[t] += inc * kmat[a + t]
    for t in range(n_t):
        s[d.tracked_sites[t]] = exact[t]
    return sum_d


@inline
def pending_slack(d, n_p, g_neg_max, tol):
    """What may separate an untracked site's stored stress from its exact one, as
    (d, margin): at most ``R_i d + margin``, where R_i sums the positive part of G over the
    pending sites, d = max_p D_p (>= 0) and margin = tol + g_neg_max sum_p max(-D_p, 0)
    (a pending site is never the untracked site itself: G_ip >= -g_neg_max)."""
    pending = d.pending
    d_max, negative = 0.0, 0.0
    for p in range(n_p):
        d_max = max(d_max, pending[p])
        negative += max(-pending[p], 0.0)
    return d_max, tol + g_neg_max * negative


@internal
def track_uncertain(s, thr, d, n_t, n_p, sigma_ext, d_max, margin, kernel):
    """Track the untracked sites not provably below threshold (their deferred part is at most
    R_i d_max + margin, ``pending_slack``); returns the new number of tracked sites.

    Counted block by block without branches (vectorised); only a block holding such a site is
    scanned site by site.
    """
    untracked, bound = d.untracked, d.bound
    n = uint64(s.size)
    for start in range(uint64(0), n, uint64(BLOCK)):
        stop = min(start + uint64(BLOCK), n)
        found = int64(0)
        for i in range(start, stop):
            found += untracked[i] & (sigma_ext + s[i] + (bound[i] * d_max + margin) > thr[i])
        if found == 0:
            continue
        for i in range(start, stop):
            if untracked[i] and sigma_ext + s[i] + (bound[i] * d_max + margin) > thr[i]:
                n_t = track(int64(i), s, d, n_t, n_p, kernel)
    return n_t


@inline
def deferred_step(s, d, stretch, plastic_sites, n_plastic, increments, sigma_ext, dt_tau):
    """Increments of a deferred step; returns their sum and the stretch with its work counted."""
    sum_d = step_increments(s, d, stretch.tracked, plastic_sites, n_plastic, increments, sigma_ext, dt_tau)
    work = stretch.work + stretch.tracked * n_plastic
    return sum_d, Stretch(True, stretch.tracked, stretch.pending, stretch.tolerance, work, stretch.work_limit,
                          stretch.overflow, stretch.scan)  # fmt: skip


@inline
def track_after_step(s, thr, d, stretch, sigma_ext, horizon, kernel):
    """Track the sites that the drive and the increments may have brought above threshold.

    With ``horizon`` > 0 the scan tracks ahead: the sites that would be above threshold, by the
    tolerance, if d grew by ``horizon`` more; the next scan is then due only once d has grown that
    much or Sigma plus the margin has risen (``Scan``), which under a held strain, where Sigma
    falls as sites flow, spares most scans. With 0, every step scans for the sites that may be
    above threshold now.
    """
    tol = stretch.tolerance
    d_max, margin = pending_slack(d, stretch.pending, kernel.negative_max, tol)
    last = stretch.scan
    if d_max <= last.d_reach and sigma_ext + margin <= last.sigma + last.margin:
        return stretch
    ahead = tol if horizon > 0.0 else 0.0
    n_t = track_uncertain(s, thr, d, stretch.tracked, stretch.pending, sigma_ext, d_max + horizon, margin + ahead,
                          kernel)  # fmt: skip
    scan = Scan(sigma_ext, margin, d_max + horizon) if horizon > 0.0 else UNSCANNED
    return Stretch(True, n_t, stretch.pending, stretch.tolerance, stretch.work, stretch.work_limit, stretch.overflow,
                   scan)  # fmt: skip
