"""The Eshelby propagator G of the scalar lattice model, in Fourier and real space."""

from __future__ import annotations

import numpy as np


def fourier_propagator(L: int, kernel: str = "continuum") -> np.ndarray:
    """G(q) = -4 qx^2 qy^2 / |q|^4 with G(0) = 0, shape (L, L), on ``numpy.fft.fftfreq`` ordering.

    ``kernel="lattice"`` replaces q^2 by the lattice Laplacian symbol 2 - 2 cos q.
    """
    q = 2.0 * np.pi * np.fft.fftfreq(L)
    q2 = q**2 if kernel == "continuum" else 2.0 - 2.0 * np.cos(q)
    qy2, qx2 = np.meshgrid(q2, q2, indexing="ij")
    denom = (qx2 + qy2) ** 2
    denom[0, 0] = 1.0
    g = -4.0 * qx2 * qy2 / denom
    g[0, 0] = 0.0
    return g


def real_space_propagator(L: int, kernel: str = "continuum", normalise_self: bool = False) -> np.ndarray:
    """Real-space G_ij as an (L, L) array indexed by the separation (dy, dx) modulo L.

    Sums to zero; G[0, 0] = -0.5692 at L = 32 (continuum). With ``normalise_self`` the whole
    kernel is divided by |G[0, 0]| so that the self term is -1.
    """
    g = np.fft.ifft2(fourier_propagator(L, kernel)).real
    if normalise_self:
        g = g / abs(g[0, 0])
    return g
