"""Outputs bit-identical to stored references, for every redistribution path and both protocols.

The references (``reference/outputs.npz``) were made by this file's ``write_references`` from the
engine before its time loop was restructured; the engine must reproduce every value exactly (no
tolerance) and take the same number of steps along each path. Regenerate only on an intended
change of the outputs (with a new ``RESULT_FORMAT_VERSION``): ``python tests/engine/test_reference_outputs.py``.
"""

import importlib
from pathlib import Path

import numpy as np
import pytest
from epmsweep.engine import ImposedRate, ImposedStress, InitialState, ModelParameters, simulate

REFERENCE = Path(__file__).parent / "reference" / "outputs.npz"
COUNTERS = ("steps_sparse", "steps_deferred", "deferred_flushes", "steps_fft", "steps_fast_forward", "steps_elastic")

Rate, Stress = ImposedRate, ImposedStress
CASES = {  # name: (L, protocol, redistribution, fast_forward, deferred capacity or None)
    "rate16-sparse": (16, Rate(1e-2, strain_end=0.3, n_records=30, snapshot_strains=(0.3,)), "sparse", True, None),
    "rate16-fft": (16, Rate(1e-2, strain_end=0.3, n_records=30, snapshot_strains=(0.3,)), "fft", True, None),
    "rate16-slow-plain": (16, Rate(1e-4, strain_end=0.1, n_records=40), "auto", False, None),
    "rate16-slow-forward": (16, Rate(1e-4, strain_end=0.1, n_records=40, snapshot_strains=(0.05,)), "auto", True, None),
    "rate32-auto": (32, Rate(1e-2, strain_end=0.3, n_records=30, snapshot_strains=(0.15, 0.3)), "auto", True, None),
    "rate32-defer": (32, Rate(1e-3, strain_end=0.15, n_records=30, snapshot_strains=(0.15,)), "deferred", True, None),
    "rate32-cramped": (32, Rate(2e-3, strain_end=0.2, n_records=30, snapshot_strains=(0.2,)), "deferred", True, 88),
    "stress16-sparse": (16, Stress(0.6, t_end=30.0, n_records=30, snapshot_times=(30.0,)), "sparse", True, None),
    "stress32-auto": (32, Stress(0.7, t_end=30.0, n_records=30, snapshot_times=(10.0, 30.0)), "auto", True, None),
    "stress32-deferred": (32, Stress(0.55, t_end=40.0, n_records=30, snapshot_times=(40.0,)), "deferred", True, None),
    "stress32-cramped": (32, Stress(0.6, t_end=30.0, n_records=30), "deferred", True, 40),
    "stress32-fft": (32, Stress(0.6, t_end=20.0, n_records=20), "fft", True, None),
    "stress32-stuck": (32, Stress(0.3, t_end=5000.0, n_records=30, snapshot_times=(4000.0,)), "auto", True, None),
}


def run_case(name: str) -> dict[str, np.ndarray]:
    """Every variable and coordinate of the case's run, and its step counters."""
    L, protocol, redistribution, fast_forward, capacity = CASES[name]
    module = importlib.import_module("epmsweep.engine.simulate")
    original = module.deferred_capacity
    if capacity is not None:
        module.deferred_capacity = lambda n, m: capacity
    try:
        ds = simulate(ModelParameters(L=L), InitialState.rejuvenated(L, seed=3), protocol, seed=8,
                      redistribution=redistribution, fast_forward=fast_forward)  # fmt: skip
    finally:
        module.deferred_capacity = original
    out = {k: np.asarray(ds[k].values) for k in (*ds.data_vars, *ds.coords)}
    out.update({k: np.asarray(ds.attrs[k]) for k in COUNTERS})
    return out


def write_references() -> None:
    arrays = {f"{name}/{k}": v for name in CASES for k, v in run_case(name).items()}
    np.savez_compressed(REFERENCE, **arrays)


@pytest.fixture(scope="module")
def references():
    with np.load(REFERENCE) as f:
        return {k: f[k] for k in f.files}


@pytest.mark.parametrize("name", CASES)
def test_outputs_equal_the_references(name, references):
    stored = {k.split("/", 1)[1]: v for k, v in references.items() if k.split("/", 1)[0] == name}
    assert stored, f"no reference for {name}"
    got = run_case(name)
    assert got.keys() == stored.keys()
    for k, v in stored.items():
        assert got[k].dtype == v.dtype, k
        assert np.array_equal(got[k], v, equal_nan=v.dtype.kind == "f"), k


if __name__ == "__main__":
    write_references()
