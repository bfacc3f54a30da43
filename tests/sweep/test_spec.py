"""Sweep files: a good file parses; every class of bad input gives one error naming file, field and reason."""

import numpy as np
import pytest
from conftest import small_spec, write_spec
from epmsweep.engine import InitialState
from epmsweep.sweep import SpecError, make_plan, parse_spec


def test_good_file_parses_and_expands(tmp_path):
    spec = small_spec(axes={"tau_res": [1.5, 2.0, 2.5], "thresholds.shift": {"linspace": [0, 0.2, 3]}},
                      zip=[["tau_res", "thresholds.shift"]])
    parsed = parse_spec(write_spec(tmp_path / "s.yaml", spec))
    plan = make_plan(parsed)
    # 2 states x (2 rates + 2 stresses) x 3 zipped values x 2 replicas
    assert len(plan.runs) == 2 * 4 * 3 * 2
    assert plan.dims["imposed_rate"] == ("initial_state", "shear_rate", "tau_res", "seed")
    assert plan.coords["imposed_rate"]["thresholds_shift"] == ("tau_res", [0.0, 0.1, 0.2])


def test_ranges():
    spec = parse_spec(small_spec(imposed_rate={"shear_rate": {"logspace": [-4, -2, 3]}, "strain_end": 1.0}))
    np.testing.assert_allclose(spec.protocols["imposed_rate"][1], [1e-4, 1e-3, 1e-2])


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"colour": "red"}, "colour", "unknown key"),
        ({"model": {"L": 8, "tua": 1.0}}, "model.tua", "unknown key"),
        ({"replicas": "four"}, "replicas", "integer"),
        ({"seed": -1}, "seed", "integer >= 0"),
        ({"model": {"L": 8, "tau_pl": -1.0}}, "model.tau_pl", "> 0"),
        ({"model": {"L": 8, "dt": 0.5}}, "model.dt", "shortest time"),
        ({"model": {"L": 100000}}, "model.L", "<="),
        ({"imposed_rate": {"shear_rate": [0.01, -0.001], "strain_end": 1.0}}, "imposed_rate.shear_rate[1]", "> 0"),
        ({"imposed_rate": {"shear_rate": [0.01, None], "strain_end": 1.0}}, "imposed_rate.shear_rate[1]", "scalar"),
        ({"imposed_rate": {"shear_rate": [0.01]}}, "imposed_rate.strain_end", "exactly one"),
        ({"imposed_stress": {"stress": [0.5], "t_end": float("nan")}}, "imposed_stress.t_end", "finite"),
        ({"imposed_stress": {"stress": [0.5], "t_end": 1.0, "snapshot_times": [3.0]}}, "snapshot_times", "beyond"),
        ({"axes": {"tau_res": [1.0, -2.0]}}, "axes.tau_res[1]", "> 0"),
        ({"axes": {"mu": [1.0]}}, "axes.mu", "unknown model parameter"),
        ({"axes": {"tau_res": [1.0, 2.0], "tau_pl": [1.0]}, "zip": [["tau_res", "tau_pl"]]}, "zip[0]", "equal lengths"),
        ({"initial_states": {"E1": {"kind": "quenched"}}}, "initial_states.E1.kind", "must be one of"),
        ({"initial_states": {"E1": {"kind": "annealed", "shift": -0.1}}}, "initial_states.E1.shift", ">= 0"),
        ({"initial_states": {"E1": {"path": "missing.nc"}}}, "initial_states.E1.path", "does not exist"),
    ],
)
def test_bad_specs_name_file_field_and_reason(tmp_path, change, field, reason):
    path = write_spec(tmp_path / "bad.yaml", small_spec(**change))
    with pytest.raises(SpecError) as err:
        parse_spec(path)
    message = str(err.value)
    assert message.startswith(str(path)), message
    assert field in message and reason in message, message


def test_no_protocol_is_an_error(tmp_path):
    spec = {k: v for k, v in small_spec().items() if not k.startswith("imposed")}
    with pytest.raises(SpecError, match="at least one protocol"):
        parse_spec(write_spec(tmp_path / "s.yaml", spec))


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        parse_spec(bad)
    with pytest.raises(SpecError, match="does not exist"):
        parse_spec(tmp_path / "nope.yaml")


def test_file_state_is_checked_against_lattice(tmp_path):
    InitialState.rejuvenated(16, seed=0).save(tmp_path / "s16.nc")
    spec = small_spec(initial_states={"measured": {"path": "s16.nc"}})
    with pytest.raises(SpecError, match="does not match L"):
        parse_spec(write_spec(tmp_path / "s.yaml", spec))
    (tmp_path / "corrupt.nc").write_bytes(b"\x89HDF garbage")
    spec = small_spec(initial_states={"measured": {"path": "corrupt.nc"}})
    with pytest.raises(SpecError, match="initial_states.measured.path.*not a readable netCDF"):
        parse_spec(write_spec(tmp_path / "s.yaml", spec))
