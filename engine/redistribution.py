"""The two ways of adding the plastic increments' elastic field, s += G * d: one real-space kernel
per plastic site (cost N per site) or one real FFT pair (cost N log N per step)."""

import functools
from typing import NamedTuple

import numpy as np
from numba import uint64
from rocket_fft import c2r, r2c

from .jit import jit
from .propagator import real_space_propagator


class Kernel(NamedTuple):
    """The propagator G of an L x L lattice in the forms the time loop reads."""

    L: int
    tiled: np.ndarray  # (4 N,) float64: G tiled 2 x 2 and flattened (``tiled_kernel``)
    tiled_positive: np.ndarray  # (4 N,) float64: the same of max(G, 0)
    negative_max: float  # largest -G_ij between distinct sites (>= 0)
    offset: np.ndarray  # (N,) int64: ``tiled_offsets``
    spectrum: np.ndarray  # (L, L // 2 + 1) complex128: rfft2 of G
    positive_spectrum: np.ndarray  # (L, L // 2 + 1) complex128: rfft2 of max(G, 0)


def compiled_kernel(g: np.ndarray) -> Kernel:
    """The ``Kernel`` of the real-space propagator g (L, L), indexed by the separation (dy, dx)."""
    L = g.shape[0]
    g_neg_max = -min(g.ravel()[1:].min(), 0.0)
    g_pos = np.maximum(g, 0.0)
    return Kernel(L, tiled_kernel(g), tiled_kernel(g_pos), g_neg_max, tiled_offsets(L), np.fft.rfft2(g),
                  np.fft.rfft2(g_pos))  # fmt: skip


@functools.lru_cache(maxsize=4)
def lattice_kernel(L: int, kind: str, normalise_self: bool) -> Kernel:
    """The ``Kernel`` of ``real_space_propagator(L, kind, normalise_self)``, made once per process
    for the last few lattices: runs of one lattice share it (the time loop only reads it). For
    lattices of a few thousand sites, making it costs as much as a short run's time loop."""
    return compiled_kernel(real_space_propagator(L, kind, normalise_self))


def tiled_kernel(g: np.ndarray) -> np.ndarray:
    """The (L, L) real-space kernel tiled 2 x 2 and flattened, as read by ``redistribute_sparse``."""
    return np.tile(g, (2, 2)).ravel()


def tiled_offsets(L: int) -> np.ndarray:
    """``offset[i] = iy * 2L + ix`` of site i = iy * L + ix, so that G_ij is
    ``tiled[offset[i] - offset[j] + 2 L^2 + L]`` in the tiled kernel (``tiled_kernel``)."""
    iy, ix = np.divmod(np.arange(L * L, dtype=np.int64), L)
    return iy * 2 * L + ix


@jit
def redistribute_sparse(s, sites, increments, n_sites, g_tiled, L):
    """s += G * d, adding the kernel of each of the first ``n_sites`` ``sites`` times its
    increment: cost N per site.

    ``g_tiled`` is the flat (2L * 2L) tiled kernel; row iy of the field of site (jy, jx) starts at
    ``(iy + L - jy) * 2L + L - jx``. Unsigned indices spare Numba's negative-index wraparound so
    that LLVM vectorises the inner loop; four sites per pass share the loads and stores of s.
    """
    lu = uint64(L)
    width = uint64(2 * L)
    n4 = n_sites - n_sites % 4
    for k in range(0, n4, 4):
        j0, j1, j2, j3 = uint64(sites[k]), uint64(sites[k + 1]), uint64(sites[k + 2]), uint64(sites[k + 3])
        d0, d1, d2, d3 = increments[k], increments[k + 1], increments[k + 2], increments[k + 3]
        for iy in range(lu):
            base = iy * lu
            a0 = (iy + lu - j0 // lu) * width + lu - j0 % lu
            a1 = (iy + lu - j1 // lu) * width + lu - j1 % lu
            a2 = (iy + lu - j2 // lu) * width + lu - j2 % lu
            a3 = (iy + lu - j3 // lu) * width + lu - j3 % lu
            for ix in range(lu):
                pair01 = d0 * g_tiled[a0 + ix] + d1 * g_tiled[a1 + ix]
                s[base + ix] += pair01 + (d2 * g_tiled[a2 + ix] + d3 * g_tiled[a3 + ix])
    for k in range(n4, n_sites):
        j = uint64(sites[k])
        dj = increments[k]
        for iy in range(lu):
            base = iy * lu
            a = (iy + lu - j // lu) * width + lu - j % lu
            for ix in range(lu):
                s[base + ix] += dj * g_tiled[a + ix]


class FftWork(NamedTuple):
    """Work arrays of ``redistribute_fft`` for an L x L lattice."""

    spectrum: np.ndarray  # (L, L // 2 + 1) complex128
    field: np.ndarray  # (L, L) float64
    axes: np.ndarray  # [0, 1]


def fft_workspace(L: int) -> FftWork:
    """The ``FftWork`` of an L x L lattice."""
    return FftWork(np.empty((L, L // 2 + 1), np.complex128), np.empty((L, L)), np.arange(2))


@jit
def redistribute_fft(s, increments, g_hat, spectrum, field, axes):
    """s += G * d with a real FFT pair, d the dense (L, L) ``increments``; returns sum(d).

    Cost O(N log N) whatever the number of plastic sites; the sum is the q = 0 coefficient.
    ``spectrum``, ``field`` and ``axes`` are the ``FftWork``.
    The complex product is written out (the same operations as Numba's, which would compile a
    subroutine of its own).
    """
    r2c(increments, spectrum, axes, True, 1.0, 1)
    total = spectrum[0, 0].real
    for qy in range(spectrum.shape[0]):
        for qx in range(spectrum.shape[1]):
            a, b = spectrum[qy, qx].real, spectrum[qy, qx].imag
            c, e = g_hat[qy, qx].real, g_hat[qy, qx].imag
            spectrum[qy, qx] = complex(a * c - b * e, a * e + b * c)
    c2r(spectrum, field, axes, False, 1.0 / s.size, 1)
    L = field.shape[1]
    for iy in range(field.shape[0]):
        for ix in range(L):
            s[iy * L + ix] += field[iy, ix]
    return total
