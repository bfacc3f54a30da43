"""Calibration fixtures: reference curves made by the engine itself at hidden parameters."""

from pathlib import Path

import pytest
import yaml
from epmsweep.calibrate import reference_from_groups
from epmsweep.sweep import run_sweep

HIDDEN = {"tau_res": 2.6, "thresholds.scale": 0.60}  # tau_pl = 1, the paper's
START = {"tau_res": 2.0, "thresholds.scale": 0.57}  # the paper's values
RATES = [0.03, 0.1, 0.3]
CREEP_STRESS = 0.8
CREEP_TIMES = [20.0, 40.0, 60.0, 80.0, 100.0]
LOADING_RATE, LOADING_STRAINS = 0.3, [0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0]  # the runs of the flow curve's fastest rate
RATE_RUNS = {"strain_end": 1.0, "n_records": 20}
STRESS_RUNS = {"t_end": 100.0, "n_records": 20}
STATES = {"rejuvenated": {"kind": "rejuvenated", "shear_modulus": 15.0}}


def model_block(values: dict) -> dict:
    return {"L": 16, "tau_pl": 1.0, "tau_res": values["tau_res"], "thresholds": {"shape": 1.5,
            "scale": values["thresholds.scale"]}}  # fmt: skip


def write_references(folder: Path, client, values: dict = HIDDEN, seed: int = 99, replicas: int = 8) -> dict:
    """Run the engine at ``values`` (other seeds than the calibration's) and write a flow curve and a
    creep curve as reference netCDF files in ``folder``; returns the ``references`` block."""
    sweep = {
        "name": "truth", "seed": seed, "replicas": replicas, "model": model_block(values),
        "initial_states": STATES, "imposed_rate": {"shear_rate": RATES, **RATE_RUNS},
        "imposed_stress": {"stress": [CREEP_STRESS], **STRESS_RUNS},
    }  # fmt: skip
    tree = run_sweep(sweep, out=folder / "truth_store", client=client, progress=False)
    groups = {name: tree[name].to_dataset() for name in tree.children}
    shapes = {"flow_curve": (RATES, None), "stress_strain": (LOADING_STRAINS, LOADING_RATE),
              "creep": (CREEP_TIMES, CREEP_STRESS)}  # fmt: skip
    block = {}
    for name, (x, at) in shapes.items():
        reference_from_groups(groups, name, x, "rejuvenated", at).to_netcdf(folder / f"{name}.nc")
        at_key = {"creep": {"stress": at}, "stress_strain": {"shear_rate": at}}.get(name, {})
        block[name] = {"observable": name, "path": f"{name}.nc", **at_key}
    return block


def calibration_dict(references: dict, **optimizer) -> dict:
    return {
        "name": "fit", "seed": 2021, "replicas": 4, "model": model_block(START), "initial_states": STATES,
        "imposed_rate": RATE_RUNS, "imposed_stress": STRESS_RUNS,
        "parameters": {"tau_res": {"bounds": [1.0, 5.0]}, "thresholds.scale": {"bounds": [0.45, 0.75]}},
        "references": references,
        "optimizer": {"sampler": "cmaes", "evaluations": 19, "population": 6, "seed": 3, **optimizer},
    }  # fmt: skip


def write_calibration(folder: Path, references: dict, **optimizer) -> Path:
    path = folder / "fit.yaml"
    path.write_text(yaml.safe_dump(calibration_dict(references, **optimizer), sort_keys=False))
    return path


@pytest.fixture(scope="session")
def references(tmp_path_factory, client) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("references")
    return folder, write_references(folder, client)
