"""Model parameters of the lattice elasto-plastic model (all in Lennard-Jones units)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from .declarations import check_declared, declared
from .errors import ParameterError
from .thresholds import ThresholdDistribution

KERNEL_VARIANTS = ("continuum", "lattice")


@dataclass(frozen=True)
class ModelParameters:
    """Parameters of the scalar 2D lattice model (MODEL.md; defaults are the paper's).

    Parameters
    ----------
    L : int
        Linear lattice size; the lattice has L x L sites (>= 2).
    tau : float
        Plastic relaxation time (time units): d gamma_pl / dt = n sigma / (mu tau).
    tau_pl : float
        Mean waiting time of the elastic -> plastic switch above threshold.
    tau_res : float
        Mean duration of a plastic event (plastic -> elastic switch, threshold renewed).
    dt : float
        Explicit Euler time step; must be <= 0.1 * min(tau, tau_pl, tau_res).
    thresholds : ThresholdDistribution
        P_d, the law new thresholds are drawn from (Weibull k = 1.5, s_d = 0.57).
    kernel : {"continuum", "lattice"}
        Eshelby propagator in Fourier space with continuum q^2 or lattice 2 - 2 cos q.
    normalise_self : bool
        Rescale the propagator so that its self term is -1 (literature variant, not the paper's).
    """

    L: int = declared(32, ge=2, le=4096, note="(memory)")
    tau: float = declared(1.0, gt=0)
    tau_pl: float = declared(1.0, gt=0)
    tau_res: float = declared(2.0, gt=0)
    dt: float = declared(0.01, gt=0)
    thresholds: ThresholdDistribution = field(default_factory=ThresholdDistribution)
    kernel: str = declared("continuum", choices=KERNEL_VARIANTS)
    normalise_self: bool = False

    def __post_init__(self) -> None:
        check_declared(self)
        shortest = min(self.tau, self.tau_pl, self.tau_res)
        if self.dt > 0.1 * shortest:
            raise ParameterError(
                "dt", f"must be <= 0.1 x the shortest time scale ({shortest:g}), got {self.dt:g}"
            )

    @property
    def n_sites(self) -> int:
        return self.L * self.L

    def switching_probabilities(self) -> tuple[float, float]:
        """Per-step probabilities (p_pl, p_res) = 1 - exp(-dt / tau_x)."""
        return -math.expm1(-self.dt / self.tau_pl), -math.expm1(-self.dt / self.tau_res)

    def to_attrs(self) -> dict[str, float | int | str]:
        """Flat netCDF-safe attributes describing these parameters."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "thresholds"}
        out["normalise_self"] = int(self.normalise_self)
        out.update({f"thresholds_{k}": v for k, v in self.thresholds.to_attrs().items()})
        return out
