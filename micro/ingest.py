"""Initial states from a user's own LAMMPS dump: positions and per-atom stress of any size.

A dump written by e.g. ``compute s all stress/atom NULL`` and ``dump d all custom 1 glass.dump id
type x y c_s[4]`` (text format, orthogonal or triclinic box; positions as ``x y``, ``xu yu`` or
scaled ``xs ys``) gives the stress map directly; thresholds come from a supplied map or from the
frozen-matrix probes of the dumped configuration (types 1 = L and 2 = S of this project's model).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from distributed import Client
from epmsweep.engine import InitialState, ParameterError

from . import modulus
from .configuration import Configuration, cartesian
from .frozen_matrix import FrozenMatrixProbe
from .model import GlassModel
from .stress_map import coarse_grain, default_grid
from .threshold_map import lattice_thresholds, threshold_map

STRESS_COLUMN = re.compile(r"^[cf]_.+\[4\]$")


@dataclass(frozen=True)
class DumpFrame:
    """One frame of a text dump: per-atom columns (sorted by id when an ``id`` column exists) and the box."""

    timestep: int
    columns: dict[str, np.ndarray]
    box: tuple[float, float, float]  # lx, ly, xy
    origin: tuple[float, float]  # xlo, ylo

    def fractional(self) -> np.ndarray:
        """(N, 2) box fractions in [0, 1)."""
        lx, ly, xy = self.box
        c = self.columns
        if "xs" in c and "ys" in c:
            s = np.column_stack([c["xs"], c["ys"]])
        else:
            kx, ky = ("x", "y") if "x" in c and "y" in c else ("xu", "yu")
            if kx not in c or ky not in c:
                raise ParameterError("dump", "needs positions as columns x y, xu yu or xs ys")
            sy = (c[ky] - self.origin[1]) / ly
            s = np.column_stack([(c[kx] - self.origin[0] - xy * sy) / lx, sy])
        return np.mod(s, 1.0)

    def stress(self, column: str | None = None) -> np.ndarray:
        """(N,) per-atom xy stress x area from ``column``, or the only ``c_*[4]`` column."""
        if column is None:
            found = [k for k in self.columns if STRESS_COLUMN.match(k)]
            if len(found) != 1:
                raise ParameterError(
                    "stress_column", f"name the per-atom xy stress column (candidates: {found or 'none'})"
                )
            column = found[0]
        if column not in self.columns:
            raise ParameterError("stress_column", f"{column!r} is not a column of the dump ({list(self.columns)})")
        return self.columns[column]

    def stress_map(self, L: int | None = None, column: str | None = None) -> tuple[np.ndarray, int]:
        """(L, L) coarse-grained shear stress of the frame (mean = global stress), and L (default:
        cells of about the paper's size)."""
        area = self.box[0] * self.box[1]
        L = L or default_grid(math.sqrt(area))
        return coarse_grain(self.fractional(), self.stress(column), area, L), L

    def configuration(self) -> Configuration:
        """The dumped particles as a Configuration (needs a ``type`` column with 1 = L, 2 = S)."""
        if "type" not in self.columns:
            raise ParameterError("dump", "needs a type column to rebuild the configuration")
        attrs = {"source": "lammps dump", "dump_timestep": self.timestep}
        return Configuration(cartesian(self.fractional(), self.box), self.columns["type"].astype(int), self.box, attrs)


def read_dump(path: str | os.PathLike, frame: int = -1) -> DumpFrame:
    """Read frame ``frame`` (default: the last) of a LAMMPS text dump (``dump custom`` / ``atom``)."""
    path = Path(path)
    if not path.is_file():
        raise ParameterError(str(path), "dump file does not exist")
    lines = path.read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("ITEM: TIMESTEP")]
    if not starts:
        raise ParameterError(str(path), "not a LAMMPS text dump (no 'ITEM: TIMESTEP')")
    try:
        i = starts[frame]
    except IndexError:
        raise ParameterError(f"{path}:frame", f"the dump has {len(starts)} frames, got {frame}") from None
    try:
        timestep = int(lines[i + 1])
        n = int(lines[i + 3])
        bounds_head = lines[i + 4].split()
        bounds = np.array([lines[i + 5 + k].split() for k in range(3)], dtype=float)
        head = lines[i + 8].split()
        if head[:2] != ["ITEM:", "ATOMS"]:
            raise ValueError("no 'ITEM: ATOMS' line")
        names = head[2:]
        data = np.loadtxt(lines[i + 9 : i + 9 + n], ndmin=2)
    except (ValueError, IndexError) as exc:
        raise ParameterError(str(path), f"malformed dump frame {frame}: {exc}") from None
    if data.shape != (n, len(names)):
        raise ParameterError(str(path), f"frame {frame}: expected {n} rows of {len(names)} columns, got {data.shape}")
    if "xy" in bounds_head:
        xy, xz = bounds[0, 2], bounds[1, 2]
        xlo = bounds[0, 0] - min(0.0, xy, xz, xy + xz)
        xhi = bounds[0, 1] - max(0.0, xy, xz, xy + xz)
        ylo, yhi = bounds[1, 0] - min(0.0, bounds[2, 2]), bounds[1, 1] - max(0.0, bounds[2, 2])
    else:
        xy, (xlo, xhi), (ylo, yhi) = 0.0, bounds[0, :2], bounds[1, :2]
    columns = {name: data[:, k] for k, name in enumerate(names)}
    if "id" in columns:
        order = np.argsort(columns["id"], kind="stable")
        columns = {k: v[order] for k, v in columns.items()}
    return DumpFrame(timestep, columns, (xhi - xlo, yhi - ylo, xy), (xlo, ylo))


def stress_map_from_dump(
    path: str | os.PathLike, L: int | None = None, stress_column: str | None = None, frame: int = -1
) -> np.ndarray:
    """(L, L) coarse-grained shear stress of a dump frame; its mean is the dump's global stress."""
    return read_dump(path, frame).stress_map(L, stress_column)[0]


def initial_state_from_dump(
    path: str | os.PathLike,
    L: int | None = None,
    *,
    threshold: np.ndarray | None = None,
    shear_modulus: float | None = None,
    stress_column: str | None = None,
    frame: int = -1,
    probe: FrozenMatrixProbe | None = None,
    model: GlassModel | None = None,
    client: Client | None = None,
    out: str | os.PathLike | None = None,
    name: str | None = None,
) -> InitialState:
    """An initial state from a dump: its stress map, and thresholds and mu supplied or measured.

    ``threshold`` is an (L, L) map; without it the cells are probed by the frozen-matrix method on
    ``client``. Without ``shear_modulus`` mu is measured by quasistatic steps.
    """
    path = Path(path)
    dump = read_dump(path, frame)
    stress, L = dump.stress_map(L, stress_column)
    provenance = {"source": "lammps dump", "dump_file": str(path), "dump_timestep": dump.timestep, "grid_cells": L}
    if threshold is None or shear_modulus is None:
        config = dump.configuration()
    if threshold is None:
        measured = threshold_map(config, L, probe, model, client=client, out=out, name=f"{path.stem}_thresholds")
        threshold, threshold_attrs = lattice_thresholds(measured)
        provenance.update({"thresholds_method": "frozen matrix", **threshold_attrs})
    else:
        provenance["thresholds_method"] = "supplied"
    if shear_modulus is None:
        shear_modulus = modulus.shear_modulus(config, model=model)[0]
        provenance["shear_modulus_method"] = "quasistatic steps of 1e-4, least-squares slope"
    return InitialState(threshold, stress, shear_modulus, name or path.stem, provenance)
