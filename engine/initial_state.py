"""Initial states: threshold map, stress map and shear modulus, from a distribution or a file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from .errors import ParameterError, check_positive
from .files import load_dataset, save_dataset
from .thresholds import ThresholdDistribution
from .units import STRESS, check_units
from .variables import LATTICE, variable

DEFAULT_SHEAR_MODULUS = 15.0
"""Shear modulus (LJ units) used when none is given.

The paper measures mu per preparation from particle simulations (values in its unavailable
Supplemental Material). 15 is of the order of the shear moduli of 2D binary Lennard-Jones glasses at
number density ~1 (10-20). mu only sets the loading rate mu * gdot and the conversion of plastic
activity into strain rate, so a flow curve in these runs is one at gdot_eff = gdot * mu / 15.
"""


def _as_map(name: str, values, shape: tuple[int, int] | None = None) -> np.ndarray:
    dtype = np.asarray(values).dtype
    if dtype.kind not in "biuf":
        raise ParameterError(name, f"must be numbers, got values of dtype {dtype}")
    a = np.array(values, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 2:
        raise ParameterError(name, f"must be a square (L, L) map with L >= 2, got shape {a.shape}")
    if shape is not None and a.shape != shape:
        raise ParameterError(name, f"must have shape {shape} like the threshold map, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ParameterError(name, f"contains {int(np.sum(~np.isfinite(a)))} non-finite values (NaN or inf)")
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class InitialState:
    """The state a run starts from.

    Parameters
    ----------
    threshold : (L, L) array
        Local yield thresholds sigma_th (stress units, >= 0); axis 0 is y, axis 1 is x.
    stress : (L, L) array
        Local shear stresses sigma (stress units); its mean is the initial external stress.
    shear_modulus : float
        mu (stress units), > 0.
    name : str
        Label used in outputs (e.g. ``"rejuvenated"``, ``"E1"``).
    provenance : dict
        Free-form, netCDF-safe description of where the state comes from.
    """

    threshold: np.ndarray
    stress: np.ndarray
    shear_modulus: float = DEFAULT_SHEAR_MODULUS
    name: str = "custom"
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        thr = _as_map("threshold", self.threshold)
        if np.any(thr < 0):
            raise ParameterError("threshold", f"must be >= 0 everywhere, minimum is {thr.min():g}")
        object.__setattr__(self, "threshold", thr)
        object.__setattr__(self, "stress", _as_map("stress", self.stress, thr.shape))
        object.__setattr__(self, "shear_modulus", check_positive("shear_modulus", self.shear_modulus))

    @property
    def L(self) -> int:
        return self.threshold.shape[0]

    @classmethod
    def from_distribution(
        cls,
        L: int,
        seed: int | np.random.SeedSequence | np.random.Generator,
        distribution: ThresholdDistribution | None = None,
        shear_modulus: float = DEFAULT_SHEAR_MODULUS,
        stress: np.ndarray | None = None,
        name: str = "synthetic",
    ) -> InitialState:
        """Thresholds drawn independently from ``distribution``; stress zero unless given (L, L)."""
        distribution = distribution or ThresholdDistribution()
        rng = np.random.default_rng(seed)
        thr = distribution.sample(rng, (L, L))
        stress = np.zeros((L, L)) if stress is None else stress
        prov = {"source": "distribution", **{f"thresholds_{k}": v for k, v in distribution.to_attrs().items()}}
        return cls(thr, stress, shear_modulus, name, prov)

    @classmethod
    def rejuvenated(
        cls, L: int, seed, shear_modulus: float = DEFAULT_SHEAR_MODULUS, name: str = "rejuvenated"
    ) -> InitialState:
        """Thresholds from the paper's P_d (Weibull 1.5, 0.57), zero stress."""
        return cls.from_distribution(L, seed, ThresholdDistribution(), shear_modulus, name=name)

    @classmethod
    def annealed(
        cls,
        L: int,
        shift: float,
        seed,
        shear_modulus: float = DEFAULT_SHEAR_MODULUS,
        name: str | None = None,
    ) -> InitialState:
        """A better-annealed state: thresholds from P_d shifted by ``shift`` (>= 0), zero stress.

        Larger shifts mimic lower inherent-structure energies (E1 -> E3): fewer weak sites, so a
        larger overshoot and a higher static yield stress. Pair larger shifts with larger moduli.
        """
        dist = ThresholdDistribution(shift=shift)
        return cls.from_distribution(L, seed, dist, shear_modulus, name=name or f"annealed_{shift:g}")

    def to_dataset(self) -> xr.Dataset:
        """The state as a Dataset with ``threshold`` and ``local_stress`` on (y, x) (``engine.variables``)."""
        L = self.L
        ds = xr.Dataset(
            {
                "threshold": (LATTICE, self.threshold, variable("threshold").attrs),
                "local_stress": (LATTICE, self.stress, variable("local_stress").attrs),
            },
            coords={d: (d, np.arange(L), variable(d).attrs) for d in LATTICE},
            attrs={"shear_modulus": self.shear_modulus, "name": self.name, **self.provenance},
        )
        return ds

    def save(self, path: str | os.PathLike) -> Path:
        """Write a netCDF4 file atomically (temporary name, then rename)."""
        return save_dataset(self.to_dataset(), path)

    @classmethod
    def load(cls, path: str | os.PathLike, digest: str | None = None) -> InitialState:
        """Read a state written by ``save`` or by any tool following the same layout.

        With ``digest`` (``file_digest`` of the content it was planned with) a file whose content
        has changed raises InputChangedError. Raises ParameterError naming the file and what is
        wrong (missing, unreadable, missing variable or attribute, wrong shape, units that are not a
        stress, values that are not numbers, NaN).
        """
        path = Path(path)
        ds = load_dataset(path, "initial-state file", digest)
        if "local_stress" not in ds and "stress" in ds:  # the layout of epmsweep 0.1 files
            ds = ds.rename(stress="local_stress")
        for var in ("threshold", "local_stress"):
            if var not in ds:
                raise ParameterError(f"{path}:{var}", "variable is missing")
            if ds[var].dims != ("y", "x"):
                raise ParameterError(f"{path}:{var}", f"must have dims ('y', 'x'), got {ds[var].dims}")
            check_units(f"{path}:{var}", ds[var].attrs.get("units"), STRESS)
        if "shear_modulus" not in ds.attrs:
            raise ParameterError(f"{path}:shear_modulus", "global attribute is missing")
        mu = ds.attrs["shear_modulus"]
        try:
            mu = float(mu)
        except (TypeError, ValueError):
            raise ParameterError(f"{path}:shear_modulus", f"must be a number, got {mu!r}") from None
        prov = {k: v for k, v in ds.attrs.items() if k not in ("shear_modulus", "name")}
        prov["file"] = str(path)
        try:
            name = str(ds.attrs.get("name", path.stem))
            return cls(ds["threshold"].values, ds["local_stress"].values, mu, name, prov)
        except ParameterError as err:
            raise ParameterError(f"{path}:{err.field}", err.reason) from None
