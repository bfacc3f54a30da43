"""The Eshelby propagator: the analytic facts of MODEL.md."""

import numpy as np
import pytest
from epmsweep.engine import fourier_propagator, real_space_propagator


@pytest.mark.parametrize("L", [8, 32, 33, 64])
@pytest.mark.parametrize("kernel", ["continuum", "lattice"])
def test_kernel_sums_to_zero(L, kernel):
    assert abs(real_space_propagator(L, kernel).sum()) < 1e-12
    assert fourier_propagator(L, kernel)[0, 0] == 0.0


@pytest.mark.parametrize("L", [16, 32, 31])
def test_kernel_symmetries(L):
    g = real_space_propagator(L)
    flip_y = np.roll(g[::-1, :], 1, axis=0)  # G(-dy, dx)
    flip_x = np.roll(g[:, ::-1], 1, axis=1)  # G(dy, -dx)
    np.testing.assert_allclose(flip_y, g, atol=1e-14)
    np.testing.assert_allclose(flip_x, g, atol=1e-14)
    np.testing.assert_allclose(g.T, g, atol=1e-14)  # quadrupole cos(4 theta) is invariant under x <-> y


def test_paper_kernel_values_at_L32():
    g = real_space_propagator(32)
    assert g[0, 0] == pytest.approx(-0.5692, abs=5e-5)
    for dy, dx in [(0, 1), (1, 0), (0, -1), (-1, 0)]:
        assert g[dy, dx] == pytest.approx(0.0801, abs=5e-5)
    for dy, dx in [(1, 1), (1, -1), (-1, 1), (-1, -1)]:
        assert g[dy, dx] == pytest.approx(-0.1041, abs=5e-5)


def test_lattice_variant_and_self_normalisation():
    assert real_space_propagator(32, "lattice")[0, 0] == pytest.approx(-0.6353, abs=5e-5)
    g = real_space_propagator(32, normalise_self=True)
    assert g[0, 0] == pytest.approx(-1.0, abs=1e-14)
    assert abs(g.sum()) < 1e-12


def test_single_plastic_site_field_is_quadrupolar():
    """A positive plastic increment loads the sites along the axes and unloads the diagonals (cos 4 theta)."""
    L = 64
    g = real_space_propagator(L)
    for r in (2, 5, 10):
        axes = [g[0, r], g[r, 0], g[0, -r], g[-r, 0]]
        diagonals = [g[r, r], g[-r, r], g[r, -r], g[-r, -r]]
        assert min(axes) > 0
        assert max(diagonals) < 0
    # far field decays like 1/r^2 (checked on the diagonal, free of lattice parity oscillations)
    g = real_space_propagator(256)
    for r in (4, 8):
        assert g[r, r] / g[2 * r, 2 * r] == pytest.approx(4.0, rel=0.05)
