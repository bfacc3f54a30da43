"""The compiled time loop of the lattice model (Numba, no Python per step).

State representation: the local stress is sigma_i = Sigma + s_i, with Sigma the external stress
(a scalar) and s the zero-mean fluctuation field (flat, length N = L * L). A purely elastic step
under imposed rate then only changes the scalar Sigma, which makes the exact fast-forward over
elastic stretches possible: the same floating-point operations as plain stepping, per step O(1).
"""

import math

import numpy as np
from numba import int64, uint64

from .deferred import admit_bounded, flush, pending_slack, step_increments, tolerance, track_uncertain
from .jit import inline, jit
from .redistribution import fft_workspace, redistribute_fft, redistribute_sparse
from .thresholds import quantile

# Indices into the integer counters returned by ``run``.
STEPS_SPARSE, STEPS_DEFERRED, STEPS_FFT, STEPS_FAST_FORWARD, STEPS_ELASTIC, FLUSHES = range(6)
STATUS_OK, STATUS_NONFINITE = 0, 1

DEFER_MIN = 8
"""A deferred stretch begins with at least this many plastic sites (fewer kernels cost less than
its bookkeeping, ``benchmarks/crossover.py``); it goes on until none or ``defer_max`` are."""

FLUSH_WORK = 4.0
"""A deferred stretch ends when its tracked-site updates (tracked x plastic per step, summed) exceed
this many times the cost of an eager real-space step (plastic x N): the flush costs about two."""


def workspace(L: int) -> tuple:
    """Work arrays of ``run``: plastic list, increments, their slots, the FFT path's dense
    increments and ``redistribution.fft_workspace``, clocks, newly plastic sites, crossing
    candidates, counters (zeros)."""
    n = L * L
    return (
        np.empty(n, np.int64), np.empty(n), np.empty(n, np.int64), np.empty((L, L)), *fft_workspace(L),
        np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64), np.zeros(6, np.int64),
    )  # fmt: skip


@inline
def _store_fields(sigma_ext, s, thr, plastic, out_stress, out_thr, out_plastic):
    for i in range(s.size):
        out_stress[i] = sigma_ext + s[i]
        out_thr[i] = thr[i]
        out_plastic[i] = plastic[i]


@jit
def _list_plastic(plastic, plist):
    """Write the plastic sites' indices into ``plist``; returns their number.

    (A count returned by a function is a plain integer to Numba: callees taking it are compiled
    once, not also for the literal 0 of an inline initialisation.)
    """
    n_plastic = 0
    for i in range(plastic.size):
        if plastic[i]:
            plist[n_plastic] = i
            n_plastic += 1
    return n_plastic


@inline
def _sum(s):
    total = 0.0
    for i in range(uint64(s.size)):
        total += s[i]
    return total


@inline
def _any_above(s, thr, sigma_ext):
    for i in range(uint64(s.size)):
        if sigma_ext + s[i] > thr[i]:
            return True
    return False


@inline
def _crossing_candidates(s, thr, sigma_ext, out):
    """Write into ``out`` the sites whose gap thr - sigma is within round-off of the smallest:
    the only ones that can cross first while the whole field is shifted up uniformly; returns
    their number."""
    gmin = math.inf
    for i in range(uint64(s.size)):
        gmin = min(gmin, thr[i] - (sigma_ext + s[i]))
    tol = tolerance(s, thr, sigma_ext)
    n = 0
    for i in range(uint64(s.size)):
        if thr[i] - (sigma_ext + s[i]) <= gmin + tol:
            out[n] = i
            n += 1
    return n


MAX_CLOCK = 2**62


@inline
def _clock(rng, dt_over_tau):
    """Steps up to and including the first success of per-step trials of probability
    p = 1 - exp(-dt / tau): the geometric law P(K > k) = exp(-k dt / tau), drawn by inversion
    (an exponential waiting time counted in steps). Capped at 2**62."""
    k = -math.log1p(-rng.random()) / dt_over_tau
    return int(min(k, MAX_CLOCK)) + 1


SWITCH_BLOCK = 64
"""Sites per block of the switching pass: clocks tick branch-free (vectorised) within a block,
and only a block holding an event is scanned site by site."""


@inline
def _switch(
    s, thr, plastic, clock, plist, n_plastic, newly, sigma_ext, dt_pl, dt_res, dist_kind, dist_params, dist_table, rng
):  # fmt: skip
    """One switching phase; returns the new number of plastic sites (listed in ``plist``).

    Rather than one Bernoulli draw per site and step, each site carries a clock: the number of
    trials until its next switch, drawn from the geometric law of the per-step probability
    1 - exp(-dt / tau_x) (``_clock``). An elastic site's clock counts the steps it still has to
    spend above threshold before it activates (``dt_pl`` = dt / tau_pl); a plastic site's, the
    steps before it relaxes (``dt_res`` = dt / tau_res) and draws a new threshold. The
    per-step trials being independent, the switching times have exactly the law of step-by-step
    draws, at a few draws per event. A site that switches in this phase does not switch back
    in it.
    """
    n = uint64(s.size)
    n_relaxed, n_new = 0, 0
    for start in range(uint64(0), n, uint64(SWITCH_BLOCK)):
        stop = min(start + uint64(SWITCH_BLOCK), n)
        events = 0
        for i in range(start, stop):  # the clocks that run tick (unsigned i: vectorised)
            clock[i] -= plastic[i] | (sigma_ext + s[i] > thr[i])
            events += clock[i] == 0
        if events == 0:
            continue
        for i in range(start, stop):
            if clock[i] != 0:
                continue
            if plastic[i]:
                plastic[i] = 0
                thr[i] = quantile(rng.random(), dist_kind, dist_params, dist_table)
                clock[i] = _clock(rng, dt_pl)
                n_relaxed += 1
            else:
                newly[n_new] = i
                n_new += 1
                clock[i] = _clock(rng, dt_res)
    kept = n_plastic
    if n_relaxed:
        kept = 0
        for k in range(n_plastic):
            if plastic[plist[k]]:
                plist[kept] = plist[k]
                kept += 1
    for k in range(n_new):
        plastic[newly[k]] = 1
        plist[kept + k] = newly[k]
    return kept + n_new


@jit
def run(
    s, thr, plastic, sigma_ext, load, creep, dt_tau, dt_pl, dt_res, mu,
    g_ext, g_pos_ext, g_neg_max, offset, g_hat, fft_min, defer_max, ws, work, fast_forward,
    dist_kind, dist_params, dist_table, rng,
    n_steps, rec_steps, snap_steps,
    rec_stress, rec_gpl, rec_nplastic, snap_stress, snap_thr, snap_plastic,
):  # fmt: skip
    """Integrate the model for ``n_steps`` steps of dt, in place.

    Parameters
    ----------
    s : (N,) float64
        Stress fluctuation field (zero mean); local stress is ``sigma_ext + s``.
    thr : (N,) float64
        Local thresholds; renewed on plastic -> elastic switches.
    plastic : (N,) uint8
        n_i (0 elastic, 1 plastic).
    sigma_ext : float
        External stress Sigma at t = 0.
    load : float
        mu * gdot * dt added to Sigma each step under imposed rate (unused under creep).
    creep : bool
        Imposed stress: Sigma stays fixed; an absorbing state ends the run.
    dt_tau, dt_pl, dt_res, mu : float
        dt / tau, dt / tau_pl, dt / tau_res, the shear modulus.
    g_ext, g_pos_ext : (4 N,) float64
        Real-space propagator and its positive part, tiled 2 x 2 and flattened
        (``redistribution.tiled_kernel``).
    g_neg_max : float
        Largest -G_ij between distinct sites.
    offset : (N,) int64
        ``deferred.tiled_offsets``: where each site's kernel values lie in ``g_ext``.
    g_hat : (L, L // 2 + 1) complex128
        ``rfft2`` of the real-space propagator.
    fft_min : int
        Redistribute with FFTs when at least this many sites are plastic.
    defer_max : int
        Defer the real-space redistribution (``deferred``) when fewer sites are plastic.
    ws : tuple
        ``deferred.workspace``.
    work : tuple
        ``workspace(L)``: the loop's other work arrays (allocated by the caller: each NumPy
        constructor in compiled code lengthens the cold compile).
    fast_forward : bool
        Jump over purely elastic steps under imposed rate (bit-identical to stepping).
    dist_kind, dist_params, dist_table :
        Threshold law, see ``thresholds.quantile``.
    rng : numpy.random.Generator
        The run's only source of randomness.
    n_steps : int
    rec_steps, snap_steps : sorted int64 arrays
        Steps at which to record scalars / store fields.
    rec_stress, rec_gpl, rec_nplastic : float64 arrays like rec_steps
        Outputs: Sigma, mean plastic strain, number of plastic sites.
    snap_stress, snap_thr : (n_snap, N) float64; snap_plastic : (n_snap, N) uint8
        Outputs: field snapshots.

    Returns
    -------
    status, arrest_step, peak_stress, peak_step, counters (int64[6])
        ``arrest_step`` is -1 unless the creep run got stuck.
    """
    n = s.size
    L = g_hat.shape[0]
    inv_n = 1.0 / n
    gpl_norm = 1.0 / (n * mu)
    plist, dbuf, pcol, d2, spectrum, ds, axes, clock, newly, cand, counters = work
    n_plastic = _list_plastic(plastic, plist)
    for i in range(n):
        clock[i] = _clock(rng, dt_res if plastic[i] else dt_pl)
    gpl = 0.0
    peak, peak_step = sigma_ext, 0
    arrest_step = -1
    status = STATUS_OK
    ri, si = 0, 0
    n_rec, n_snap = rec_steps.size, snap_steps.size
    # deferred stretch: in progress, tracked and pending counts, tolerance, slack, work since the
    # last flush, whether new plastic sites did not fit
    deferring, n_t, n_p, tol, d_max, margin, work, flush_work, full = (
        False, int64(0), int64(0), 0.0, 0.0, 0.0, 0, 0, False
    )  # fmt: skip
    step = 0
    while True:
        # bookkeeping for the state reached at `step`
        if sigma_ext > peak:
            peak, peak_step = sigma_ext, step
        while ri < n_rec and rec_steps[ri] == step:
            rec_stress[ri] = sigma_ext
            rec_gpl[ri] = gpl * gpl_norm
            rec_nplastic[ri] = n_plastic
            ri += 1
            if not (math.isfinite(sigma_ext) and math.isfinite(gpl) and math.isfinite(_sum(s))):
                status = STATUS_NONFINITE
        snapshot = si < n_snap and snap_steps[si] == step
        ends = snapshot or full or step >= n_steps or status != STATUS_OK or not 0 < n_plastic < defer_max
        if deferring and (ends or work > flush_work):  # the one flush: exact stresses everywhere
            n_t, n_p, tol = flush(s, thr, sigma_ext, ws, n_t, n_p, plastic, plist, n_plastic, newly, dbuf,
                                  not ends, g_ext, g_pos_ext, offset, L)  # fmt: skip
            deferring, work, flush_work, full = n_t >= 0, 0, FLUSH_WORK * n_plastic * n, False
            counters[FLUSHES] += 1
        while si < n_snap and snap_steps[si] == step:
            _store_fields(sigma_ext, s, thr, plastic, snap_stress[si], snap_thr[si], snap_plastic[si])
            si += 1
        if step >= n_steps or status != STATUS_OK:
            break

        if n_plastic == 0:
            if creep:
                if not _any_above(s, thr, sigma_ext):
                    arrest_step = step
                    break
            elif fast_forward:
                n_cand = _crossing_candidates(s, thr, sigma_ext, cand)
                # advance while the next elastic step would activate nobody
                nxt_rec = rec_steps[ri] if ri < n_rec else n_steps
                nxt_snap = snap_steps[si] if si < n_snap else n_steps
                stop = min(nxt_rec, nxt_snap, n_steps)
                while step < stop:
                    nxt = sigma_ext + load
                    crossed = False
                    for k in range(n_cand):
                        if nxt + s[cand[k]] > thr[cand[k]]:
                            crossed = True
                            break
                    if crossed:
                        break
                    sigma_ext = nxt
                    step += 1
                    counters[STEPS_FAST_FORWARD] += 1
                if step == stop:
                    continue  # record / snapshot / end at this step, then go on

        # one explicit Euler step: plastic increments, redistribution, drive
        step += 1
        if n_plastic > 0:
            if not deferring and DEFER_MIN <= n_plastic < defer_max:  # a deferred stretch begins, if its sites fit
                n_t, n_p = admit_bounded(s, ws, int64(0), int64(0), plist, n_plastic, newly, dbuf,
                                         g_ext, g_pos_ext, offset, L)  # fmt: skip
                if n_t >= 0:
                    deferring, tol, work, flush_work = True, tolerance(s, thr, sigma_ext), 0, FLUSH_WORK * n_plastic * n
            if n_plastic >= fft_min:
                for iy in range(L):
                    for ix in range(L):
                        i = iy * L + ix
                        d2[iy, ix] = (sigma_ext + s[i]) * dt_tau if plastic[i] else 0.0
                sum_d = redistribute_fft(s, d2, g_hat, spectrum, ds, axes)
                counters[STEPS_FFT] += 1
            elif deferring:
                sum_d = step_increments(s, ws, n_t, plist, n_plastic, dbuf, pcol, sigma_ext, dt_tau)
                d_max, margin = pending_slack(ws, n_p, g_neg_max, tol)
                work += n_t * n_plastic
                counters[STEPS_DEFERRED] += 1
            else:
                sum_d = 0.0
                for k in range(n_plastic):
                    d = (sigma_ext + s[uint64(plist[k])]) * dt_tau
                    dbuf[k] = d
                    sum_d += d
                redistribute_sparse(s, plist, dbuf, n_plastic, g_ext, L)
                counters[STEPS_SPARSE] += 1
            gpl += sum_d
            if not creep:
                sigma_ext = sigma_ext + (load - sum_d * inv_n)
        else:
            counters[STEPS_ELASTIC] += 1
            if not creep:
                sigma_ext = sigma_ext + load

        # switching with the updated stresses (exact at every site that may be above threshold)
        if deferring:
            n_t = track_uncertain(s, thr, ws, n_t, n_p, sigma_ext, d_max, margin, g_ext, offset, L)
        n_plastic = _switch(
            s, thr, plastic, clock, plist, n_plastic, newly, sigma_ext, dt_pl, dt_res,
            dist_kind, dist_params, dist_table, rng,
        )  # fmt: skip
        if deferring:  # the new plastic sites become pending (if they do not fit: flush next step)
            n_t_new, n_p_new = admit_bounded(s, ws, n_t, n_p, plist, n_plastic, newly, dbuf,
                                             g_ext, g_pos_ext, offset, L)  # fmt: skip
            full = n_t_new < 0
            if not full:
                n_t, n_p = n_t_new, n_p_new

    # an absorbing state is frozen: the remaining records and snapshots are known exactly
    while ri < n_rec:
        rec_stress[ri] = sigma_ext
        rec_gpl[ri] = gpl * gpl_norm
        rec_nplastic[ri] = n_plastic
        ri += 1
    while si < n_snap:
        _store_fields(sigma_ext, s, thr, plastic, snap_stress[si], snap_thr[si], snap_plastic[si])
        si += 1
    return status, arrest_step, peak, peak_step, counters
