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
round-off of the sums involved (R itself is kept by adding and subtracting kernels). While
``Sigma + s_i + R_i d + margin <= thr_i`` the site is provably below threshold; one failing this
test is tracked (its exact stress computed) before the switching pass. Every switching decision
is thus the one plain stepping takes, and every stress the same up to round-off.

The state is a tuple of arrays (``workspace``) and two counts, ``n_t`` tracked and ``n_p``
pending sites; the functions return the updated counts. For a short cold compile, the functions
compiled on their own (``admit``, ``track_uncertain``) call no other compiled function, and
``flush`` is merged into its one caller: Numba re-optimises a callee's code in every caller.
"""

import numpy as np
from numba import int64, uint64

from .jit import inline, internal
from .redistribution import redistribute_sparse

BLOCK = 64
PAD = 8
"""Extra entries per kernel-matrix row: rows a power of two apart would share cache sets."""


def workspace(n: int, max_pending: int) -> tuple:
    """Arrays of the deferred state for a lattice of n sites (any number of them may be tracked).

    ``t_pos``/``p_pos`` (n,): slot of each site among the tracked / pending ones, or -1;
    ``untracked`` (n,) uint8; ``bound`` (n,): R_i;
    ``t_list``/``exact`` (n,): tracked sites and their exact stress fluctuations;
    ``p_list``/``pending`` (max_pending,): pending sites and their summed increments D_p;
    ``kmat``: G between pending p and tracked t at ``p * (n + PAD) + t`` (only the part in use
    becomes resident memory).
    """
    return (
        np.full(n, -1, np.int64), np.full(n, -1, np.int64), np.ones(n, np.uint8), np.zeros(n),
        np.empty(n, np.int64), np.empty(n), np.empty(max_pending, np.int64), np.empty(max_pending),
        np.empty(max_pending * (n + PAD)),
    )  # fmt: skip


def tiled_offsets(L: int) -> np.ndarray:
    """``offset[i] = iy * 2L + ix`` of site i = iy * L + ix, so that G_ij is
    ``g_ext[offset[i] - offset[j] + 2 L^2 + L]`` in the tiled kernel (``redistribution.tiled_kernel``)."""
    iy, ix = np.divmod(np.arange(L * L, dtype=np.int64), L)
    return iy * 2 * L + ix


@inline
def track(i, s, ws, n_t, n_p, g_ext, offset, L):
    """Make site i tracked: its exact stress is s_i plus its share of the pending field."""
    t_pos, _, untracked, _, t_list, exact, p_list, pending, kmat = ws
    stride = t_list.size + PAD
    at_i = offset[i] + 2 * L * L + L
    v = s[i]
    for p in range(n_p):
        g = g_ext[at_i - offset[p_list[p]]]
        kmat[p * stride + n_t] = g
        v += g * pending[p]
    s[i] = v
    exact[n_t] = v
    t_list[n_t] = i
    t_pos[i] = n_t
    untracked[i] = 0
    return n_t + 1


@internal
def admit(s, ws, n_t, n_p, plist, n_plastic, new, g_ext, offset, L):
    """Make every plastic site tracked and pending (those that are not yet); returns the new
    counts and the number of new pending sites (listed in ``new``), whose positive G the
    caller adds to R; or (-1, -1, 0) without any change when they would not fit."""
    t_pos, p_pos, _, _, t_list, _, p_list, pending, kmat = ws
    n_new = int64(0)
    for k in range(n_plastic):
        if p_pos[plist[k]] < 0:
            new[n_new] = plist[k]
            n_new += 1
    if n_p + n_new > p_list.size:
        return int64(-1), int64(-1), int64(0)
    for k in range(n_new):
        if t_pos[new[k]] < 0:
            n_t = track(new[k], s, ws, n_t, n_p, g_ext, offset, L)
    stride = t_list.size + PAD
    for k in range(n_new):  # a row of kernel values for the tracked sites, D = 0
        j = new[k]
        at_j = 2 * L * L + L - offset[j]
        for t in range(n_t):
            kmat[n_p * stride + t] = g_ext[offset[t_list[t]] + at_j]
        p_list[n_p] = j
        p_pos[j] = n_p
        pending[n_p] = 0.0
        n_p += 1
    return n_t, n_p, n_new


@inline
def add_bounds(ws, sites, n, weight, weights, g_pos_ext, L):
    """R_i += weight x sum over the n ``sites`` of max(G_i,site, 0)."""
    for k in range(n):
        weights[k] = weight
    redistribute_sparse(ws[3], sites, weights, n, g_pos_ext, L)


@inline
def admit_bounded(s, ws, n_t, n_p, plist, n_plastic, new, weights, g_ext, g_pos_ext, offset, L):
    """``admit``, then the new pending sites' positive G added to R (if they fit)."""
    n_t, n_p, n_new = admit(s, ws, n_t, n_p, plist, n_plastic, new, g_ext, offset, L)
    if n_t >= 0:
        add_bounds(ws, new, n_new, 1.0, weights, g_pos_ext, L)
    return n_t, n_p


@inline
def flush(s, thr, sigma_ext, ws, n_t, n_p, plastic, plist, n_plastic, new, weights, keep, g_ext, g_pos_ext, offset, L):
    """Add the pending field to the untracked sites and forget every tracked and pending site.
    With ``keep``, go on deferring from the plastic sites alone (R loses the pending sites that
    relaxed); otherwise, or if they do not fit, the deferral ends (R = 0). Returns the new counts
    (-1 when the deferral ended) and the tolerance of the stretch that goes on.
    """
    t_pos, p_pos, untracked, bound, t_list, exact, p_list, pending, _ = ws
    if keep:
        n_gone = int64(0)
        for p in range(n_p):
            if not plastic[p_list[p]]:
                new[n_gone] = p_list[p]
                n_gone += 1
        add_bounds(ws, new, n_gone, -1.0, weights, g_pos_ext, L)
    redistribute_sparse(s, p_list, pending, n_p, g_ext, L)  # the tracked sites are then reset to exact
    for t in range(n_t):
        s[t_list[t]] = exact[t]
        t_pos[t_list[t]] = -1
        untracked[t_list[t]] = 1
    for p in range(n_p):
        p_pos[p_list[p]] = -1
    n_t, n_p = int64(-1), int64(-1)
    if keep:
        n_t, n_p, _ = admit(s, ws, int64(0), int64(0), plist, n_plastic, new, g_ext, offset, L)
    if n_t < 0:
        for i in range(uint64(s.size)):
            bound[i] = 0.0
        return n_t, n_p, 0.0
    return n_t, n_p, tolerance(s, thr, sigma_ext)


@inline
def tolerance(s, thr, sigma_ext):
    """Margin of the below-threshold test of a deferred stretch: 1e-9 x the scale of the stresses
    and thresholds compared, far above the round-off of the sums involved."""
    scale = abs(sigma_ext)
    for i in range(uint64(s.size)):
        scale = max(scale, abs(s[i]), thr[i])
    return 1e-9 * (1.0 + scale)


@inline
def step_increments(s, ws, n_t, plist, n_plastic, dbuf, pcol, sigma_ext, dt_tau):
    """The plastic increments d_j of a deferred step: summed into D and applied to the tracked
    sites (four pending rows per pass). Returns sum(d)."""
    _, p_pos, _, _, t_list, exact, _, pending, kmat = ws
    stride = uint64(t_list.size + PAD)
    sum_d = 0.0
    for k in range(n_plastic):
        j = plist[k]
        d = (sigma_ext + s[j]) * dt_tau
        dbuf[k] = d
        p = p_pos[j]
        pcol[k] = p
        pending[p] += d
        sum_d += d
    n_tu = uint64(n_t)
    n4 = n_plastic - n_plastic % 4
    for k in range(0, n4, 4):
        a0, a1 = uint64(pcol[k]) * stride, uint64(pcol[k + 1]) * stride
        a2, a3 = uint64(pcol[k + 2]) * stride, uint64(pcol[k + 3]) * stride
        d0, d1, d2, d3 = dbuf[k], dbuf[k + 1], dbuf[k + 2], dbuf[k + 3]
        for t in range(n_tu):
            pair01 = d0 * kmat[a0 + t] + d1 * kmat[a1 + t]
            exact[t] += pair01 + (d2 * kmat[a2 + t] + d3 * kmat[a3 + t])
    for k in range(n4, n_plastic):
        a = uint64(pcol[k]) * stride
        d = dbuf[k]
        for t in range(n_tu):
            exact[t] += d * kmat[a + t]
    for t in range(n_t):
        s[t_list[t]] = exact[t]
    return sum_d


@inline
def pending_slack(ws, n_p, g_neg_max, tol):
    """What may separate an untracked site's stored stress from its exact one, as
    (d, margin): at most ``R_i d + margin``, where R_i sums the positive part of G over the
    pending sites, d = max_p D_p (>= 0) and margin = tol + g_neg_max sum_p max(-D_p, 0)
    (a pending site is never the untracked site itself: G_ip >= -g_neg_max)."""
    pending = ws[7]
    d, negative = 0.0, 0.0
    for p in range(n_p):
        d = max(d, pending[p])
        negative += max(-pending[p], 0.0)
    return d, tol + g_neg_max * negative


@internal
def track_uncertain(s, thr, ws, n_t, n_p, sigma_ext, d_max, margin, g_ext, offset, L):
    """Track the untracked sites not provably below threshold (their deferred part is at most
    R_i d_max + margin, ``pending_slack``); returns the new n_t.

    Counted block by block without branches (vectorised); only a block holding such a site is
    scanned site by site.
    """
    untracked, bound = ws[2], ws[3]
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
                n_t = track(int64(i), s, ws, n_t, n_p, g_ext, offset, L)
    return n_t
