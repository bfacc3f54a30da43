"""The two ways of adding the plastic increments' elastic field, s += G * d: one real-space kernel
per plastic site (cost N per site) or one real FFT pair (cost N log N per step)."""

import numpy as np
from numba import uint64
from rocket_fft import c2r, r2c

from .jit import jit


def tiled_kernel(g: np.ndarray) -> np.ndarray:
    """The (L, L) real-space kernel tiled 2 x 2 and flattened, as read by ``redistribute_sparse``."""
    return np.tile(g, (2, 2)).ravel()


@jit
def redistribute_sparse(s, plist, dbuf, n_plastic, g_ext, L):
    """s += G * d, adding the kernel of each plastic site: cost N per plastic site.

    ``g_ext`` is the flat (2L * 2L) tiled kernel; row iy of the field of site (jy, jx) starts at
    ``(iy + L - jy) * 2L + L - jx``. Unsigned indices spare Numba's negative-index wraparound so
    that LLVM vectorises the inner loop; four sites per pass share the loads and stores of s.
    """
    lu = uint64(L)
    width = uint64(2 * L)
    n4 = n_plastic - n_plastic % 4
    for k in range(0, n4, 4):
        j0, j1, j2, j3 = uint64(plist[k]), uint64(plist[k + 1]), uint64(plist[k + 2]), uint64(plist[k + 3])
        d0, d1, d2, d3 = dbuf[k], dbuf[k + 1], dbuf[k + 2], dbuf[k + 3]
        for iy in range(lu):
            base = iy * lu
            a0 = (iy + lu - j0 // lu) * width + lu - j0 % lu
            a1 = (iy + lu - j1 // lu) * width + lu - j1 % lu
            a2 = (iy + lu - j2 // lu) * width + lu - j2 % lu
            a3 = (iy + lu - j3 // lu) * width + lu - j3 % lu
            for ix in range(lu):
                pair01 = d0 * g_ext[a0 + ix] + d1 * g_ext[a1 + ix]
                s[base + ix] += pair01 + (d2 * g_ext[a2 + ix] + d3 * g_ext[a3 + ix])
    for k in range(n4, n_plastic):
        j = uint64(plist[k])
        dj = dbuf[k]
        for iy in range(lu):
            base = iy * lu
            a = (iy + lu - j // lu) * width + lu - j % lu
            for ix in range(lu):
                s[base + ix] += dj * g_ext[a + ix]


def fft_workspace(L: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Work arrays of ``redistribute_fft`` for an L x L lattice: spectrum, real field, axes."""
    return np.empty((L, L // 2 + 1), np.complex128), np.empty((L, L)), np.arange(2)


@jit
def redistribute_fft(s, d, g_hat, spectrum, ds, axes):
    """s += G * d with a real FFT pair, d the dense (L, L) increments; returns sum(d).

    Cost O(N log N) whatever the number of plastic sites; the sum is the q = 0 coefficient.
    ``spectrum`` (L, L // 2 + 1) complex and ``ds`` (L, L) real are work arrays; ``axes`` is [0, 1].
    The complex product is written out (the same operations as Numba's, which would compile a
    subroutine of its own).
    """
    r2c(d, spectrum, axes, True, 1.0, 1)
    total = spectrum[0, 0].real
    for qy in range(spectrum.shape[0]):
        for qx in range(spectrum.shape[1]):
            a, b = spectrum[qy, qx].real, spectrum[qy, qx].imag
            c, e = g_hat[qy, qx].real, g_hat[qy, qx].imag
            spectrum[qy, qx] = complex(a * c - b * e, a * e + b * c)
    c2r(spectrum, ds, axes, False, 1.0 / s.size, 1)
    L = ds.shape[1]
    for iy in range(ds.shape[0]):
        for ix in range(L):
            s[iy * L + ix] += ds[iy, ix]
    return total


