"""Calibration files: a good file parses; a bad one reports every problem at once, by field."""

import numpy as np
import pytest
import yaml
from epmsweep.calibrate import OBSERVABLES, parse_calibration, reference_dataset
from epmsweep.engine.units import RATE, STRESS
from epmsweep.sweep.cli import main
from epmsweep.sweep.spec import SpecError

from .conftest import calibration_dict, write_calibration


@pytest.fixture
def refs(tmp_path):
    flow = reference_dataset(OBSERVABLES["flow_curve"], [0.03, 0.1], [0.7, 0.9], [0.01, 0.01])
    flow.to_netcdf(tmp_path / "flow.nc")
    creep = tmp_path / "creep.csv"  # CSV, time in units of 10 tau_LJ: converted
    creep.write_text("time [10 * tau_LJ],strain [1],strain_err [1]\n2,0.5,0.05\n4,0.9,0.05\n")
    return {"flow": {"observable": "flow_curve", "path": "flow.nc", "weight": 2.0},
            "creep": {"observable": "creep", "path": "creep.csv", "stress": 0.8}}  # fmt: skip


def test_good_file_parses_with_units_converted_and_the_start_in_the_model(tmp_path, refs):
    spec = parse_calibration(write_calibration(tmp_path, refs))
    assert [p.name for p in spec.parameters] == ["tau_res", "thresholds.scale"]
    assert [p.start for p in spec.parameters] == [2.0, 0.57]
    creep = next(c for c in spec.references if c.name == "creep")
    np.testing.assert_allclose(creep.x, [20.0, 40.0])  # 10 tau_LJ units -> tau_LJ
    candidate = spec.candidate({"tau_res": 3.0, "thresholds.scale": 0.6})
    assert candidate.model["tau_res"] == 3.0 and candidate.model["thresholds"]["scale"] == 0.6
    assert candidate.protocols["imposed_rate"][1] == (0.03, 0.1)  # the reference's rates
    assert candidate.protocols["imposed_stress"][1] == (0.8,)


def test_state_parameter_and_log_scale(tmp_path, refs):
    raw = calibration_dict(refs)
    raw["parameters"] = {"initial_states.rejuvenated.shear_modulus": {"bounds": [10, 30]},
                         "tau_pl": {"bounds": [0.1, 10], "log": True}}  # fmt: skip
    path = tmp_path / "state.yaml"
    path.write_text(yaml.safe_dump(raw))
    spec = parse_calibration(path)
    assert spec.parameters[0].start == 15.0 and spec.parameters[1].log
    candidate = spec.candidate({"initial_states.rejuvenated.shear_modulus": 20.0, "tau_pl": 2.0})
    assert candidate.states[0].shear_modulus == 20.0 and candidate.model["tau_pl"] == 2.0


def test_bad_file_reports_every_problem_naming_field_and_value(tmp_path, refs):
    (tmp_path / "wrong_units.nc").write_bytes(b"")
    bad = reference_dataset(OBSERVABLES["flow_curve"], [0.03], [0.7], [0.01])
    bad["stress"].attrs["units"] = RATE  # a rate is not a stress
    bad.to_netcdf(tmp_path / "wrong_units.nc")
    raw = calibration_dict({
        **refs,
        "units": {"observable": "flow_curve", "path": "wrong_units.nc"},
        "gone": {"observable": "flow_curve", "path": "missing.nc"},
        "kind": {"observable": "viscosity", "path": "flow.nc"},
        "late": {"observable": "creep", "path": "creep.csv", "stress": 0.8, "weight": -1},
    })  # fmt: skip
    raw["parameters"] = {
        "tau_res": {"bounds": [3.0, 1.0]},
        "thresholds.scale": {"bounds": [0.58, 0.7]},  # the start 0.57 is outside
        "L": {"bounds": [8, 16]},
        "tau_pl": {"bounds": [0.0, 2.0], "log": True},
    }
    raw["imposed_stress"] = {"t_end": 30.0}  # the creep reference runs to 40
    raw["optimizer"] = {"sampler": "bayes", "population": 0}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError) as info:
        parse_calibration(path)
    fields = {f for f, _ in info.value.errors}
    assert {"parameters.tau_res.bounds", "parameters.thresholds.scale", "parameters.L", "parameters.tau_pl.bounds",
            "references.units.path", "references.gone.path", "references.kind.observable", "references.late.weight",
            "references.creep.path", "optimizer.sampler", "optimizer.population"} <= fields  # fmt: skip
    message = str(info.value)
    assert str(path) in message and "does not convert to" in message and STRESS in message
    assert "'bayes'" in message and "[3.0, 1.0]" in message and "0.57" in message


def test_cli_reports_a_bad_file_without_traceback(tmp_path, refs, capsys):
    raw = calibration_dict(refs)
    raw["parameters"] = {"tau_res": {"bounds": [1.0]}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["calibrate", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "parameters.tau_res.bounds: must be [low, high], got [1.0]" in err and "Traceback" not in err


def test_a_quasistatic_block_is_refused_saying_why(tmp_path, refs):
    raw = calibration_dict(refs)
    raw["quasistatic"] = {"strain_end": 1.0}
    raw["parameters"]["tau_res"] = {"bounds": [3.0, 1.0]}  # reported with it
    path = tmp_path / "quasi.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError) as info:
        parse_calibration(path)
    assert ("quasistatic", "no calibration reference is computed from quasistatic runs (references use "
            "imposed_rate and imposed_stress runs): leave the block out") in info.value.errors  # fmt: skip
    assert "parameters.tau_res.bounds" in {f for f, _ in info.value.errors}
    assert f"{path}: quasistatic: no calibration reference" in str(info.value)
