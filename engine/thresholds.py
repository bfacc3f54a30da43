"""Threshold distribution P_d: the law local yield stresses are drawn from."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .declarations import check_declared, declared
from .errors import ParameterError
from .jit import jit

WEIBULL, TABULATED = 0, 1


class ThresholdLaw(NamedTuple):
    """A threshold law in the form the compiled sampler reads (``ThresholdDistribution.compiled``)."""

    kind: int  # WEIBULL or TABULATED
    params: np.ndarray  # (3,) float64: Weibull shape, scale, shift
    table: np.ndarray  # (M + 1,) float64: quantile function at u = 0, 1/M, ..., 1 (TABULATED)


@jit
def quantile(u, law):
    """Inverse CDF at u in [0, 1): shifted Weibull or tabulated, linearly interpolated."""
    params, table = law.params, law.table
    if law.kind == WEIBULL:
        return params[2] + params[1] * (-math.log1p(-u)) ** (1.0 / params[0])
    m = table.shape[0] - 1
    x = u * m
    k = int(x)
    if k >= m:
        return table[m]
    return table[k] + (x - k) * (table[k + 1] - table[k])


@jit
def _quantiles(u, out, law):
    """out[i] = quantile(u[i]) for flat arrays."""
    for i in range(u.size):
        out[i] = quantile(u[i], law)


@dataclass(frozen=True)
class ThresholdDistribution:
    """Law of the local yield thresholds sigma_th (stress units).

    The default is the paper's P_d, a Weibull law with shape k = 1.5 and scale s_d = 0.57.
    ``shift`` moves the whole law to larger thresholds (better-annealed states). Any other law
    is given as a table of its quantile function (``from_scipy``), interpolated linearly.

    Parameters
    ----------
    shape, scale : float
        Weibull shape k and scale s_d (> 0).
    shift : float
        Added to every draw (>= 0).
    quantiles : tuple of float
        If not empty, the quantile function at u = 0, 1/M, ..., 1 (non-decreasing, >= 0);
        ``shape``, ``scale`` and ``shift`` are then ignored.
    """

    shape: float = declared(1.5, gt=0)
    scale: float = declared(0.57, gt=0)
    shift: float = declared(0.0, ge=0)
    quantiles: tuple[float, ...] = declared((), ge=0)

    def __post_init__(self) -> None:
        check_declared(self, prefix="thresholds.")
        if self.quantiles:
            q = np.asarray(self.quantiles, dtype=float)
            if q.ndim != 1 or q.size < 2 or not np.all(np.isfinite(q)) or q[0] < 0 or np.any(np.diff(q) < 0):
                raise ParameterError(
                    "thresholds.quantiles", "must be >= 2 finite, non-negative, non-decreasing values"
                )

    @classmethod
    def from_scipy(cls, dist, n: int = 4097) -> ThresholdDistribution:
        """Tabulate a frozen ``scipy.stats`` distribution (support must be >= 0).

        The table holds ``dist.ppf`` at n equally spaced probabilities, clipped to
        [1e-12, 1 - 1e-12] so that unbounded tails stay finite.
        """
        u = np.clip(np.linspace(0.0, 1.0, n), 1e-12, 1.0 - 1e-12)
        return cls(quantiles=tuple(float(v) for v in dist.ppf(u)))

    @property
    def kind(self) -> int:
        return TABULATED if self.quantiles else WEIBULL

    def compiled(self) -> ThresholdLaw:
        """The law for the compiled sampler."""
        table = np.asarray(self.quantiles if self.quantiles else (0.0,), dtype=np.float64)
        return ThresholdLaw(self.kind, np.array([self.shape, self.scale, self.shift], dtype=np.float64), table)

    def sample(self, rng: np.random.Generator, size) -> np.ndarray:
        """Draw thresholds by inverse transform of ``rng.random(size)`` (same rule as the engine)."""
        u = rng.random(size)
        out = np.empty_like(u)
        _quantiles(u.reshape(-1), out.reshape(-1), self.compiled())
        return out

    def mean(self) -> float:
        """Mean threshold (stress units)."""
        if self.quantiles:
            q = np.asarray(self.quantiles)
            return float(np.mean(0.5 * (q[1:] + q[:-1])))
        return self.shift + self.scale * math.gamma(1.0 + 1.0 / self.shape)

    def to_attrs(self) -> dict[str, float | str]:
        if self.quantiles:
            return {"law": "tabulated", "n_quantiles": len(self.quantiles), "mean": self.mean()}
        return {"law": "weibull", "shape": self.shape, "scale": self.scale, "shift": self.shift}
