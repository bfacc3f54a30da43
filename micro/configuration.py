"""A particle configuration (positions, species, box) that can be stored, sent to workers and loaded in LAMMPS."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr
from epmsweep.engine import ParameterError, __version__
from epmsweep.engine.files import load_dataset, save_dataset


def cartesian(fractional: np.ndarray, box: tuple[float, float, float]) -> np.ndarray:
    """(N, 2) positions (sigma_LS) of (N, 2) box fractions in the box (lx, ly, xy)."""
    lx, ly, xy = box
    return np.column_stack([fractional[:, 0] * lx + fractional[:, 1] * xy, fractional[:, 1] * ly])


@dataclass(frozen=True, eq=False)
class Configuration:
    """N particles at rest in a periodic 2D box, possibly sheared (tilt ``xy``).

    Parameters
    ----------
    positions : (N, 2) float64
        x, y (sigma_LS), inside or outside the box (wrapped when loaded).
    types : (N,) int
        Species, 1 = L, 2 = S.
    box : (lx, ly, xy)
        Box lengths and tilt (sigma_LS): the cell vectors are (lx, 0) and (xy, ly), lower corner at 0.
    attrs : dict
        Provenance (model, protocol, seed, energy, version), netCDF-safe values.
    """

    positions: np.ndarray
    types: np.ndarray
    box: tuple[float, float, float]
    attrs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        pos = np.array(self.positions, dtype=np.float64)
        if pos.ndim != 2 or pos.shape[1] != 2 or pos.shape[0] < 2 or not np.all(np.isfinite(pos)):
            raise ParameterError("positions", f"must be a finite (N, 2) array with N >= 2, got shape {pos.shape}")
        types = np.array(self.types, dtype=np.int32)
        if types.shape != (pos.shape[0],) or not np.all((types == 1) | (types == 2)):
            raise ParameterError("types", f"must be ({pos.shape[0]},) values 1 (L) or 2 (S)")
        lx, ly, xy = (float(v) for v in self.box)
        if not (lx > 0 and ly > 0 and np.isfinite([lx, ly, xy]).all()):
            raise ParameterError("box", f"must be (lx > 0, ly > 0, finite xy), got {self.box!r}")
        object.__setattr__(self, "positions", pos)
        object.__setattr__(self, "types", types)
        object.__setattr__(self, "box", (lx, ly, xy))

    @property
    def n(self) -> int:
        return self.positions.shape[0]

    @property
    def area(self) -> float:
        return self.box[0] * self.box[1]

    def fractional(self) -> np.ndarray:
        """(N, 2) positions in box fractions, wrapped into [0, 1)."""
        lx, ly, xy = self.box
        sy = self.positions[:, 1] / ly
        sx = (self.positions[:, 0] - xy * sy) / lx
        return np.mod(np.column_stack([sx, sy]), 1.0)

    def wrapped(self) -> np.ndarray:
        """(N, 2) positions mapped into the box."""
        return cartesian(self.fractional(), self.box)

    def to_dataset(self) -> xr.Dataset:
        data = {
            "position": (("particle", "dim"), self.positions, {"units": "sigma_LS"}),
            "type": ("particle", self.types, {"long_name": "species (1 = L, 2 = S)"}),
        }
        attrs = {"box_lx": self.box[0], "box_ly": self.box[1], "box_xy": self.box[2], "epmsweep_version": __version__}
        return xr.Dataset(data, coords={"dim": ["x", "y"]}, attrs={**self.attrs, **attrs})

    def save(self, path: str | os.PathLike) -> Path:
        """Write a netCDF4 file atomically (temporary name, then rename)."""
        return save_dataset(self.to_dataset(), path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Configuration:
        """Read a file written by ``save``; ParameterError names the file and what is wrong."""
        path = Path(path)
        ds = load_dataset(path, "configuration file")
        for name in ("position", "type"):
            if name not in ds:
                raise ParameterError(f"{path}:{name}", "variable is missing")
        try:
            box = tuple(float(ds.attrs[k]) for k in ("box_lx", "box_ly", "box_xy"))
        except KeyError as exc:
            raise ParameterError(f"{path}:{exc.args[0]}", "global attribute is missing") from None
        attrs = {k: v for k, v in ds.attrs.items() if not k.startswith("box_")}
        try:
            return cls(ds["position"].values, ds["type"].values, box, attrs)
        except ParameterError as err:
            raise ParameterError(f"{path}:{err.field}", err.reason) from None
