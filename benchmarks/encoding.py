"""Compression of run and assembled files: size against write and read time, per zlib level, vs none.

1. Run file: a typical run (the paper's L = 32 lattice under imposed rate, 200 records, 3
   snapshots of the local stress, threshold and plastic maps) written by xarray with each setting
   on every variable, 40 times.
2. Assembled fields: the snapshots of 8 such runs (different seeds) stacked on a run dimension and
   written in one-run chunks, as the assembly writes them, 10 times.

Figures: size, write time and read-back time, each with its ratio against no compression
measured in the same run.

Run: ``python benchmarks/encoding.py``
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import xarray as xr
from epmsweep.engine import ImposedRate, InitialState, ModelParameters, simulate
from epmsweep.sweep import store

SETTINGS = {
    "none": {},
    "zlib 1 + shuffle": {"zlib": True, "complevel": 1, "shuffle": True},
    "zlib 4 + shuffle": {"zlib": True, "complevel": 4, "shuffle": True},
    "zlib 9 + shuffle": {"zlib": True, "complevel": 9, "shuffle": True},
    "zlib 1": {"zlib": True, "complevel": 1, "shuffle": False},
}
REPEATS = 40


def typical_run() -> xr.Dataset:
    protocol = ImposedRate(1e-2, strain_end=4.0, n_records=200, snapshot_strains=(3.0, 3.5, 4.0))
    return simulate(ModelParameters(L=32), InitialState.rejuvenated(32, seed=1), protocol, seed=2)


def measure(ds: xr.Dataset, folder: Path, name: str, setting: dict) -> tuple[float, float, float]:
    """(bytes, seconds per write, seconds per read) of one file under ``setting``."""
    path = folder / f"{name.replace(' ', '_').replace('+', '')}.nc"
    t0 = time.perf_counter()
    for _ in range(REPEATS):
        ds.to_netcdf(path, engine="netcdf4", encoding={v: setting for v in ds.variables})
    write = (time.perf_counter() - t0) / REPEATS
    t0 = time.perf_counter()
    for _ in range(REPEATS):
        with xr.open_dataset(path, engine="netcdf4") as back:
            back.load()
    return path.stat().st_size, write, (time.perf_counter() - t0) / REPEATS


def measure_fields(fields: xr.Dataset, folder: Path, name: str, setting: dict) -> tuple[float, float, float]:
    """(bytes, seconds per write, seconds per read) of the stacked fields under ``setting``."""
    path = folder / f"fields_{name.replace(' ', '_').replace('+', '')}.nc"
    chunks = {"chunksizes": (1, *fields["local_stress"].shape[1:])}
    encoding = {v: {**setting, **chunks} for v in fields.data_vars}
    t0 = time.perf_counter()
    for _ in range(REPEATS // 4):
        fields.to_netcdf(path, engine="netcdf4", encoding=encoding)
    write = (time.perf_counter() - t0) / (REPEATS // 4)
    t0 = time.perf_counter()
    with xr.open_dataset(path, engine="netcdf4") as back:
        back.load()
    return path.stat().st_size, write, time.perf_counter() - t0


def table(title: str, figures: dict) -> None:
    size0, write0, read0 = figures["none"]
    print(title)
    print(f"{'setting':>18} {'size kB':>8} {'/none':>6} {'write ms':>9} {'/none':>6} {'read ms':>8} {'/none':>6}")
    for name, (size, write, read) in figures.items():
        print(
            f"{name:>18} {size / 1e3:8.1f} {size / size0:6.2f} {write * 1e3:9.2f} {write / write0:6.2f}"
            f" {read * 1e3:8.2f} {read / read0:6.2f}"
        )


def main() -> None:
    ds = typical_run()
    protocol = ImposedRate(1e-2, strain_end=4.0, n_records=200, snapshot_strains=(3.0, 3.5, 4.0))
    runs = [simulate(ModelParameters(L=32), InitialState.rejuvenated(32, seed=s), protocol, seed=s) for s in range(8)]
    fields = xr.concat([r[["local_stress", "threshold", "plastic"]] for r in runs], dim="run")
    with tempfile.TemporaryDirectory() as tmp:
        table("run file", {name: measure(ds, Path(tmp), name, s) for name, s in SETTINGS.items()})
        table("assembled fields", {name: measure_fields(fields, Path(tmp), name, s) for name, s in SETTINGS.items()})
    print(f"in use: run files none; assembled variables {store.ASSEMBLY_COMPRESSION}")


if __name__ == "__main__":
    main()
